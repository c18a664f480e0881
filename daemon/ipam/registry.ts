// All subnets of the node by logical switch name, and the rebuild of their allocations from
// the OVN NB (the durable record) at start.

import type { Logger } from 'pino';
import { InvalidConfigError, IpamError } from '../../common/errors';
import type { OvsdbClient } from '../ovsdb/client';
import { asArray, asMap } from '../ovsdb/values';
import { EXT, isRemoteNodeRow } from '../store/external-ids';
import { NB } from '../ovs/schema';
import { localAllocator, portHolder, SubnetPool, type PoolAllocator, type SubnetSpec } from './pool';
import type { ClusterIpam } from './claims/cluster';

/** Owner names of VIP reservations in the pools ("vip:<Vip name>"). */
export const VIP_OWNER_PREFIX = 'vip:';

export class SubnetRegistry {
  private readonly pools = new Map<string, SubnetPool>();
  /** Pools that follow Subnet objects (sync), and the spec each was built from. */
  private readonly managed = new Set<string>();
  private readonly shapes = new Map<string, string>();

  /** Cluster mode: pod pools allocate inside this node's claimed blocks (useClaims). */
  private cluster: ClusterIpam | undefined;

  constructor(readonly defaultSwitch: string) {}

  add(spec: SubnetSpec): SubnetPool {
    const pool = new SubnetPool(spec);
    this.pools.set(spec.name, pool);
    return pool;
  }

  /**
   * Cluster mode: every pod pool (not the node-only ones) from now on hands out addresses only
   * through address claims. Call after the first rebuildFromNb() (a pool arbitrates other
   * nodes' claims from what it holds) and before cluster.start(). Pools that sync() creates later
   * are attached once rebuilt; a pool added later with add() is not (attach it after rebuilding).
   */
  useClaims(cluster: ClusterIpam): void {
    this.cluster = cluster;
    for (const [name, pool] of this.pools) if (!this.nodeOnly.has(name)) cluster.attach(pool);
  }

  /** What the ADD path allocates through: the pool itself, or its cluster allocator. */
  allocatorFor(pool: SubnetPool): PoolAllocator {
    const claims = this.cluster?.get(pool.name);
    return claims && claims.pool === pool ? claims : localAllocator(pool);
  }

  /**
   * Makes the pools of managed subnets (Subnet objects) match `specs`: new or changed subnets
   * get a fresh pool seeded from the NB, removed ones are dropped; built-in pools (added with
   * add()) are left alone. VIP addresses are reserved so IPAM never hands them out.
   */
  sync(specs: SubnetSpec[], nb: OvsdbClient, vips: Array<{ subnet: string; ip: string; owner: string }>, log: Logger): void {
    const wanted = new Map(specs.map((s) => [s.name, s]));
    for (const name of this.managed) {
      if (!wanted.has(name)) {
        this.pools.delete(name); this.managed.delete(name); this.shapes.delete(name);
        this.cluster?.detach(name);
      }
    }
    const fresh: SubnetPool[] = [];
    for (const spec of specs) {
      const shape = JSON.stringify(spec);
      if (this.shapes.get(spec.name) === shape) continue;
      try {
        const existing = this.managed.has(spec.name) ? this.pools.get(spec.name) : undefined;
        if (existing) {
          const { dropped } = existing.reshape(spec);
          if (dropped.length > 0) log.warn({ step: 'ipam', subnet: spec.name, dropped }, 'addresses outside the changed subnet are no longer tracked');
        } else {
          const pool = new SubnetPool(spec);
          this.pools.set(spec.name, pool);
          fresh.push(pool);
        }
        this.managed.add(spec.name);
        this.shapes.set(spec.name, shape);
      } catch (e) {
        log.warn({ step: 'ipam', subnet: spec.name, err: String(e) }, 'subnet not usable');
      }
    }
    this.rebuildFromNb(nb);
    // VIP reservations follow the Vip objects: a deleted or moved VIP frees its old address.
    for (const pool of this.pools.values()) {
      const wantedHere = new Set(vips.filter((v) => v.subnet === pool.name).map((v) => `${v.owner}\0${v.ip}`));
      for (const owner of pool.owners()) {
        if (!owner.startsWith(VIP_OWNER_PREFIX)) continue;
        for (const ip of pool.holdings(owner)) if (!wantedHere.has(`${owner}\0${ip}`)) pool.releaseIp(ip, owner);
      }
    }
    for (const v of vips) {
      const pool = this.pools.get(v.subnet);
      if (!pool) { log.warn({ step: 'ipam', vip: v.owner, subnet: v.subnet }, 'VIP names an unknown subnet'); continue; }
      if (pool.ownerOf(v.ip) === v.owner) continue;
      try { pool.reserve(v.ip, v.owner); } catch (e) { log.warn({ step: 'ipam', vip: v.owner, err: String(e) }, 'VIP address cannot be reserved'); }
    }
    // Attached once they know their NB allocations and VIPs: a pool starts arbitrating at once.
    if (this.cluster) for (const pool of fresh) if (!this.nodeOnly.has(pool.name)) this.cluster.attach(pool);
  }

  /** Switches whose addresses are the node's own (the join switch): never a pod's. */
  private readonly nodeOnly = new Set<string>();

  /** Adds a pool pods can never be attached to. */
  addNodeOnly(spec: SubnetSpec): SubnetPool {
    this.nodeOnly.add(spec.name);
    return this.add(spec);
  }

  /** The pool a pod may be attached to; a switch that is not one is a configuration error (7). */
  forPods(name: string): SubnetPool {
    if (this.nodeOnly.has(name)) throw new InvalidConfigError(`logical switch ${name} carries the node's own addresses; pods cannot be attached to it`);
    if (!this.pools.has(name)) throw new InvalidConfigError(`logical switch ${name} is not a subnet of this node (known: ${[...this.pools.keys()].filter((n) => !this.nodeOnly.has(n)).join(', ')})`);
    return this.get(name);
  }

  has(name: string): boolean { return this.pools.has(name); }

  get(name: string): SubnetPool {
    const pool = this.pools.get(name);
    if (!pool) throw new IpamError(`logical switch ${name} is not a subnet of this node (known: ${[...this.pools.keys()].join(', ')})`);
    return pool;
  }

  all(): SubnetPool[] { return [...this.pools.values()]; }

  /**
   * Reserves in each pool the addresses every port of its switch holds in NB (pods, node
   * ports, anything another controller added), so allocation never hands out a taken address.
   */
  rebuildFromNb(nb: OvsdbClient): number {
    let count = 0;
    const lsps = nb.rows(NB.lsp);
    for (const ls of nb.rows(NB.ls).values()) {
      const pool = this.pools.get(ls.name as string);
      if (!pool) continue;
      for (const portUuid of asArray<string>(ls.ports)) {
        const lsp = lsps.get(portUuid);
        // Other nodes' pods: their addresses are in their nodes' blocks, held there.
        if (!lsp || isRemoteNodeRow(asMap(lsp.external_ids))) continue;
        for (const line of asArray<string>(lsp.addresses)) {
          for (const token of line.split(/\s+/).slice(1)) {
            const ip = token.split('/')[0] as string;
            if (!pool.covers(ip) || pool.ownerOf(ip) !== undefined) continue;
            const sandbox = asMap(lsp.external_ids)[EXT.sandbox] as string | undefined;
            const holder = sandbox ? portHolder(lsp.name as string, sandbox) : lsp.name as string;
            try { pool.reserve(ip, holder); count++; } catch { /* gateway or reserved: not ours to track */ }
          }
        }
      }
    }
    return count;
  }
}
