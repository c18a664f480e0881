// Simulated nodes for cluster IPAM tests: each has its own SubnetPool, its own FAKE claims cache
// (watch latency), the real KubeClaimStore over the shared FakeClaimsApiServer, a ClusterIpam, and
// a durable record standing in for its OVN NB (what a restart rebuilds the pool from). A shared
// ledger of the addresses pods hold right now catches any duplicate the moment an ADD returns.

import pino, { type Logger } from 'pino';
import { ClusterIpam, type ClusterIpamOptions } from '../../../../../daemon/ipam/claims/cluster';
import type { SubnetClaims } from '../../../../../daemon/ipam/claims/allocator';
import { KubeClaimStore } from '../../../../../daemon/ipam/claims/store';
import type { Family } from '../../../../../daemon/ipam/cidr';
import { portHolder, SubnetPool, type SubnetSpec } from '../../../../../daemon/ipam/pool';
import { FakeClaimsApiServer, seededRng, type FakeApiOptions, type FakeClaimsCache } from './fake-claims-api';

export interface LogLine { level: number; msg: string; [k: string]: unknown }

export interface SimOptions extends FakeApiOptions {
  seed: number;
  subnet: SubnetSpec;
  ipam?: Partial<Omit<ClusterIpamOptions, 'node' | 'store' | 'log'>>;
}

export class SimCluster {
  readonly server: FakeClaimsApiServer;
  readonly nodes = new Map<string, SimNode>();
  /** ip -> "node holder" of every address a pod holds now. */
  readonly live = new Map<string, string>();
  readonly duplicates: string[] = [];
  readonly logs: LogLine[] = [];
  readonly rng: () => number;
  private uidSeq = 0;

  constructor(readonly opts: SimOptions) {
    this.rng = seededRng(opts.seed * 7919 + 1);
    this.server = new FakeClaimsApiServer({ ...opts, rng: seededRng(opts.seed) });
  }

  log(node: string): Logger {
    const logs = this.logs;
    return pino({ level: 'debug', base: { node } }, { write: (s: string) => { logs.push(JSON.parse(s) as LogLine); } });
  }

  errors(): LogLine[] { return this.logs.filter((l) => l.level >= 50); }

  async addNode(name: string): Promise<SimNode> {
    const n = new SimNode(this, name, `node-uid-${name}-${++this.uidSeq}`);
    this.nodes.set(name, n);
    await n.boot();
    return n;
  }

  node(name: string): SimNode { return this.nodes.get(name) as SimNode; }

  record(node: string, holder: string, ips: string[]): void {
    for (const ip of ips) {
      const who = this.live.get(ip);
      if (who !== undefined && who !== `${node} ${holder}`) this.duplicates.push(`${ip}: ${who} and ${node} ${holder}`);
      this.live.set(ip, `${node} ${holder}`);
    }
  }

  forget(node: string, holder: string, ips: string[]): void {
    for (const ip of ips) if (this.live.get(ip) === `${node} ${holder}`) this.live.delete(ip);
  }

  /** Every pool's pod-held addresses, checked disjoint across nodes. */
  crossCheck(): string[] {
    const seen = new Map<string, string>();
    const out: string[] = [];
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      for (const { ip, holder } of n.pool.held()) {
        if (!holder.includes('|')) continue;
        const prev = seen.get(ip);
        if (prev !== undefined) out.push(`${ip}: ${prev} and ${n.name} ${holder}`);
        seen.set(ip, `${n.name} ${holder}`);
      }
    }
    return out;
  }

  stop(): void { for (const n of this.nodes.values()) n.shutdown(); }
}

export class SimNode {
  pool!: SubnetPool;
  cache!: FakeClaimsCache;
  cluster!: ClusterIpam;
  claims!: SubnetClaims;
  up = false;
  /** holder -> addresses: the durable record (the OVN NB's LSP addresses). */
  readonly nb = new Map<string, string[]>();
  private seq = 0;

  constructor(readonly sim: SimCluster, readonly name: string, public uid: string) {}

  /** Start (or restart): pool rebuilt from the durable record, fresh cache, started once synced. */
  async boot(): Promise<void> {
    this.pool = new SubnetPool(this.sim.opts.subnet);
    for (const [holder, ips] of this.nb) for (const ip of ips) this.pool.reserve(ip, holder);
    this.cache = this.sim.server.watch();
    const store = new KubeClaimStore(this.sim.server, this.cache);
    this.cluster = new ClusterIpam({
      node: { name: this.name, uid: () => this.uid },
      store,
      log: this.sim.log(this.name),
      sweepIntervalMs: 0,
      retryMs: 5,
      ...(this.sim.opts.ipam ?? {}),
    });
    this.claims = this.cluster.attach(this.pool);
    await this.cluster.start();
    this.up = true;
  }

  /** The process ends: nothing is released (pods keep running, the NB keeps their addresses). */
  shutdown(): void {
    if (!this.up) return;
    this.up = false;
    this.cluster.stop();
    this.cache.close();
  }

  holder(): string { return portHolder(`pod${++this.seq}.${this.name}`, `sb${this.seq}`); }

  /** A dynamic ADD: one address per family, rolled back as a whole on failure. */
  async add(holder = this.holder(), signal?: AbortSignal): Promise<string[]> {
    const ips: string[] = [];
    try {
      for (const f of this.pool.families) ips.push(await this.claims.allocate(holder, f as Family, signal ? { signal } : {}));
    } catch (e) {
      this.pool.release(holder);
      throw e;
    }
    this.nb.set(holder, ips);
    this.sim.record(this.name, holder, ips);
    return ips;
  }

  /** A static ADD of one address. */
  async addStatic(ip: string, holder = this.holder(), pod?: string): Promise<string> {
    await this.claims.reserve(ip, holder, pod ? { pod } : {});
    this.nb.set(holder, [ip]);
    this.sim.record(this.name, holder, [ip]);
    return holder;
  }

  /** DEL: the port is gone, its addresses are released (no API call expected). */
  del(holder: string): void {
    const ips = this.nb.get(holder) ?? [];
    this.sim.forget(this.name, holder, ips);
    this.nb.delete(holder);
    this.pool.release(holder);
  }

  holders(): string[] { return [...this.nb.keys()]; }
}

export function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

/** Waits until probe() is true (polling the simulated world), failing after timeoutMs. */
export async function eventually(probe: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}
