// All subnets of the node by logical switch name, and the rebuild of their allocations from
// the OVN NB (the durable record) at start.

import { IpamError } from '../../common/errors';
import type { OvsdbClient } from '../ovsdb/client';
import { asArray } from '../ovsdb/values';
import { NB } from '../ovs/schema';
import { SubnetPool, type SubnetSpec } from './pool';

export class SubnetRegistry {
  private readonly pools = new Map<string, SubnetPool>();

  constructor(readonly defaultSwitch: string) {}

  add(spec: SubnetSpec): SubnetPool {
    const pool = new SubnetPool(spec);
    this.pools.set(spec.name, pool);
    return pool;
  }

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
        if (!lsp) continue;
        for (const line of asArray<string>(lsp.addresses)) {
          for (const token of line.split(/\s+/).slice(1)) {
            const ip = token.split('/')[0] as string;
            if (!pool.covers(ip) || pool.ownerOf(ip) !== undefined) continue;
            try { pool.reserve(ip, lsp.name as string); count++; } catch { /* gateway or reserved: not ours to track */ }
          }
        }
      }
    }
    return count;
  }
}
