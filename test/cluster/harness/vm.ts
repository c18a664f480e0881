// A "VM" for the live-migration tests: KubeVirt is not installed, so a virtual machine is faked
// by a network namespace of its own (ovl-vm-<pid>-<n>, one per TestVm) that holds what a guest
// holds across a migration: its TCP connections and its address. Lab nodes share one kernel, so
// the guest's interface can be the launcher pod's own eth0 (the veth end ovnode put in the pod),
// moved into the VM's namespace: attach(source pod). A migration target is first made what
// virt-launcher makes it (prepareTarget: its eth0 up but without the guest's address, which the
// pod itself must not answer for). A migration moves the VM onto the target
// pod's eth0 the way a paused-and-resumed guest moves: the current interface goes down and back
// into its pod (left DOWN: the source port never answers again), the target pod's eth0 comes in,
// gets the guest's addresses, routes and ARP cache (a real guest keeps them in its memory; a link
// loses them when it changes namespace), comes up, and the guest announces itself with RARPs as
// QEMU does after a migration (ethertype 0x8035, opcode 3, from the VM's MAC, broadcast).
//
// Inside the namespace a TCP echo server (node, the test's own executable) runs, tracked by pid,
// and the kernel answers pings. No vitest here: the benchmark (scripts/bench-migration.ts) uses it.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { armRarps, countInbound } from './frames';
import { pidAlive, run, type RunResult } from './lab';
import { podNetnsPath } from './pods';

/** The TCP echo port of every VM. */
export const VM_ECHO_PORT = 9500;
/** The guest's interface name (in the VM and in the pods alike). */
const IFNAME = 'eth0';
const NETNS_PREFIX = 'ovl-vm-';


export interface PodRef { namespace: string; pod: string }

/** A pod's network namespace as the host reaches it: the sandbox's pid (its /proc/<pid>/ns/net). */
interface PodNetns { ref: PodRef; pid: number; path: string }

/** What the guest is on the network: kept by the VM across moves, put on every interface it gets. */
export interface VmIdentity {
  mac: string;
  /** Global addresses, "ip/prefix" (IPv4 and IPv6). */
  addresses: string[];
  /** Routes other than the kernel's own prefix routes, as `ip route add` arguments (dev added). */
  routes: Array<{ family: 4 | 6; args: string[] }>;
  mtu: number;
}

/** What one migrate() did, with wall-clock times (Date.now()) of its steps. */
export interface MoveReport {
  from: PodRef;
  to: PodRef;
  /** The source interface set down: the guest is paused from here. */
  pausedAt: number;
  /** The target interface up with the guest's addresses and routes: the guest runs again. */
  resumedAt: number;
  /** Each RARP's send time. */
  rarpsAt: number[];
  /** The target pod's eth0 as ovnode made it, before the guest took it over. */
  targetMac: string;
  targetAddresses: string[];
  /** IPv4 frames to the guest's address that reached the target's interface from prepareTarget() to the pause. */
  pendingFrames: number;
}

/** A migration target made ready as virt-launcher makes it (see TestVm.prepareTarget). */
export interface PreparedTarget {
  ref: PodRef;
  /** Its eth0 as ovnode made it. */
  mac: string;
  addresses: string[];
  /** Ends the count of IPv4 frames to the guest's address arriving on its eth0, and returns it. */
  stop(): Promise<number>;
}

// ----------------------------------------------------------------------------------- iproute2

async function must(argv: string[], what = argv.join(' '), input?: string): Promise<RunResult> {
  const r = await run(argv, { timeoutMs: 20_000, ...(input === undefined ? {} : { input }) });
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

/** `ip ...` inside the namespace at `path` (/run/netns/<name> or /proc/<pid>/ns/net). */
function ipIn(path: string, args: string[]): Promise<RunResult> {
  return must(['nsenter', `--net=${path}`, '--', 'ip', ...args], `ip ${args.join(' ')} in ${path}`);
}

async function ipJson<T>(path: string, args: string[]): Promise<T> {
  const out = (await ipIn(path, ['-j', ...args])).stdout.trim();
  return (out ? JSON.parse(out) : []) as T;
}

export interface IpLink { ifindex: number; ifname: string; address: string; mtu: number; operstate: string; flags: string[]; link_index?: number }
interface IpAddr { addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string }> }
interface IpRoute { dst: string; gateway?: string; protocol?: string; type?: string; metric?: number; prefsrc?: string; scope?: string }
interface IpNeigh { dst: string; lladdr?: string; state?: string[] }

export async function linkOf(path: string, ifname = IFNAME): Promise<IpLink | undefined> {
  const links = await ipJson<IpLink[]>(path, ['link', 'show']);
  return links.find((l) => l.ifname === ifname);
}

/** The interface's global addresses as "ip/prefix". */
async function globalAddresses(path: string, ifname = IFNAME): Promise<string[]> {
  const [a] = await ipJson<IpAddr[]>(path, ['addr', 'show', 'dev', ifname]);
  return (a?.addr_info ?? []).filter((x) => x.scope === 'global').map((x) => `${x.local}/${x.prefixlen}`);
}

/** The routes through the interface that `ip route add` must put back (not the kernel's prefix routes). */
async function configuredRoutes(path: string, ifname = IFNAME): Promise<VmIdentity['routes']> {
  const routes: VmIdentity['routes'] = [];
  for (const family of [4, 6] as const) {
    for (const r of await ipJson<IpRoute[]>(path, [`-${family}`, 'route', 'show', 'dev', ifname])) {
      if (r.protocol === 'kernel' || (r.type !== undefined && r.type !== 'unicast')) continue;
      const args = [r.dst];
      if (r.gateway) args.push('via', r.gateway);
      if (r.prefsrc) args.push('src', r.prefsrc);
      if (r.metric !== undefined) args.push('metric', String(r.metric));
      if (r.scope && r.scope !== 'global' && r.scope !== 'universe') args.push('scope', r.scope);
      routes.push({ family, args });
    }
  }
  return routes;
}

/** Resolved neighbours (the guest's ARP/ND cache), to carry across a move. */
async function neighbours(path: string, ifname = IFNAME): Promise<Array<{ ip: string; mac: string }>> {
  const out: Array<{ ip: string; mac: string }> = [];
  for (const family of [4, 6] as const) {
    for (const n of await ipJson<IpNeigh[]>(path, [`-${family}`, 'neigh', 'show', 'dev', ifname])) {
      if (n.lladdr && !(n.state ?? []).some((s) => s === 'FAILED' || s === 'INCOMPLETE')) out.push({ ip: n.dst, mac: n.lladdr });
    }
  }
  return out;
}

/** The host side of the veth `ifname` of the namespace at `path`: its name in `nodeNetnsPath`. */
export async function hostVethOf(path: string, nodeNetnsPath: string, ifname = IFNAME): Promise<string> {
  const link = await linkOf(path, ifname);
  if (link?.link_index === undefined) throw new Error(`no veth ${ifname} in ${path} (${JSON.stringify(link)})`);
  const peer = (await ipJson<IpLink[]>(nodeNetnsPath, ['link', 'show'])).find((l) => l.ifindex === link.link_index);
  if (!peer) throw new Error(`no link ${link.link_index} (the peer of ${ifname} in ${path}) in ${nodeNetnsPath}`);
  return peer.ifname;
}

/** The MAC the namespace at `path` resolved `ip` to (its neighbour entry), if any. */
export async function neighbourMac(path: string, ip: string): Promise<string | undefined> {
  const [n] = await ipJson<IpNeigh[]>(path, ['neigh', 'show', 'to', ip]);
  return n?.lladdr;
}

/** Several `ip` commands in one process inside the namespace at `path` (ip -batch): one spawn, not one per step. */
function ipBatch(path: string, lines: string[][]): Promise<RunResult> {
  return must(['nsenter', `--net=${path}`, '--', 'ip', '-batch', '-'], `ip -batch in ${path}: ${lines.map((l) => l.join(' ')).join('; ')}`, lines.map((l) => l.join(' ')).join('\n') + '\n');
}

/** A temporary link name, so that no namespace ever sees two links of one name while they move. */
function tempName(): string {
  return `vmmv${Math.floor(Math.random() * 1e9).toString(36)}`.slice(0, 15);
}

/**
 * The commands that send `ifname` away from its namespace, DOWN (the kernel closes a device that
 * changes namespace anyway), under the temporary name `temp`; `to` is a netns name or a pid.
 */
function sendAway(ifname: string, temp: string, to: string): string[][] {
  return [['link', 'set', 'dev', ifname, 'down'], ['link', 'set', 'dev', ifname, 'name', temp], ['link', 'set', 'dev', temp, 'netns', to]];
}

// ----------------------------------------------------------------------------------------- VM

let seq = 0;

/** Removes VM namespaces whose creating process is gone (a run that was killed before its clean-up). */
export async function sweepStaleVms(): Promise<string[]> {
  let names: string[];
  try { names = readdirSync('/run/netns'); } catch { return []; }
  const removed: string[] = [];
  for (const name of names) {
    const m = /^ovl-vm-([0-9a-z]+)-\d+$/.exec(name);
    if (!m || pidAlive(parseInt(m[1] as string, 36))) continue;
    const r = await run(['ip', 'netns', 'del', name]);
    if (r.code === 0) removed.push(name);
  }
  return removed;
}

export class TestVm {
  /** The VM's network namespace (/run/netns/<netns>). */
  readonly netns: string;
  readonly netnsPath: string;
  identity: VmIdentity | undefined;
  /** The pod whose eth0 the guest has now. */
  current: PodNetns | undefined;
  private server: ChildProcess | undefined;
  private readonly prepared = new Map<string, PreparedTarget>();

  private constructor(readonly name: string) {
    seq += 1;
    this.netns = `${NETNS_PREFIX}${process.pid.toString(36)}-${seq}`;
    this.netnsPath = `/run/netns/${this.netns}`;
  }

  /** The namespace with lo up and the echo server listening; destroy() removes both, whatever happened. */
  static async create(name = 'vm'): Promise<TestVm> {
    await sweepStaleVms();
    const vm = new TestVm(name);
    try {
      await must(['ip', 'netns', 'add', vm.netns]);
      await ipIn(vm.netnsPath, ['link', 'set', 'lo', 'up']);
      await vm.startServer();
    } catch (e) {
      await vm.destroy();
      throw e;
    }
    return vm;
  }

  /** The guest's IPv4 address (after attach). */
  get ip(): string {
    const a = this.identity?.addresses.find((x) => !x.includes(':'));
    if (!a) throw new Error(`VM ${this.name} has no IPv4 address (not attached)`);
    return a.split('/')[0] as string;
  }

  get mac(): string {
    if (!this.identity) throw new Error(`VM ${this.name} is not attached`);
    return this.identity.mac;
  }

  private startServer(): Promise<void> {
    // Echoes every byte back; exits when its stdin closes, so it cannot outlive this process.
    const code = `const net = require('net');
      net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(${VM_ECHO_PORT}, '::', () => console.log('listening'));
      process.stdin.on('end', () => process.exit(0)); process.stdin.resume();`;
    const child = spawn('ip', ['netns', 'exec', this.netns, process.execPath, '-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.server = child;
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`VM ${this.name}: echo server not listening within 10 s: ${stderr}`)), 10_000);
      child.stdout?.once('data', () => { clearTimeout(timer); resolve(); });
      child.once('exit', (c) => { clearTimeout(timer); reject(new Error(`VM ${this.name}: echo server exited (${c}): ${stderr}`)); });
    });
  }

  private async podNetns(ref: PodRef): Promise<PodNetns> {
    const path = await podNetnsPath(ref);
    const pid = Number(/^\/proc\/(\d+)\/ns\/net$/.exec(path)?.[1]);
    if (!pid) throw new Error(`unexpected netns path ${path} of ${ref.namespace}/${ref.pod}`);
    return { ref, pid, path };
  }

  /**
   * The guest starts on `pod`'s interface: its eth0 (MAC kept) moves into the VM, with the pod's
   * addresses, routes and resolved neighbours, and comes up. The pod keeps no interface.
   */
  async attach(pod: PodRef): Promise<VmIdentity> {
    if (this.current) throw new Error(`VM ${this.name} is already attached to ${this.current.ref.pod}`);
    const src = await this.podNetns(pod);
    const link = await linkOf(src.path);
    if (!link) throw new Error(`${pod.namespace}/${pod.pod} has no ${IFNAME}`);
    const identity: VmIdentity = { mac: link.address, addresses: await globalAddresses(src.path), routes: await configuredRoutes(src.path), mtu: link.mtu };
    if (identity.addresses.length === 0) throw new Error(`${pod.namespace}/${pod.pod}: ${IFNAME} has no global address`);
    const neigh = await neighbours(src.path);
    const temp = tempName();
    await ipBatch(src.path, sendAway(IFNAME, temp, this.netns));
    this.identity = identity;
    this.current = src;
    await ipBatch(this.netnsPath, this.arrival(temp, neigh));
    return identity;
  }

  /**
   * The commands that make the link arrived as `temp` the guest's eth0: name, addresses, up,
   * routes and neighbours (a namespace change drops all but the name and the MAC).
   */
  private arrival(temp: string, neigh: Array<{ ip: string; mac: string }>): string[][] {
    const id = this.identity as VmIdentity;
    return [
      ['link', 'set', 'dev', temp, 'name', IFNAME],
      ...id.addresses.map((a) => ['addr', 'add', a, 'dev', IFNAME, ...(a.includes(':') ? ['nodad'] : [])]),
      ['link', 'set', 'dev', IFNAME, 'up'],
      // `default` takes its family from the gateway in a batch (no -4/-6 there): spelled out.
      ...id.routes.map((r) => ['route', 'replace', r.args[0] === 'default' ? (r.family === 6 ? '::/0' : '0.0.0.0/0') : r.args[0] as string, ...r.args.slice(1), 'dev', IFNAME]),
      ...neigh.map((n) => ['neigh', 'replace', n.ip, 'lladdr', n.mac, 'dev', IFNAME, 'nud', 'stale']),
    ];
  }

  /**
   * Makes a migration target's pod what virt-launcher makes it with KubeVirt's bridge binding:
   * the pod's eth0 keeps its link (up) but not its address, which is the guest's (with the
   * binding, the guest gets it and the pod never answers for it; here the pod's own IP stack
   * would, e.g. reset the guest's TCP connections if a segment reached it). From then on, frames
   * to the guest's address arriving there are counted: before activation there should be none.
   */
  async prepareTarget(target: PodRef): Promise<PreparedTarget> {
    if (!this.identity) throw new Error(`VM ${this.name} is not attached`);
    const key = `${target.namespace}/${target.pod}`;
    const existing = this.prepared.get(key);
    if (existing) return existing;
    const dst = await this.podNetns(target);
    const link = await linkOf(dst.path);
    if (!link) throw new Error(`${key} has no ${IFNAME}`);
    const addresses = await globalAddresses(dst.path);
    await ipIn(dst.path, ['addr', 'flush', 'dev', IFNAME, 'scope', 'global']);
    const counter = await countInbound(dst.path, IFNAME, this.ip);
    let count: Promise<number> | undefined;
    const p: PreparedTarget = {
      ref: target, mac: link.address, addresses,
      stop: () => {
        count ??= counter.stop();
        this.prepared.delete(key);
        return count;
      },
    };
    this.prepared.set(key, p);
    return p;
  }

  /**
   * Live-migrates the guest onto `target`'s interface (see the file comment) and announces it with
   * `rarps` RARPs. The target pod's eth0 is taken as it is: with KubeVirt's bridge binding ovnode
   * gives the target the VM's port, so its MAC and addresses are the guest's already (reported
   * in the result, for the caller to check; nothing here rewrites them). Three `ip` processes
   * between pause and resume (50-200 ms on the lab's two busy cores), the source's rename after it.
   */
  async migrate(target: PodRef, opts: { rarps?: number } = {}): Promise<MoveReport> {
    const src = this.current;
    if (!src || !this.identity) throw new Error(`VM ${this.name} is not attached`);
    const prepared = await this.prepareTarget(target);
    const pendingFrames = await prepared.stop();
    const dst = await this.podNetns(target);
    const neigh = await neighbours(this.netnsPath);
    const [back, incoming] = [tempName(), tempName()];
    const armed = await armRarps(this.netnsPath, this.identity.mac, opts.rarps ?? 5);
    const pausedAt = Date.now();
    // The source port goes quiet first (its interface goes home DOWN: a paused guest).
    try {
      await ipBatch(this.netnsPath, sendAway(IFNAME, back, String(src.pid)));
      await ipBatch(dst.path, sendAway(IFNAME, incoming, this.netns));
      this.current = dst;
      await ipBatch(this.netnsPath, this.arrival(incoming, neigh));
    } catch (e) {
      armed.cancel();
      throw e;
    }
    const resumedAt = Date.now();
    const rarps = armed.fire();
    // Off the critical path: the source pod's interface gets its name back.
    const renamed = ipBatch(src.path, [['link', 'set', 'dev', back, 'name', IFNAME]]);
    const [rarpsAt] = await Promise.all([rarps, renamed]);
    return { from: src.ref, to: target, pausedAt, resumedAt, rarpsAt, targetMac: prepared.mac, targetAddresses: prepared.addresses, pendingFrames };
  }

  /**
   * The host side of the veth the guest has now: that link's name in `nodeNetnsPath` (the node's
   * namespace, where ovnode plugged it into br-int).
   */
  hostPeer(nodeNetnsPath: string): Promise<string> {
    return hostVethOf(this.netnsPath, nodeNetnsPath);
  }

  /** Runs argv inside the VM's namespace. */
  exec(argv: string[], timeoutMs = 20_000): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', this.netns, ...argv], { timeoutMs });
  }

  /** The VM's eth0 now (MAC, state), or undefined when it holds none. */
  link(): Promise<IpLink | undefined> {
    return linkOf(this.netnsPath);
  }

  /**
   * Gives the interface back to its pod when the pod still runs (so that its CNI DEL finds it),
   * stops the server by pid and deletes the namespace. Never rejects; what fails is printed.
   */
  async destroy(): Promise<void> {
    for (const p of [...this.prepared.values()]) await p.stop().catch(() => undefined);
    if (this.current && pidAlive(this.current.pid) && existsSync(this.netnsPath) && await linkOf(this.netnsPath).catch(() => undefined)) {
      try {
        const temp = tempName();
        await ipBatch(this.netnsPath, sendAway(IFNAME, temp, String(this.current.pid)));
        await ipBatch(this.current.path, [['link', 'set', 'dev', temp, 'name', IFNAME]]);
      } catch (e) {
        console.warn(`VM ${this.name}: giving ${IFNAME} back to ${this.current.ref.pod} failed: ${(e as Error).message}`);
      }
    }
    this.current = undefined;
    if (this.server && this.server.exitCode === null && this.server.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.server?.once('exit', () => resolve()));
      this.server.kill('SIGKILL');
      await exited;
    }
    if (existsSync(this.netnsPath)) {
      const r = await run(['ip', 'netns', 'del', this.netns]);
      if (r.code !== 0) console.warn(`VM ${this.name}: ip netns del ${this.netns} failed: ${r.stderr.trim()}`);
    }
  }
}
