// One subnet's address pool. The durable record of who holds which address is the OVN NB
// (each Logical_Switch_Port's `addresses`); this pool is the in-memory index rebuilt from it at
// start, so concurrent ADDs are served without a database round trip and without duplicates.

import { IpamError } from '../../common/errors';
import { contains, formatIp, lastAddress, parseCidr, parseIp, type Cidr, type Family } from './cidr';

export interface SubnetSpec {
  name: string;
  /** One CIDR per family (dual stack = one IPv4 and one IPv6). */
  cidrs: string[];
  /** Gateway per CIDR; defaults to the first address of each. */
  gateways?: string[];
  /** Single addresses or ranges "a..b" never handed out. */
  excludeIps?: string[];
}

interface FamilyPool {
  cidr: Cidr;
  gateway: string;
  first: bigint;
  last: bigint;
  excluded: Array<[bigint, bigint]>;
  /** address value -> owner */
  used: Map<bigint, string>;
  /** Where the next search starts, so a just-released address is not reused at once. */
  cursor: bigint;
}

/**
 * Who holds an address: a pod port is `<lsp>|<sandbox>`, so a late DEL of an earlier sandbox can
 * never free what a newer sandbox of the same pod holds; other holders (node ports, VIPs) are
 * plain names. Holders of the same port may hand addresses over to each other.
 */
export function portHolder(lspName: string, sandbox: string): string {
  return `${lspName}|${sandbox}`;
}

/** The port and sandbox of a pod port's holder; undefined for other holders. */
export function parsePortHolder(holder: string): { lspName: string; sandbox: string } | undefined {
  const bar = holder.indexOf('|');
  return bar < 0 ? undefined : { lspName: holder.slice(0, bar), sandbox: holder.slice(bar + 1) };
}

function portOf(holder: string): string {
  return parsePortHolder(holder)?.lspName ?? holder;
}

/** Told synchronously whenever an address stops being held (cluster mode: address claims follow it). */
export interface PoolObserver {
  freed(ip: string, holder: string): void;
}

/**
 * What the ADD path calls to get addresses. Embedded mode: the pool itself, synchronously
 * (localAllocator). Cluster mode: claims/allocator.ts, which may wait for a block claim or for
 * another node's decision on a static address.
 */
export interface PoolAllocator {
  /** A dynamic address of the family for holder (the one it or its port already holds, if any). */
  allocate(holder: string, family: Family, opts?: AllocateOptions): Promise<string>;
  /** A static address for holder; throws IpamError when it is taken or refused. */
  reserve(ip: string, holder: string, opts?: AllocateOptions): Promise<void>;
}

export interface AllocateOptions {
  /** The request's deadline: waits end with it. */
  signal?: AbortSignal;
  /** "namespace/name" of the pod asking (cluster mode writes it into address claims). */
  pod?: string;
}

/** The pool as a PoolAllocator: exactly SubnetPool.allocate / reserve. */
export function localAllocator(pool: SubnetPool): PoolAllocator {
  return {
    allocate: async (holder, family) => pool.allocate(holder, family),
    reserve: async (ip, holder) => { pool.reserve(ip, holder); },
  };
}

/** An inclusive range of address values. */
export type ValueRange = [bigint, bigint];

export class SubnetPool {
  readonly name: string;
  private readonly pools = new Map<Family, FamilyPool>();
  /**
   * Where dynamic allocation of a family may look (cluster mode: the node's address blocks);
   * absent = the whole range. Kept across reshape: it can only narrow what allocate hands out.
   */
  private readonly allowed = new Map<Family, ValueRange[]>();
  private observer: PoolObserver | undefined;

  constructor(spec: SubnetSpec) {
    this.name = spec.name;
    this.build(spec);
  }

  /**
   * Takes a changed Subnet spec in place, carrying over every allocation the new ranges still
   * cover: ADDs in flight hold this object, and a fresh pool would let their addresses be handed
   * out again. Throws (leaving the pool unchanged) when the spec is unusable.
   */
  reshape(spec: SubnetSpec): { dropped: string[] } {
    const next = new SubnetPool(spec);
    const dropped: Array<{ ip: string; holder: string }> = [];
    for (const [family, pool] of this.pools) {
      for (const [v, holder] of pool.used) {
        const ip = formatIp(family, v);
        try { next.reserve(ip, holder); } catch { dropped.push({ ip, holder }); }
      }
    }
    this.pools.clear();
    for (const [family, pool] of next.pools) this.pools.set(family, pool);
    for (const d of dropped) this.observer?.freed(d.ip, d.holder);
    return { dropped: dropped.map((d) => d.ip) };
  }

  private build(spec: SubnetSpec): void {
    spec.cidrs.forEach((text, i) => {
      const cidr = parseCidr(text);
      if (this.pools.has(cidr.family)) throw new IpamError(`subnet ${spec.name} has two IPv${cidr.family} CIDRs`);
      const gateway = spec.gateways?.[i] ?? formatIp(cidr.family, cidr.network + 1n);
      const gw = parseIp(gateway);
      if (!contains(cidr, gw)) throw new IpamError(`gateway ${gateway} is outside ${cidr.text}`);
      // The network address, the gateway and (IPv4) the broadcast address are never handed out.
      const last = cidr.family === 4 ? lastAddress(cidr) - 1n : lastAddress(cidr);
      const first = cidr.network + 1n;
      const ranges = (spec.excludeIps ?? []).map(parseRange).filter(([, , fam]) => fam === cidr.family);
      const excluded = normalizeRanges([...ranges.map(([a, b]) => [a, b] as [bigint, bigint]), [gw.value, gw.value]], first, last);
      this.pools.set(cidr.family, { cidr, gateway, first, last, excluded, used: new Map(), cursor: first });
    });
    if (this.pools.size === 0) throw new IpamError(`subnet ${spec.name} has no CIDR`);
  }

  get families(): Family[] { return [...this.pools.keys()].sort(); }
  cidr(family: Family): Cidr | undefined { return this.pools.get(family)?.cidr; }
  gateway(family: Family): string | undefined { return this.pools.get(family)?.gateway; }

  /** Claims a specific address for owner; idempotent for the same owner. */
  reserve(ip: string, owner: string): void {
    const { family, value } = parseIp(ip);
    const pool = this.pools.get(family);
    if (!pool || !contains(pool.cidr, { family, value })) {
      throw new IpamError(`requested IP ${ip} is outside subnet ${this.name} (${this.describe()})`);
    }
    if (value < pool.first || value > pool.last || (value === pool.cidr.network)) {
      throw new IpamError(`requested IP ${ip} is a reserved address of subnet ${this.name}`);
    }
    if (value === parseIp(pool.gateway).value) {
      throw new IpamError(`requested IP ${ip} is the gateway of subnet ${this.name}`);
    }
    const holder = pool.used.get(value);
    if (holder !== undefined && holder !== owner && portOf(holder) !== portOf(owner)) {
      throw new IpamError(`requested IP ${ip} is already in use by ${portOf(holder)}`);
    }
    pool.used.set(value, owner);
  }

  /**
   * Hands out the next free address of the family to owner, or the one it (or another sandbox
   * of the same port: a pod keeps its address across sandboxes) already holds.
   */
  allocate(owner: string, family: Family): string {
    const pool = this.pools.get(family);
    if (!pool) throw new IpamError(`subnet ${this.name} has no IPv${family} range`);
    const ip = this.tryAllocate(owner, family);
    if (ip !== undefined) return ip;
    if (this.allowed.has(family)) throw new IpamError(`subnet ${this.name} has no free IPv${family} address in this node's blocks (${pool.cidr.text})`);
    throw new IpamError(`subnet ${this.name} has no free IPv${family} address (${pool.cidr.text})`);
  }

  /** allocate() without the throw when nothing is free (undefined); still throws for a family the subnet lacks. */
  tryAllocate(owner: string, family: Family): string | undefined {
    const pool = this.pools.get(family);
    if (!pool) throw new IpamError(`subnet ${this.name} has no IPv${family} range`);
    for (const [v, o] of pool.used) if (o === owner) return formatIp(family, v);
    for (const [v, o] of pool.used) {
      if (portOf(o) === portOf(owner)) { pool.used.set(v, owner); return formatIp(family, v); }
    }
    const allowed = this.allowed.get(family);
    if (allowed) return this.allocateIn(pool, owner, allowed);
    const span = pool.last - pool.first + 1n;
    let candidate = pool.cursor;
    for (let tried = 0n; tried < span; tried++) {
      if (candidate > pool.last || candidate < pool.first) candidate = pool.first;
      if (!pool.used.has(candidate) && !isExcluded(pool, candidate)) {
        pool.used.set(candidate, owner);
        pool.cursor = candidate + 1n;
        return formatIp(family, candidate);
      }
      candidate++;
    }
    return undefined;
  }

  /** Next free address inside the allowed ranges, from the cursor on, then from their start. */
  private allocateIn(pool: FamilyPool, owner: string, allowed: ValueRange[]): string | undefined {
    const ranges = clip(allowed, pool.first, pool.last);
    for (const wrapped of [false, true]) {
      for (const [lo, hi] of ranges) {
        const a = wrapped ? lo : (pool.cursor > lo ? pool.cursor : lo);
        const b = wrapped ? (pool.cursor - 1n < hi ? pool.cursor - 1n : hi) : hi;
        for (let v = a; v <= b; v++) {
          if (pool.used.has(v) || isExcluded(pool, v)) continue;
          pool.used.set(v, owner);
          pool.cursor = v + 1n;
          return formatIp(pool.cidr.family, v);
        }
      }
    }
    return undefined;
  }

  /**
   * Restricts dynamic allocation of a family to these ranges (cluster mode: the node's blocks);
   * undefined lifts the restriction. Static reservations are not affected.
   */
  setAllocatable(family: Family, ranges: ValueRange[] | undefined): void {
    if (ranges === undefined) this.allowed.delete(family);
    else this.allowed.set(family, [...ranges].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)));
  }

  /** The observer told of every address that stops being held (one at a time). */
  setObserver(observer: PoolObserver | undefined): void { this.observer = observer; }

  /**
   * Addresses of the ranges (sorted, disjoint) that dynamic allocation could hand out (inside the
   * family's range, not the network, broadcast, gateway or excluded), and how many are free now.
   */
  capacity(family: Family, ranges: ValueRange[]): { total: bigint; free: bigint } {
    const pool = this.pools.get(family);
    if (!pool) return { total: 0n, free: 0n };
    const inside = clip(ranges, pool.first, pool.last);
    let total = 0n;
    for (const [a, b] of inside) {
      total += b - a + 1n;
      for (const [x, y] of pool.excluded) {
        const s = x > a ? x : a, e = y < b ? y : b;
        if (s <= e) total -= e - s + 1n;
      }
    }
    let used = 0n;
    for (const v of pool.used.keys()) if (inRanges(inside, v) && !isExcluded(pool, v)) used++;
    return { total, free: total - used };
  }

  /** Holders of addresses in [lo, hi] (any holder: pods, VIPs, claims, the conntrack flush). */
  heldIn(family: Family, lo: bigint, hi: bigint): Array<{ ip: string; holder: string }> {
    const pool = this.pools.get(family);
    const out: Array<{ ip: string; holder: string }> = [];
    if (!pool) return out;
    for (const [v, o] of pool.used) if (v >= lo && v <= hi) out.push({ ip: formatIp(family, v), holder: o });
    return out;
  }

  /** Every held address with its holder. */
  held(): Array<{ ip: string; holder: string }> {
    const out: Array<{ ip: string; holder: string }> = [];
    for (const [family, pool] of this.pools) for (const [v, o] of pool.used) out.push({ ip: formatIp(family, v), holder: o });
    return out;
  }

  /** Whether every family still has an address to hand out. */
  hasFree(): boolean {
    return this.families.every((f) => this.stats(f).free > 0n);
  }

  /** Addresses owner holds now. */
  holdings(owner: string): string[] {
    const out: string[] = [];
    for (const [family, pool] of this.pools) for (const [v, o] of pool.used) if (o === owner) out.push(formatIp(family, v));
    return out;
  }

  /** Frees one address if owner holds it. */
  releaseIp(ip: string, owner: string): boolean {
    const { family, value } = parseIp(ip);
    const pool = this.pools.get(family);
    if (!pool || pool.used.get(value) !== owner) return false;
    pool.used.delete(value);
    this.observer?.freed(ip, owner);
    return true;
  }

  /** Addresses held by other holders of owner's port (earlier sandboxes of the same pod). */
  heldBySamePort(owner: string): Array<{ ip: string; holder: string }> {
    const out: Array<{ ip: string; holder: string }> = [];
    for (const [family, pool] of this.pools) {
      for (const [v, o] of pool.used) if (o !== owner && portOf(o) === portOf(owner)) out.push({ ip: formatIp(family, v), holder: o });
    }
    return out;
  }

  /** Sets the holder of an address this pool tracks (to give a taken-over address back). */
  restore(ip: string, holder: string): void {
    const { family, value } = parseIp(ip);
    this.pools.get(family)?.used.set(value, holder);
  }

  /** Owners that hold at least one address. */
  owners(): Set<string> {
    const out = new Set<string>();
    for (const pool of this.pools.values()) for (const o of pool.used.values()) out.add(o);
    return out;
  }

  /** Frees every address owner holds; returns them. */
  release(owner: string): string[] {
    const freed: string[] = [];
    for (const [family, pool] of this.pools) {
      for (const [v, o] of pool.used) {
        if (o === owner) { pool.used.delete(v); freed.push(formatIp(family, v)); }
      }
    }
    for (const ip of freed) this.observer?.freed(ip, owner);
    return freed;
  }

  ownerOf(ip: string): string | undefined {
    const { family, value } = parseIp(ip);
    return this.pools.get(family)?.used.get(value);
  }

  /** True when the address belongs to this subnet's ranges. */
  covers(ip: string): boolean {
    try {
      const parsed = parseIp(ip);
      const pool = this.pools.get(parsed.family);
      return pool !== undefined && contains(pool.cidr, parsed);
    } catch { return false; }
  }

  stats(family: Family): { used: number; free: bigint } {
    const pool = this.pools.get(family);
    if (!pool) return { used: 0, free: 0n };
    const excluded = pool.excluded.reduce((n, [a, b]) => n + (b - a + 1n), 0n);
    // Static reservations may sit inside excluded ranges (an operator can pin one there).
    const usedOutside = [...pool.used.keys()].filter((v) => v >= pool.first && v <= pool.last && !isExcluded(pool, v)).length;
    return { used: pool.used.size, free: pool.last - pool.first + 1n - excluded - BigInt(usedOutside) };
  }

  private describe(): string { return [...this.pools.values()].map((p) => p.cidr.text).join(','); }
}

function isExcluded(pool: FamilyPool, v: bigint): boolean {
  return pool.excluded.some(([a, b]) => v >= a && v <= b);
}

function parseRange(text: string): [bigint, bigint, Family] {
  const [a, b] = text.split('..');
  const start = parseIp((a as string).trim());
  const end = b === undefined ? start : parseIp(b.trim());
  if (end.family !== start.family) throw new IpamError(`exclude range ${text} mixes address families`);
  if (end.value < start.value) throw new IpamError(`exclude range ${text} ends before it starts`);
  return [start.value, end.value, start.family];
}

/** Binary search in sorted disjoint ranges. */
function inRanges(ranges: ValueRange[], v: bigint): boolean {
  let lo = 0, hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = ranges[mid] as ValueRange;
    if (v < a) hi = mid - 1;
    else if (v > b) lo = mid + 1;
    else return true;
  }
  return false;
}

function clip(ranges: ValueRange[], first: bigint, last: bigint): ValueRange[] {
  return ranges
    .map(([a, b]): ValueRange => [a < first ? first : a, b > last ? last : b])
    .filter(([a, b]) => a <= b)
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
}

/** Clips ranges to [first, last] and merges overlaps, so counting them counts each address once. */
function normalizeRanges(ranges: Array<[bigint, bigint]>, first: bigint, last: bigint): Array<[bigint, bigint]> {
  const clipped = ranges
    .map(([a, b]): [bigint, bigint] => [a < first ? first : a, b > last ? last : b])
    .filter(([a, b]) => a <= b)
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const out: Array<[bigint, bigint]> = [];
  for (const r of clipped) {
    const prev = out[out.length - 1];
    if (prev && r[0] <= prev[1] + 1n) prev[1] = r[1] > prev[1] ? r[1] : prev[1];
    else out.push([r[0], r[1]]);
  }
  return out;
}
