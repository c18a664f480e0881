// FakeNative: an in-memory NativeOps for unit tests. It models what callers depend on: which
// netns the thread is in, which paths name which netns (several may name the same one, the host's
// included) and which name other files, which links exist there, their ethtool features
// (including the kernel's own follow-up changes) and their index, MAC and MTU (for moveLink),
// which processes live (for watchExit), and it throws the same errors as the addon. Tests assert
// on the recorded arrays and on the resulting state, not on call order.
import { isIPv4, isIPv6 } from 'node:net';
import type {
  Announcement,
  AnnouncementRequest,
  ExitWatch,
  LinkMove,
  NativeOps,
  NativeSystemError,
  NetnsInspection,
  PodInterfaceConfig,
} from './index';

/**
 * A netns, named by the path it was added with (addNetns without sameAs), or null for the host
 * netns (where the thread is outside any runIn).
 */
export type FakeNetnsPath = string | null;

export interface FakeNetnsOptions {
  /**
   * The path is another name for an existing netns, as a bind mount or /proc/PID/ns/net is: that
   * netns's path (or any other path to it), or null for the host netns, i.e. the daemon's own
   * (inspectNetns reports `own: true`). Default: the path is a new netns of its own.
   */
  sameAs?: FakeNetnsPath;
}

export interface FakeAnnouncement {
  kind: 'garp' | 'na';
  /**
   * The netns sent from: for the synchronous calls the one the thread was in (null for the host
   * netns), for announce its netnsPath.
   */
  netns: FakeNetnsPath;
  ifName: string;
  mac: string;
  ip: string;
  count: number;
}

export interface FakeFeatureWrite {
  op: 'setFeatures' | 'disableTxChecksum';
  netns: FakeNetnsPath;
  ifName: string;
  /** What was requested, not what resulted (see featuresOf for that). */
  features: Record<string, boolean>;
}

export interface FakeLinkDeletion {
  /** The netnsPath deleteLink was given. */
  netns: string;
  ifName: string;
}

/** One moveLink call that succeeded, as given (mac and mtu only when given). */
export type FakeLinkMove = LinkMove;

/** A link's identity and link-level settings, as moveLink sets and keeps them. */
export interface FakeLinkState {
  /** Unique across every netns of the fake, so a move keeps it (see moveLink). */
  ifindex: number;
  up: boolean;
  /** Lower case, `aa:bb:cc:dd:ee:ff`. */
  mac: string;
  mtu: number;
}

/** One configurePodInterface call that succeeded, as given (see podInterfaceOf for the result). */
export interface FakePodInterfaceConfig extends PodInterfaceConfig {
  /** The netnsPath configurePodInterface was given. */
  netns: string;
}

/** What configurePodInterface left on a link (addresses and default routes it added, up state). */
export interface FakePodInterfaceState {
  up: boolean;
  /** CIDRs in the order first added (re-adding an equal one leaves one, as CREATE|REPLACE does). */
  addresses: string[];
  /** One default route per family, the later gateway replacing the earlier (CREATE|REPLACE). */
  routes: Array<{ dst: '0.0.0.0/0' | '::/0'; gateway: string }>;
}

export interface FakeLinkOptions {
  /** Netns holding the link, registered with addNetns first; default: the host netns. */
  netns?: FakeNetnsPath;
  /** Initial feature states; default VETH_FEATURES. */
  features?: Readonly<Record<string, boolean>>;
  /** Features the "driver" does not let change; default VETH_FIXED when features is omitted. */
  fixed?: readonly string[];
  /** Administratively up; sending on a down link fails like the kernel's ENETDOWN. Default true. */
  up?: boolean;
  /** Default: a locally administered MAC of its own, 02:00:00:00:hh:ll from the link's ifindex. */
  mac?: string;
  /** Default 1500. */
  mtu?: number;
}

/**
 * A fresh veth's main features as Linux 6.x reports them (`ethtool -k`); the integration test
 * pins them, and the dependants dropped with the TX checksum, to the running kernel.
 */
export const VETH_FEATURES: Readonly<Record<string, boolean>> = {
  'rx-checksum': true,
  'tx-checksum-ipv4': false,
  'tx-checksum-ip-generic': true,
  'tx-checksum-ipv6': false,
  'tx-checksum-fcoe-crc': false,
  'tx-checksum-sctp': true,
  'tx-scatter-gather': true,
  'tx-tcp-segmentation': true,
  'tx-tcp-ecn-segmentation': true,
  'tx-tcp-mangleid-segmentation': true,
  'tx-tcp6-segmentation': true,
  'tx-udp-segmentation': true,
  'tx-generic-segmentation': true,
  'rx-gro': false,
  highdma: true,
  'rx-vlan-hw-parse': true,
  'tx-vlan-hw-insert': true,
};
export const VETH_FIXED: readonly string[] = ['tx-checksum-ipv4', 'tx-checksum-ipv6', 'tx-checksum-fcoe-crc'];

const TX_CHECKSUM_PREFIX = 'tx-checksum-';
/** Segmentation offloads the kernel turns off while no TX checksum is on (netdev_fix_features). */
const NEEDS_TX_CHECKSUM = new Set([
  'tx-tcp-segmentation',
  'tx-tcp-ecn-segmentation',
  'tx-tcp-mangleid-segmentation',
  'tx-tcp6-segmentation',
  'tx-udp-segmentation',
]);
const MAX_COUNT = 100;
/** What inspectNetns reports as dev (nsfs's) and ino (the host netns's, then one per netns added). */
const NSFS_DEV = 4;
const HOST_NETNS_INO = 4026531840;
const FIRST_NETNS_INO = 4026532000;
const NOT_NETNS = 'not a network namespace';
const NUL_IN_PATH = 'the path contains a NUL byte';
/** The largest pid_t, the addon's bound for watchExit. */
const MAX_PID = 2 ** 31 - 1;
/** configurePodInterface's bound on addresses and on gateways. */
const MAX_POD_ENTRIES = 32;
/** moveLink's bounds on mtu. */
const MIN_MTU = 68;
const MAX_MTU = 65535;
/** The first index addLink gives (1 is every netns's lo, which the fake does not model). */
const FIRST_IFINDEX = 2;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const ERRNO = {
  ENOENT: { errno: 2, text: 'No such file or directory' },
  ESRCH: { errno: 3, text: 'No such process' },
  EEXIST: { errno: 17, text: 'File exists' },
  ENODEV: { errno: 19, text: 'No such device' },
  EINVAL: { errno: 22, text: 'Invalid argument' },
  ENETDOWN: { errno: 100, text: 'Network is down' },
  ENETUNREACH: { errno: 101, text: 'Network is unreachable' },
  EHOSTUNREACH: { errno: 113, text: 'No route to host' },
} as const;

type AnnouncementKind = FakeAnnouncement['kind'];
/** A validated request, before it is sent from some netns. */
type CheckedAnnouncement = Omit<FakeAnnouncement, 'netns'>;

/** The addon's error shape: `op(subject): errno text[ (hint)]` plus code, errno and syscall. */
function systemError(
  op: string,
  subject: string,
  code: keyof typeof ERRNO,
  syscall = op,
  hint?: string,
): NativeSystemError {
  const suffix = hint === undefined ? '' : ` (${hint})`;
  const e = new Error(`${op}(${subject}): ${ERRNO[code].text}${suffix}`) as NativeSystemError;
  e.code = code;
  e.errno = ERRNO[code].errno;
  e.syscall = syscall;
  return e;
}

function checkInterfaceName(op: string, ifName: string): void {
  // IFNAMSIZ (16) counts the terminating NUL and the addon counts UTF-8 bytes; a NUL inside would
  // truncate the name.
  if (ifName === '' || Buffer.byteLength(ifName) >= 16 || ifName.includes('\0')) {
    throw new TypeError(`${op}: invalid interface name "${ifName}"`);
  }
}

/** deleteLink's stricter check: also no '/' and no ASCII whitespace, as in the addon. */
function checkDeviceName(op: string, ifName: string): void {
  checkInterfaceName(op, ifName);
  if (/[/ \t\n\v\f\r]/.test(ifName)) throw new TypeError(`${op}: invalid interface name "${ifName}"`);
}

function isPlainObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The addon's validation of one announcement, in its order; label starts each message (the
 * function name, or `announce: announcements[i]`).
 */
function checkAnnouncement(kind: AnnouncementKind, label: string, req: AnnouncementRequest): CheckedAnnouncement {
  const family = kind === 'garp' ? 'IPv4' : 'IPv6';
  const { ifName, mac, ip } = req;
  if (typeof ifName !== 'string' || ifName === '') throw new TypeError(`${label}: ifName must be a non-empty string`);
  checkInterfaceName(label, ifName);
  if (typeof mac !== 'string' || mac === '') throw new TypeError(`${label}: mac must be a non-empty string`);
  if (!MAC_RE.test(mac)) throw new TypeError(`${label}: invalid MAC "${mac}"`);
  if (parseInt(mac.slice(0, 2), 16) & 1) throw new TypeError(`${label}: MAC "${mac}" is not a unicast address`);
  if (typeof ip !== 'string' || ip === '') throw new TypeError(`${label}: ip must be a non-empty string`);
  if (!(family === 'IPv4' ? isIPv4(ip) : isIPv6(ip))) throw new TypeError(`${label}: "${ip}" is not an ${family} address`);
  const count = req.count === undefined ? 1 : req.count;
  if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) {
    throw new TypeError(`${label}: count must be an integer from 1 to ${MAX_COUNT}`);
  }
  return { kind, ifName, mac, ip, count };
}

/** An address or gateway as the addon's inet_pton takes it (no IPv6 zone, no IPv4 leading zero). */
function parseIp(text: string): { family: 4 | 6; bytes: number[] } | undefined {
  if (isIPv4(text)) return { family: 4, bytes: text.split('.').map(Number) };
  if (!isIPv6(text) || text.includes('%')) return undefined;
  // Expand to 16 bytes; an embedded IPv4 tail counts as two groups.
  let t = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (v4) {
    const b = (v4[1] as string).split('.').map(Number) as [number, number, number, number];
    t = t.slice(0, v4.index) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = t.includes('::') ? t.split('::') as [string, string] : [t, undefined];
  const h = head === '' ? [] : head.split(':');
  const tl = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
  return { family: 6, bytes: groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]) };
}

/** `address/prefix`, the prefix 0-32 or 0-128 in at most three decimal digits, as the addon parses it. */
function parseCidr(text: string): { family: 4 | 6; bytes: number[]; prefix: number } | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const digits = text.slice(slash + 1);
  if (ip === undefined || !/^[0-9]{1,3}$/.test(digits)) return undefined;
  const prefix = Number(digits);
  return prefix <= (ip.family === 4 ? 32 : 128) ? { ...ip, prefix } : undefined;
}

function samePrefix(a: number[], b: number[], bits: number): boolean {
  for (let i = 0; i < bits; i++) {
    const byte = i >> 3;
    const mask = 0x80 >> (i & 7);
    if (((a[byte] as number) & mask) !== ((b[byte] as number) & mask)) return false;
  }
  return true;
}

/** configurePodInterface's check of one list property, with the addon's TypeErrors. */
function checkPodList(fn: string, key: string, value: unknown, what: string, valid: (t: string) => boolean): string[] {
  if (!Array.isArray(value)) throw new TypeError(`${fn}: ${key} must be an array`);
  if (value.length > MAX_POD_ENTRIES) throw new TypeError(`${fn}: ${key} must have at most ${MAX_POD_ENTRIES} entries`);
  return value.map((entry: unknown, i) => {
    const label = `${fn}: ${key}[${i}]`;
    if (typeof entry !== 'string') throw new TypeError(`${label} must be a string`);
    if (!valid(entry)) throw new TypeError(`${label}: "${entry}" is not ${what}`);
    return entry;
  });
}

/** A required non-empty string property, with the addon's TypeError (its StringProp). */
function stringProp(fn: string, obj: object, key: string): string {
  const value = (obj as Record<string, unknown>)[key];
  if (typeof value !== 'string' || value === '') throw new TypeError(`${fn}: ${key} must be a non-empty string`);
  return value;
}

/** moveLink's decoding of its argument, in the addon's order, with its TypeErrors. */
function checkLinkMove(fn: string, spec: unknown): LinkMove {
  if (!isPlainObject(spec)) throw new TypeError(`${fn}: argument 1 must be an object`);
  const deviceName = (key: string): string => {
    const name = stringProp(fn, spec, key);
    checkDeviceName(fn, name);
    return name;
  };
  const out: LinkMove = {
    fromNetns: stringProp(fn, spec, 'fromNetns'),
    ifName: deviceName('ifName'),
    toNetns: stringProp(fn, spec, 'toNetns'),
    tempName: deviceName('tempName'),
    name: deviceName('name'),
  };
  const { mac, mtu } = spec as Partial<LinkMove>;
  if (mac !== undefined) {
    const text = stringProp(fn, spec, 'mac');
    if (!MAC_RE.test(text)) throw new TypeError(`${fn}: invalid MAC "${text}"`);
    if (parseInt(text.slice(0, 2), 16) & 1) throw new TypeError(`${fn}: MAC "${text}" is not a unicast address`);
    if (/^0{2}(:0{2}){5}$/.test(text)) throw new TypeError(`${fn}: MAC "${text}" is the all-zero address`);
    out.mac = text;
  }
  if (mtu !== undefined) {
    if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
      throw new TypeError(`${fn}: mtu must be an integer from ${MIN_MTU} to ${MAX_MTU}`);
    }
    out.mtu = mtu;
  }
  return out;
}

interface FakeLink {
  ifindex: number;
  mac: string;
  mtu: number;
  up: boolean;
  /** What configurePodInterface added (see FakePodInterfaceState). */
  addresses: string[];
  routes: FakePodInterfaceState['routes'];
  /** Requested state per feature; the active state is derived from it (activeFeatures). */
  wanted: Map<string, boolean>;
  fixed: Set<string>;
}

function activeFeatures(link: FakeLink): Record<string, boolean> {
  const txChecksum = [...link.wanted].some(([name, on]) => on && name.startsWith(TX_CHECKSUM_PREFIX));
  const out: Record<string, boolean> = {};
  for (const [name, on] of link.wanted) out[name] = on && (txChecksum || !NEEDS_TX_CHECKSUM.has(name));
  return out;
}

export class FakeNative implements NativeOps {
  /** Every netns successfully entered by runIn, in order (announce enters no netns of the thread). */
  readonly netnsEntered: string[] = [];
  /** Announcements sent, in order, by the synchronous calls and by announce alike. */
  readonly packetsSent: FakeAnnouncement[] = [];
  readonly featuresSet: FakeFeatureWrite[] = [];
  /** Links deleteLink removed, in order (not the calls that found no link). */
  readonly linksDeleted: FakeLinkDeletion[] = [];
  /** configurePodInterface calls that succeeded, in order. */
  readonly podInterfacesConfigured: FakePodInterfaceConfig[] = [];
  /** Every path inspectNetns was asked about, in order (not the calls refused for a non-string). */
  readonly netnsInspected: string[] = [];
  /** moveLink calls that succeeded, in order (not those that failed, even after the move). */
  readonly linksMoved: FakeLinkMove[] = [];

  /** Every path that names a netns, with the netns it names. */
  private readonly namespaces = new Map<string, FakeNetnsPath>();
  /** Paths that name some other file, with inspectNetns's reason. */
  private readonly otherFiles = new Map<string, string>();
  private readonly inodes = new Map<FakeNetnsPath, number>([[null, HOST_NETNS_INO]]);
  private nextInode = FIRST_NETNS_INO;
  private nextIfindex = FIRST_IFINDEX;
  /** Live processes, each with the resolvers of its live watches (not exited, not cancelled). */
  private readonly processes = new Map<number, Set<() => void>>();
  private readonly links = new Map<FakeNetnsPath, Map<string, FakeLink>>([[null, new Map()]]);
  private readonly stack: FakeNetnsPath[] = [];

  /**
   * The netns the fake thread is in now: that of the innermost runIn, or null outside any (and
   * inside a runIn of a path added with `sameAs: null`). A netns is named by its own path, also
   * when runIn was given another path to it.
   */
  get currentNetns(): FakeNetnsPath {
    return this.stack.at(-1) ?? null;
  }

  /**
   * A path that names a netns: a new netns of its own, or with opts.sameAs another path to an
   * existing one (the host's with `sameAs: null`). Adding a path again the same way is a no-op.
   */
  addNetns(netnsPath: string, opts: FakeNetnsOptions = {}): this {
    let netns: FakeNetnsPath = netnsPath;
    if (opts.sameAs !== undefined) {
      if (opts.sameAs !== null && !this.namespaces.has(opts.sameAs)) {
        throw new Error(`FakeNative.addNetns: sameAs ${opts.sameAs} not added`);
      }
      netns = opts.sameAs === null ? null : (this.namespaces.get(opts.sameAs) as FakeNetnsPath);
    }
    const known = this.namespaces.get(netnsPath);
    if (this.otherFiles.has(netnsPath) || (known !== undefined && known !== netns)) {
      throw new Error(`FakeNative.addNetns: ${netnsPath} already names something else`);
    }
    this.namespaces.set(netnsPath, netns);
    if (!this.links.has(netns)) this.links.set(netns, new Map());
    if (!this.inodes.has(netns)) this.inodes.set(netns, this.nextInode++);
    return this;
  }

  /**
   * A path that exists but names no netns (a FIFO, a regular file, another namespace type...):
   * inspectNetns resolves `{ kind: 'not-netns', reason }`, exists is false, and runIn, announce and
   * deleteLink refuse it with the addon's `setns(path): Invalid argument (not a network namespace)`.
   */
  addNonNetns(path: string, reason = 'a regular file, not a namespace file'): this {
    if (this.namespaces.has(path)) throw new Error(`FakeNative.addNonNetns: ${path} names a netns`);
    this.otherFiles.set(path, reason);
    return this;
  }

  /**
   * The path stops existing. Removing the path a netns was added with is like deleting the netns:
   * its links and every other path to it go too (the host netns stays). Also forgets a path added
   * with addNonNetns.
   */
  removeNetns(netnsPath: string): void {
    this.otherFiles.delete(netnsPath);
    const netns = this.namespaces.get(netnsPath);
    this.namespaces.delete(netnsPath);
    if (netns !== netnsPath) return;
    for (const [path, named] of this.namespaces) if (named === netns) this.namespaces.delete(path);
    this.links.delete(netns);
    this.inodes.delete(netns);
  }

  addLink(ifName: string, opts: FakeLinkOptions = {}): this {
    const netns = opts.netns ?? null;
    const links = this.links.get(netns);
    if (links === undefined) throw new Error(`FakeNative.addLink: netns ${netns} not added`);
    const ifindex = this.nextIfindex++;
    const hex = (b: number): string => b.toString(16).padStart(2, '0');
    links.set(ifName, {
      ifindex,
      mac: (opts.mac ?? `02:00:00:00:${hex((ifindex >> 8) & 0xff)}:${hex(ifindex & 0xff)}`).toLowerCase(),
      mtu: opts.mtu ?? 1500,
      up: opts.up ?? true,
      addresses: [],
      routes: [],
      wanted: new Map(Object.entries(opts.features ?? VETH_FEATURES)),
      fixed: new Set(opts.fixed ?? (opts.features === undefined ? VETH_FIXED : [])),
    });
    return this;
  }

  /** Active features of a link, for assertions made outside runIn. */
  featuresOf(netns: FakeNetnsPath, ifName: string): Record<string, boolean> {
    const link = this.links.get(netns)?.get(ifName);
    if (link === undefined) throw new Error(`FakeNative.featuresOf: no link ${ifName} in ${netns}`);
    return activeFeatures(link);
  }

  /**
   * What configurePodInterface left on a link: up state, addresses and default routes (links not
   * configured by it report their up state and empty lists), for assertions made outside runIn.
   */
  podInterfaceOf(netns: FakeNetnsPath, ifName: string): FakePodInterfaceState {
    const link = this.links.get(netns)?.get(ifName);
    if (link === undefined) throw new Error(`FakeNative.podInterfaceOf: no link ${ifName} in ${netns}`);
    return { up: link.up, addresses: [...link.addresses], routes: link.routes.map((r) => ({ ...r })) };
  }

  /** A link's index, up state, MAC and MTU, for assertions made outside runIn. */
  linkOf(netns: FakeNetnsPath, ifName: string): FakeLinkState {
    const link = this.links.get(netns)?.get(ifName);
    if (link === undefined) throw new Error(`FakeNative.linkOf: no link ${ifName} in ${netns}`);
    return { ifindex: link.ifindex, up: link.up, mac: link.mac, mtu: link.mtu };
  }

  /** Whether netns (null: the host) holds a link named ifName, for assertions. */
  hasLink(netns: FakeNetnsPath, ifName: string): boolean {
    return this.links.get(netns)?.has(ifName) ?? false;
  }

  /** A live process watchExit can watch (a no-op for one already added). */
  addProcess(pid: number): this {
    if (!this.processes.has(pid)) this.processes.set(pid, new Set());
    return this;
  }

  /**
   * The process ends: every live watch on it resolves (in a microtask), and watchExit rejects for
   * it from now on, as the addon does once the process is gone (the fake has no zombies).
   */
  exitProcess(pid: number): void {
    const watches = this.processes.get(pid);
    if (watches === undefined) throw new Error(`FakeNative.exitProcess: no process ${pid}`);
    this.processes.delete(pid);
    for (const resolve of watches) resolve();
  }

  /** Live watches on pid (neither exited nor cancelled), e.g. to assert that a caller cancels. */
  watchCount(pid: number): number {
    return this.processes.get(pid)?.size ?? 0;
  }

  /**
   * Like the addon: throws the TypeError for an invalid pid; rejects `pidfd_open(<pid>): No such
   * process` (ESRCH) for a pid not added with addProcess or already ended with exitProcess;
   * otherwise resolves when the test calls exitProcess(pid). cancel() leaves the promise pending.
   */
  watchExit(pid: number): ExitWatch {
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1 || pid > MAX_PID) {
      throw new TypeError(`watchExit: pid must be an integer from 1 to ${MAX_PID}`);
    }
    const watches = this.processes.get(pid);
    if (watches === undefined) {
      return { exited: Promise.reject(systemError('pidfd_open', String(pid), 'ESRCH')), cancel: () => {} };
    }
    let resolve!: () => void;
    const exited = new Promise<void>((r) => (resolve = r));
    watches.add(resolve);
    return { exited, cancel: () => void watches.delete(resolve) };
  }

  /**
   * Like the addon: throws `setns(path): No such file or directory` (ENOENT, syscall open) for an
   * unknown path and `setns(path): Invalid argument (not a network namespace)` (EINVAL, syscall
   * setns) for one added with addNonNetns, without calling fn.
   */
  runIn<T>(netnsPath: string, fn: () => T): T {
    const netns = this.enter(netnsPath);
    this.netnsEntered.push(netnsPath);
    this.stack.push(netns);
    try {
      return fn();
    } finally {
      this.stack.pop();
    }
  }

  exists(netnsPath: string): boolean {
    return this.namespaces.has(netnsPath);
  }

  /**
   * Like the addon: a `netns` verdict for a path added with addNetns (`own` for the host netns's
   * paths; every path to one netns reports the same dev and ino), `not-netns` with its reason for
   * one added with addNonNetns (and for a path with a NUL byte), `missing` for any other.
   * Rejects only with the TypeError for a non-string. Records the path in netnsInspected; settles
   * in a microtask like announce.
   */
  async inspectNetns(netnsPath: string): Promise<NetnsInspection> {
    if (typeof netnsPath !== 'string') throw new TypeError('inspectNetns: argument 1 must be a string');
    this.netnsInspected.push(netnsPath);
    if (netnsPath.includes('\0')) return { kind: 'not-netns', reason: NUL_IN_PATH };
    const reason = this.otherFiles.get(netnsPath);
    if (reason !== undefined) return { kind: 'not-netns', reason };
    const netns = this.namespaces.get(netnsPath);
    if (netns === undefined) return { kind: 'missing', reason: ERRNO.ENOENT.text };
    return { kind: 'netns', dev: NSFS_DEV, ino: this.inodes.get(netns)!, own: netns === null };
  }

  sendGratuitousArp(req: AnnouncementRequest): void {
    this.sendOne('garp', 'sendGratuitousArp', req);
  }

  sendUnsolicitedNa(req: AnnouncementRequest): void {
    this.sendOne('na', 'sendUnsolicitedNa', req);
  }

  /**
   * Like the addon: validates everything first (rejecting with the TypeError, nothing recorded),
   * then "enters" netnsPath (rejecting like runIn throws), looks up every link there (ENODEV), then
   * sends in order, so a down link (ENETDOWN) leaves the earlier entries recorded. Independent of
   * runIn. Records at call time and settles in a microtask: no timers, so fake timers are fine.
   */
  async announce(netnsPath: string, announcements: readonly Announcement[]): Promise<void> {
    const fn = 'announce';
    if (typeof netnsPath !== 'string') throw new TypeError(`${fn}: argument 1 must be a string`);
    if (!Array.isArray(announcements)) throw new TypeError(`${fn}: argument 2 must be an array`);
    const checked = announcements.map((a: unknown, i) => {
      const label = `${fn}: announcements[${i}]`;
      if (!isPlainObject(a)) throw new TypeError(`${label} must be an object`);
      const { kind } = a as Partial<Announcement>;
      if (kind !== 'garp' && kind !== 'na') throw new TypeError(`${label}: kind must be "garp" or "na"`);
      return checkAnnouncement(kind, label, a as Announcement);
    });
    const netns = this.enter(netnsPath);
    const links = checked.map((a) => this.link(fn, a.ifName, netns));
    checked.forEach((a, i) => this.send(a, links[i]!, netnsPath));
  }

  /**
   * Like the addon: validates the arguments (rejecting with the TypeError), "enters" netnsPath
   * (rejecting like runIn throws), then removes the link and resolves true, or resolves false when
   * that netns has no such link. Models no veth peer: add and check each end as a link of its own.
   * Independent of runIn; settles in a microtask like announce.
   */
  async deleteLink(netnsPath: string, ifName: string): Promise<boolean> {
    const fn = 'deleteLink';
    if (typeof netnsPath !== 'string') throw new TypeError(`${fn}: argument 1 must be a string`);
    if (typeof ifName !== 'string') throw new TypeError(`${fn}: argument 2 must be a string`);
    checkDeviceName(fn, ifName);
    const netns = this.enter(netnsPath);
    if (!this.links.get(netns)!.delete(ifName)) return false;
    this.linksDeleted.push({ netns: netnsPath, ifName });
    return true;
  }

  /**
   * Like the addon: validates everything first (rejecting with its TypeErrors, nothing changed),
   * "enters" fromNetns then toNetns (rejecting like runIn throws, nothing changed), looks the link
   * up in fromNetns (`if_nametoindex(ifName): No such device`), then step by step, each failure
   * stopping the rest and undoing nothing: sets it down, renames it to tempName when different
   * (`RTM_NEWLINK(ifName name tempName): File exists`, EEXIST, when taken there), moves it unless
   * both paths name the same netns (`RTM_NEWLINK(tempName netns toNetns): File exists` when
   * tempName is taken in toNetns), renames it to name when different (`RTM_NEWLINK(tempName name
   * name): File exists`), sets mac and mtu when given. The link keeps its features, addresses,
   * MAC, MTU and ifindex across the move (the fake's indexes never collide, so the move keeps
   * them; the kernel gives a new one when the index is taken in toNetns). Resolves with the
   * ifindex; records successful calls in linksMoved (the state is in linkOf and hasLink).
   * Independent of runIn; settles in a microtask.
   */
  async moveLink(spec: LinkMove): Promise<number> {
    const fn = 'moveLink';
    const move = checkLinkMove(fn, spec);
    const { ifName, tempName, name } = move;
    const from = this.enter(move.fromNetns);
    const to = this.enter(move.toNetns);
    const fromLinks = this.links.get(from)!;
    const toLinks = this.links.get(to)!;
    const link = this.link('if_nametoindex', ifName, from);
    link.up = false;
    const rename = (links: Map<string, FakeLink>, oldName: string, newName: string): void => {
      if (oldName === newName) return;
      if (links.has(newName)) throw systemError('RTM_NEWLINK', `${oldName} name ${newName}`, 'EEXIST');
      links.delete(oldName);
      links.set(newName, link);
    };
    rename(fromLinks, ifName, tempName);
    if (from !== to) {
      if (toLinks.has(tempName)) throw systemError('RTM_NEWLINK', `${tempName} netns ${move.toNetns}`, 'EEXIST');
      fromLinks.delete(tempName);
      toLinks.set(tempName, link);
    }
    rename(toLinks, tempName, name);
    if (move.mac !== undefined) link.mac = move.mac.toLowerCase();
    if (move.mtu !== undefined) link.mtu = move.mtu;
    this.linksMoved.push(move);
    return link.ifindex;
  }

  /**
   * Like the addon: validates everything first (rejecting with its TypeErrors, nothing changed),
   * "enters" netnsPath (rejecting like runIn throws), looks the link up (`if_nametoindex(if): No
   * such device`), then in order adds the addresses (an equal one is not added twice), sets the
   * link up and adds one default route per gateway (replacing that family's). A gateway outside
   * every address prefix of its family on the link (IPv6 link-local ones excepted) rejects with
   * `RTM_NEWROUTE(if default via gw): Network is unreachable` (ENETUNREACH; for IPv6 `No route to
   * host`, EHOSTUNREACH) once the other steps took effect, as the kernel's batch does. Then, when
   * asked, does what disableTxChecksum does (recorded in featuresSet with the netns). Records
   * successful calls in podInterfacesConfigured; the resulting state is in podInterfaceOf and
   * featuresOf. Independent of runIn; settles in a microtask.
   */
  async configurePodInterface(netnsPath: string, spec: PodInterfaceConfig): Promise<void> {
    const fn = 'configurePodInterface';
    if (typeof netnsPath !== 'string') throw new TypeError(`${fn}: argument 1 must be a string`);
    if (!isPlainObject(spec)) throw new TypeError(`${fn}: argument 2 must be an object`);
    const { ifName } = spec;
    if (typeof ifName !== 'string' || ifName === '') throw new TypeError(`${fn}: ifName must be a non-empty string`);
    checkDeviceName(fn, ifName);
    const addresses = checkPodList(fn, 'addresses', spec.addresses, 'an address in CIDR notation', (t) => parseCidr(t) !== undefined);
    const gateways = checkPodList(fn, 'gateways', spec.gateways, 'an IP address', (t) => parseIp(t) !== undefined);
    if (typeof spec.disableTxChecksum !== 'boolean') throw new TypeError(`${fn}: disableTxChecksum must be a boolean`);
    const netns = this.enter(netnsPath);
    const link = this.link('if_nametoindex', ifName, netns);
    for (const a of addresses) {
      const cidr = parseCidr(a)!;
      const same = link.addresses.some((b) => {
        const other = parseCidr(b)!;
        return other.prefix === cidr.prefix && other.bytes.join() === cidr.bytes.join();
      });
      if (!same) link.addresses.push(a);
    }
    link.up = true;
    let unreachable: { gw: string; code: 'ENETUNREACH' | 'EHOSTUNREACH' } | undefined;
    for (const gw of gateways) {
      const ip = parseIp(gw)!;
      const onLink = (ip.family === 6 && samePrefix(ip.bytes, [0xfe, 0x80], 10)) ||
        link.addresses.some((a) => {
          const c = parseCidr(a)!;
          return c.family === ip.family && samePrefix(c.bytes, ip.bytes, c.prefix);
        });
      if (!onLink) {
        unreachable ??= { gw, code: ip.family === 4 ? 'ENETUNREACH' : 'EHOSTUNREACH' };
        continue;
      }
      const dst = ip.family === 4 ? '0.0.0.0/0' as const : '::/0' as const;
      link.routes = [...link.routes.filter((r) => r.dst !== dst), { dst, gateway: gw }];
    }
    if (unreachable !== undefined) throw systemError('RTM_NEWROUTE', `${ifName} default via ${unreachable.gw}`, unreachable.code);
    if (spec.disableTxChecksum) this.disableTxChecksumOf(link, netns, ifName);
    this.podInterfacesConfigured.push({ netns: netnsPath, ifName, addresses, gateways, disableTxChecksum: spec.disableTxChecksum });
  }

  getFeatures(ifName: string): Record<string, boolean> {
    return activeFeatures(this.link('getFeatures', ifName));
  }

  setFeatures(ifName: string, features: Record<string, boolean>): void {
    const link = this.link('setFeatures', ifName);
    for (const [name, on] of Object.entries(features)) {
      if (typeof on !== 'boolean') throw new TypeError(`setFeatures(${ifName}): ${name} must be a boolean`);
      if (!link.wanted.has(name)) throw new Error(`setFeatures(${ifName}): unknown feature "${name}"`);
    }
    this.featuresSet.push({ op: 'setFeatures', netns: this.currentNetns, ifName, features: { ...features } });
    this.apply('setFeatures', ifName, link, features);
  }

  disableTxChecksum(ifName: string): void {
    this.disableTxChecksumOf(this.link('disableTxChecksum', ifName), this.currentNetns, ifName);
  }

  private disableTxChecksumOf(link: FakeLink, netns: FakeNetnsPath, ifName: string): void {
    const features: Record<string, boolean> = {};
    for (const name of link.wanted.keys()) if (name.startsWith(TX_CHECKSUM_PREFIX)) features[name] = false;
    this.featuresSet.push({ op: 'disableTxChecksum', netns, ifName, features });
    this.apply('disableTxChecksum', ifName, link, features);
  }

  /** Requests like ETHTOOL_SFEATURES, then reports what did not take, as the addon does. */
  private apply(op: string, ifName: string, link: FakeLink, features: Record<string, boolean>): void {
    for (const [name, on] of Object.entries(features)) if (!link.fixed.has(name)) link.wanted.set(name, on);
    const active = activeFeatures(link);
    const refused = Object.entries(features)
      .filter(([name, on]) => active[name] !== on)
      .map(([name, on]) => `${name} stays ${on ? 'off' : 'on'}${link.fixed.has(name) ? ' [fixed]' : ''}`);
    if (refused.length > 0) throw new Error(`${op}(${ifName}): ${refused.join(', ')}`);
  }

  private sendOne(kind: AnnouncementKind, fn: string, req: AnnouncementRequest): void {
    if (!isPlainObject(req)) throw new TypeError(`${fn}: argument 1 must be an object`);
    const checked = checkAnnouncement(kind, fn, req);
    this.send(checked, this.link(fn, checked.ifName), this.currentNetns);
  }

  private send(a: CheckedAnnouncement, link: FakeLink, netns: FakeNetnsPath): void {
    if (!link.up) throw systemError('sendto', a.ifName, 'ENETDOWN');
    this.packetsSent.push({ ...a, netns });
  }

  /** The netns netnsPath names, or the addon's setns error for it. */
  private enter(netnsPath: string): FakeNetnsPath {
    if (netnsPath.includes('\0')) throw systemError('setns', netnsPath, 'EINVAL', 'setns', NUL_IN_PATH);
    if (this.otherFiles.has(netnsPath)) throw systemError('setns', netnsPath, 'EINVAL', 'setns', NOT_NETNS);
    const netns = this.namespaces.get(netnsPath);
    if (netns === undefined) throw systemError('setns', netnsPath, 'ENOENT', 'open');
    return netns;
  }

  private link(op: string, ifName: string, netns: FakeNetnsPath = this.currentNetns): FakeLink {
    checkInterfaceName(op, ifName);
    const link = this.links.get(netns)?.get(ifName);
    if (link === undefined) throw systemError('if_nametoindex', ifName, 'ENODEV');
    return link;
  }
}
