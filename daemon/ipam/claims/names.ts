// Claim object names, derived from subnet + range so that every node computes the same name for
// the same range, and the apiserver's "one object per name" makes create-if-absent a lock.
//
//   block    <subnet>.b.<range>     ovn-default.b.10-16-0-64-26
//                                   ovn-default.b.fd00-10-16-0-0-0-0-40-122
//   address  <subnet>.a.<address>   ovn-default.a.10-16-0-5
//                                   ovn-default.a.fd00-10-16-0-0-0-0-5
//
// <range> is the network address followed by the prefix length; every part is separated by '-':
// IPv4 as its four decimal octets, IPv6 as all eight hextets in lowercase hex without leading
// zeros and without "::" compression (so ':' never appears and the text never starts or ends with
// '-'). The last dot-separated label has no '.', so the name splits back unambiguously into
// subnet, kind and range: two different (subnet, kind, range) never share a name.
//
// The subnet part is the subnet name itself when it is a DNS subdomain (lowercase alnum, '-',
// '.', labels starting and ending alnum) and the whole name fits in 253 characters. Otherwise it
// is `<sanitised prefix>-<20 hex of sha256(subnet)>`: the prefix (lowercased, anything but
// [a-z0-9] turned into '-', cut to what fits) keeps the name readable, the hash keeps it unique.
// Readers never trust a name alone: a claim counts only when its spec.subnet and spec.cidr match.

import { createHash } from 'node:crypto';
import { formatIp, parseCidr, parseIp, type Cidr, type Family } from '../cidr';
import type { ClaimKind } from './types';

export const MAX_NAME = 253;
const HASH_HEX = 20;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isDnsSubdomain(s: string): boolean {
  return s.length > 0 && s.length <= MAX_NAME && SUBDOMAIN.test(s);
}

/** The address part of a name: '-'-separated groups, no separators of other kinds. */
export function addressLabel(family: Family, value: bigint): string {
  if (family === 4) return formatIp(4, value).split('.').join('-');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((value >> BigInt(i * 16)) & 0xffffn).toString(16));
  return groups.join('-');
}

export function blockClaimName(subnet: string, block: Cidr): string {
  return withSubnet(subnet, 'b', `${addressLabel(block.family, block.network)}-${block.prefix}`);
}

export function addressClaimName(subnet: string, ip: string): string {
  const { family, value } = parseIp(ip);
  return withSubnet(subnet, 'a', addressLabel(family, value));
}

/** The name for a claim of either kind; `cidr` is a block or a single address (with or without /32, /128). */
export function claimName(subnet: string, kind: ClaimKind, cidr: string): string {
  if (kind === 'block') return blockClaimName(subnet, parseCidr(cidr));
  return addressClaimName(subnet, cidr.split('/')[0] as string);
}

function withSubnet(subnet: string, kind: 'a' | 'b', label: string): string {
  const rest = `.${kind}.${label}`;
  if (isDnsSubdomain(subnet) && subnet.length + rest.length <= MAX_NAME) return subnet + rest;
  const hash = createHash('sha256').update(subnet).digest('hex').slice(0, HASH_HEX);
  const room = MAX_NAME - rest.length - HASH_HEX - 1;
  const prefix = subnet.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, room).replace(/^-+|-+$/g, '');
  return `${prefix === '' ? 'x' : prefix}-${hash}${rest}`;
}
