// VF discovery (daemon/sriov/sysfs.ts) on a fake sysfs tree with real symlinks under a temp root:
// a VF's PF, index, driver and netdevs, for netdev and vfio-pci VFs; PCI addresses from netconf
// parsed strictly (no path out of the tree); representors in switchdev mode by pf<P>vf<N> and by
// the legacy numeric phys_port_name, none in legacy SR-IOV; and files that are not sysfs
// attributes (a FIFO, a huge file) refused instead of read.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidConfigError, PlumbError } from '../../../../common/errors';
import { parsePciAddress, SriovSysfs } from '../../../../daemon/sriov/sysfs';
import { FakeSriovSysfs } from '../../../fakes/fake-sriov-sysfs';

let root: string;
let fake: FakeSriovSysfs;
let sysfs: SriovSysfs;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ovnode-sriov-sysfs-'));
  fake = new FakeSriovSysfs(root);
  sysfs = new SriovSysfs(root);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('parsePciAddress', () => {
  it('keeps the long form and lowercases it', () => {
    expect(parsePciAddress('0000:03:00.2')).toBe('0000:03:00.2');
    expect(parsePciAddress('0000:3B:1F.7')).toBe('0000:3b:1f.7');
  });

  it('normalises the short bus:device.function form to domain 0000', () => {
    expect(parsePciAddress('03:00.2')).toBe('0000:03:00.2');
    expect(parsePciAddress('af:0a.1')).toBe('0000:af:0a.1');
  });

  it.each([
    ['../../etc'],
    ['0000:03:00.2/../x'],
    ['0000:03:00.2/'],
    ['/0000:03:00.2'],
    [''],
    ['0000:03:00.2'.repeat(10)],
    ['0'.repeat(40) + ':03:00.2'],
    [' 0000:03:00.2'],
    ['0000:03:00.2\n'],
    ['0000:03:00.8'],
    ['0000:03:20.0'],
    ['0000:03:00'],
    ['000:03:00.2'],
    ['0000-03-00.2'],
    ['g000:03:00.2'],
    ['0000:03:00.2\u0000'],
  ])('refuses %j', (bad) => {
    expect(() => parsePciAddress(bad)).toThrow(InvalidConfigError);
  });

  it('refuses non-strings', () => {
    for (const bad of [undefined, null, 3, { pci: '0000:03:00.2' }]) expect(() => parsePciAddress(bad)).toThrow(/must be a string/);
  });
});

describe('SriovSysfs.describeVf', () => {
  it('describes a VF with a netdev', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0', numVfs: 4 });
    expect(await sysfs.describeVf('0000:03:00.5')).toEqual({
      vf: '0000:03:00.5',
      pf: '0000:03:00.0',
      vfIndex: 3,
      driver: 'mlx5_core',
      netdev: 'enp3s0f0v3',
      pfNetdev: 'enp3s0f0',
      numVfs: 4,
    });
  });

  it('describes a VF bound to vfio-pci: no netdev', async () => {
    const pf = await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0', numVfs: 4 });
    await fake.bindVfToVfio('0000:03:00.3');
    expect(await sysfs.describeVf('0000:03:00.3')).toEqual({
      vf: '0000:03:00.3', pf: '0000:03:00.0', vfIndex: 1, driver: 'vfio-pci', netdev: undefined, pfNetdev: 'enp3s0f0', numVfs: 4,
    });
    // Its neighbours keep their netdevs.
    expect((await sysfs.describeVf(pf.vfs[2]?.pci)).netdev).toBe('enp3s0f0v2');
  });

  it('reports an unbound VF without driver or netdev', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0', numVfs: 2 });
    await fake.unbindVf('0000:03:00.2');
    expect(await sysfs.describeVf('0000:03:00.2')).toMatchObject({ vfIndex: 0, driver: undefined, netdev: undefined });
  });

  it('accepts the short and the uppercase form and answers with the canonical one', async () => {
    await fake.addPf({ pci: '0000:3b:00.0', netdev: 'ens1f0', numVfs: 2 });
    expect(await sysfs.describeVf('3b:00.3')).toMatchObject({ vf: '0000:3b:00.3', pf: '0000:3b:00.0', vfIndex: 1 });
    expect(await sysfs.describeVf('0000:3B:00.2')).toMatchObject({ vf: '0000:3b:00.2', vfIndex: 0 });
  });

  it('refuses bad addresses before looking at the tree', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0', numVfs: 2 });
    for (const bad of ['../../etc', '0000:03:00.2/../x', '', 'a'.repeat(200), '0000:03:00.2/physfn']) {
      await expect(sysfs.describeVf(bad)).rejects.toThrow(InvalidConfigError);
    }
  });

  it('takes the index from the virtfnN link, not from the address or the directory order', async () => {
    // Addresses deliberately out of order, and more than ten VFs (virtfn10 sorts before virtfn2).
    const vfPcis = ['0000:05:00.7', '0000:05:00.1', '0000:05:01.3', '0000:05:00.4', '0000:05:02.0', '0000:05:00.2',
      '0000:05:01.0', '0000:05:01.1', '0000:05:00.3', '0000:05:01.5', '0000:05:01.2', '0000:05:00.6'];
    const pf = await fake.addPf({ pci: '0000:05:00.0', netdev: 'ens5f0', numVfs: vfPcis.length, vfPcis });
    for (const vf of pf.vfs) {
      expect(await sysfs.describeVf(vf.pci)).toMatchObject({ vf: vf.pci, vfIndex: vf.index, netdev: `ens5f0v${vf.index}`, numVfs: 12 });
    }
    expect((await sysfs.describeVf('0000:05:01.2')).vfIndex).toBe(10);
  });

  it('refuses a PF: it is not a VF', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0', numVfs: 2 });
    await expect(sysfs.describeVf('0000:03:00.0')).rejects.toThrow(/0000:03:00\.0 is not an SR-IOV VF: it has no physfn link/);
  });

  it('refuses a device that is absent', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0', numVfs: 2 });
    await expect(sysfs.describeVf('0000:03:00.4')).rejects.toThrow(/PCI device 0000:03:00\.4 not found/);
  });

  it('refuses a VF its PF does not list', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0', numVfs: 3 });
    await unlink(fake.devicePath('0000:03:00.0', 'virtfn1'));
    await expect(sysfs.describeVf('0000:03:00.3')).rejects.toThrow(/PF 0000:03:00\.0 has no virtfnN link pointing at VF 0000:03:00\.3/);
    expect((await sysfs.describeVf('0000:03:00.4')).vfIndex).toBe(2);
  });

  it('refuses a physfn that is not a symlink', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0', numVfs: 1 });
    await unlink(fake.devicePath('0000:03:00.2', 'physfn'));
    await writeFile(fake.devicePath('0000:03:00.2', 'physfn'), '0000:03:00.0\n');
    await expect(sysfs.describeVf('0000:03:00.2')).rejects.toThrow(/physfn is not a symlink/);
  });

  it('refuses a FIFO where sriov_numvfs should be, without blocking on it', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0', numVfs: 2 });
    const numVfs = fake.devicePath('0000:03:00.0', 'sriov_numvfs');
    await rm(numVfs);
    execFileSync('mkfifo', [numVfs]);
    await expect(sysfs.describeVf('0000:03:00.2')).rejects.toThrow(/sriov_numvfs is not a regular file/);
  }, 2000);

  it('refuses an sriov_numvfs larger than a sysfs attribute, or not a number', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0', numVfs: 2 });
    const numVfs = fake.devicePath('0000:03:00.0', 'sriov_numvfs');
    await writeFile(numVfs, '2'.padEnd(10_000, ' '));
    await expect(sysfs.describeVf('0000:03:00.2')).rejects.toThrow(/sriov_numvfs is larger than 4096 bytes/);
    await writeFile(numVfs, 'two\n');
    await expect(sysfs.describeVf('0000:03:00.2')).rejects.toThrow(/sriov_numvfs is not a count/);
  });

  it('tells the VFs of several PFs on one tree apart', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0', numVfs: 3 });
    await fake.addPf({ pci: '0000:81:00.0', netdev: 'ens8f0', numVfs: 3, driver: 'ice' });
    await fake.addPf({ pci: '0001:05:00.0', netdev: 'eth5', numVfs: 2, firstVfOffset: 16 });
    expect(await sysfs.describeVf('0000:03:00.3')).toMatchObject({ pf: '0000:03:00.0', pfNetdev: 'enp3s0f0', vfIndex: 1, driver: 'mlx5_core' });
    expect(await sysfs.describeVf('0000:81:00.4')).toMatchObject({ pf: '0000:81:00.0', pfNetdev: 'ens8f0', vfIndex: 2, driver: 'ice', netdev: 'ens8f0v2' });
    expect(await sysfs.describeVf('0001:05:02.1')).toMatchObject({ pf: '0001:05:00.0', pfNetdev: 'eth5', vfIndex: 1, numVfs: 2 });
  });

  it('picks the uplink among the PF netdevs when representors share its device (mlx5 switchdev)', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0np0', numVfs: 2, switchId: '1c3a2b0003fe4d00' });
    expect((await sysfs.describeVf('0000:03:00.2')).pfNetdev).toBe('enp3s0f0np0');
  });
});

describe('SriovSysfs.findRepresentor', () => {
  it('finds the pf<P>vf<N> representor in switchdev mode', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0np0', numVfs: 5, switchId: '1c3a2b0003fe4d00' });
    const vf = await sysfs.describeVf('0000:03:00.5');
    expect(vf.vfIndex).toBe(3);
    expect(await sysfs.findRepresentor(vf)).toBe('enp3s0f0np0_3');
    expect(await sysfs.findRepresentor({ ...vf, vfIndex: 0 })).toBe('enp3s0f0np0_0');
  });

  it('finds a representor that has no PCI device (a veth standing in for one)', async () => {
    await fake.addPf({
      pci: '0000:03:00.0', netdev: 'enp3s0f0np0', numVfs: 4, switchId: 'aa', representorLayout: 'virtual',
      representors: ['rep0', 'rep1', 'rep2', 'rep3'],
    });
    expect(await sysfs.findRepresentor(await sysfs.describeVf('0000:03:00.4'))).toBe('rep2');
  });

  it('finds a representor by the legacy numeric phys_port_name', async () => {
    await fake.addPf({
      pci: '0000:03:00.0', netdev: 'eth0', numVfs: 5, switchId: '0011223344556677', portName: '', representorPortNames: 'legacy',
      representorLayout: 'virtual',
    });
    expect(await sysfs.findRepresentor(await sysfs.describeVf('0000:03:00.5'))).toBe('eth0_3');
  });

  it('finds none in legacy SR-IOV mode (no phys_switch_id, or an empty one)', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0', numVfs: 2 });
    const vf = await sysfs.describeVf('0000:03:00.3');
    expect(await sysfs.findRepresentor(vf)).toBeUndefined();
    await writeFile(fake.netdevPath('enp3s0f0', 'phys_switch_id'), '\n');
    expect(await sysfs.findRepresentor(vf)).toBeUndefined();
    expect(await sysfs.findRepresentor({ ...vf, pfNetdev: undefined })).toBeUndefined();
  });

  it('matches the PF number when two PFs of one card share a switch id', async () => {
    const switchId = '1c3a2b0003fe4d00';
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0np0', numVfs: 3, switchId, portName: 'p0' });
    await fake.addPf({
      pci: '0000:03:00.1', netdev: 'enp3s0f1np1', numVfs: 3, switchId, portName: 'p1',
      vfPcis: ['0000:03:01.0', '0000:03:01.1', '0000:03:01.2'],
    });
    const onPf1 = await sysfs.describeVf('0000:03:01.2');
    expect(onPf1).toMatchObject({ pf: '0000:03:00.1', pfNetdev: 'enp3s0f1np1', vfIndex: 2 });
    expect(await sysfs.findRepresentor(onPf1)).toBe('enp3s0f1np1_2');
    expect(await sysfs.findRepresentor(await sysfs.describeVf('0000:03:00.4'))).toBe('enp3s0f0np0_2');
  });

  it('ignores netdevs on another switch with the same port name', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'a0', numVfs: 2, switchId: 'aaaa', representors: ['a_rep0', 'a_rep1'] });
    await fake.addPf({ pci: '0000:81:00.0', netdev: 'b0', numVfs: 2, switchId: 'bbbb', representors: ['b_rep0', 'b_rep1'] });
    expect(await sysfs.findRepresentor(await sysfs.describeVf('0000:81:00.3'))).toBe('b_rep1');
    expect(await sysfs.findRepresentor(await sysfs.describeVf('0000:03:00.3'))).toBe('a_rep1');
  });

  it('refuses to guess between two representors with the same name on the switch', async () => {
    const switchId = 'cafe';
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'a0', numVfs: 2, switchId, portName: '', representorPortNames: 'legacy' });
    await fake.addPf({ pci: '0000:03:00.1', netdev: 'a1', numVfs: 2, switchId, portName: '', representorPortNames: 'legacy', vfPcis: ['0000:03:01.0', '0000:03:01.1'] });
    await expect(sysfs.findRepresentor(await sysfs.describeVf('0000:03:01.1'))).rejects.toThrow(/several netdevs have phys_port_name 1: a0_1, a1_1/);
  });

  it('fails when the PF is in switchdev mode but the representor is missing', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0np0', numVfs: 2, switchId: 'aa', representorLayout: 'virtual' });
    await unlink(fake.netdevPath('enp3s0f0np0_1'));
    await expect(sysfs.findRepresentor(await sysfs.describeVf('0000:03:00.3')))
      .rejects.toThrow(/VF 1 of PF 0000:03:00\.0 .*switchdev mode but no netdev on that switch has phys_port_name pf0vf1 or 1/);
  });

  it('refuses a FIFO where phys_switch_id should be', async () => {
    await fake.addPf({ pci: '0000:03:00.0', netdev: 'enp3s0f0np0', numVfs: 2, switchId: 'aa' });
    const vf = await sysfs.describeVf('0000:03:00.2');
    const switchIdFile = fake.netdevPath('enp3s0f0np0', 'phys_switch_id');
    await rm(switchIdFile);
    execFileSync('mkfifo', [switchIdFile]);
    await expect(sysfs.findRepresentor(vf)).rejects.toThrow(PlumbError);
    await expect(sysfs.findRepresentor(vf)).rejects.toThrow(/phys_switch_id is not a regular file/);
  }, 2000);

  it('refuses a PF netdev name that could leave class/net', async () => {
    await expect(sysfs.findRepresentor({ pf: '0000:03:00.0', pfNetdev: '../../etc', vfIndex: 0 })).rejects.toThrow(/not a valid netdev name/);
  });
});
