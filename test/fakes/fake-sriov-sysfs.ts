// FakeSriovSysfs: a test double of the sysfs an SR-IOV NIC produces, written as real directories,
// files and relative symlinks under a temp root, for daemon/sriov/sysfs.ts (its root is
// configurable). There is no SR-IOV hardware on the test machines.
//
// Layout, as the kernel lays it out (trimmed to what VF discovery reads):
//   devices/pci<domain>:<bus>/<bdf>/            the PCI device (PF and its VFs are siblings, as
//                                               they are under their bridge on real hardware)
//     driver -> ../../../bus/pci/drivers/<drv>
//     net/<netdev>/{device -> ../../../<bdf>, phys_port_name, phys_switch_id}
//     PF:  sriov_numvfs, sriov_totalvfs, virtfn<N> -> ../<vf bdf>
//     VF:  physfn -> ../<pf bdf>
//   bus/pci/devices/<bdf> -> ../../../devices/pci<domain>:<bus>/<bdf>
//   bus/pci/drivers/<drv>/
//   class/net/<netdev> -> ../../devices/.../<bdf>/net/<netdev>
// Representors (switchdev only) sit in the PF's net/ as mlx5 puts them, or, with
// representorLayout 'virtual', in devices/virtual/net/<name>/ as a veth standing in for one would.
//
// Names only: the netdevs named here are not created. Tests that need real links create them
// (veth pairs for VF and representor) and use the same names.

import { mkdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface FakePfSpec {
  /** Canonical long form, e.g. 0000:03:00.0. */
  pci: string;
  netdev: string;
  numVfs: number;
  /** Default: max(numVfs, 8). */
  totalVfs?: number;
  /** Default: mlx5_core, for the PF and its VFs. */
  driver?: string;
  /** VF addresses; default: PCIe routing ID arithmetic, PF + firstVfOffset + i (stride 1). */
  vfPcis?: string[];
  /** Default 2 (what ConnectX cards report). */
  firstVfOffset?: number;
  /** VF netdev names; default `${netdev}v${i}`. */
  vfNetdevs?: string[];
  /** Set: the eswitch is in switchdev mode with this phys_switch_id and every VF gets a representor. */
  switchId?: string;
  /** The PF netdev's phys_port_name; default 'p0' in switchdev mode, none otherwise. */
  portName?: string;
  /** Representor names; default `${netdev}_${i}`. */
  representors?: string[];
  /** Representors' phys_port_name: 'pfvf' (default) pf<P>vf<N> with P from portName, or 'legacy' <N>. */
  representorPortNames?: 'pfvf' | 'legacy';
  /** Where representor netdevs live in sysfs; default 'pf' (the PF's net/, as mlx5). */
  representorLayout?: 'pf' | 'virtual';
}

export interface FakeVf {
  pci: string;
  index: number;
  netdev: string;
  representor: string | undefined;
}

export interface FakePf {
  pci: string;
  netdev: string;
  vfs: FakeVf[];
}

const PCI = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/;

function pciParts(pci: string): { domain: string; rid: number } {
  const m = PCI.exec(pci);
  if (!m) throw new Error(`FakeSriovSysfs: ${pci} is not a canonical PCI address`);
  return { domain: m[1] as string, rid: (parseInt(m[2] as string, 16) << 8) | (parseInt(m[3] as string, 16) << 3) | Number(m[4]) };
}

function pciFromRid(domain: string, rid: number): string {
  if (rid > 0xffff) throw new Error(`FakeSriovSysfs: routing ID ${rid} is past the last bus`);
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return `${domain}:${hex(rid >> 8)}:${hex((rid >> 3) & 0x1f)}.${rid & 7}`;
}

export class FakeSriovSysfs {
  /** Real directory of each PCI device, relative to the root. */
  private readonly deviceDirs = new Map<string, string>();
  /** Netdev name of each VF that has one. */
  private readonly vfNetdevs = new Map<string, string>();

  constructor(readonly root: string) {}

  /** Path of a PCI device as the code under test reaches it (through bus/pci/devices). */
  devicePath(pci: string, ...rest: string[]): string {
    return join(this.root, 'bus', 'pci', 'devices', pci, ...rest);
  }

  netdevPath(name: string, ...rest: string[]): string {
    return join(this.root, 'class', 'net', name, ...rest);
  }

  async addPf(spec: FakePfSpec): Promise<FakePf> {
    const { domain, rid } = pciParts(spec.pci);
    const parent = join('devices', `pci${spec.pci.slice(0, 7)}`);
    const driver = spec.driver ?? 'mlx5_core';
    const vfPcis = spec.vfPcis ?? Array.from({ length: spec.numVfs }, (_, i) => pciFromRid(domain, rid + (spec.firstVfOffset ?? 2) + i));
    if (vfPcis.length !== spec.numVfs) throw new Error(`FakeSriovSysfs: ${vfPcis.length} VF addresses for ${spec.numVfs} VFs`);
    const switchdev = spec.switchId !== undefined;
    const portName = spec.portName ?? (switchdev ? 'p0' : undefined);

    await this.addPciDevice(spec.pci, parent, driver);
    await writeFile(this.devicePath(spec.pci, 'sriov_numvfs'), `${spec.numVfs}\n`);
    await writeFile(this.devicePath(spec.pci, 'sriov_totalvfs'), `${spec.totalVfs ?? Math.max(spec.numVfs, 8)}\n`);
    await this.addNetdev(spec.pci, spec.netdev, {
      ...(portName !== undefined ? { phys_port_name: portName } : {}),
      ...(switchdev ? { phys_switch_id: spec.switchId as string } : {}),
    });

    const pfNumber = /^pf?(\d+)$/.exec(portName ?? '')?.[1] ?? '0';
    const vfs: FakeVf[] = [];
    for (const [index, vfPci] of vfPcis.entries()) {
      const netdev = spec.vfNetdevs?.[index] ?? `${spec.netdev}v${index}`;
      await this.addPciDevice(vfPci, parent, driver);
      await symlink(`../${spec.pci}`, this.devicePath(vfPci, 'physfn'));
      await symlink(`../${vfPci}`, this.devicePath(spec.pci, `virtfn${index}`));
      await this.addNetdev(vfPci, netdev, {});
      this.vfNetdevs.set(vfPci, netdev);

      let representor: string | undefined;
      if (switchdev) {
        representor = spec.representors?.[index] ?? `${spec.netdev}_${index}`;
        const attrs = {
          phys_switch_id: spec.switchId as string,
          phys_port_name: spec.representorPortNames === 'legacy' ? `${index}` : `pf${pfNumber}vf${index}`,
        };
        if (spec.representorLayout === 'virtual') await this.addVirtualNetdev(representor, attrs);
        else await this.addNetdev(spec.pci, representor, attrs);
      }
      vfs.push({ pci: vfPci, index, netdev, representor });
    }
    return { pci: spec.pci, netdev: spec.netdev, vfs };
  }

  /** What binding a VF to vfio-pci does: the driver link changes and its netdev disappears. */
  async bindVfToVfio(vfPci: string): Promise<void> {
    await this.setDriver(vfPci, 'vfio-pci');
    await this.removeVfNetdev(vfPci);
  }

  /** What unbinding a VF from its driver does: no driver link, no netdev. */
  async unbindVf(vfPci: string): Promise<void> {
    await unlink(this.devicePath(vfPci, 'driver'));
    await this.removeVfNetdev(vfPci);
  }

  private async removeVfNetdev(vfPci: string): Promise<void> {
    const netdev = this.vfNetdevs.get(vfPci);
    if (netdev === undefined) return;
    await rm(this.devicePath(vfPci, 'net'), { recursive: true });
    await unlink(this.netdevPath(netdev));
    this.vfNetdevs.delete(vfPci);
  }

  private async setDriver(pci: string, driver: string): Promise<void> {
    await mkdir(join(this.root, 'bus', 'pci', 'drivers', driver), { recursive: true });
    await rm(this.devicePath(pci, 'driver'), { force: true });
    await symlink(`../../../bus/pci/drivers/${driver}`, this.devicePath(pci, 'driver'));
  }

  private async addPciDevice(pci: string, parent: string, driver: string): Promise<void> {
    if (this.deviceDirs.has(pci)) throw new Error(`FakeSriovSysfs: PCI device ${pci} already exists`);
    const dir = join(parent, pci);
    await mkdir(join(this.root, dir), { recursive: true });
    await mkdir(join(this.root, 'bus', 'pci', 'devices'), { recursive: true });
    await symlink(`../../../${dir}`, this.devicePath(pci));
    this.deviceDirs.set(pci, dir);
    await this.setDriver(pci, driver);
  }

  /** A netdev of a PCI device: net/<name>/ in the device, class/net/<name> pointing at it. */
  private async addNetdev(pci: string, name: string, attrs: Record<string, string>): Promise<void> {
    const dir = join(this.deviceDirs.get(pci) as string, 'net', name);
    await mkdir(join(this.root, dir), { recursive: true });
    await symlink(`../../../${pci}`, join(this.root, dir, 'device'));
    await this.writeAttrs(join(this.root, dir), attrs);
    await this.linkClassNet(name, dir);
  }

  /** A netdev with no PCI device behind it (a veth, say): devices/virtual/net/<name>. */
  private async addVirtualNetdev(name: string, attrs: Record<string, string>): Promise<void> {
    const dir = join('devices', 'virtual', 'net', name);
    await mkdir(join(this.root, dir), { recursive: true });
    await this.writeAttrs(join(this.root, dir), attrs);
    await this.linkClassNet(name, dir);
  }

  private async linkClassNet(name: string, dir: string): Promise<void> {
    await mkdir(join(this.root, 'class', 'net'), { recursive: true });
    await symlink(`../../${dir}`, this.netdevPath(name));
  }

  private async writeAttrs(dir: string, attrs: Record<string, string>): Promise<void> {
    for (const [file, value] of Object.entries(attrs)) await writeFile(join(dir, file), `${value}\n`);
  }
}
