// The typed facade over the C++ addon (native/src/): the only module that loads
// ovnode_native.node. Callers depend on the Netns, Packets, Ethtool, Links, PodInterfaces and
// Processes seams declared here and get FakeNative (native/fake.ts) in unit tests.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

/** Where `npm run build:native` leaves the addon, relative to the repository root. */
export const ADDON_RELATIVE_PATH = path.join('build', 'native', 'Release', 'ovnode_native.node');

/** What PodInterfaces.configurePodInterface sets on the pod's interface. */
export interface PodInterfaceConfig {
  /** The interface inside the pod netns, e.g. eth0. */
  ifName: string;
  /** Addresses in CIDR notation, e.g. 10.16.0.5/16, fd00::5/64 (IPv6 ones are added without DAD). */
  addresses: string[];
  /** One default route is added via each, e.g. 10.16.0.1, fd00::1 (normally one per family present). */
  gateways: string[];
  /** Turn off every tx-checksum-* offload, as `ethtool -K ifName tx off` does. */
  disableTxChecksum: boolean;
}

/** What Links.moveLink does with a link: from where, under which names, to where. */
export interface LinkMove {
  /** The netns the link is in now (any path setns accepts: /var/run/netns/x, /proc/PID/ns/net, /proc/self/ns/net ...). */
  fromNetns: string;
  /** Its name there. */
  ifName: string;
  /** The netns to move it into. */
  toNetns: string;
  /**
   * The name it carries while it crosses: must not exist in toNetns (the kernel keeps a link's name
   * on a move, and refuses it with EEXIST when that name is taken there). May equal ifName.
   */
  tempName: string;
  /** Its final name in toNetns (may equal tempName). */
  name: string;
  /** Optional: the MAC (`aa:bb:cc:dd:ee:ff`, unicast, not all zeros) set in toNetns after the rename. */
  mac?: string;
  /** Optional: the MTU (an integer from 68 to 65535) set in toNetns after the rename and the MAC. */
  mtu?: number;
}

/** What one announcement is about; `count` frames are sent back to back (default 1, at most 100). */
export interface AnnouncementRequest {
  ifName: string;
  /** Ethernet source and announced hardware address, `aa:bb:cc:dd:ee:ff`. */
  mac: string;
  ip: string;
  count?: number;
}

/** One entry of Packets.announce: a gratuitous ARP ('garp', IPv4 ip) or an unsolicited NA ('na', IPv6 ip). */
export interface Announcement extends AnnouncementRequest {
  kind: 'garp' | 'na';
}

/**
 * What Netns.inspectNetns found at a path. `dev` and `ino` identify the namespace (as fstat reports
 * them, equal to fs.statSync(path).dev/.ino): two paths name the same netns exactly when both
 * agree. `own` is true for the daemon process's own netns (its main thread's, recorded when the
 * addon was first loaded, so a concurrent runIn does not change the answer).
 */
export type NetnsInspection =
  | { kind: 'netns'; dev: number; ino: number; own: boolean }
  /** The path does not resolve (ENOENT, ENOTDIR); reason is the errno text. */
  | { kind: 'missing'; reason: string }
  /**
   * Anything else: the path resolves to a file that is not a network namespace (regular file,
   * directory, FIFO, device, socket, a namespace file of another type such as /proc/self/ns/mnt),
   * resolving it was refused (EACCES, ELOOP, ENAMETOOLONG, ...), or it contains a NUL byte. reason
   * says which, e.g. "a FIFO, not a namespace file", "a mnt namespace, not a network namespace",
   * "Permission denied".
   */
  | { kind: 'not-netns'; reason: string };

/**
 * Netns paths are never opened for reading before they have been checked to be namespace files: a
 * FIFO or a device at the path cannot make any of these calls wait. Resolving the path can still
 * wait (an unresponsive network or FUSE filesystem along it), and for runIn and exists that
 * happens on the JavaScript thread: check a path from outside (CNI_NETNS) with inspectNetns.
 */
export interface Netns {
  /**
   * Runs fn synchronously with the calling thread inside the network namespace at netnsPath
   * (e.g. /var/run/netns/x or /proc/PID/ns/net); always restores the original netns, also when fn
   * throws. Only fn's synchronous part runs inside: work after an `await` runs outside, but a
   * socket opened inside stays bound to that netns. Throws, without calling fn,
   * `setns(path): errno text` (NativeSystemError): code ENOENT/ENOTDIR/EACCES... with syscall
   * `open` when the path does not resolve, EINVAL `(not a network namespace)` with syscall `setns`
   * for any other file (a FIFO included: it is not opened, so this does not wait for a writer).
   */
  runIn<T>(netnsPath: string, fn: () => T): T;
  /**
   * true when the path is a network namespace file (false for anything else, and when the check
   * failed). Synchronous: only for paths the daemon chose itself; see the note on Netns.
   */
  exists(netnsPath: string): boolean;
  /**
   * Checks what netnsPath names, entirely on a libuv worker thread, so that no path, however
   * hostile (a FIFO, a device, a path through a hung filesystem), blocks the event loop: the path is
   * pinned with O_PATH, must be on nsfs, and only then is opened to ask its namespace type. Resolves
   * with a verdict for every path (see NetnsInspection) and never rejects because of the path.
   * Rejects only with the TypeError `inspectNetns: argument 1 must be a string`, or when the check
   * itself failed (e.g. `inspectNetns(path): Too many open files`, code EMFILE, NativeSystemError;
   * also ENFILE, ENOMEM, EINTR), which says nothing about the path. Independent of runIn.
   */
  inspectNetns(netnsPath: string): Promise<NetnsInspection>;
}

/**
 * Address announcements. The synchronous calls act in the calling thread's netns (call them within
 * Netns.runIn) and block the event loop for the whole send, including ~15 ms for closing the packet
 * socket (the kernel waits for an RCU grace period); announce does the same work off the event loop.
 */
export interface Packets {
  /** ARP request form (RFC 5227 section 2.3): sender = target = ip, to broadcast. */
  sendGratuitousArp(req: AnnouncementRequest): void;
  /**
   * Unsolicited neighbour advertisement (RFC 4861 section 7.2.6) to ff02::1 from ip, Override
   * flag set, target link-layer address option, hop limit 255.
   */
  sendUnsolicitedNa(req: AnnouncementRequest): void;
  /**
   * Enters netnsPath on a libuv worker thread (setns affects only that thread), sends every
   * announcement in order (the same frames as the synchronous calls, one packet socket for all),
   * restores the thread's netns (also on failure), resolves when done. Does not need, and is not
   * affected by, an enclosing runIn. Never throws: invalid arguments reject with the TypeError the
   * synchronous calls throw (message prefix `announce: announcements[i]: `) before anything is
   * queued; failures reject with the same `op(subject): errno text` errors (NativeSystemError), e.g.
   * `setns(/var/run/netns/x): No such file or directory` (code ENOENT, syscall open) for a missing
   * netns. Every interface is looked up before anything is sent; a later send failure leaves the
   * earlier announcements of the list sent. Should the worker thread fail to return to its own
   * netns (a kernel bug), the process aborts rather than run later thread-pool work in the pod's.
   */
  announce(netnsPath: string, announcements: readonly Announcement[]): Promise<void>;
}

/** ethtool features of an interface in the CURRENT netns of the calling thread. */
export interface Ethtool {
  /** Active state keyed by kernel feature name (ETH_SS_FEATURES), e.g. "tx-checksum-ip-generic". */
  getFeatures(ifName: string): Record<string, boolean>;
  /**
   * ETHTOOL_SFEATURES. Throws on an unknown name, and when a feature did not reach the requested
   * state (fixed by the driver, or a prerequisite is off).
   */
  setFeatures(ifName: string, features: Record<string, boolean>): void;
  /**
   * What `ethtool -K IF tx off` does: turns off all tx-checksum-* features; the kernel then drops
   * the features that need them (TSO, USO). Throws when one stays on.
   */
  disableTxChecksum(ifName: string): void;
}

/** Links changed over rtnetlink off the event loop. */
export interface Links {
  /**
   * On a libuv worker thread: enters netnsPath (e.g. /var/run/netns/x, /proc/PID/ns/net, or
   * /proc/PID/fd/N of an open namespace file), deletes the link named ifName with rtnetlink
   * RTM_DELLINK (by IFLA_IFNAME) on a NETLINK_ROUTE socket opened there, restores the thread's
   * netns. Exists because the kernel waits for an RCU grace period inside that request (~15-20 ms
   * for a veth), which on the JavaScript thread's netlink socket would block the event loop.
   * Resolves true when deleted (for a veth, its peer goes too, wherever it is), false when the
   * netns has no such link (ENODEV). Never throws: an invalid ifName (empty, over 15 bytes, '/' or
   * whitespace) rejects with the TypeError `deleteLink: invalid interface name "..."` before
   * anything is queued; a missing netns rejects with `setns(path): No such file or directory`
   * (code ENOENT, syscall open); any other failure with `RTM_DELLINK(ifName): errno text`
   * (NativeSystemError, e.g. EOPNOTSUPP for lo). Independent of an enclosing runIn.
   */
  deleteLink(netnsPath: string, ifName: string): Promise<boolean>;
  /**
   * Moves a link (an SR-IOV VF's netdev above all) from spec.fromNetns into spec.toNetns on a
   * libuv worker thread, because the kernel waits for an RCU grace period (~15 ms) inside the move
   * request. Both paths are opened first, from the worker thread's own netns (so a wrong one fails
   * before the link is touched); then, with a NETLINK_ROUTE socket of each netns in turn: in
   * fromNetns it looks up ifName, sets the link down (a name change needs that), renames it to
   * tempName when different, and moves it (RTM_NEWLINK with IFLA_NET_NS_FD); in toNetns it renames
   * tempName to name when different, then sets the MAC (IFLA_ADDRESS) and the MTU (IFLA_MTU) when
   * given. One acknowledged request per step, in this order; the first failure stops the rest. The
   * link is left DOWN (bring it up with PodInterfaces.configurePodInterface). Resolves with its
   * ifindex in toNetns (the kernel keeps the index only when it is free there). Restores the
   * thread's netns after each, also on failure (the process aborts if it cannot, like deleteLink);
   * independent of an enclosing runIn.
   * Never throws: invalid arguments reject with a TypeError before anything is queued
   * (`moveLink: argument 1 must be an object`, `moveLink: fromNetns must be a non-empty string`
   * (likewise ifName, toNetns, tempName, name, and mac when present), `moveLink: invalid interface
   * name "..."` (over 15 bytes, '/' or whitespace), `moveLink: invalid MAC "..."`, `moveLink: MAC
   * "..." is not a unicast address`, `... is the all-zero address`, `moveLink: mtu must be an
   * integer from 68 to 65535`). Failures reject with a NativeSystemError naming the step:
   * `setns(path): No such file or directory` (code ENOENT, syscall open) for either missing netns,
   * `if_nametoindex(ifName): No such device` (ENODEV) for a missing link, then
   * `RTM_NEWLINK(ifName down)`, `RTM_NEWLINK(ifName name tempName)`,
   * `RTM_NEWLINK(tempName netns toNetns)` (e.g. File exists, EEXIST, when tempName is taken in
   * toNetns), `RTM_NEWLINK(tempName name name)`, `RTM_NEWLINK(name address mac)`,
   * `RTM_NEWLINK(name mtu N)`: errno text, with code, errno and syscall `RTM_NEWLINK`. Nothing is
   * undone on failure: before the move succeeded the link stays in fromNetns, down, named tempName
   * if that rename was done (else ifName); after it, the link stays in toNetns, down, named
   * tempName until the final rename succeeded (else name). The caller knows both names and cleans
   * up (a moveLink with fromNetns equal to toNetns renames in place: the kernel's move is a no-op).
   */
  moveLink(spec: LinkMove): Promise<number>;
}

/** The pod side of a CNI ADD, off the event loop. */
export interface PodInterfaces {
  /**
   * On a libuv worker thread inside netnsPath (see Links.deleteLink for the paths accepted):
   * looks up spec.ifName, then in ONE rtnetlink send (each request acknowledged) adds every
   * address (RTM_NEWADDR, CREATE|REPLACE, IFA_F_NODAD for IPv6, so none is tentative), sets the
   * link up (RTM_NEWLINK IFF_UP) and adds a default route via each gateway (RTM_NEWROUTE, table
   * main, proto boot, CREATE|REPLACE, RTA_OIF + RTA_GATEWAY); then, when spec.disableTxChecksum,
   * does what Ethtool.disableTxChecksum does. Restores the thread's netns; independent of an
   * enclosing runIn. Never throws: invalid arguments reject with a TypeError before anything is
   * queued (`configurePodInterface: argument 1 must be a string`, `... invalid interface name
   * "..."`, `... addresses[1]: "x" is not an address in CIDR notation`, `... gateways[0]: "x" is
   * not an IP address`, `... disableTxChecksum must be a boolean`; at most 32 addresses and 32
   * gateways). Failures reject with a NativeSystemError naming the step:
   * `setns(path): No such file or directory` (missing netns), `if_nametoindex(eth0): No such
   * device` (missing interface), `RTM_NEWADDR(eth0 10.16.0.5/16): errno text`, `RTM_NEWLINK(eth0
   * up): ...`, `RTM_NEWROUTE(eth0 default via 10.16.0.1): ...`, or the errors of
   * disableTxChecksum (`disableTxChecksum(eth0): tx-checksum-x stays on`, a plain Error). The
   * kernel runs the batched requests in order, so a failed one does not stop the later ones; the
   * rejection names the first that failed, and the interface is then in an unspecified state.
   */
  configurePodInterface(netnsPath: string, spec: PodInterfaceConfig): Promise<void>;
}

/** What Processes.watchExit returns. */
export interface ExitWatch {
  /**
   * Resolves (with undefined) once the process has exited; at once when it already had but is
   * still a zombie. Rejects only when the watch could not be set up: `pidfd_open(<pid>): No such
   * process` (code ESRCH, syscall pidfd_open) when no process has that pid at call time, or
   * another `op(subject): errno text` error (NativeSystemError, e.g. EMFILE). Attach a handler
   * before awaiting anything else, or an ESRCH rejection is an unhandled one.
   */
  exited: Promise<void>;
  /**
   * Stops watching: closes the pidfd and leaves `exited` pending forever (nothing awaiting it is
   * woken; the promise is released for garbage collection). A no-op after the process exited, on a
   * second call, and for a watch that was rejected.
   */
  cancel(): void;
}

/** Processes that need not be our children, such as OVS/OVN programs adopted after a restart. */
export interface Processes {
  /**
   * Watches process `pid` (any process, not only a child of ours) for its exit through a Linux
   * pidfd (pidfd_open, Linux 5.3) that libuv polls on the JavaScript thread's event loop: event
   * driven, no polling, no thread. The watch does not keep the event loop alive: a process with
   * nothing else to do exits regardless (the daemon's lifetime is governed by its servers), and
   * watches pending at exit, or at a worker thread's end, are closed without settling.
   * Throws, synchronously, the TypeError `watchExit: pid must be an integer from 1 to 2147483647`
   * for any other pid (0 and negative ones name process groups); failures of the system calls
   * reject `exited` instead. The id of a thread other than a process's main thread rejects too
   * (EINVAL on older kernels, ENOENT on recent ones).
   * A pid names a process only while it lives. When it was learnt earlier (e.g. from a pidfile),
   * check the process's identity (e.g. /proc/<pid>/cmdline) after this call, not before: the watch
   * holds the process that had the pid at the call, so an exit after it is never missed, whereas
   * checking first leaves a window in which a reused pid makes the watch follow a stranger.
   */
  watchExit(pid: number): ExitWatch;
}

export interface NativeOps extends Netns, Packets, Ethtool, Links, PodInterfaces, Processes {}

/**
 * A failed system call in the addon. The message reads `op(subject): errno text`, e.g.
 * `setns(/var/run/netns/x): No such file or directory`.
 */
export interface NativeSystemError extends Error {
  /** errno name, e.g. "ENOENT". */
  code: string;
  /** Positive errno value. */
  errno: number;
  /** The system call that failed, e.g. "open" while entering a netns. */
  syscall: string;
}

export function isNativeSystemError(e: unknown): e is NativeSystemError {
  return (
    e instanceof Error &&
    typeof (e as Partial<NativeSystemError>).code === 'string' &&
    typeof (e as Partial<NativeSystemError>).errno === 'number' &&
    typeof (e as Partial<NativeSystemError>).syscall === 'string'
  );
}

const OPERATIONS: readonly (keyof NativeOps)[] = [
  'runIn',
  'exists',
  'inspectNetns',
  'sendGratuitousArp',
  'sendUnsolicitedNa',
  'announce',
  'getFeatures',
  'setFeatures',
  'disableTxChecksum',
  'deleteLink',
  'moveLink',
  'configurePodInterface',
  'watchExit',
];

/**
 * The repository root: the nearest directory at or above `from` holding package.json. Works for
 * the source (native/index.ts under vitest) and the build output (dist/native/index.js) alike.
 */
export function findRepoRoot(from: string = __dirname): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    // native/package.json only tells cmake-js to build against Node-API headers: skip it.
    if (isProjectRoot(dir)) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json at or above ${from}`);
  }
}

function isProjectRoot(dir: string): boolean {
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'ovnode';
  } catch {
    return false;
  }
}

/**
 * Loads the addon (Node's require cache makes later calls cheap) and checks that it exports
 * every operation, so a stale build fails here rather than at first use.
 */
export function loadNative(): NativeOps {
  const root = findRepoRoot();
  const file = path.join(root, ADDON_RELATIVE_PATH);
  if (!fs.existsSync(file)) {
    throw new Error(`native addon not built: ${file} is missing (run \`npm run build:native\`)`);
  }
  const addon = createRequire(path.join(root, 'package.json'))(file) as Partial<NativeOps>;
  const missing = OPERATIONS.filter((op) => typeof addon[op] !== 'function');
  if (missing.length > 0) {
    throw new Error(`native addon ${file} lacks ${missing.join(', ')}: rebuild with \`npm run build:native\``);
  }
  return addon as NativeOps;
}
