// SubnetPool: which addresses are handed out, reserved, released and counted.
import { describe, expect, it } from 'vitest';
import { IpamError } from '../../../../common/errors';
import { portHolder, SubnetPool, type SubnetSpec } from '../../../../daemon/ipam/pool';
import type { Family } from '../../../../daemon/ipam/cidr';

function pool(spec: Partial<SubnetSpec> = {}): SubnetPool {
  return new SubnetPool({ name: 'ovn-default', cidrs: ['10.0.0.0/24'], ...spec });
}

/** Allocates for owners o0, o1, ... and returns the addresses. */
function allocateN(p: SubnetPool, n: number, family: Family = 4, prefix = 'o'): string[] {
  return Array.from({ length: n }, (_, i) => p.allocate(`${prefix}${i}`, family));
}

/** Runs fn and returns what it threw. */
function thrown(fn: () => unknown): IpamError {
  try { fn(); } catch (e) { return e as IpamError; }
  throw new Error('expected a throw');
}

describe('construction', () => {
  it('defaults the gateway to the first address of each CIDR', () => {
    const p = pool({ cidrs: ['10.0.0.0/24', 'fd00:10::/64'] });
    expect(p.families).toEqual([4, 6]);
    expect(p.gateway(4)).toBe('10.0.0.1');
    expect(p.gateway(6)).toBe('fd00:10::1');
    expect(p.cidr(4)?.text).toBe('10.0.0.0/24');
    expect(p.cidr(6)?.text).toBe('fd00:10::/64');
  });

  const bad: { desc: string; spec: Partial<SubnetSpec>; err: RegExp }[] = [
    { desc: 'no CIDR', spec: { cidrs: [] }, err: /has no CIDR/ },
    { desc: 'two IPv4 CIDRs', spec: { cidrs: ['10.0.0.0/24', '10.1.0.0/24'] }, err: /two IPv4 CIDRs/ },
    { desc: 'a gateway outside the CIDR', spec: { gateways: ['10.1.0.1'] }, err: /outside 10\.0\.0\.0\/24/ },
    { desc: 'an exclude range that ends before it starts', spec: { excludeIps: ['10.0.0.9..10.0.0.5'] }, err: /ends before it starts/ },
  ];
  for (const c of bad) {
    it(`refuses ${c.desc} with an IpamError`, () => {
      const e = thrown(() => pool(c.spec));
      expect(e).toBeInstanceOf(IpamError);
      expect(e.cniCode).toBe(101);
      expect(e.message).toMatch(c.err);
    });
  }
});

describe('allocate', () => {
  const cases: { desc: string; spec: Partial<SubnetSpec>; n: number; want: string[] }[] = [
    { desc: 'skips the network address and the gateway', spec: {}, n: 3, want: ['10.0.0.2', '10.0.0.3', '10.0.0.4'] },
    {
      desc: 'skips a gateway that is not the first address',
      spec: { cidrs: ['10.0.0.0/29'], gateways: ['10.0.0.3'] },
      n: 4,
      want: ['10.0.0.1', '10.0.0.2', '10.0.0.4', '10.0.0.5'],
    },
    {
      desc: 'never hands out the IPv4 broadcast address',
      spec: { cidrs: ['10.0.0.0/29'] },
      n: 5,
      want: ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6'],
    },
    {
      desc: 'skips single excluded addresses and excluded ranges',
      spec: { excludeIps: ['10.0.0.2..10.0.0.4', '10.0.0.6', ' 10.0.0.8 .. 10.0.0.9 '] },
      n: 3,
      want: ['10.0.0.5', '10.0.0.7', '10.0.0.10'],
    },
    {
      desc: 'ignores exclusions of another subnet',
      spec: { excludeIps: ['10.9.0.2..10.9.0.4', 'fd00::2'] },
      n: 2,
      want: ['10.0.0.2', '10.0.0.3'],
    },
    {
      desc: 'honours the part of an excluded range that starts before the CIDR',
      spec: { cidrs: ['10.0.1.0/29'], excludeIps: ['10.0.0.250..10.0.1.3'] },
      n: 3,
      want: ['10.0.1.4', '10.0.1.5', '10.0.1.6'],
    },
    {
      desc: 'IPv6: the last address of the prefix is usable (no broadcast)',
      spec: { cidrs: ['fd00::/125'] },
      n: 6,
      want: ['fd00::2', 'fd00::3', 'fd00::4', 'fd00::5', 'fd00::6', 'fd00::7'],
    },
  ];
  for (const c of cases) {
    it(c.desc, () => {
      const p = pool(c.spec);
      const family = p.families[0] as Family;
      expect(allocateN(p, c.n, family)).toEqual(c.want);
    });
  }

  it('returns the address an owner already holds', () => {
    const p = pool();
    const first = p.allocate('pod-a', 4);
    expect(p.allocate('pod-a', 4)).toBe(first);
    expect(p.stats(4).used).toBe(1);
  });

  it('returns the reserved address for its owner', () => {
    const p = pool();
    p.reserve('10.0.0.50', 'pod-a');
    expect(p.allocate('pod-a', 4)).toBe('10.0.0.50');
  });

  it('skips addresses reserved by others', () => {
    const p = pool();
    p.reserve('10.0.0.2', 'static-1');
    p.reserve('10.0.0.3', 'static-2');
    expect(p.allocate('pod-a', 4)).toBe('10.0.0.4');
  });

  it('throws an IpamError for a family the subnet does not have', () => {
    const e = thrown(() => pool().allocate('pod-a', 6));
    expect(e).toBeInstanceOf(IpamError);
    expect(e.message).toMatch(/no IPv6 range/);
  });

  it('runs out on a /29 after five addresses', () => {
    const p = pool({ cidrs: ['10.0.0.0/29'] });
    expect(allocateN(p, 5)).toHaveLength(5);
    const e = thrown(() => p.allocate('one-too-many', 4));
    expect(e).toBeInstanceOf(IpamError);
    expect(e.cniCode).toBe(101);
    expect(e.message).toBe('subnet ovn-default has no free IPv4 address (10.0.0.0/29)');
    expect(p.ownerOf('10.0.0.7')).toBeUndefined();
    expect(p.stats(4)).toEqual({ used: 5, free: 0n });
  });

  it('runs out when exclusions leave nothing', () => {
    const p = pool({ cidrs: ['10.0.0.0/29'], excludeIps: ['10.0.0.2..10.0.0.6'] });
    expect(() => p.allocate('pod-a', 4)).toThrow(IpamError);
  });

  it('allocates one address per family for a dual-stack owner', () => {
    const p = pool({ cidrs: ['10.0.0.0/24', 'fd00:10::/64'] });
    expect(p.allocate('pod-a', 4)).toBe('10.0.0.2');
    expect(p.allocate('pod-a', 6)).toBe('fd00:10::2');
    expect(p.allocate('pod-b', 6)).toBe('fd00:10::3');
    expect(p.allocate('pod-b', 4)).toBe('10.0.0.3');
    expect(p.ownerOf('fd00:10::2')).toBe('pod-a');
    expect(p.release('pod-a').sort()).toEqual(['10.0.0.2', 'fd00:10::2']);
    expect(p.stats(4).used).toBe(1);
    expect(p.stats(6).used).toBe(1);
  });
});

describe('release', () => {
  it('frees the owner\'s addresses and returns them', () => {
    const p = pool();
    p.allocate('pod-a', 4);
    p.reserve('10.0.0.40', 'pod-a');
    p.allocate('pod-b', 4);
    expect(p.release('pod-a').sort()).toEqual(['10.0.0.2', '10.0.0.40']);
    expect(p.ownerOf('10.0.0.2')).toBeUndefined();
    expect(p.ownerOf('10.0.0.3')).toBe('pod-b');
    expect(p.release('pod-a')).toEqual([]);
    expect(p.release('never-seen')).toEqual([]);
  });

  it('does not hand a just-released address out again at once', () => {
    const p = pool();
    expect(allocateN(p, 2)).toEqual(['10.0.0.2', '10.0.0.3']);
    p.release('o0');
    expect(p.allocate('pod-c', 4)).toBe('10.0.0.4');
  });

  it('wraps around to released addresses once the end is reached', () => {
    const p = pool({ cidrs: ['10.0.0.0/29'] });
    allocateN(p, 5);
    p.release('o1');
    p.release('o3');
    expect(p.allocate('pod-x', 4)).toBe('10.0.0.3');
    expect(p.allocate('pod-y', 4)).toBe('10.0.0.5');
    expect(() => p.allocate('pod-z', 4)).toThrow(IpamError);
  });
});

describe('reserve', () => {
  const bad: { desc: string; ip: string; err: RegExp }[] = [
    { desc: 'an address outside the subnet', ip: '10.0.1.5', err: /outside subnet ovn-default \(10\.0\.0\.0\/24\)/ },
    { desc: 'an address of a family the subnet lacks', ip: 'fd00::5', err: /outside subnet/ },
    { desc: 'the network address', ip: '10.0.0.0', err: /reserved address/ },
    { desc: 'the broadcast address', ip: '10.0.0.255', err: /reserved address/ },
    { desc: 'the gateway', ip: '10.0.0.1', err: /is the gateway/ },
  ];
  for (const c of bad) {
    it(`refuses ${c.desc}`, () => {
      const p = pool();
      const e = thrown(() => p.reserve(c.ip, 'pod-a'));
      expect(e).toBeInstanceOf(IpamError);
      expect(e.cniCode).toBe(101);
      expect(e.message).toMatch(c.err);
      expect(p.stats(4).used).toBe(0);
    });
  }

  it('refuses an address held by another owner, naming the holder', () => {
    const p = pool();
    p.reserve('10.0.0.7', 'pod-a');
    expect(() => p.reserve('10.0.0.7', 'pod-b')).toThrow(/already in use by pod-a/);
    expect(p.ownerOf('10.0.0.7')).toBe('pod-a');
  });

  it('refuses an allocated address to another owner', () => {
    const p = pool();
    const ip = p.allocate('pod-a', 4);
    expect(() => p.reserve(ip, 'pod-b')).toThrow(IpamError);
  });

  it('is idempotent for the same owner', () => {
    const p = pool();
    p.reserve('10.0.0.7', 'pod-a');
    expect(() => p.reserve('10.0.0.7', 'pod-a')).not.toThrow();
    expect(p.ownerOf('10.0.0.7')).toBe('pod-a');
    expect(p.stats(4).used).toBe(1);
  });

  it('accepts an IPv6 address in a dual-stack subnet', () => {
    const p = pool({ cidrs: ['10.0.0.0/24', 'fd00:10::/64'] });
    p.reserve('fd00:10::abcd', 'pod-a');
    expect(p.ownerOf('fd00:10::abcd')).toBe('pod-a');
  });
});

describe('covers', () => {
  const cases: { desc: string; ip: string; want: boolean }[] = [
    { desc: 'an IPv4 address inside', ip: '10.0.0.77', want: true },
    { desc: 'an IPv6 address inside', ip: 'fd00:10::77', want: true },
    { desc: 'an IPv4 address outside', ip: '10.0.1.1', want: false },
    { desc: 'an IPv6 address outside', ip: 'fd00:11::1', want: false },
    { desc: 'not an address', ip: 'garbage', want: false },
  ];
  for (const c of cases) {
    it(c.desc, () => expect(pool({ cidrs: ['10.0.0.0/24', 'fd00:10::/64'] }).covers(c.ip)).toBe(c.want));
  }
});

describe('stats', () => {
  it('counts used and free addresses', () => {
    const p = pool();
    expect(p.stats(4)).toEqual({ used: 0, free: 253n }); // 256 - network - gateway - broadcast
    allocateN(p, 3);
    p.reserve('10.0.0.100', 'static');
    expect(p.stats(4)).toEqual({ used: 4, free: 249n });
    p.release('o1');
    expect(p.stats(4)).toEqual({ used: 3, free: 250n });
  });

  it('reports nothing for a family the subnet lacks', () => {
    expect(pool().stats(6)).toEqual({ used: 0, free: 0n });
  });

  it('counts IPv6 beyond 2^53', () => {
    expect(pool({ cidrs: ['fd00::/64'] }).stats(6)).toEqual({ used: 0, free: (1n << 64n) - 2n });
  });

  // free must equal the number of further allocate() calls that succeed: STATUS answers 51
  // ("no IP available") when it reaches 0.
  const cases: { desc: string; spec: Partial<SubnetSpec>; reserve?: string[]; free: bigint }[] = [
    { desc: 'a /29 has five', spec: { cidrs: ['10.0.0.0/29'] }, free: 5n },
    { desc: 'an excluded range', spec: { cidrs: ['10.0.0.0/29'], excludeIps: ['10.0.0.2..10.0.0.3'] }, free: 3n },
    { desc: 'an exclusion naming the gateway', spec: { cidrs: ['10.0.0.0/29'], excludeIps: ['10.0.0.1'] }, free: 5n },
    { desc: 'an exclusion reaching the broadcast address', spec: { cidrs: ['10.0.0.0/29'], excludeIps: ['10.0.0.5..10.0.0.7'] }, free: 3n },
    { desc: 'overlapping exclusions', spec: { cidrs: ['10.0.0.0/29'], excludeIps: ['10.0.0.2..10.0.0.4', '10.0.0.3'] }, free: 2n },
    { desc: 'an exclusion starting before the CIDR', spec: { cidrs: ['10.0.1.0/29'], excludeIps: ['10.0.0.250..10.0.1.3'] }, free: 3n },
    { desc: 'a reserved address inside an exclusion', spec: { cidrs: ['10.0.0.0/29'], excludeIps: ['10.0.0.2..10.0.0.3'] }, reserve: ['10.0.0.2'], free: 3n },
  ];
  for (const c of cases) {
    it(`free matches what allocate hands out: ${c.desc}`, () => {
      const p = pool(c.spec);
      for (const ip of c.reserve ?? []) p.reserve(ip, `static-${ip}`);
      expect(p.stats(4).free).toBe(c.free);
      let handedOut = 0n;
      try { for (;;) { p.allocate(`pod-${handedOut}`, 4); handedOut++; } } catch { /* exhausted */ }
      expect(handedOut).toBe(c.free);
    });
  }
});

describe('sandbox holders of one port', () => {
  const a = portHolder('web-0.shop', 'sandbox-a');
  const b = portHolder('web-0.shop', 'sandbox-b');

  it('a new sandbox of the pod takes over its address, and the old sandbox can no longer free it', () => {
    const p = pool();
    const ip = p.allocate(a, 4);
    expect(p.allocate(b, 4)).toBe(ip);
    expect(p.ownerOf(ip)).toBe(b);
    expect(p.release(a)).toEqual([]);
    expect(p.ownerOf(ip)).toBe(b);
  });

  it('a static address held by an earlier sandbox of the same pod can be reserved, another pod\'s cannot', () => {
    const p = pool();
    p.reserve('10.0.0.9', a);
    p.reserve('10.0.0.9', b);
    expect(p.ownerOf('10.0.0.9')).toBe(b);
    expect(() => p.reserve('10.0.0.9', portHolder('db-0.shop', 'sandbox-c'))).toThrow(/in use by web-0.shop/);
  });

  it('heldBySamePort lists the other sandboxes\' addresses and restore gives one back', () => {
    const p = pool();
    p.reserve('10.0.0.7', a);
    p.reserve('10.0.0.8', portHolder('other.shop', 'x'));
    expect(p.heldBySamePort(b)).toEqual([{ ip: '10.0.0.7', holder: a }]);
    p.reserve('10.0.0.7', b);
    p.restore('10.0.0.7', a);
    expect(p.ownerOf('10.0.0.7')).toBe(a);
  });
});

describe('reshape (a Subnet edited while ADDs are in flight)', () => {
  it('keeps the same object and every allocation the new ranges cover: nothing is handed out twice', () => {
    const p = pool({ cidrs: ['10.0.0.0/29'] });
    const held = allocateN(p, 3);
    const { dropped } = p.reshape({ name: 'ovn-default', cidrs: ['10.0.0.0/28'], excludeIps: ['10.0.0.12'] });
    expect(dropped).toEqual([]);
    const fresh = allocateN(p, 9, 4, 'n');
    for (const ip of fresh) expect(held).not.toContain(ip);
    expect(fresh).not.toContain('10.0.0.12');
    for (const [i, ip] of held.entries()) expect(p.ownerOf(ip)).toBe(`o${i}`);
  });

  it('drops only what the new ranges no longer cover, and reports it', () => {
    const p = pool({ cidrs: ['10.0.0.0/24'] });
    p.reserve('10.0.0.2', 'x');
    p.reserve('10.0.0.200', 'y');
    expect(p.reshape({ name: 'ovn-default', cidrs: ['10.0.0.0/25'] }).dropped).toEqual(['10.0.0.200']);
    expect(p.ownerOf('10.0.0.2')).toBe('x');
  });

  it('leaves the pool unchanged when the new spec is unusable', () => {
    const p = pool();
    p.reserve('10.0.0.5', 'x');
    expect(() => p.reshape({ name: 'ovn-default', cidrs: [] })).toThrow(IpamError);
    expect(p.ownerOf('10.0.0.5')).toBe('x');
    expect(p.cidr(4)?.text).toBe('10.0.0.0/24');
  });
});

describe('hasFree', () => {
  it('is false once a family has nothing left to hand out', () => {
    const p = pool({ cidrs: ['10.0.0.0/30'] });
    expect(p.hasFree()).toBe(true);
    p.allocate('a', 4);
    expect(p.hasFree()).toBe(false);
  });
});
