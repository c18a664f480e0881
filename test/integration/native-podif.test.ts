// Integration tests of configurePodInterface in the real addon (build/native/Release/
// ovnode_native.node). Needs root, iproute2 and ethtool. Everything happens in a throwaway netns
// holding veth pairs created there (both ends inside), so the host's links and routes are never
// touched. Addresses come from the documentation ranges (RFC 5737, RFC 3849). Checks what the
// kernel ended up with through `ip -n` and `ethtool -k`, and that FakeNative refuses the same
// arguments with the same TypeErrors.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeNative } from '../../native/fake';
import { isNativeSystemError, loadNative, type NativeOps, type PodInterfaceConfig } from '../../native/index';

const id = randomBytes(3).toString('hex');
const NS = `ovt-podif-${id}`;
const NS_PATH = `/var/run/netns/${NS}`;
const SPEC: PodInterfaceConfig = {
  ifName: 'eth0',
  addresses: ['192.0.2.5/24', '2001:db8::5/64'],
  gateways: ['192.0.2.1', '2001:db8::1'],
  disableTxChecksum: true,
};

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ipJson<T>(args: string[]): T {
  return JSON.parse(run('ip', ['-n', NS, '-j', ...args])) as T;
}

interface IpAddr { ifname: string; flags: string[]; addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string; tentative?: boolean; nodad?: boolean }> }
interface IpRoute { dst: string; gateway?: string; dev: string; protocol?: string }

/** ethtool -k output as name -> on. */
function ethtoolK(ifName: string): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const m of run('ip', ['netns', 'exec', NS, 'ethtool', '-k', ifName]).matchAll(/^\s*([\w-]+): (on|off)/gm)) {
    out[m[1]!] = m[2] === 'on';
  }
  return out;
}

let pairs = 0;
/** Veths of the running test, removed after it (with their routes). */
const created: string[] = [];
/** A fresh veth pair inside NS, both ends down; returns the name of the end to configure. */
function veth(): string {
  pairs++;
  const name = `pod${pairs}`;
  run('ip', ['-n', NS, 'link', 'add', name, 'type', 'veth', 'peer', 'name', `peer${pairs}`]);
  created.push(name);
  return name;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

let native: NativeOps;

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('configurePodInterface integration tests need root (netns)');
  native = loadNative();
  run('ip', ['netns', 'add', NS]);
});

afterEach(() => {
  for (const name of created.splice(0)) run('ip', ['-n', NS, 'link', 'del', name]);
});

afterAll(() => {
  try {
    run('ip', ['netns', 'del', NS]);
  } catch {
    // already gone
  }
});

describe('configurePodInterface (real addon)', () => {
  it('adds the addresses (IPv6 not tentative), sets the link up, adds the default routes, turns TX checksums off', async () => {
    const ifName = veth();
    expect(ethtoolK(ifName)['tx-checksum-ip-generic']).toBe(true);
    await expect(native.configurePodInterface(NS_PATH, { ...SPEC, ifName })).resolves.toBeUndefined();

    const [link] = ipJson<IpAddr[]>(['addr', 'show', 'dev', ifName]);
    expect(link!.flags).toContain('UP');
    const global = link!.addr_info.filter((a) => a.scope === 'global');
    expect(global.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(['192.0.2.5/24', '2001:db8::5/64']);
    const v6 = global.find((a) => a.family === 'inet6')!;
    expect(v6.tentative).toBeUndefined();
    expect(v6.nodad).toBe(true);
    expect(run('ip', ['-n', NS, '-6', 'addr', 'show', 'dev', ifName])).not.toMatch(/tentative/);

    // Selected by protocol: `ip -j` leaves out proto boot, the default.
    const v4 = ipJson<IpRoute[]>(['-4', 'route', 'show', 'default', 'proto', 'boot', 'table', 'main']);
    expect(v4).toEqual([expect.objectContaining({ dst: 'default', gateway: '192.0.2.1', dev: ifName })]);
    const v6r = ipJson<IpRoute[]>(['-6', 'route', 'show', 'default', 'proto', 'boot', 'table', 'main']);
    expect(v6r).toEqual([expect.objectContaining({ dst: 'default', gateway: '2001:db8::1', dev: ifName })]);

    const features = ethtoolK(ifName);
    expect(features['tx-checksumming']).toBe(false);
    expect(Object.entries(features).filter(([n, on]) => n.startsWith('tx-checksum-') && on)).toEqual([]);
    expect(features['tx-tcp-segmentation']).toBe(false);
    // The pool thread came back: this thread never left, and a second call works the same.
    await expect(native.configurePodInterface(NS_PATH, { ...SPEC, ifName })).resolves.toBeUndefined();
  });

  it('leaves the offloads alone when not asked, and does an IPv4-only spec', async () => {
    const ifName = veth();
    await native.configurePodInterface(NS_PATH, { ifName, addresses: ['198.51.100.7/24'], gateways: ['198.51.100.1'], disableTxChecksum: false });
    expect(ethtoolK(ifName)['tx-checksum-ip-generic']).toBe(true);
    expect(ipJson<IpRoute[]>(['-4', 'route', 'show', 'default'])).toEqual([
      expect.objectContaining({ gateway: '198.51.100.1', dev: ifName }),
    ]);
    expect(ipJson<IpRoute[]>(['-6', 'route', 'show', 'default'])).toEqual([]);
  });

  it('rejects a missing netns path with the setns error', async () => {
    const e = await rejection(native.configurePodInterface(`/var/run/netns/ovt-podif-missing-${id}`, SPEC));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({
      message: `setns(/var/run/netns/ovt-podif-missing-${id}): No such file or directory`,
      code: 'ENOENT',
      syscall: 'open',
    });
  });

  it('rejects a missing interface naming the lookup step', async () => {
    const e = await rejection(native.configurePodInterface(NS_PATH, { ...SPEC, ifName: 'nosuch0' }));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({ message: 'if_nametoindex(nosuch0): No such device', code: 'ENODEV', syscall: 'if_nametoindex' });
  });

  it('rejects an unreachable gateway naming the route step, after the earlier steps took effect', async () => {
    const ifName = veth();
    const e = await rejection(native.configurePodInterface(NS_PATH, { ...SPEC, ifName, gateways: ['203.0.113.1', '2001:db8::1'] }));
    expect(isNativeSystemError(e)).toBe(true);
    expect(e).toMatchObject({
      message: `RTM_NEWROUTE(${ifName} default via 203.0.113.1): Network is unreachable`,
      code: 'ENETUNREACH',
      syscall: 'RTM_NEWROUTE',
    });
    // The fake models the same outcome.
    const fake = new FakeNative().addNetns(NS_PATH).addLink(ifName, { netns: NS_PATH, up: false });
    await expect(fake.configurePodInterface(NS_PATH, { ...SPEC, ifName, gateways: ['203.0.113.1', '2001:db8::1'] })).rejects.toMatchObject({
      message: (e as Error).message,
      code: 'ENETUNREACH',
    });
    expect(ipJson<IpRoute[]>(['-6', 'route', 'show', 'default'])).toEqual([expect.objectContaining({ gateway: '2001:db8::1', dev: ifName })]);
    const e6 = await rejection(native.configurePodInterface(NS_PATH, { ...SPEC, ifName, gateways: ['2001:db8:1::1'] }));
    expect(e6).toMatchObject({ message: `RTM_NEWROUTE(${ifName} default via 2001:db8:1::1): No route to host`, code: 'EHOSTUNREACH' });
    await expect(fake.configurePodInterface(NS_PATH, { ...SPEC, ifName, gateways: ['2001:db8:1::1'] })).rejects.toMatchObject({
      message: (e6 as Error).message,
      code: 'EHOSTUNREACH',
    });
  });

  it.each([
    { desc: 'non-string netns path', args: [42, SPEC] },
    { desc: 'no spec', args: [NS_PATH] },
    { desc: 'an array spec', args: [NS_PATH, []] },
    { desc: 'no ifName', args: [NS_PATH, { ...SPEC, ifName: undefined }] },
    { desc: 'a bad ifName', args: [NS_PATH, { ...SPEC, ifName: 'eth/0' }] },
    { desc: 'addresses not an array', args: [NS_PATH, { ...SPEC, addresses: '192.0.2.5/24' }] },
    { desc: 'a non-string address', args: [NS_PATH, { ...SPEC, addresses: [null] }] },
    { desc: 'an address without prefix', args: [NS_PATH, { ...SPEC, addresses: ['192.0.2.5'] }] },
    { desc: 'a bad CIDR', args: [NS_PATH, { ...SPEC, addresses: ['192.0.2.5/24', '2001:db8::5/129'] }] },
    { desc: 'a non-address CIDR', args: [NS_PATH, { ...SPEC, addresses: ['host.example/24'] }] },
    { desc: 'a zoned address', args: [NS_PATH, { ...SPEC, addresses: ['fe80::1%eth0/64'] }] },
    { desc: 'a signed prefix', args: [NS_PATH, { ...SPEC, addresses: ['192.0.2.5/-1'] }] },
    { desc: 'a gateway with a prefix', args: [NS_PATH, { ...SPEC, gateways: ['192.0.2.1/24'] }] },
    { desc: 'too many gateways', args: [NS_PATH, { ...SPEC, gateways: Array(33).fill('192.0.2.1') }] },
    { desc: 'a non-boolean disableTxChecksum', args: [NS_PATH, { ...SPEC, disableTxChecksum: 'yes' }] },
  ])('rejects $desc with a TypeError before anything happens, as FakeNative does', async ({ args }) => {
    const configure = native.configurePodInterface.bind(native) as (...a: unknown[]) => Promise<void>;
    let p: Promise<void> | undefined;
    expect(() => (p = configure(...args))).not.toThrow();
    const e = await rejection(p!);
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toMatch(/^configurePodInterface: /);
    const fake = new FakeNative().addNetns(NS_PATH).addLink('eth0', { netns: NS_PATH });
    const fakeConfigure = fake.configurePodInterface.bind(fake) as (...a: unknown[]) => Promise<void>;
    const fe = await rejection(fakeConfigure(...args));
    expect(fe).toBeInstanceOf(TypeError);
    expect((fe as Error).message).toBe((e as Error).message);
  });
});
