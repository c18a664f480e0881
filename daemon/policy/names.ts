// Names of port groups and address sets. OVN match expressions refer to them as @pg and $as,
// so they must be identifiers ([A-Za-z_][A-Za-z0-9_.]*); a short hash keeps arbitrary
// Kubernetes names (dashes, long) unique and within limits.

import { createHash } from 'node:crypto';

// Every policy run names every set and group again: thousands of hashes per run on a large
// cluster, for names that rarely change. Bounded: cleared whole when full.
const known = new Map<string, string>();
const KNOWN_MAX = 100_000;

function ident(prefix: string, ...parts: string[]): string {
  const input = `${prefix}\0${parts.join('\0')}`;
  const hit = known.get(input);
  if (hit !== undefined) return hit;
  const readable = parts.join('_').replace(/[^A-Za-z0-9_]/g, '_').slice(0, 40);
  const hash = createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 8);
  const name = `${prefix}_${readable}_${hash}`;
  if (known.size >= KNOWN_MAX) known.clear();
  known.set(input, name);
  return name;
}

export const pgSecurityGroup = (sg: string): string => ident('ovnode_sg', sg);
/**
 * The members' addresses of a security group: the address set ovn-northd itself maintains for
 * every port group (`<pg>_ip4`, `<pg>_ip6`, from the ports' `addresses`). Creating our own set
 * under that name would collide with northd's and stop it from updating the southbound.
 */
export const asSecurityGroup = (sg: string, family: 4 | 6): string => `${pgSecurityGroup(sg)}_ip${family}`;
export const pgNetworkPolicy = (ns: string, name: string): string => ident('ovnode_np', ns, name);
export const asNetworkPolicyPeer = (ns: string, name: string, dir: 'in' | 'eg', rule: number, peer: number, family: 4 | 6): string =>
  `${ident('ovnode_np', ns, name, dir, String(rule), String(peer))}_ip${family}`;
export const PG_DENY_INGRESS = 'ovnode_np_deny_ingress';
export const PG_DENY_EGRESS = 'ovnode_np_deny_egress';
