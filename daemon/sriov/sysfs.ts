// The sysfs side of SR-IOV VF discovery (issue 9): from the `deviceID` a device plugin hands us
// through Multus (a PCI address) to the VF's PF, its index on that PF, its driver, its netdev (if
// any) and, when the PF's eswitch is in switchdev mode, its representor.
//
// Everything is derived from one configurable sysfs root, so tests build a fake tree with real
// symlinks under a temp dir (test/fakes/fake-sriov-sysfs.ts) and nothing here touches the real
// /sys unless told to. Only fs/promises reads, no processes.
//
// The deviceID comes from untrusted netconf: it is parsed into a canonical PCI address before it
// becomes part of any path, and netdev names are checked against the kernel's naming rules before
// use. Every file read is checked to be a regular file (a FIFO or device node put in the tree
// would otherwise block or stream forever) and read with a size bound; every link is checked to
// be a symlink before readlink.

import { constants } from 'node:fs';
import { lstat, open, readdir, readlink, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InvalidConfigError, PlumbError } from '../../common/errors';

export const DEFAULT_SYSFS_ROOT = '/sys';

/** sysfs attributes are at most one page; anything larger is not the attribute we meant. */
const MAX_ATTRIBUTE_BYTES = 4096;
/** Longer than any PCI address form we accept; checked before the regex sees untrusted input. */
const MAX_PCI_ADDRESS_CHARS = 32;

interface PciAddress {
  domain: number;
  bus: number;
  device: number;
  fn: number;
}

export interface VfDescription {
  /** The VF, canonical long form (0000:03:00.2). */
  vf: string;
  /** Its PF, from the VF's `physfn` link. */
  pf: string;
  /** N of the PF's `virtfnN` link that points at this VF: the index used by PF-side VF netlink and representor names. */
  vfIndex: number;
  /** Bound driver (basename of the `driver` link: mlx5_core, vfio-pci, ...); undefined when unbound. */
  driver: string | undefined;
  /** The VF's netdev; undefined when it has none (bound to vfio-pci or another userspace driver, or unbound). */
  netdev: string | undefined;
  /** The PF's netdev (its uplink in switchdev mode); undefined when the PF has none. */
  pfNetdev: string | undefined;
  /** The PF's sriov_numvfs. */
  numVfs: number;
}

const PCI_LONG = /^([0-9a-fA-F]{4,8}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/;
const PCI_SHORT = /^([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/;

/**
 * Parses a PCI address, domain:bus:device.function (0000:03:00.2) or bus:device.function
 * (03:00.2, domain 0), and returns it in the kernel's own spelling (lowercase, domain padded to
 * four digits), which is the name of its sysfs directory. Anything else is refused, so the result
 * is safe to join into a path.
 */
export function parsePciAddress(input: unknown): string {
  return formatPciAddress(parsePciParts(input));
}

function parsePciParts(input: unknown): PciAddress {
  if (typeof input !== 'string') throw new InvalidConfigError(`PCI address must be a string, got ${typeof input}`);
  if (input.length === 0) throw new InvalidConfigError('PCI address is empty');
  if (input.length > MAX_PCI_ADDRESS_CHARS) {
    throw new InvalidConfigError(`PCI address ${JSON.stringify(input.slice(0, MAX_PCI_ADDRESS_CHARS))}... is too long`);
  }
  const long = PCI_LONG.exec(input);
  const short = long ? undefined : PCI_SHORT.exec(input);
  const [domain, bus, device, fn] = long
    ? [long[1], long[2], long[3], long[4]]
    : short ? ['0', short[1], short[2], short[3]] : [];
  if (domain === undefined || bus === undefined || device === undefined || fn === undefined) {
    throw new InvalidConfigError(`${JSON.stringify(input)} is not a PCI address (expected domain:bus:device.function, e.g. 0000:03:00.2)`);
  }
  const parts = { domain: parseInt(domain, 16), bus: parseInt(bus, 16), device: parseInt(device, 16), fn: Number(fn) };
  // The device number is 5 bits wide: 0x20 and above cannot exist on any bus.
  if (parts.device > 0x1f) throw new InvalidConfigError(`PCI address ${JSON.stringify(input)}: device number ${device} is above 1f`);
  return parts;
}

function formatPciAddress(a: PciAddress): string {
  const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
  return `${hex(a.domain, 4)}:${hex(a.bus, 2)}:${hex(a.device, 2)}.${a.fn}`;
}

/** The kernel's dev_valid_name(): 1-15 bytes, not . or .., no '/', ':' or whitespace. */
export function isValidNetdevName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= 15 && name !== '.' && name !== '..' && !/[/:\s]/.test(name);
}

function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * What the kernel answers when a netdev attribute exists but the device cannot provide it (e.g.
 * phys_switch_id of a NIC without an eswitch): read() fails with one of these. We treat it as
 * "no value", like a missing file.
 */
const ATTRIBUTE_UNSUPPORTED = new Set(['ENOENT', 'EOPNOTSUPP', 'ENOTSUP', 'EINVAL', 'ENODEV', 'ENODATA']);

export class SriovSysfs {
  constructor(readonly root: string = DEFAULT_SYSFS_ROOT) {}

  private pciDevicePath(pci: string, ...rest: string[]): string {
    return join(this.root, 'bus', 'pci', 'devices', pci, ...rest);
  }

  private netdevPath(name: string, ...rest: string[]): string {
    return join(this.root, 'class', 'net', name, ...rest);
  }

  /** Everything ovnode needs to know about the VF `deviceID` names; throws when it is not a VF. */
  async describeVf(deviceId: unknown): Promise<VfDescription> {
    const vf = parsePciAddress(deviceId);
    await this.requirePciDevice(vf);

    const physfn = await this.readLinkBasename(this.pciDevicePath(vf, 'physfn'));
    if (physfn === undefined) throw new PlumbError(`PCI device ${vf} is not an SR-IOV VF: it has no physfn link`);
    const pf = parsePhysfn(vf, physfn);
    await this.requirePciDevice(pf);

    const numVfsText = await this.readAttribute(this.pciDevicePath(pf, 'sriov_numvfs'));
    if (numVfsText === undefined || !/^\d{1,5}$/.test(numVfsText)) {
      throw new PlumbError(`PF ${pf} of VF ${vf}: sriov_numvfs is ${numVfsText === undefined ? 'missing' : `not a count (${JSON.stringify(numVfsText.slice(0, 20))})`}`);
    }

    return {
      vf,
      pf,
      vfIndex: await this.vfIndexOnPf(pf, vf),
      driver: await this.readLinkBasename(this.pciDevicePath(vf, 'driver')),
      netdev: await this.singleNetdev(vf),
      pfNetdev: await this.pfUplinkNetdev(pf),
      numVfs: Number(numVfsText),
    };
  }

  /**
   * The representor of VF `vfIndex` of `pf`, or undefined when the PF's eswitch is not in
   * switchdev mode (its netdev has no phys_switch_id: legacy SR-IOV has no representors).
   *
   * Rule: the sysfs scan of sriovnet (the library OVN-Kubernetes uses) as its earlier releases did
   * it: a representor is a netdev in class/net whose phys_switch_id equals the PF netdev's
   * (non-empty) and whose phys_port_name is
   *   - `pf<P>vf<N>`: current kernels. N is the VF index; P is the PF's number on the NIC, needed
   *     because the PFs of one card can share a switch id. We take P from the PF netdev's own
   *     phys_port_name (`p<P>` for an uplink, `pf<P>` also accepted) and assume 0 when it has
   *     none; sriovnet compared P with the PF's PCI function number, which for mlx5
   *     is the same number. Controller-prefixed names (`c<C>pf<P>vf<N>`) are DPU-side
   *     representors of host VFs and are not matched.
   *   - exactly `<N>`: the numeric form of older kernels. It names no PF, so it is used only when
   *     no `pf<P>vf<N>` name matched, and only when it is unambiguous (sriovnet took the first).
   * Current sriovnet asks devlink first and then looks only at the uplink PCI device's own net/
   * entries, `pf<P>vf<N>` only; scanning class/net as above also finds representors that are not
   * children of the PF's device (a veth standing in for one in tests).
   * Two candidates of the same kind are an error rather than a guess: plugging the wrong
   * representor into br-int would hand this pod another pod's traffic.
   * Switchdev with no representor at all is an error too (the driver has not created it yet, or
   * the VF index is wrong): the caller asked because it needs one.
   */
  async findRepresentor(vf: Pick<VfDescription, 'pf' | 'pfNetdev' | 'vfIndex'>): Promise<string | undefined> {
    if (vf.pfNetdev === undefined) return undefined;
    const pfNetdev = requireNetdevName(vf.pfNetdev, `netdev of PF ${vf.pf}`);
    if (!Number.isSafeInteger(vf.vfIndex) || vf.vfIndex < 0) throw new PlumbError(`PF ${vf.pf}: VF index ${vf.vfIndex} is not a non-negative integer`);

    const switchId = await this.readAttribute(this.netdevPath(pfNetdev, 'phys_switch_id'));
    if (!switchId) return undefined;

    const pfPortName = (await this.readAttribute(this.netdevPath(pfNetdev, 'phys_port_name'))) ?? '';
    const pfNumber = Number(/^pf?(\d+)$/.exec(pfPortName)?.[1] ?? '0');
    const wanted = `pf${pfNumber}vf${vf.vfIndex}`;
    const legacy = String(vf.vfIndex);

    const current: string[] = [];
    const old: string[] = [];
    for (const name of (await this.listDir(join(this.root, 'class', 'net'))) ?? []) {
      if (name === pfNetdev || !isValidNetdevName(name)) continue;
      if ((await this.readAttribute(this.netdevPath(name, 'phys_switch_id'))) !== switchId) continue;
      const portName = await this.readAttribute(this.netdevPath(name, 'phys_port_name'));
      if (portName === wanted) current.push(name);
      else if (portName === legacy) old.push(name);
    }

    const where = `VF ${vf.vfIndex} of PF ${vf.pf} (${pfNetdev}, switch id ${switchId})`;
    for (const [found, portName] of [[current, wanted], [old, legacy]] as const) {
      if (found.length > 1) throw new PlumbError(`${where}: several netdevs have phys_port_name ${portName}: ${found.join(', ')}`);
      if (found.length === 1) return found[0];
    }
    throw new PlumbError(`${where}: PF is in switchdev mode but no netdev on that switch has phys_port_name ${wanted} or ${legacy}`);
  }

  /** N such that the PF's virtfnN link points at `vf`: the kernel's own numbering, not arithmetic on addresses. */
  private async vfIndexOnPf(pf: string, vf: string): Promise<number> {
    const entries = (await this.listDir(this.pciDevicePath(pf))) ?? [];
    for (const entry of entries) {
      const m = /^virtfn(\d{1,5})$/.exec(entry);
      if (!m) continue;
      const target = await this.readLinkBasename(this.pciDevicePath(pf, entry));
      if (target === vf) return Number(m[1]);
    }
    throw new PlumbError(`PF ${pf} has no virtfnN link pointing at VF ${vf} (its physfn points at the PF, but the PF does not list it)`);
  }

  /** The VF's only netdev. More than one means this is not the kind of VF we know how to hand to a pod. */
  private async singleNetdev(vf: string): Promise<string | undefined> {
    const names = (await this.listDir(this.pciDevicePath(vf, 'net'))) ?? [];
    if (names.length > 1) throw new PlumbError(`VF ${vf} has ${names.length} netdevs (${names.join(', ')}); expected one`);
    return names.length === 1 ? requireNetdevName(names[0] as string, `netdev of VF ${vf}`) : undefined;
  }

  /**
   * The PF's netdev. In switchdev mode (mlx5) the PF's net/ also holds its VF representors, so
   * with several entries the uplink is the one whose phys_port_name is `p<N>` (sriovnet's uplink
   * rule); kernels old enough to name representors `<N>` gave the uplink no such name, so failing
   * that it is the one entry whose phys_port_name is not a representor's. (sriov-cni takes the
   * first entry, which would depend on directory order.)
   */
  private async pfUplinkNetdev(pf: string): Promise<string | undefined> {
    const names = ((await this.listDir(this.pciDevicePath(pf, 'net'))) ?? []).filter(isValidNetdevName);
    if (names.length <= 1) return names[0];
    const portNames = new Map<string, string>();
    for (const name of names) {
      portNames.set(name, (await this.readAttribute(this.pciDevicePath(pf, 'net', name, 'phys_port_name'))) ?? '');
    }
    const uplinks = names.filter((n) => /^p\d+$/.test(portNames.get(n) as string));
    const notRepresentors = names.filter((n) => !/^(?:c\d+)?pf\d+[vs]f\d+$|^\d+$/.test(portNames.get(n) as string));
    const found = uplinks.length > 0 ? uplinks : notRepresentors;
    if (found.length !== 1) {
      throw new PlumbError(`PF ${pf} has netdevs ${names.join(', ')} and no single uplink among them (phys_port_name p<N>, or the only one that is not a representor's)`);
    }
    return found[0];
  }

  private async requirePciDevice(pci: string): Promise<void> {
    // bus/pci/devices/<pci> is a symlink into devices/ on a real system: follow it.
    const path = this.pciDevicePath(pci);
    const st = await stat(path).catch((e: unknown) => {
      if (errnoOf(e) === 'ENOENT') throw new PlumbError(`PCI device ${pci} not found (no ${path})`);
      throw new PlumbError(`PCI device ${pci}: ${path}: ${(e as Error).message}`, { cause: e });
    });
    if (!st.isDirectory()) throw new PlumbError(`PCI device ${pci}: ${path} is not a directory`);
  }

  /** Basename of a symlink's target; undefined when there is no such entry. */
  private async readLinkBasename(path: string): Promise<string | undefined> {
    const st = await lstatIfAny(path);
    if (!st) return undefined;
    if (!st.isSymbolicLink()) throw new PlumbError(`${path} is not a symlink`);
    return basename(await readlink(path));
  }

  /** Entry names, sorted (readdir order is the filesystem's); undefined when the directory does not exist. */
  private async listDir(path: string): Promise<string[] | undefined> {
    try {
      return (await readdir(path)).sort();
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') return undefined;
      throw new PlumbError(`${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * A sysfs attribute, trimmed; undefined when it is absent or the kernel says the device has no
   * such value. Refuses anything that is not a regular file before opening it, opens with
   * O_NONBLOCK|O_NOFOLLOW and checks again on the open handle (the entry could be swapped in
   * between), and reads at most one page.
   */
  private async readAttribute(path: string): Promise<string | undefined> {
    const st = await lstatIfAny(path);
    if (!st) return undefined;
    if (!st.isFile()) throw new PlumbError(`${path} is not a regular file`);

    let handle;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (e) {
      if (ATTRIBUTE_UNSUPPORTED.has(errnoOf(e) ?? '')) return undefined;
      throw new PlumbError(`${path}: ${(e as Error).message}`, { cause: e });
    }
    try {
      if (!(await handle.stat()).isFile()) throw new PlumbError(`${path} is not a regular file`);
      const buf = Buffer.alloc(MAX_ATTRIBUTE_BYTES + 1);
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length > MAX_ATTRIBUTE_BYTES) throw new PlumbError(`${path} is larger than ${MAX_ATTRIBUTE_BYTES} bytes: not a sysfs attribute`);
      }
      return buf.subarray(0, length).toString('utf8').trim();
    } catch (e) {
      if (ATTRIBUTE_UNSUPPORTED.has(errnoOf(e) ?? '')) return undefined;
      if (e instanceof PlumbError) throw e;
      throw new PlumbError(`${path}: ${(e as Error).message}`, { cause: e });
    } finally {
      await handle.close();
    }
  }
}

function parsePhysfn(vf: string, target: string): string {
  try {
    return parsePciAddress(target);
  } catch {
    throw new PlumbError(`VF ${vf}: physfn points at ${JSON.stringify(target.slice(0, 64))}, which is not a PCI address`);
  }
}

function requireNetdevName(name: string, what: string): string {
  if (!isValidNetdevName(name)) throw new PlumbError(`${what}: ${JSON.stringify(name.slice(0, 64))} is not a valid netdev name`);
  return name;
}

/** lstat, or undefined when there is no such entry; other failures name the path. */
async function lstatIfAny(path: string): Promise<Awaited<ReturnType<typeof lstat>> | undefined> {
  try {
    return await lstat(path);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return undefined;
    throw new PlumbError(`${path}: ${(e as Error).message}`, { cause: e });
  }
}
