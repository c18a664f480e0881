// The node-wide side of cluster IPAM: one SubnetClaims per subnet pool, fed from one claims
// cache, started once the cache has synced (and after the registry rebuilt the pools from the NB,
// so that the node arbitrates only once it knows what it holds), swept periodically.

import type { Logger } from 'pino';
import type { Family } from '../cidr';
import type { SubnetPool } from '../pool';
import { DEFAULT_CLAIMS_CONFIG, SubnetClaims, type ClaimsConfig } from './allocator';
import type { ClaimEvent, ClaimStore } from './store';
import type { NodeRef } from './types';

export interface ClusterIpamOptions {
  /** This node; the uid may change (Node object re-created), hence the function form. */
  node: { name: string; uid: string | (() => string) };
  store: ClaimStore;
  log: Logger;
  blockPrefix?: Partial<Record<Family, number>>;
  lowWater?: number;
  waitMs?: number;
  releaseAfterMs?: number;
  /** How often sweep() runs on its own; 0 = never (tests call it). Default 30 s. */
  sweepIntervalMs?: number;
  takenTtlMs?: number;
  retryMs?: number;
  isPodHolder?: (holder: string) => boolean;
  now?: () => number;
}

export class ClusterIpam {
  private readonly subnets = new Map<string, SubnetClaims>();
  private readonly config: ClaimsConfig;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private isStarted = false;
  private readyPromise: Promise<void>;
  private resolveReady!: () => void;

  constructor(private readonly opts: ClusterIpamOptions) {
    const d = DEFAULT_CLAIMS_CONFIG;
    this.config = {
      blockPrefix: { ...d.blockPrefix, ...(opts.blockPrefix ?? {}) },
      lowWater: opts.lowWater ?? d.lowWater,
      waitMs: opts.waitMs ?? d.waitMs,
      releaseAfterMs: opts.releaseAfterMs ?? d.releaseAfterMs,
      takenTtlMs: opts.takenTtlMs ?? d.takenTtlMs,
      retryMs: opts.retryMs ?? d.retryMs,
      isPodHolder: opts.isPodHolder ?? d.isPodHolder,
      now: opts.now ?? d.now,
    };
    this.readyPromise = new Promise((r) => { this.resolveReady = r; });
  }

  get nodeName(): string { return this.opts.node.name; }

  private node(): NodeRef {
    const { name, uid } = this.opts.node;
    return { name, uid: typeof uid === 'function' ? uid() : uid };
  }

  /**
   * Waits for the claims cache, then follows it. Call after the pools were rebuilt from the NB:
   * from here on this node arbitrates address claims in its blocks.
   */
  async start(): Promise<void> {
    if (this.isStarted) return;
    await this.opts.store.synced();
    this.unsubscribe = this.opts.store.onChange((ev) => this.dispatch(ev));
    this.isStarted = true;
    const all = this.opts.store.list();
    for (const s of this.subnets.values()) s.activate(all);
    const every = this.opts.sweepIntervalMs ?? 30_000;
    if (every > 0) {
      this.timer = setInterval(() => { void this.sweep().catch((e: unknown) => this.opts.log.warn({ step: 'ipam', err: String(e) }, 'IP claims sweep failed')); }, every);
      this.timer.unref?.();
    }
    this.resolveReady();
  }

  /** Puts a pool under cluster IPAM (idempotent for the same pool object). */
  attach(pool: SubnetPool): SubnetClaims {
    const existing = this.subnets.get(pool.name);
    if (existing && existing.pool === pool) return existing;
    existing?.close();
    const s = new SubnetClaims(pool, {
      store: this.opts.store,
      node: () => this.node(),
      log: this.opts.log,
      config: this.config,
      ready: () => this.readyPromise,
    });
    this.subnets.set(pool.name, s);
    if (this.isStarted) s.activate(this.opts.store.list());
    return s;
  }

  /**
   * Stops serving a subnet (its Subnet object is gone). Its claims stay in the API: they go with
   * this node's Node object, or with releaseSubnet() of a later version.
   */
  detach(name: string): void {
    this.subnets.get(name)?.close();
    this.subnets.delete(name);
  }

  get(name: string): SubnetClaims | undefined { return this.subnets.get(name); }

  async sweep(): Promise<void> {
    if (!this.isStarted) return;
    await Promise.all([...this.subnets.values()].map((s) => s.sweep()));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const s of this.subnets.values()) s.close();
    this.subnets.clear();
  }

  private dispatch(ev: ClaimEvent): void {
    const subnet = ev.claim.spec?.subnet;
    if (typeof subnet === 'string') this.subnets.get(subnet)?.onEvent(ev);
  }
}
