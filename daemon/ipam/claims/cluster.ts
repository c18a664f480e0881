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
  /**
   * Whether this node still uses a subnet it has claims in without serving it (a deleted Subnet
   * whose switch still holds ports). Unset: every such subnet counts as in use.
   */
  subnetInUse?: (subnet: string) => boolean;
}

export class ClusterIpam {
  private readonly subnets = new Map<string, SubnetClaims>();
  private readonly config: ClaimsConfig;
  private unsubscribe: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private isStarted = false;
  /** Claims of deleted subnets being deleted, by uid: one DELETE each, whatever the sweeps. */
  private readonly orphanDeletes = new Set<string>();
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
   * Stops serving a subnet (its Subnet object is gone). Its claims stay until a sweep finds the
   * subnet no longer in use here (releaseOrphans), or go with this node's Node object.
   */
  detach(name: string): void {
    this.subnets.get(name)?.close();
    this.subnets.delete(name);
  }

  get(name: string): SubnetClaims | undefined { return this.subnets.get(name); }

  async sweep(): Promise<void> {
    if (!this.isStarted) return;
    await Promise.all([...this.subnets.values()].map((s) => s.sweep()));
    await this.releaseOrphans();
  }

  /**
   * Deletes this node's claims (blocks and addresses) in subnets it neither serves nor uses any
   * more: a deleted Subnet's claims would otherwise stay until the Node goes, and a Subnet
   * re-created with that name would find another CIDR's blocks in its way.
   */
  private async releaseOrphans(): Promise<void> {
    const inUse = this.opts.subnetInUse;
    if (!inUse) return;
    const self = this.opts.node.name;
    const orphans = this.opts.store.list().filter((c) => c.spec.node === self && !this.subnets.has(c.spec.subnet)
      && c.metadata.uid !== undefined && !this.orphanDeletes.has(c.metadata.uid) && !inUse(c.spec.subnet));
    await Promise.all(orphans.map(async (c) => {
      const uid = c.metadata.uid as string;
      this.orphanDeletes.add(uid);
      try {
        const result = await this.opts.store.delete(c.metadata.name, uid);
        this.opts.log.info({ step: 'ipam', subnet: c.spec.subnet, claim: c.metadata.name, kind: c.spec.kind, result }, 'claim of a deleted subnet released');
      } catch (e) {
        this.opts.log.warn({ step: 'ipam', subnet: c.spec.subnet, claim: c.metadata.name, err: e }, 'releasing a claim of a deleted subnet failed; retried on the next sweep');
      } finally {
        this.orphanDeletes.delete(uid);
      }
    }));
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
