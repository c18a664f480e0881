// FakePlumber: the kernel side of a pod interface (daemon/plumb/pod-interface.ts) in memory, for
// handler tests. It records the veths it "created" (host name -> pod side: netns, name, MAC, MTU,
// addresses, default routes), removes them on destroy / destroyInBackground (a later create or
// destroy of the same name waits for a background removal, as the real plumber does), answers
// inspect for CHECK, and can be told to fail or to hang a create.
//
// It extends PodPlumber only because Deps.plumber is typed as that class (private members make a
// structural fake impossible); every public method is overridden and the base class's netlink
// dependencies are never used (they throw if they are).

import { InvalidEnvError } from '../../common/errors';
import type { FakeNative } from '../../native/fake';
import type { Rtnl } from '../../daemon/kernel/rtnl';
import { PodPlumber, type PodInterfaceSpec, type PodInterfaceState } from '../../daemon/plumb/pod-interface';

export interface FakeVeth {
  hostIfName: string;
  hostMac: string;
  netns: string;
  podIfName: string;
  mac: string;
  mtu: number;
  /** CIDR notation, as requested. */
  addresses: string[];
  routes: Array<{ dst: string; gateway?: string }>;
  disableTxChecksum: boolean;
}

/** What a failing create does before it throws. */
export interface CreateFailure {
  error: unknown;
  /** 'veth': the veth exists when the error comes (it failed configuring it); 'nothing': it never did. */
  after?: 'veth' | 'nothing';
  match?: (spec: PodInterfaceSpec) => boolean;
}

/** A create held until the test lets it go. */
export interface CreateGate {
  /** Resolves with the spec once a matching create reached the gate. */
  readonly reached: Promise<PodInterfaceSpec>;
  /** Lets it finish (creating the veth), or fail with `error` without creating it. */
  release(error?: unknown): void;
}

const unusable = (what: string) => (): never => { throw new Error(`FakePlumber: ${what} is not used by the fake`); };

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

export class FakePlumber extends PodPlumber {
  /** Live veths by host-side name. */
  readonly veths = new Map<string, FakeVeth>();
  /** Every create call's spec, in order (also those that failed). */
  readonly creates: PodInterfaceSpec[] = [];
  /** Host names actually removed (by destroy or in the background), in order. */
  readonly removed: string[] = [];
  /** Every announce call. */
  readonly announced: Array<{ netns: string; ifName: string; mac: string; ips: string[] }> = [];
  private readonly failures: CreateFailure[] = [];
  private readonly gates: Array<{ match: ((s: PodInterfaceSpec) => boolean) | undefined; reached: (s: PodInterfaceSpec) => void; decided: Promise<unknown> }> = [];
  private readonly background = new Map<string, Promise<boolean>>();
  private macSeq = 0;

  constructor(private readonly fakeNative: FakeNative) {
    const rtnl = new Proxy({}, { get: (_t, p) => unusable(`rtnl.${String(p)}`) }) as Rtnl;
    super({ nodeRtnl: rtnl, native: fakeNative, openRtnl: unusable('openRtnl'), nodeNetnsPath: '/proc/self/ns/net' });
  }

  /** The next matching create fails with `error` (after creating the veth when after = 'veth'). */
  failCreate(f: CreateFailure): void {
    this.failures.push(f);
  }

  /** The next matching create waits at a gate. */
  holdCreate(match?: (spec: PodInterfaceSpec) => boolean): CreateGate {
    const reached = deferred<PodInterfaceSpec>();
    const decided = deferred<unknown>();
    this.gates.push({ match, reached: reached.resolve, decided: decided.promise });
    return { reached: reached.promise, release: (error?: unknown) => decided.resolve(error) };
  }

  /** A veth left behind by something else (an ADD interrupted by a crash). */
  addLeftover(v: Pick<FakeVeth, 'hostIfName' | 'netns' | 'podIfName'> & Partial<FakeVeth>): void {
    this.veths.set(v.hostIfName, {
      hostMac: this.nextMac(), mac: '0a:58:00:00:00:01', mtu: 1400, addresses: [], routes: [], disableTxChecksum: false, ...v,
    });
  }

  override async create(spec: PodInterfaceSpec, onHostSide?: () => Promise<void>): Promise<{ hostMac: string }> {
    this.creates.push(spec);
    await this.background.get(spec.hostIfName);
    const gi = this.gates.findIndex((g) => g.match === undefined || g.match(spec));
    if (gi >= 0) {
      const [gate] = this.gates.splice(gi, 1);
      gate!.reached(spec);
      const error = await gate!.decided;
      if (error !== undefined) throw error;
    }
    // The real plumber opens CNI_NETNS first (InvalidEnvError when it cannot).
    if (!this.fakeNative.exists(spec.netns)) throw new InvalidEnvError(`CNI_NETNS ${spec.netns} cannot be opened`);
    const fi = this.failures.findIndex((f) => f.match === undefined || f.match(spec));
    const failure = fi >= 0 ? this.failures.splice(fi, 1)[0] : undefined;
    if (failure && failure.after !== 'veth') throw failure.error;
    // EEXIST on the host name: the real plumber replaces a leftover of the same (derived) name.
    const hostMac = this.nextMac();
    this.veths.set(spec.hostIfName, {
      hostIfName: spec.hostIfName, hostMac, netns: spec.netns, podIfName: spec.podIfName, mac: spec.mac, mtu: spec.mtu,
      addresses: [...spec.addresses],
      routes: spec.gateways.map((gw) => ({ dst: gw.includes(':') ? '::/0' : '0.0.0.0/0', gateway: gw })),
      disableTxChecksum: spec.disableTxChecksum,
    });
    // As the real plumber: the host end exists, so the caller's host-side work runs, and create
    // settles only after it, failing with the first failure.
    const hostSide = await Promise.allSettled([onHostSide?.()]);
    if (failure) throw failure.error;
    if (hostSide[0]?.status === 'rejected') throw hostSide[0].reason;
    return { hostMac };
  }

  override async destroy(hostIfName: string): Promise<boolean> {
    await this.background.get(hostIfName);
    return this.remove(hostIfName);
  }

  override destroyInBackground(hostIfName: string, onError: (e: unknown) => void): void {
    if (this.background.has(hostIfName)) return;
    const p = Promise.resolve()
      .then(() => this.remove(hostIfName))
      .catch((e: unknown) => { onError(e); return false; })
      .finally(() => this.background.delete(hostIfName));
    this.background.set(hostIfName, p);
  }

  override async hostVethNames(): Promise<string[]> {
    return [...this.veths.keys()];
  }

  override async drain(): Promise<void> {
    await Promise.all([...this.background.values()]);
  }

  override async inspect(netns: string, ifName: string): Promise<PodInterfaceState | undefined> {
    if (!this.fakeNative.exists(netns)) return undefined;
    const v = [...this.veths.values()].find((x) => x.netns === netns && x.podIfName === ifName);
    if (!v) return undefined;
    return { mac: v.mac, mtu: v.mtu, addresses: [...v.addresses], routes: v.routes.map((r) => ({ ...r })) };
  }

  override announce(p: { netns: string; ifName: string; mac: string; ips: string[] }): Promise<void> {
    // Recorded only: the pod side is not a FakeNative link (announce is best effort in ADD anyway).
    this.announced.push({ ...p, ips: [...p.ips] });
    return Promise.resolve();
  }

  private remove(hostIfName: string): boolean {
    if (!this.veths.delete(hostIfName)) return false;
    this.removed.push(hostIfName);
    return true;
  }

  private nextMac(): string {
    const n = ++this.macSeq;
    return `02:00:00:00:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
  }
}
