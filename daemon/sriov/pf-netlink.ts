// The real Nic (nic.ts): PF-side VF settings over rtnetlink on the PF, as `ip link set PF vf N
// ...` does, and hw-tc-offload through the native addon's ethtool. Built once in the daemon from
// the node netns' rtnetlink socket; every request addresses the PF by name in that netns.
//
// Wire format (include/uapi/linux/if_link.h): RTM_GETLINK with IFLA_EXT_MASK = RTEXT_FILTER_VF
// makes the kernel add IFLA_NUM_VF and IFLA_VFINFO_LIST to the PF's link message; the list nests
// one IFLA_VF_INFO per VF, each holding small structs that all start with `__u32 vf`:
//   IFLA_VF_MAC        1  struct ifla_vf_mac        { vf; __u8 mac[32] }        36 bytes
//   IFLA_VF_VLAN       2  struct ifla_vf_vlan       { vf; vlan; qos }           12 bytes
//   IFLA_VF_TX_RATE    3  struct ifla_vf_tx_rate    { vf; rate }                 8 bytes
//   IFLA_VF_SPOOFCHK   4  struct ifla_vf_spoofchk   { vf; setting }              8 bytes
//   IFLA_VF_LINK_STATE 5  struct ifla_vf_link_state { vf; link_state }           8 bytes
//   IFLA_VF_RATE       6  struct ifla_vf_rate       { vf; min_tx_rate; max_tx_rate } 12 bytes
//   IFLA_VF_TRUST      9  struct ifla_vf_trust      { vf; setting }              8 bytes
// All fields are __u32 in host byte order. RTM_SETLINK takes the same nesting: the kernel
// (do_setvfinfo) calls the driver's ndo_set_vf_* for each attribute present, in the fixed order
// MAC, VLAN, TX_RATE, RATE, SPOOFCHK, LINK_STATE, TRUST, and stops at the first failure; the
// error does not say which one failed.
//
// Pairs: vlan+qos travel in one struct, and so do minTxRate+maxTxRate. When a change gives only
// one half of a pair, apply() reads the VF's current value for the other half (one RTM_GETLINK)
// so that a change touches only what it names; applies to one VF are serialised so that this
// read-modify-write cannot interleave with another apply of the same VF in this process.

import { endianness } from 'node:os';
import type { ifla, RtNetlinkSocket } from 'netlink';
import { InvalidConfigError, PlumbError } from '../../common/errors';
import type { Ethtool } from '../../native/index';
import { VF_SETTINGS_DEFAULT, type Nic, type PfVfConfig, type VfLinkState, type VfRef, type VfSettings } from './nic';
import { isValidNetdevName } from './sysfs';

/** IFLA_VF_* attribute types inside IFLA_VF_INFO (if_link.h). */
export const IFLA_VF = { MAC: 1, VLAN: 2, TX_RATE: 3, SPOOFCHK: 4, LINK_STATE: 5, RATE: 6, TRUST: 9 } as const;
/** IFLA_EXT_MASK bit asking RTM_GETLINK for the VF list (rtnetlink.h). */
export const RTEXT_FILTER_VF = 1;
/** Sizes of the uapi structs; the kernel's ifla_vf_policy requires at least these lengths. */
export const VF_STRUCT_BYTES = { mac: 36, vlan: 12, txRate: 8, spoofchk: 8, linkState: 8, rate: 12, trust: 8 } as const;

const LINK_STATES: readonly VfLinkState[] = ['auto', 'enable', 'disable']; // IFLA_VF_LINK_STATE_AUTO=0, ENABLE=1, DISABLE=2
/** The kernel presets spoofchk and trust to -1 before asking the driver: "the driver did not say". */
const NOT_REPORTED = 0xffffffff;
const U32_MAX = 0xffffffff;
/** do_setvfinfo refuses vf >= INT_MAX. */
const VF_INDEX_MAX = 0x7ffffffe;
const MAC_TEXT = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;
const SETTING_KEYS: ReadonlySet<string> = new Set(Object.keys(VF_SETTINGS_DEFAULT));

const LE = endianness() === 'LE';
const writeU32 = (b: Buffer, value: number, offset: number): void => {
  if (LE) b.writeUInt32LE(value, offset);
  else b.writeUInt32BE(value, offset);
};
const readU32 = (b: Buffer, offset: number): number => (LE ? b.readUInt32LE(offset) : b.readUInt32BE(offset));

function u32Struct(...fields: number[]): Buffer {
  const b = Buffer.alloc(4 * fields.length);
  fields.forEach((v, i) => writeU32(b, v, 4 * i));
  return b;
}

/** "02:00:00:00:00:01" -> 6 bytes; the caller has checked the syntax. */
export function macToBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}
export function bytesToMac(b: Buffer): string {
  return [...b.subarray(0, 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * Checks that `vf` names a PF netdev and a VF number the kernel accepts, and that every entry of
 * `change` is a known setting with a value that can be encoded (MAC syntax, u32 numbers,
 * booleans, a known link state). Range rules beyond that (vlan <= 4095, min <= max...) are the
 * driver's. Throws InvalidConfigError naming PF, VF and the setting.
 */
export function checkVfChange(vf: VfRef, change: Partial<VfSettings>): void {
  const where = `PF ${vf.pfNetdev} VF ${vf.vfIndex}`;
  if (typeof vf.pfNetdev !== 'string' || !isValidNetdevName(vf.pfNetdev)) {
    throw new InvalidConfigError(`${JSON.stringify(vf.pfNetdev)} is not a valid PF netdev name`);
  }
  checkVfIndex(vf);
  if (typeof change !== 'object' || change === null) throw new InvalidConfigError(`${where}: the VF settings must be an object`);
  for (const [key, value] of Object.entries(change)) {
    if (value === undefined) continue;
    if (!SETTING_KEYS.has(key)) throw new InvalidConfigError(`${where}: unknown VF setting ${JSON.stringify(key)}`);
    const bad = (why: string) => new InvalidConfigError(`${where}: invalid ${key} ${JSON.stringify(value)} (${why})`);
    switch (key) {
      case 'mac':
        if (typeof value !== 'string' || !MAC_TEXT.test(value)) throw bad('expected a MAC address like 02:00:00:00:00:01');
        break;
      case 'vlan': case 'qos': case 'minTxRate': case 'maxTxRate':
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > U32_MAX) throw bad('expected a non-negative integer');
        break;
      case 'spoofchk': case 'trust':
        if (typeof value !== 'boolean') throw bad('expected true or false');
        break;
      case 'linkState':
        if (!LINK_STATES.includes(value as VfLinkState)) throw bad(`expected one of ${LINK_STATES.join(', ')}`);
        break;
    }
  }
}

function checkVfIndex(vf: VfRef): void {
  if (!Number.isInteger(vf.vfIndex) || vf.vfIndex < 0 || vf.vfIndex > VF_INDEX_MAX) {
    throw new InvalidConfigError(`PF ${vf.pfNetdev}: VF index ${vf.vfIndex} is not a non-negative integer`);
  }
}

/** The settings of a change in `ip link` words, for messages: "vlan 100 qos 2, spoofchk off". */
export function describeVfChange(change: Partial<VfSettings>): string {
  const parts: string[] = [];
  const onOff = (b: boolean) => (b ? 'on' : 'off');
  if (change.mac !== undefined) parts.push(`mac ${change.mac}`);
  if (change.vlan !== undefined || change.qos !== undefined) {
    parts.push([change.vlan !== undefined ? `vlan ${change.vlan}` : '', change.qos !== undefined ? `qos ${change.qos}` : ''].filter(Boolean).join(' '));
  }
  if (change.spoofchk !== undefined) parts.push(`spoofchk ${onOff(change.spoofchk)}`);
  if (change.trust !== undefined) parts.push(`trust ${onOff(change.trust)}`);
  if (change.linkState !== undefined) parts.push(`link-state ${change.linkState}`);
  if (change.minTxRate !== undefined || change.maxTxRate !== undefined) {
    parts.push([change.minTxRate !== undefined ? `min_tx_rate ${change.minTxRate}` : '', change.maxTxRate !== undefined ? `max_tx_rate ${change.maxTxRate}` : ''].filter(Boolean).join(' '));
  }
  return parts.join(', ');
}

/** True when the change gives only one half of vlan+qos or of minTxRate+maxTxRate. */
export function hasHalfPair(change: Partial<VfSettings>): boolean {
  return (change.vlan === undefined) !== (change.qos === undefined) || (change.minTxRate === undefined) !== (change.maxTxRate === undefined);
}

/**
 * The IFLA_VFINFO_LIST of an RTM_SETLINK that applies `change` to VF `vfIndex`: one IFLA_VF_INFO
 * with one attribute per setting present, in the kernel's enum order. Pairs must be whole (vlan
 * with qos, minTxRate with maxTxRate): a half pair throws, because the struct would otherwise
 * reset the other half to 0. Values are not range-checked here (see checkVfChange).
 */
export function encodeVfInfoList(vfIndex: number, change: Partial<VfSettings>): ifla.VirtualFunctionList {
  if (hasHalfPair(change)) {
    throw new Error(`encodeVfInfoList: ${describeVfChange(change)}: vlan needs qos and minTxRate needs maxTxRate (they share one struct)`);
  }
  const info: ifla.VirtualFunction = {};
  if (change.mac !== undefined) {
    const mac = Buffer.alloc(VF_STRUCT_BYTES.mac);
    writeU32(mac, vfIndex, 0);
    macToBytes(change.mac).copy(mac, 4);
    info.mac = mac;
  }
  if (change.vlan !== undefined && change.qos !== undefined) info.vlan = u32Struct(vfIndex, change.vlan, change.qos);
  if (change.spoofchk !== undefined) info.spoofchk = u32Struct(vfIndex, change.spoofchk ? 1 : 0);
  if (change.linkState !== undefined) info.linkState = u32Struct(vfIndex, LINK_STATES.indexOf(change.linkState));
  if (change.minTxRate !== undefined && change.maxTxRate !== undefined) info.rate = u32Struct(vfIndex, change.minTxRate, change.maxTxRate);
  if (change.trust !== undefined) info.trust = u32Struct(vfIndex, change.trust ? 1 : 0);
  return { x: [info] };
}

/** The `vf` field of the first VF struct an IFLA_VF_INFO carries (every one starts with it). */
function vfNumberOf(info: ifla.VirtualFunction): number | undefined {
  for (const b of [info.mac, info.vlan, info.rate, info.txRate, info.spoofchk, info.linkState, info.trust]) {
    if (b !== undefined && b.length >= 4) return readU32(b, 0);
  }
  return undefined;
}

function field(name: string, b: Buffer, minBytes: number, offset: number, vfIndex: number): number {
  if (b.length < minBytes) throw new Error(`VF ${vfIndex}: ${name} is ${b.length} bytes, expected ${minBytes}`);
  return readU32(b, offset);
}

/**
 * The settings of VF `vfIndex` from a PF's link attributes (an RTM_GETLINK answer with
 * RTEXT_FILTER_VF), or undefined when the PF lists no IFLA_VF_INFO for that VF number. The VF is
 * matched on the `vf` field of its structs, not on its position in the list. A setting the PF does
 * not report (attribute absent, or spoofchk/trust left at the kernel's "not reported" -1) reads as
 * VF_SETTINGS_DEFAULT's value; IFLA_VF_RATE's max falls back to IFLA_VF_TX_RATE. Throws on a
 * struct shorter than its uapi size or an unknown link state.
 */
export function decodeVfSettings(attrs: ifla.LinkAttrs, vfIndex: number): VfSettings | undefined {
  const info = attrs.vfinfoList?.x?.find((vf) => vfNumberOf(vf) === vfIndex);
  if (info === undefined) return undefined;
  const out: VfSettings = { ...VF_SETTINGS_DEFAULT };
  if (info.mac !== undefined) {
    if (info.mac.length < 10) throw new Error(`VF ${vfIndex}: IFLA_VF_MAC is ${info.mac.length} bytes, expected ${VF_STRUCT_BYTES.mac}`);
    out.mac = bytesToMac(info.mac.subarray(4, 10));
  }
  if (info.vlan !== undefined) {
    out.vlan = field('IFLA_VF_VLAN', info.vlan, VF_STRUCT_BYTES.vlan, 4, vfIndex);
    out.qos = field('IFLA_VF_VLAN', info.vlan, VF_STRUCT_BYTES.vlan, 8, vfIndex);
  }
  if (info.spoofchk !== undefined) {
    const v = field('IFLA_VF_SPOOFCHK', info.spoofchk, VF_STRUCT_BYTES.spoofchk, 4, vfIndex);
    if (v !== NOT_REPORTED) out.spoofchk = v !== 0;
  }
  if (info.trust !== undefined) {
    const v = field('IFLA_VF_TRUST', info.trust, VF_STRUCT_BYTES.trust, 4, vfIndex);
    if (v !== NOT_REPORTED) out.trust = v !== 0;
  }
  if (info.linkState !== undefined) {
    const v = field('IFLA_VF_LINK_STATE', info.linkState, VF_STRUCT_BYTES.linkState, 4, vfIndex);
    const state = LINK_STATES[v];
    if (state === undefined) throw new Error(`VF ${vfIndex}: unknown IFLA_VF_LINK_STATE ${v}`);
    out.linkState = state;
  }
  if (info.rate !== undefined) {
    out.minTxRate = field('IFLA_VF_RATE', info.rate, VF_STRUCT_BYTES.rate, 4, vfIndex);
    out.maxTxRate = field('IFLA_VF_RATE', info.rate, VF_STRUCT_BYTES.rate, 8, vfIndex);
  } else if (info.txRate !== undefined) {
    out.maxTxRate = field('IFLA_VF_TX_RATE', info.txRate, VF_STRUCT_BYTES.txRate, 4, vfIndex);
  }
  return out;
}

/** Runs tasks with the same key one after another (in call order); different keys run freely. */
export class KeyedSerializer {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    // Forget the key once nothing is queued behind this task, so the map does not grow per VF.
    void tail.then(() => { if (this.tails.get(key) === tail) this.tails.delete(key); });
    return result;
  }
}

/** glibc's strerror text for the errnos a PF driver or rtnetlink answer with. */
const ERRNO_TEXT: Record<string, string> = {
  EOPNOTSUPP: 'Operation not supported',
  EINVAL: 'Invalid argument',
  ENODEV: 'No such device',
  EPERM: 'Operation not permitted',
  EACCES: 'Permission denied',
  EBUSY: 'Device or resource busy',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  ERANGE: 'Numerical result out of range',
  EIO: 'Input/output error',
  ENOENT: 'No such file or directory',
  EEXIST: 'File exists',
  ENOSPC: 'No space left on device',
  ETIMEDOUT: 'Connection timed out',
};

/**
 * "Operation not supported (EOPNOTSUPP)" from the netlink package's "Request rejected: ENOTSUP"
 * (libuv names errno 95 ENOTSUP; the kernel's name for it is EOPNOTSUPP). Other errors keep
 * their message.
 */
export function netlinkErrorText(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const m = /^Request rejected: (\w+)$/.exec(message);
  if (!m) return message;
  const code = m[1] === 'ENOTSUP' ? 'EOPNOTSUPP' : (m[1] as string);
  const text = ERRNO_TEXT[code];
  return text ? `${text} (${code})` : /^\d+$/.test(code) ? `errno ${code}` : code;
}

/** The two requests NetlinkNic makes of an RtNetlinkSocket; a fake in unit tests. */
export type PfLinkSocket = Pick<RtNetlinkSocket, 'getLink' | 'setLink'>;

export interface NetlinkNicDeps {
  /** rtnetlink socket opened in the node's netns (where the PF netdevs are). */
  rtnl: PfLinkSocket;
  /** The native addon's ethtool; acts in the calling thread's netns. */
  ethtool: Pick<Ethtool, 'setFeatures'>;
}

class NetlinkVfConfig implements PfVfConfig {
  private readonly perVf = new KeyedSerializer();

  constructor(private readonly rtnl: PfLinkSocket) {}

  async read(vf: VfRef): Promise<VfSettings> {
    checkVfChange(vf, {});
    let msg;
    try {
      [msg] = await this.rtnl.getLink({}, { ifname: vf.pfNetdev, extMask: u32Struct(RTEXT_FILTER_VF) });
    } catch (e) {
      throw new PlumbError(`PF ${vf.pfNetdev} VF ${vf.vfIndex}: reading VF settings: ${netlinkErrorText(e)}`, { cause: e });
    }
    if (msg === undefined) throw new PlumbError(`PF ${vf.pfNetdev} VF ${vf.vfIndex}: reading VF settings: RTM_GETLINK returned no link`);
    let settings;
    try {
      settings = decodeVfSettings(msg.attrs, vf.vfIndex);
    } catch (e) {
      throw new PlumbError(`PF ${vf.pfNetdev}: ${(e as Error).message}`, { cause: e });
    }
    if (settings === undefined) {
      const count = msg.attrs.numVf === undefined ? 'no VF list at all' : `${msg.attrs.numVf} VFs`;
      throw new PlumbError(`PF ${vf.pfNetdev} reports no VF ${vf.vfIndex} (it reports ${count})`);
    }
    return settings;
  }

  async apply(vf: VfRef, change: Partial<VfSettings>): Promise<void> {
    checkVfChange(vf, change);
    const given = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) as Partial<VfSettings>;
    if (Object.keys(given).length === 0) return;
    await this.perVf.run(`${vf.pfNetdev}/${vf.vfIndex}`, async () => {
      const full = hasHalfPair(given) ? await this.completePairs(vf, given) : given;
      try {
        await this.rtnl.setLink({}, { ifname: vf.pfNetdev, vfinfoList: encodeVfInfoList(vf.vfIndex, full) });
      } catch (e) {
        // One request, several settings: the kernel stops at the first the driver refuses and
        // does not say which, so every one sent is named.
        throw new PlumbError(`PF ${vf.pfNetdev} VF ${vf.vfIndex}: setting ${describeVfChange(full)}: ${netlinkErrorText(e)}`, { cause: e });
      }
    });
  }

  /** The change with the missing half of each pair taken from the VF's current settings. */
  private async completePairs(vf: VfRef, change: Partial<VfSettings>): Promise<Partial<VfSettings>> {
    let current: VfSettings;
    try {
      current = await this.read(vf);
    } catch (e) {
      throw new PlumbError(`PF ${vf.pfNetdev} VF ${vf.vfIndex}: setting ${describeVfChange(change)}: cannot read the other half of the pair: ${(e as Error).message}`, { cause: e });
    }
    const out = { ...change };
    if (out.vlan !== undefined || out.qos !== undefined) {
      out.vlan ??= current.vlan;
      out.qos ??= current.qos;
    }
    if (out.minTxRate !== undefined || out.maxTxRate !== undefined) {
      out.minTxRate ??= current.minTxRate;
      out.maxTxRate ??= current.maxTxRate;
    }
    return out;
  }
}

export class NetlinkNic implements Nic {
  readonly vfConfig: PfVfConfig;
  private readonly ethtool: Pick<Ethtool, 'setFeatures'>;

  constructor(deps: NetlinkNicDeps) {
    this.vfConfig = new NetlinkVfConfig(deps.rtnl);
    this.ethtool = deps.ethtool;
  }

  /**
   * ETHTOOL_SFEATURES hw-tc-offload on, in the calling thread's netns. The ethtool call happens
   * synchronously, before this returns its promise, so a caller's Netns.runIn covers it.
   */
  async enableHwTcOffload(netdev: string): Promise<void> {
    if (typeof netdev !== 'string' || !isValidNetdevName(netdev)) {
      throw new InvalidConfigError(`cannot enable hw-tc-offload on ${JSON.stringify(netdev)}: not a valid netdev name`);
    }
    try {
      this.ethtool.setFeatures(netdev, { 'hw-tc-offload': true });
    } catch (e) {
      throw new PlumbError(`cannot enable hw-tc-offload on ${netdev}: ${(e as Error).message}`, { cause: e });
    }
  }
}
