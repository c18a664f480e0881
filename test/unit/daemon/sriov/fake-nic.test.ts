// FakeNic (daemon/sriov/fake-nic.ts), the NIC seam's test double, on a fake SR-IOV sysfs tree
// under a temp root: a VF reads as the defaults until set; apply merges into a state file and
// logs the call; a driver's refusals (ranges, multicast MAC, min above max, unknown VF) record
// nothing; concurrent applies to different VFs both land; a second FakeNic on the same root (a
// restarted daemon) reads what the first wrote; the state file is replaced, never edited in place.
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidConfigError, PlumbError } from '../../../../common/errors';
import { FAKE_NIC_DIR, FakeNic, readFakeNicCalls, readFakeNicState } from '../../../../daemon/sriov/fake-nic';
import { VF_SETTINGS_DEFAULT, type VfRef, type VfSettings } from '../../../../daemon/sriov/nic';
import { FakeSriovSysfs, type FakePf } from '../../../fakes/fake-sriov-sysfs';

let root: string;
let pf: FakePf;
let nic: FakeNic;
const vf = (vfIndex: number): VfRef => ({ pfPci: pf.pci, pfNetdev: pf.netdev, vfIndex });

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'ovnode-fake-nic-'));
  pf = await new FakeSriovSysfs(root).addPf({ pci: '0000:3b:00.0', netdev: 'eth9', numVfs: 4, switchId: '5c1d3e000a0b0c0d' });
  nic = new FakeNic(root);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('FakeNic.vfConfig', () => {
  it('reads a VF never configured as the defaults, and has written nothing', async () => {
    expect(await nic.vfConfig.read(vf(2))).toEqual(VF_SETTINGS_DEFAULT);
    expect(await readFakeNicState(root)).toEqual({});
    expect(await readFakeNicCalls(root)).toEqual([]);
  });

  it('apply merges the settings given into the VF state and logs the call', async () => {
    const before = Date.now();
    await nic.vfConfig.apply(vf(1), { mac: '02:AA:BB:CC:DD:01', vlan: 100, qos: 3 });
    await nic.vfConfig.apply(vf(1), { spoofchk: false, linkState: 'enable', minTxRate: 10, maxTxRate: 500 });
    const want: VfSettings = { mac: '02:aa:bb:cc:dd:01', vlan: 100, qos: 3, spoofchk: false, trust: false, linkState: 'enable', minTxRate: 10, maxTxRate: 500 };
    expect(await nic.vfConfig.read(vf(1))).toEqual(want);
    expect(await nic.vfConfig.read(vf(0))).toEqual(VF_SETTINGS_DEFAULT);
    expect(await readFakeNicState(root)).toEqual({ '0000:3b:00.0/1': want });
    const calls = await readFakeNicCalls(root);
    expect(calls.map(({ at, ...rest }) => rest)).toEqual([
      { op: 'apply', pfPci: '0000:3b:00.0', vfIndex: 1, change: { mac: '02:aa:bb:cc:dd:01', vlan: 100, qos: 3 } },
      { op: 'apply', pfPci: '0000:3b:00.0', vfIndex: 1, change: { spoofchk: false, linkState: 'enable', minTxRate: 10, maxTxRate: 500 } },
    ]);
    for (const c of calls) expect(Date.parse(c.at)).toBeGreaterThanOrEqual(before - 1000);
  });

  it('half a pair keeps the current other half, as NetlinkNic does', async () => {
    await nic.vfConfig.apply(vf(0), { vlan: 10, qos: 5, minTxRate: 5, maxTxRate: 100 });
    await nic.vfConfig.apply(vf(0), { vlan: 20, maxTxRate: 50 });
    expect(await nic.vfConfig.read(vf(0))).toMatchObject({ vlan: 20, qos: 5, minTxRate: 5, maxTxRate: 50 });
  });

  it.each<[Partial<VfSettings>, string]>([
    [{ vlan: 5000, qos: 0 }, 'invalid vlan 5000'],
    [{ vlan: 1, qos: 8 }, 'invalid qos 8'],
    [{ vlan: -1 }, 'invalid vlan -1'],
    [{ qos: 2.5 }, 'invalid qos 2.5'],
    [{ minTxRate: 100, maxTxRate: 50 }, 'invalid rate min_tx_rate 100 max_tx_rate 50'],
    [{ minTxRate: -1 }, 'invalid minTxRate -1'],
    [{ mac: '01:00:5e:00:00:01' }, 'invalid mac 01:00:5e:00:00:01 (a multicast address'],
    [{ mac: 'ff:ff:ff:ff:ff:ff' }, 'invalid mac ff:ff:ff:ff:ff:ff'],
    [{ mac: '02:00:00:00:00:0g' }, 'invalid mac "02:00:00:00:00:0g"'],
    [{ linkState: 'up' as never }, 'invalid linkState "up"'],
    [{ trust: 1 as never }, 'invalid trust 1'],
    [{ speed: 10 } as never, 'unknown VF setting "speed"'],
  ])('refuses %j like a driver and records nothing', async (change, message) => {
    const err = await nic.vfConfig.apply(vf(1), change).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect((err as Error).message).toContain(`PF eth9 VF 1: ${message}`);
    expect(await readFakeNicCalls(root)).toEqual([]);
    expect(await readFakeNicState(root)).toEqual({});
  });

  it('accepts the edges: vlan 4095 qos 7, the zero MAC, no max rate with a min rate', async () => {
    await nic.vfConfig.apply(vf(3), { vlan: 4095, qos: 7, mac: '00:00:00:00:00:00', minTxRate: 100, maxTxRate: 0 });
    expect(await nic.vfConfig.read(vf(3))).toMatchObject({ vlan: 4095, qos: 7, mac: '00:00:00:00:00:00', minTxRate: 100, maxTxRate: 0 });
  });

  it('checks min <= max on the merged rates: a max below the current min is refused', async () => {
    await nic.vfConfig.apply(vf(0), { minTxRate: 100, maxTxRate: 0 });
    await expect(nic.vfConfig.apply(vf(0), { maxTxRate: 50 })).rejects.toThrow('invalid rate min_tx_rate 100 max_tx_rate 50');
    expect(await readFakeNicCalls(root)).toHaveLength(1);
  });

  it('a VF or PF the tree does not have is refused, like a PF that reports no such VF', async () => {
    await expect(nic.vfConfig.read(vf(4))).rejects.toThrow(new RegExp('^PF eth9 reports no VF 4 '));
    await expect(nic.vfConfig.apply(vf(4), { trust: true })).rejects.toThrow(PlumbError);
    await expect(nic.vfConfig.apply({ pfPci: '0000:5e:00.0', pfNetdev: 'eth7', vfIndex: 0 }, { trust: true })).rejects.toThrow('PF eth7 VF 0: No such device');
    await expect(nic.vfConfig.read({ pfPci: '3b:00.0', pfNetdev: 'eth9', vfIndex: 0 })).rejects.toThrow('not in canonical form');
    expect(await readFakeNicCalls(root)).toEqual([]);
  });

  it('concurrent applies to different VFs are all persisted', async () => {
    await Promise.all([0, 1, 2, 3].flatMap((i) => [
      nic.vfConfig.apply(vf(i), { vlan: 100 + i, qos: i }),
      nic.vfConfig.apply(vf(i), { trust: true }),
    ]));
    const state = await readFakeNicState(root);
    for (const i of [0, 1, 2, 3]) expect(state[`0000:3b:00.0/${i}`]).toEqual({ ...VF_SETTINGS_DEFAULT, vlan: 100 + i, qos: i, trust: true });
    expect(await readFakeNicCalls(root)).toHaveLength(8);
  });

  it('concurrent applies through two FakeNic instances on one root are all persisted too', async () => {
    const other = new FakeNic(join(root, '.', ''));
    await Promise.all([nic.vfConfig.apply(vf(0), { trust: true }), other.vfConfig.apply(vf(1), { trust: true })]);
    expect(Object.keys(await readFakeNicState(root)).sort()).toEqual(['0000:3b:00.0/0', '0000:3b:00.0/1']);
  });

  it('a new FakeNic on the same root (a restarted daemon) reads the persisted state', async () => {
    await nic.vfConfig.apply(vf(2), { mac: '02:00:00:00:00:22', linkState: 'disable' });
    const restarted = new FakeNic(root);
    expect(await restarted.vfConfig.read(vf(2))).toEqual({ ...VF_SETTINGS_DEFAULT, mac: '02:00:00:00:00:22', linkState: 'disable' });
    await restarted.vfConfig.apply(vf(2), VF_SETTINGS_DEFAULT);
    expect(await nic.vfConfig.read(vf(2))).toEqual(VF_SETTINGS_DEFAULT);
    expect(await readFakeNicCalls(root)).toHaveLength(2);
  });

  it('replaces the state file by rename (a new inode each time) and leaves no temp file', async () => {
    const file = join(root, FAKE_NIC_DIR, 'vf-settings.json');
    await nic.vfConfig.apply(vf(0), { trust: true });
    const first = (await stat(file)).ino;
    await nic.vfConfig.apply(vf(0), { trust: false });
    expect((await stat(file)).ino).not.toBe(first);
    expect((await readdir(join(root, FAKE_NIC_DIR))).sort()).toEqual(['calls.jsonl', 'vf-settings.json']);
  });

  it('refuses a corrupt state file instead of starting over', async () => {
    await nic.vfConfig.apply(vf(0), { trust: true });
    await writeFile(join(root, FAKE_NIC_DIR, 'vf-settings.json'), '{"0000:3b:00.0/0": {"mac": 1}}');
    await expect(nic.vfConfig.read(vf(0))).rejects.toThrow('is not a VfSettings');
    await expect(nic.vfConfig.apply(vf(0), { trust: false })).rejects.toThrow('is not a VfSettings');
  });
});

describe('FakeNic.enableHwTcOffload', () => {
  it('records the PF and representor netdevs', async () => {
    await nic.enableHwTcOffload('eth9');
    await nic.enableHwTcOffload(pf.vfs[1]!.representor as string);
    const calls = await readFakeNicCalls(root);
    expect(calls.map(({ at, ...rest }) => rest)).toEqual([{ op: 'hwTcOffload', netdev: 'eth9' }, { op: 'hwTcOffload', netdev: 'eth9_1' }]);
    expect(await readFile(join(root, FAKE_NIC_DIR, 'calls.jsonl'), 'utf8')).toContain('"netdev":"eth9_1"');
  });

  it('refuses a netdev the tree does not have, or an invalid name, and records nothing', async () => {
    await expect(nic.enableHwTcOffload('nope0')).rejects.toThrow('cannot enable hw-tc-offload on nope0: No such device');
    await expect(nic.enableHwTcOffload('../x')).rejects.toThrow('cannot enable hw-tc-offload on "../x"');
    expect(await readFakeNicCalls(root)).toEqual([]);
  });
});

describe('readFakeNicCalls', () => {
  it('skips a last line torn by a crash mid-append, and refuses garbage elsewhere', async () => {
    await nic.enableHwTcOffload('eth9');
    const file = join(root, FAKE_NIC_DIR, 'calls.jsonl');
    await writeFile(file, `${await readFile(file, 'utf8')}{"op":"apply","pfP`);
    expect(await readFakeNicCalls(root)).toHaveLength(1);
    await writeFile(file, `garbage\n${await readFile(file, 'utf8')}`);
    await expect(readFakeNicCalls(root)).rejects.toThrow('line 1 is not JSON');
  });
});
