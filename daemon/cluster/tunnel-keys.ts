// Tunnel keys that every zone computes alike without talking to the others (part of the
// cross-node contract, version 1). A packet between nodes carries the logical switch's key (the
// Geneve VNI) and the logical ports' keys; the receiving zone resolves them in its own database,
// so a shared switch and each of its ports must have the same key in every zone.
//
// Ports: the offset of the port's address inside the switch's key CIDR (its IPv4 CIDR when it has
// one, else its first): 10.16.0.5 in 10.16.0.0/16 is key 5. Addresses are unique cluster-wide
// (the IPAM claims), so keys are too, with no hashing; the router port on a switch is its gateway
// address's key. OVN port keys are 1..32767, so a switch spanning nodes can key the first 32,767
// addresses of that CIDR: that is its port limit, and the cluster IPAM claims blocks only there.
//
// Switches: OVN leaves the top 65,535 datapath keys (2^24 - 65535 .. 2^24 - 1) to interconnected
// datapaths and allocates local ones (routers) below them, so shared switches take keys from that
// range: a hash of the name, then the next free key in name order should two names collide. All
// zones see the same Subnets, so they resolve a collision the same way.

import { createHash } from 'node:crypto';
import { parseCidr, parseIp, type Cidr } from '../ipam/cidr';

export const MAX_PORT_KEY = 32767;
const DATAPATH_KEY_SPACE = 1 << 24;
/** OVN's OVN_MIN_DP_KEY_GLOBAL .. OVN_MAX_DP_KEY (lib/ovn-util.h). */
const SHARED_DATAPATH_KEYS = (1 << 16) - 1;
export const MIN_SHARED_DATAPATH_KEY = DATAPATH_KEY_SPACE - SHARED_DATAPATH_KEYS;

/** The CIDR whose offsets key a switch's ports: its IPv4 one when it has one. */
export function keyCidr(cidrs: readonly string[]): Cidr | undefined {
  const parsed = cidrs.map((c) => parseCidr(c));
  return parsed.find((c) => c.family === 4) ?? parsed[0];
}

/** The port key of an address in a switch, or undefined when the address is outside the keyed range. */
export function addressTunnelKey(cidr: Cidr, ip: string): number | undefined {
  const addr = parseIp(ip);
  if (addr.family !== cidr.family) return undefined;
  const offset = addr.value - cidr.network;
  if (offset < 1n || offset > BigInt(MAX_PORT_KEY)) return undefined;
  const hostBits = BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix);
  if (offset >= 1n << hostBits) return undefined;
  return Number(offset);
}

/** The key of a port with these addresses on a switch with these CIDRs (undefined: not keyable). */
export function portTunnelKey(switchCidrs: readonly string[], ips: readonly string[]): number | undefined {
  return portKeyIn(keyCidr(switchCidrs), ips);
}

/** The same, given the switch's key CIDR (an IPAM pool's IPv4 CIDR, else its IPv6 one). */
export function portKeyIn(cidr: Cidr | undefined, ips: readonly string[]): number | undefined {
  if (!cidr) return undefined;
  for (const ip of ips) {
    const key = addressTunnelKey(cidr, ip);
    if (key !== undefined) return key;
  }
  return undefined;
}

/** How many addresses of the key CIDR can carry a port key (the spanning port limit of the switch). */
export function keyedAddressCount(cidr: Cidr): bigint {
  const size = 1n << BigInt((cidr.family === 4 ? 32 : 128) - cidr.prefix);
  return size - 1n < BigInt(MAX_PORT_KEY) ? size - 1n : BigInt(MAX_PORT_KEY);
}

function hashKey(name: string): number {
  const h = createHash('sha256').update(name).digest().readUInt32BE(0);
  return MIN_SHARED_DATAPATH_KEY + (h % SHARED_DATAPATH_KEYS);
}

/** The datapath key of every shared switch, by name. */
export function switchTunnelKeys(names: Iterable<string>): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Set<number>();
  for (const name of [...new Set(names)].sort()) {
    let key = hashKey(name);
    while (used.has(key)) key = key + 1 >= DATAPATH_KEY_SPACE ? MIN_SHARED_DATAPATH_KEY : key + 1;
    used.add(key);
    out.set(name, key);
  }
  return out;
}
