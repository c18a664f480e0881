// IPv4/IPv6 address and prefix arithmetic on bigints: enough for IPAM, no dependency.

import { isIP } from 'node:net';

export type Family = 4 | 6;

export interface Cidr {
  family: Family;
  /** Network address as a number. */
  network: bigint;
  prefix: number;
  /** Canonical text, e.g. 10.16.0.0/16. */
  text: string;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

export function parseIp(text: string): { family: Family; value: bigint } {
  const fam = isIP(text);
  if (fam === 4) {
    const value = text.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
    return { family: 4, value };
  }
  if (fam === 6) return { family: 6, value: parseIpv6(text) };
  throw new Error(`not an IP address: ${JSON.stringify(text)}`);
}

function parseIpv6(text: string): bigint {
  let s = text;
  // An embedded dotted quad (::ffff:1.2.3.4) becomes two hextets.
  const dotted = s.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (dotted) {
    const v4 = parseIp(dotted[1] as string).value;
    s = s.slice(0, -(dotted[1] as string).length) + `${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].reduce((acc, x) => (acc << 16n) | BigInt(parseInt(x, 16)), 0n);
}

export function formatIp(family: Family, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function parseCidr(text: string): Cidr {
  const m = text.trim().match(/^([^/]+)\/(\d{1,3})$/);
  if (!m) throw new Error(`not a CIDR: ${JSON.stringify(text)}`);
  const { family, value } = parseIp(m[1] as string);
  const prefix = Number(m[2]);
  const bits = BITS[family];
  if (prefix > bits) throw new Error(`prefix /${prefix} too long for IPv${family} in ${text}`);
  const network = value & mask(family, prefix);
  return { family, network, prefix, text: `${formatIp(family, network)}/${prefix}` };
}

export function mask(family: Family, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

export function contains(cidr: Cidr, ip: { family: Family; value: bigint }): boolean {
  return cidr.family === ip.family && (ip.value & mask(cidr.family, cidr.prefix)) === cidr.network;
}

/** Last address of the prefix (the IPv4 broadcast address). */
export function lastAddress(cidr: Cidr): bigint {
  return cidr.network | ((1n << BigInt(BITS[cidr.family] - cidr.prefix)) - 1n);
}

export function size(cidr: Cidr): bigint {
  return 1n << BigInt(BITS[cidr.family] - cidr.prefix);
}

/**
 * The address of `to` at the offset `ip` has in `from` (an IPv6 join address mirroring an IPv4
 * one); undefined when `ip` is outside `from` or the offset does not fit in `to`.
 */
export function atSameOffset(from: Cidr, ip: string, to: Cidr): string | undefined {
  const addr = parseIp(ip);
  if (!contains(from, addr)) return undefined;
  const offset = addr.value - from.network;
  if (offset >= size(to)) return undefined;
  return formatIp(to.family, to.network + offset);
}
