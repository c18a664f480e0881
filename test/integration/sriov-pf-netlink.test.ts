// NetlinkNic (daemon/sriov/pf-netlink.ts) against the REAL kernel. No NIC here implements
// PF-side VF settings, so the "PF" is a veth in a throwaway netns: what is checked is that our
// RTM_SETLINK passes the kernel's parsing of IFLA_VFINFO_LIST (ifla_vf_policy lengths) and reaches
// the driver hook, which a veth does not have (EOPNOTSUPP, while a too-short struct is refused by
// the parser), that the errors name PF, VF and the settings, that RTM_GETLINK with
// RTEXT_FILTER_VF on a device without VFs reads as "reports no VF", and that hw-tc-offload, which
// a veth cannot offer, is refused with the netdev named. Needs root and the native addon
// (npm run build:native).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRtNetlink, type RtNetlinkSocket } from 'netlink';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlumbError } from '../../common/errors';
import type { VfSettings } from '../../daemon/sriov/nic';
import { NetlinkNic, netlinkErrorText } from '../../daemon/sriov/pf-netlink';
import { loadNative, type NativeOps } from '../../native/index';

const id = randomBytes(3).toString('hex');
const NS = `ovt-pfnl-${id}`;
const NS_PATH = `/var/run/netns/${NS}`;
const PF = `ovpf${id}`;
const PEER = `ovpp${id}`;
const NOT_SUPPORTED = 'Operation not supported (EOPNOTSUPP)';

let native: NativeOps;
let sock: RtNetlinkSocket | undefined;
let nic: NetlinkNic;
let nsCreated = false;

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('sriov-pf-netlink integration tests need root (netns, rtnetlink)');
  native = loadNative();
  run('ip', ['netns', 'add', NS]);
  nsCreated = true;
  run('ip', ['-n', NS, 'link', 'add', PF, 'type', 'veth', 'peer', 'name', PEER]);
  // The socket stays bound to the netns it was opened in, as the daemon's is to the node's.
  sock = native.runIn(NS_PATH, () => createRtNetlink());
  nic = new NetlinkNic({ rtnl: sock, ethtool: native });
});

afterAll(() => {
  sock?.socket.close();
  // Deleting the netns deletes the veth pair with it.
  if (nsCreated) run('ip', ['netns', 'del', NS]);
});

const vf = (vfIndex: number, pfNetdev = PF) => ({ pfPci: '0000:00:00.0', pfNetdev, vfIndex });

async function rejection(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  if (!(e instanceof Error)) throw new Error(`expected a rejection, got ${String(e)}`);
  return e;
}

describe('NetlinkNic.vfConfig.apply on a PF without VF support (veth)', () => {
  it('vlan+qos: the kernel answers EOPNOTSUPP, the error names PF, VF and the setting', async () => {
    const e = await rejection(nic.vfConfig.apply(vf(3), { vlan: 100, qos: 2 }));
    expect(e).toBeInstanceOf(PlumbError);
    expect(e.message).toBe(`PF ${PF} VF 3: setting vlan 100 qos 2: ${NOT_SUPPORTED}`);
  });

  it.each<[Partial<VfSettings>, string]>([
    [{ mac: '02:00:00:00:00:01' }, 'mac 02:00:00:00:00:01'],
    [{ spoofchk: false }, 'spoofchk off'],
    [{ trust: true }, 'trust on'],
    [{ linkState: 'disable' }, 'link-state disable'],
    [{ minTxRate: 0, maxTxRate: 100 }, 'min_tx_rate 0 max_tx_rate 100'],
  ])('%j passes the kernel parser and is refused by the driver hook', async (change, words) => {
    expect((await rejection(nic.vfConfig.apply(vf(0), change))).message).toBe(`PF ${PF} VF 0: setting ${words}: ${NOT_SUPPORTED}`);
  });

  it('several settings in one request: every one is named', async () => {
    const e = await rejection(nic.vfConfig.apply(vf(1), { mac: '02:00:00:00:00:02', vlan: 0, qos: 0, spoofchk: true, trust: false, linkState: 'auto', minTxRate: 0, maxTxRate: 0 }));
    expect(e.message).toBe(`PF ${PF} VF 1: setting mac 02:00:00:00:00:02, vlan 0 qos 0, spoofchk on, trust off, link-state auto, min_tx_rate 0 max_tx_rate 0: ${NOT_SUPPORTED}`);
  });

  it('control: a struct shorter than the uapi one is refused by the parser, not the driver hook', async () => {
    // What the EOPNOTSUPP above proves: our structs got past ifla_vf_policy. This kernel (6.18)
    // answers a too-short attribute with ERANGE; the policy check's errno has been EINVAL before.
    const e = await rejection(sock!.setLink({}, { ifname: PF, vfinfoList: { x: [{ vlan: Buffer.alloc(8) }] } }));
    expect(netlinkErrorText(e)).toMatch(/^(Numerical result out of range \(ERANGE\)|Invalid argument \(EINVAL\))$/);
  });

  it('half a pair needs the current other half, and a PF without VFs has none', async () => {
    expect((await rejection(nic.vfConfig.apply(vf(0), { vlan: 100 }))).message).toBe(
      `PF ${PF} VF 0: setting vlan 100: cannot read the other half of the pair: PF ${PF} reports no VF 0 (it reports no VF list at all)`,
    );
  });

  it('a PF that does not exist: No such device', async () => {
    expect((await rejection(nic.vfConfig.apply(vf(0, `ovnx${id}`), { trust: true }))).message).toBe(`PF ovnx${id} VF 0: setting trust on: No such device (ENODEV)`);
  });
});

describe('NetlinkNic.vfConfig.read', () => {
  it('a device without VFs reports none', async () => {
    const e = await rejection(nic.vfConfig.read(vf(0)));
    expect(e).toBeInstanceOf(PlumbError);
    expect(e.message).toBe(`PF ${PF} reports no VF 0 (it reports no VF list at all)`);
  });

  it('a PF that does not exist: No such device', async () => {
    expect((await rejection(nic.vfConfig.read(vf(0, `ovnx${id}`)))).message).toBe(`PF ovnx${id} VF 0: reading VF settings: No such device (ENODEV)`);
  });
});

describe('NetlinkNic.enableHwTcOffload', () => {
  it('is refused on a veth (hw-tc-offload is fixed off), naming the netdev; the feature stays off', async () => {
    // The ethtool call happens before enableHwTcOffload returns, so runIn covers it.
    const e = await rejection(native.runIn(NS_PATH, () => nic.enableHwTcOffload(PF)));
    expect(e).toBeInstanceOf(PlumbError);
    expect(e.message).toBe(`cannot enable hw-tc-offload on ${PF}: setFeatures(${PF}): hw-tc-offload stays off [fixed]`);
    expect(native.runIn(NS_PATH, () => native.getFeatures(PF))['hw-tc-offload']).toBe(false);
  });

  it("acts in the calling thread's netns: outside it the veth does not exist", async () => {
    const e = await rejection(nic.enableHwTcOffload(PF));
    expect(e.message).toMatch(new RegExp(`^cannot enable hw-tc-offload on ${PF}: .*No such device`));
  });
});
