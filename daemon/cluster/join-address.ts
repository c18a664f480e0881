// The node's own address on the join switch (its "transit address": other zones route replies
// to this node's ovn0 through it), unique cluster-wide. It is claimed like any address: an
// address IPClaim named after it (ipam/claims/names.ts), created if absent, owned by the Node so
// the garbage collector frees it with the node. No node arbitrates the join subnet (it has no
// blocks): the create is the whole lock, and a claim of this node found in the cache is reused,
// so a node that lost its state directory comes back with the same address.
//
// Candidates are the join addresses that carry a port tunnel key (tunnel-keys.ts), from offset 2
// (offset 1 is the join gateway); the search starts at a hash of the node name, as block claims do.

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { formatIp, type Cidr } from '../ipam/cidr';
import { addressClaimName } from '../ipam/claims/names';
import type { ClaimStore } from '../ipam/claims/store';
import type { IPClaim, NodeRef } from '../ipam/claims/types';
import { MAX_PORT_KEY } from './tunnel-keys';

export interface JoinAddressRequest {
  store: ClaimStore;
  node: NodeRef;
  /** The join switch's name (the claims' subnet) and CIDR. */
  subnet: string;
  cidr: Cidr;
  log: Logger;
  signal?: AbortSignal;
}

/** This node's join claims in the cache, lowest address first. */
function ownClaims(store: ClaimStore, subnet: string, node: string): IPClaim[] {
  return store.list()
    .filter((c) => c.spec.subnet === subnet && c.spec.kind === 'address' && c.spec.node === node)
    .sort((a, b) => a.spec.cidr.localeCompare(b.spec.cidr, undefined, { numeric: true }));
}

/** Returns this node's join address, claiming one when it has none. */
export async function claimJoinAddress(req: JoinAddressRequest): Promise<string> {
  const { store, node, subnet, cidr, log } = req;
  const held = ownClaims(store, subnet, node.name)[0];
  if (held) return held.spec.cidr.split('/')[0] as string;
  const bits = cidr.family === 4 ? 32 : 128;
  const size = 1n << BigInt(bits - cidr.prefix);
  // Offsets 2 .. the last keyed one, never the IPv4 broadcast address.
  const lastUsable = cidr.family === 4 ? size - 2n : size - 1n;
  const last = BigInt(MAX_PORT_KEY) < lastUsable ? BigInt(MAX_PORT_KEY) : lastUsable;
  const count = last - 1n;
  if (count < 1n) throw new Error(`join CIDR ${cidr.text} has no address left for nodes`);
  const hash = BigInt(`0x${createHash('sha256').update(node.name).digest('hex').slice(0, 16)}`);
  const start = hash % count;
  for (let i = 0n; i < count; i++) {
    req.signal?.throwIfAborted();
    const ip = formatIp(cidr.family, cidr.network + 2n + ((start + i) % count));
    if (store.get(addressClaimName(subnet, ip))) continue;
    const res = await store.create({ subnet, cidr: `${ip}/${bits}`, node: node.name, kind: 'address' }, node, req.signal);
    if (res.created) {
      log.info({ step: 'join', address: ip }, 'join address claimed');
      return ip;
    }
  }
  throw new Error(`every address of the join CIDR ${cidr.text} is claimed by other nodes`);
}
