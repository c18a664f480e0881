// Cluster IPAM across simulated nodes over the FAKE claims apiserver (request and watch latency
// with seeded jitter): concurrent ADDs, static addresses arbitrated by block owners, restarts,
// node loss, a subnet too small, block release, lost replies, a stalled watch, and the absence of
// API calls per ADD once blocks are owned.
import { afterEach, describe, expect, it } from 'vitest';
import { IpamError, TryAgainLaterError } from '../../../../../common/errors';
import { addressClaimName } from '../../../../../daemon/ipam/claims/names';
import { claimHolder } from '../../../../../daemon/ipam/claims/allocator';
import { KubeClaimStore } from '../../../../../daemon/ipam/claims/store';
import { contains, parseCidr, parseIp } from '../../../../../daemon/ipam/cidr';
import { eventually, SimCluster, sleep, type SimNode, type SimOptions } from './sim';

const SUBNET = 'ovn-default';
let sim: SimCluster | undefined;
afterEach(() => { sim?.stop(); sim = undefined; });

function cluster(opts: Partial<SimOptions> & { cidrs?: string[] }): SimCluster {
  sim = new SimCluster({
    seed: opts.seed ?? 1,
    subnet: opts.subnet ?? { name: SUBNET, cidrs: opts.cidrs ?? ['10.0.0.0/22'] },
    requestJitterMs: opts.requestJitterMs ?? 3,
    watchJitterMs: opts.watchJitterMs ?? 4,
    ipam: { waitMs: 3000, ...(opts.ipam ?? {}) },
  });
  return sim;
}

async function nodes(s: SimCluster, n: number): Promise<SimNode[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => s.addNode(`node-${i}`)));
}

/** Settles every ADD; returns the failures. */
async function settle(ps: Array<Promise<unknown>>): Promise<unknown[]> {
  return (await Promise.allSettled(ps)).filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
}

function inCidr(ip: string, cidr: string): boolean { return contains(parseCidr(cidr), parseIp(ip)); }

function expectClean(s: SimCluster): void {
  expect(s.duplicates).toEqual([]);
  expect(s.crossCheck()).toEqual([]);
  expect(s.errors()).toEqual([]);
}

describe('concurrent ADDs on many nodes', () => {
  const variants = [
    { desc: 'IPv4, /27 blocks', cidrs: ['10.0.0.0/23'], blockPrefix: { 4: 27 }, lowWater: 8 },
    { desc: 'IPv4, /28 blocks, aggressive prefetch', cidrs: ['10.0.0.0/23'], blockPrefix: { 4: 28 }, lowWater: 12 },
    { desc: 'dual stack, /27 and /123 blocks', cidrs: ['10.0.0.0/23', 'fd00:10::/118'], blockPrefix: { 4: 27, 6: 123 }, lowWater: 6 },
  ];
  for (const v of variants) {
    for (const seed of [1, 2, 3, 4]) {
      it(`5 nodes x 40 concurrent ADDs with churn never hand out an address twice (${v.desc}, seed ${seed})`, async () => {
        const s = cluster({ seed, cidrs: v.cidrs, ipam: { blockPrefix: v.blockPrefix, lowWater: v.lowWater } });
        const ns = await nodes(s, 5);
        const adds = ns.flatMap((n) => Array.from({ length: 40 }, async () => {
          await sleep(s.rng() * 15);
          return n.add();
        }));
        expect(await settle(adds)).toEqual([]);
        expectClean(s);
        // Churn: DELs interleaved with more ADDs, all nodes at once.
        const more = ns.flatMap((n) => Array.from({ length: 25 }, async () => {
          await sleep(s.rng() * 20);
          const hs = n.holders();
          if (s.rng() < 0.5 && hs.length > 0) n.del(hs[Math.floor(s.rng() * hs.length)] as string);
          else await n.add();
        }));
        expect(await settle(more)).toEqual([]);
        expectClean(s);
        // Every address a node handed out lies in a block that node owns, per the API's objects.
        const blocks = s.server.objectsNow().filter((o) => o.spec.kind === 'block');
        for (const n of ns) {
          for (const ips of n.nb.values()) {
            for (const ip of ips) expect(blocks.some((b) => b.spec.node === n.name && inCidr(ip, b.spec.cidr))).toBe(true);
          }
        }
      });
    }
  }
});

describe('no API call per ADD in steady state', () => {
  it('ADD and DEL cycles on nodes that own enough blocks call nothing', async () => {
    const s = cluster({ seed: 7, cidrs: ['10.0.0.0/22'], ipam: { blockPrefix: { 4: 26 }, lowWater: 16 } });
    const ns = await nodes(s, 3);
    for (const n of ns) await Promise.all(Array.from({ length: 30 }, () => n.add()));
    await sleep(30); // prefetches settle
    const before = s.server.count();
    for (let i = 0; i < 300; i++) {
      const n = ns[i % 3] as SimNode;
      const hs = n.holders();
      n.del(hs[Math.floor(s.rng() * hs.length)] as string);
      await n.add();
    }
    await sleep(30);
    expect(s.server.count() - before).toBe(0);
    expect(before).toBeLessThanOrEqual(6);
    expectClean(s);
  });
});

describe('static addresses', () => {
  async function twoNodesWithBlocks(): Promise<{ s: SimCluster; a: SimNode; b: SimNode; c: SimNode; aBlock: string }> {
    const s = cluster({ seed: 11, cidrs: ['10.0.0.0/24'], ipam: { blockPrefix: { 4: 26 }, lowWater: 1 } });
    const [a, b, c] = await nodes(s, 3) as [SimNode, SimNode, SimNode];
    await a.add();
    await b.add();
    const aBlock = a.claims.blocks()[0]?.cidr as string;
    return { s, a, b, c, aBlock };
  }

  function freeIn(n: SimNode, cidr: string, skip: number): string {
    const c = parseCidr(cidr);
    let k = 0;
    for (let v = c.network + 2n; ; v++) {
      const ip = [24n, 16n, 8n, 0n].map((sh) => String((v >> sh) & 0xffn)).join('.');
      if (n.pool.ownerOf(ip) === undefined && k++ === skip) return ip;
    }
  }

  it('a free address in another node\'s block is bound by that node and never handed out by it', async () => {
    const { s, a, b, aBlock } = await twoNodesWithBlocks();
    const ip = freeIn(a, aBlock, 3);
    const holder = await b.addStatic(ip, undefined, 'ns/web');
    const name = addressClaimName(SUBNET, ip);
    const obj = s.server.objectsNow().find((o) => o.metadata.name === name);
    expect(obj).toMatchObject({ spec: { kind: 'address', node: b.name, pod: 'ns/web', cidr: `${ip}/32` }, status: { phase: 'Bound' } });
    expect(obj?.metadata.ownerReferences?.[0]).toMatchObject({ kind: 'Node', name: b.name, uid: b.uid });
    expect(a.pool.ownerOf(ip)).toBe(claimHolder(name));
    // a fills its block (and more): never that address.
    const got = (await Promise.all(Array.from({ length: 70 }, () => a.add()))).flat();
    expect(got).not.toContain(ip);
    expectClean(s);
    // Released by its pod: the claim goes, and a may use the address again.
    b.del(holder);
    await eventually(() => !s.server.objectsNow().some((o) => o.metadata.name === name), 2000, 'claim deleted');
    await eventually(() => a.pool.ownerOf(ip) === undefined, 2000, 'hold released');
  });

  it('a second pod of the same node asking for a bound address fails and leaves the claim alone', async () => {
    const { s, a, b, aBlock } = await twoNodesWithBlocks();
    const ip = freeIn(a, aBlock, 6);
    await b.addStatic(ip);
    const name = addressClaimName(SUBNET, ip);
    await expect(b.addStatic(ip)).rejects.toThrow(/already in use by pod/);
    await sleep(40);
    expect(s.server.objectsNow().find((o) => o.metadata.name === name)?.status?.phase).toBe('Bound');
    expect(a.pool.ownerOf(ip)).toBe(claimHolder(name));
    expectClean(s);
  });

  it('a claim waits for every local holder (a conntrack flush) before it is deleted', async () => {
    const { s, a, b, aBlock } = await twoNodesWithBlocks();
    const ip = freeIn(a, aBlock, 4);
    const holder = await b.addStatic(ip);
    const name = addressClaimName(SUBNET, ip);
    b.del(holder);
    b.pool.reserve(ip, 'ovnode:conntrack-flush'); // what the flusher does in the same turn
    await sleep(40);
    expect(s.server.objectsNow().some((o) => o.metadata.name === name)).toBe(true);
    b.pool.releaseIp(ip, 'ovnode:conntrack-flush');
    await eventually(() => !s.server.objectsNow().some((o) => o.metadata.name === name), 2000, 'claim deleted');
  });

  it('works the same for IPv6 addresses of a dual-stack subnet', async () => {
    const s = cluster({ seed: 12, cidrs: ['10.0.0.0/24', 'fd00:10::/120'], ipam: { blockPrefix: { 4: 26, 6: 122 }, lowWater: 1 } });
    const [a, b] = await nodes(s, 2) as [SimNode, SimNode];
    const [, v6] = await a.add() as [string, string];
    const block6 = a.claims.blocks().find((x) => x.cidr.includes(':'))?.cidr as string;
    expect(inCidr(v6, block6)).toBe(true);
    const want = `${block6.split('/')[0]}`.replace(/::(\w*)$/, (_, x: string) => `::${(parseInt(x || '0', 16) + 30).toString(16)}`);
    await b.addStatic(want.toUpperCase().replace('::', ':0:0:0:0:0:')); // any spelling: the claim is canonical
    expect(s.server.objectsNow().find((o) => o.spec.kind === 'address')).toMatchObject({
      metadata: { name: addressClaimName(SUBNET, want) }, spec: { cidr: `${want}/128` }, status: { phase: 'Bound' },
    });
    await expect(b.addStatic(v6)).rejects.toThrow(/refused by node node-0/);
    expectClean(s);
  });

  it('an address another node\'s pod holds is refused, with the reason, and the claim is cleaned up', async () => {
    const { s, a, b } = await twoNodesWithBlocks();
    const taken = [...a.nb.values()][0]?.[0] as string;
    const err = await b.addStatic(taken).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpamError);
    expect(String((err as Error).message)).toMatch(new RegExp(`requested IP ${taken.replace(/\./g, '\\.')} was refused by node ${a.name}: .*in use on node ${a.name}`));
    expect(b.pool.ownerOf(taken)).toBeUndefined();
    await eventually(() => s.server.objectsNow().every((o) => o.spec.kind === 'block'), 2000, 'refused claim deleted');
    expectClean(s);
  });

  it('an address bound to one node is refused to another', async () => {
    const { s, a, b, c, aBlock } = await twoNodesWithBlocks();
    const ip = freeIn(a, aBlock, 5);
    await b.addStatic(ip);
    const err = await c.addStatic(ip).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpamError);
    expect((err as Error).message).toMatch(new RegExp(`already claimed by node ${b.name}`));
    expectClean(s);
  });

  it('a static address in this node\'s own block is a local decision (no API call)', async () => {
    const { s, a, aBlock } = await twoNodesWithBlocks();
    const ip = freeIn(a, aBlock, 7);
    const before = s.server.count();
    await a.addStatic(ip);
    await expect(a.addStatic(ip)).rejects.toThrow(/already in use/);
    expect(s.server.count()).toBe(before);
  });

  it('a static address in an unowned block makes this node claim that block', async () => {
    const { s, c } = await twoNodesWithBlocks();
    const owned = new Set(s.server.objectsNow().map((o) => o.spec.cidr));
    const free = ['10.0.0.0/26', '10.0.0.64/26', '10.0.0.128/26', '10.0.0.192/26'].find((b) => !owned.has(b)) as string;
    const ip = free.replace(/\.(\d+)\/26$/, (_, x: string) => `.${Number(x) + 10}`);
    await c.addStatic(ip);
    expect(c.claims.blocks()).toEqual([{ cidr: free, state: 'usable' }]);
    expect(s.server.objectsNow().some((o) => o.spec.kind === 'address')).toBe(false);
    expectClean(s);
  });

  for (const seed of [21, 22, 23, 24, 25, 26]) {
    it(`the owner's dynamic ADDs racing foreign static claims for the same addresses never share one (seed ${seed})`, async () => {
      const s = cluster({ seed, cidrs: ['10.0.0.0/24'], ipam: { blockPrefix: { 4: 26 }, lowWater: 1 } });
      const [a, b, c] = await nodes(s, 3) as [SimNode, SimNode, SimNode];
      await Promise.all(Array.from({ length: 40 }, () => a.add()));
      const block = a.claims.blocks().find((x) => x.state === 'usable')?.cidr as string;
      const free: string[] = [];
      const net = parseCidr(block).network;
      for (let v = net; v < net + 64n; v++) {
        const ip = `10.0.0.${Number(v & 0xffn)}`;
        if (a.pool.ownerOf(ip) === undefined && a.pool.capacity(4, [[v, v]]).total === 1n) free.push(ip);
      }
      // Everything at once: a takes the rest of its block dynamically (a third at once, the rest
      // spread out: its ADDs are local and immediate) while b and c ask for every free address of
      // it, some of them both.
      const third = Math.floor(free.length / 3);
      const work = [
        ...Array.from({ length: third }, () => a.add()),
        ...Array.from({ length: free.length - third }, async () => { await sleep(s.rng() * 60); await a.add(); }),
        ...free.map(async (ip) => { await sleep(s.rng() * 10); await b.addStatic(ip); }),
        ...free.filter(() => s.rng() < 0.4).map(async (ip) => { await sleep(s.rng() * 10); await c.addStatic(ip); }),
      ];
      const failures = await settle(work);
      for (const f of failures) {
        expect(f).toBeInstanceOf(IpamError);
        expect((f as Error).message).toMatch(/refused by node|already claimed by node|in use/);
      }
      expectClean(s);
      // c asked for some of b's addresses: somebody lost.
      expect(failures.length).toBeGreaterThan(0);
      await sleep(50);
      expectClean(s);
      // Every contested address went to exactly one of them (which one depends on timing).
      for (const ip of free) {
        const owner = a.pool.ownerOf(ip) as string;
        const bound = s.server.objectsNow().find((o) => o.metadata.name === addressClaimName(SUBNET, ip));
        if (owner === claimHolder(addressClaimName(SUBNET, ip))) {
          expect(bound?.status?.phase).toBe('Bound');
          expect(s.live.get(ip)?.startsWith(bound?.spec.node as string)).toBe(true);
        } else {
          expect(owner).toMatch(/^pod\d+\.node-0\|/);
          expect(bound).toBeUndefined();
        }
      }
    });
  }
});

describe('restart', () => {
  it('a restarted node rebuilds from its claims and NB record, keeps foreign bindings, calls nothing', async () => {
    const s = cluster({ seed: 31, cidrs: ['10.0.0.0/22'], ipam: { blockPrefix: { 4: 26 }, lowWater: 4 } });
    const [a, b, c] = await nodes(s, 3) as [SimNode, SimNode, SimNode];
    await Promise.all([a, b, c].flatMap((n) => Array.from({ length: 20 }, () => n.add())));
    const aBlock = a.claims.blocks()[0]?.cidr as string;
    const base = parseCidr(aBlock).network;
    let bound = '';
    for (let v = base + 40n; ; v++) { bound = `10.0.${Number((v >> 8n) & 0xffn)}.${Number(v & 0xffn)}`; if (a.pool.ownerOf(bound) === undefined) break; }
    await b.addStatic(bound);
    await sleep(20);
    const blocksBefore = a.claims.blocks();
    a.shutdown();
    const callsBefore = s.server.count();
    await a.boot();
    expect(a.claims.blocks()).toEqual(blocksBefore);
    expect(a.pool.ownerOf(bound)).toBe(claimHolder(addressClaimName(SUBNET, bound)));
    expect(s.server.count()).toBe(callsBefore);
    // All nodes go on, including a filling its blocks: no duplicate, the bound address untouched.
    const more = await settle([a, b, c].flatMap((n) => Array.from({ length: 40 }, async () => { await sleep(s.rng() * 10); await n.add(); })));
    expect(more).toEqual([]);
    expect([...a.nb.values()].flat()).not.toContain(bound);
    expectClean(s);
  });

  it('restarts in the middle of concurrent ADDs on the other nodes leave no duplicate', async () => {
    for (const seed of [41, 42, 43]) {
      const s = cluster({ seed, cidrs: ['10.0.0.0/23'], ipam: { blockPrefix: { 4: 28 }, lowWater: 6 } });
      const ns = await nodes(s, 4);
      const work = ns.flatMap((n) => Array.from({ length: 30 }, async () => { await sleep(s.rng() * 40); await n.add(); }));
      const restarts = (async () => {
        for (let i = 0; i < 3; i++) {
          await sleep(10 + s.rng() * 10);
          const n = ns[Math.floor(s.rng() * 4)] as SimNode;
          if (!n.up) continue;
          n.shutdown();
          await sleep(s.rng() * 5);
          await n.boot();
        }
      })();
      const failures = await settle([...work, restarts]);
      // An ADD on a node that went down under it ends with "try again" (the runtime retries).
      for (const f of failures) expect(f).toBeInstanceOf(TryAgainLaterError);
      expectClean(s);
      sim?.stop();
    }
  });

  it('an owner that was down decides a pending claim once it is back', async () => {
    const s = cluster({ seed: 51, cidrs: ['10.0.0.0/24'], ipam: { blockPrefix: { 4: 26 }, lowWater: 1 } });
    const [a, b] = await nodes(s, 2) as [SimNode, SimNode];
    await a.add();
    const block = a.claims.blocks()[0]?.cidr as string;
    const ip = block.replace(/\.(\d+)\/26$/, (_, x: string) => `.${Number(x) + 30}`);
    a.shutdown();
    const pending = b.addStatic(ip);
    await sleep(50);
    expect(s.server.objectsNow().find((o) => o.spec.kind === 'address')?.status).toBeUndefined();
    await a.boot();
    await pending;
    expect(a.pool.ownerOf(ip)).toBe(claimHolder(addressClaimName(SUBNET, ip)));
    expectClean(s);
  });
});

describe('node loss', () => {
  it('a deleted node\'s claims go with it and its blocks become claimable; bindings in them survive', async () => {
    // 4 blocks of /27: a takes two, b two; the subnet is then full for c.
    const s = cluster({ seed: 61, cidrs: ['10.0.0.0/25'], ipam: { blockPrefix: { 4: 27 }, lowWater: 1 } });
    const [a, b, c] = await nodes(s, 3) as [SimNode, SimNode, SimNode];
    for (let i = 0; i < 50; i++) await a.add();
    for (let i = 0; i < 40; i++) await b.add();
    const full = await c.add().catch((e: unknown) => e);
    expect(full).toBeInstanceOf(IpamError);
    // b's pod gets a static address in one of a's blocks.
    const aBlocks = a.claims.blocks().map((x) => x.cidr);
    let ip = '';
    for (const cidr of aBlocks) {
      const net = parseCidr(cidr).network;
      for (let v = net; v < net + 32n && !ip; v++) {
        const cand = `10.0.0.${Number(v & 0xffn)}`;
        if (a.pool.ownerOf(cand) === undefined && a.pool.capacity(4, [[v, v]]).total === 1n) ip = cand;
      }
    }
    expect(ip).not.toBe('');
    await b.addStatic(ip);
    // a's node goes away: its pods with it, its claims by the garbage collector.
    a.shutdown();
    for (const h of a.holders()) s.forget(a.name, h, a.nb.get(h) ?? []);
    a.nb.clear();
    s.nodes.delete(a.name);
    const gone = s.server.deleteNode(a.uid);
    expect(gone.length).toBe(aBlocks.length);
    await eventually(() => !c.cache.list().some((o) => o.spec.node === a.name), 2000, 'deletions seen by c');
    // c can claim a's former blocks now; never b's bound address.
    const got = (await Promise.all(Array.from({ length: 55 }, () => c.add()))).flat();
    expect(got).not.toContain(ip);
    expect(c.claims.blocks().map((x) => x.cidr).sort()).toEqual([...aBlocks].sort());
    expect(c.pool.ownerOf(ip)).toBe(claimHolder(addressClaimName(SUBNET, ip)));
    expectClean(s);
  });

  it('a node uses a block it claimed only once its cache caught up with its own create', async () => {
    // One block; c's watch is stuck from the start, so c knows nothing of what happened to it.
    const s = cluster({ seed: 63, cidrs: ['10.0.0.0/26'], ipam: { blockPrefix: { 4: 26 }, lowWater: 1 } });
    const [a, b, c] = await nodes(s, 3) as [SimNode, SimNode, SimNode];
    c.cache.stall();
    await a.add();
    const first = '10.0.0.3'; // a took .2; b is bound the next one, the one c would hand out first
    await b.addStatic(first);
    a.shutdown();
    for (const h of a.holders()) s.forget(a.name, h, a.nb.get(h) ?? []);
    s.nodes.delete(a.name);
    s.server.deleteNode(a.uid);
    // c's create succeeds at once (the server has no claim on the block any more), but the
    // binding of `first` reaches c only with its own create's event.
    const adding = c.add();
    await sleep(40);
    c.cache.resume();
    const [ip] = await adding;
    expect(ip).not.toBe(first);
    expect(c.pool.ownerOf(first)).toBe(claimHolder(addressClaimName(SUBNET, first)));
    expectClean(s);
  });

  it('a pending claim whose block owner is lost is withdrawn and the block claimed instead', async () => {
    const s = cluster({ seed: 62, cidrs: ['10.0.0.0/24'], ipam: { blockPrefix: { 4: 26 }, lowWater: 1 } });
    const [a, b] = await nodes(s, 2) as [SimNode, SimNode];
    await a.add();
    const block = a.claims.blocks()[0]?.cidr as string;
    const ip = block.replace(/\.(\d+)\/26$/, (_, x: string) => `.${Number(x) + 33}`);
    a.shutdown();
    const pending = b.addStatic(ip);
    await sleep(40);
    s.nodes.delete(a.name);
    s.server.deleteNode(a.uid);
    await pending;
    expect(b.claims.blocks()).toContainEqual({ cidr: block, state: 'usable' });
    await eventually(() => !s.server.objectsNow().some((o) => o.spec.kind === 'address'), 2000, 'pending claim withdrawn');
    expectClean(s);
  });
});

describe('a subnet too small for its nodes', () => {
  it('fails the ADD with an IpamError that says why', async () => {
    const s = cluster({ seed: 71, subnet: { name: 'tiny', cidrs: ['10.9.0.0/26'] } });
    const [a, b] = await nodes(s, 2) as [SimNode, SimNode];
    await a.add();
    const err = await b.add().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpamError);
    expect((err as IpamError).cniCode).toBe(101);
    expect((err as Error).message).toBe(
      'subnet tiny is full for node node-1: no free IPv4 address in this node\'s blocks and no /26 block of 10.9.0.0/26 left to claim ' +
      '(1 block, held by node-0); a larger subnet or a smaller block size is needed');
    // Static addresses still work through the owner.
    await b.addStatic('10.9.0.40');
    expectClean(s);
  });

  it('fills the whole subnet across nodes, then fails ADDs of nodes whose blocks are full', async () => {
    const s = cluster({ seed: 72, cidrs: ['10.0.0.0/26'], ipam: { blockPrefix: { 4: 28 }, lowWater: 2 } });
    const ns = await nodes(s, 3);
    const failures = await settle(ns.flatMap((n) => Array.from({ length: 30 }, async () => { await sleep(s.rng() * 10); await n.add(); })));
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) expect((f as Error).message).toMatch(/is full for node/);
    // Every block is claimed, and a node that failed ADDs has no free address left in its blocks
    // (no borrowing from other nodes' blocks).
    const blocks = s.server.objectsNow().filter((o) => o.spec.kind === 'block');
    expect(blocks.map((b) => b.spec.cidr).sort()).toEqual(['10.0.0.0/28', '10.0.0.16/28', '10.0.0.32/28', '10.0.0.48/28']);
    for (const n of ns) {
      const mine = blocks.filter((b) => b.spec.node === n.name).map((b): [bigint, bigint] => {
        const c = parseCidr(b.spec.cidr);
        return [c.network, c.network + 15n];
      });
      if (n.nb.size < 30) expect(n.pool.capacity(4, mine).free).toBe(0n);
    }
    expect(s.live.size).toBe(Math.min(90, [...ns].reduce((sum, n) => sum + n.nb.size, 0)));
    expectClean(s);
  });
});

describe('block release', () => {
  it('gives back blocks empty for a while, keeping the low-water mark, and only empty ones', async () => {
    let now = 1_000_000;
    const s = cluster({ seed: 81, cidrs: ['10.0.0.0/22'], ipam: { blockPrefix: { 4: 27 }, lowWater: 8, releaseAfterMs: 60_000, now: () => now } });
    const [a, b] = await nodes(s, 2) as [SimNode, SimNode];
    await Promise.all(Array.from({ length: 100 }, () => a.add()));
    await sleep(30);
    const owned = a.claims.blocks().length;
    expect(owned).toBeGreaterThanOrEqual(4);
    // b binds an address in one of a's blocks: that block is never released while it is bound.
    const kept = a.claims.blocks()[0]?.cidr as string;
    const holders = a.holders();
    for (const h of holders) a.del(h);
    const bip = kept.replace(/\.(\d+)\/27$/, (_, x: string) => `.${Number(x) + 20}`);
    await b.addStatic(bip);
    await a.cluster.sweep();
    now += 30_000;
    await a.cluster.sweep();
    expect(a.claims.blocks().length).toBe(owned); // not empty for long enough yet
    now += 31_000;
    await a.cluster.sweep();
    const left = a.claims.blocks().map((x) => x.cidr);
    expect(left).toContain(kept);
    expect(left.length).toBeLessThan(owned);
    const apiBlocks = s.server.objectsNow().filter((o) => o.spec.kind === 'block' && o.spec.node === a.name).map((o) => o.spec.cidr);
    expect(apiBlocks.sort()).toEqual([...left].sort());
    // A released block is claimable by others; a keeps serving from what it kept.
    await Promise.all(Array.from({ length: 20 }, () => b.add()));
    await a.add();
    expectClean(s);
  });
});

describe('a deleted subnet', () => {
  it('its claims of this node go at the sweep once the subnet is no longer in use here; other nodes\' and other subnets\' stay', async () => {
    let inUse = true;
    const s = cluster({ seed: 91, cidrs: ['10.0.0.0/22'], ipam: { blockPrefix: { 4: 27 }, subnetInUse: (name) => name === 'join' || inUse } });
    const [a, b] = await nodes(s, 2) as [SimNode, SimNode];
    await Promise.all([...Array.from({ length: 40 }, () => a.add()), ...Array.from({ length: 5 }, () => b.add())]);
    // a asks b for an address in one of b's blocks: an address claim of a's.
    const bBlock = b.claims.blocks()[0]?.cidr as string;
    await a.addStatic(bBlock.replace(/\.(\d+)\/27$/, (_, x: string) => `.${Number(x) + 25}`));
    // A claim of a's in a subnet it never served (the join switch's) must survive.
    const join = await new KubeClaimStore(s.server, a.cache).create({ subnet: 'join', cidr: '100.64.0.7/32', node: a.name, kind: 'address' }, { name: a.name, uid: a.uid });
    expect(join.created).toBe(true);
    await sleep(30);
    const ofA = (): string[] => s.server.objectsNow().filter((o) => o.spec.node === a.name).map((o) => `${o.spec.subnet} ${o.spec.kind} ${o.spec.cidr}`).sort();
    const before = ofA();
    expect(before.filter((c) => c.startsWith(`${SUBNET} block`)).length).toBeGreaterThanOrEqual(2);
    expect(before.filter((c) => c.startsWith(`${SUBNET} address`)).length).toBe(1);
    // The Subnet object goes: a stops serving it, but its switch still has ports (in use).
    a.cluster.detach(SUBNET);
    await a.cluster.sweep();
    expect(ofA()).toEqual(before);
    // The last port went, and with it the switch: the sweep deletes a's claims in that subnet.
    inUse = false;
    await a.cluster.sweep();
    await sleep(30);
    expect(ofA()).toEqual(['join address 100.64.0.7/32']);
    // b still serves the subnet: its blocks are untouched.
    expect(s.server.objectsNow().filter((o) => o.spec.node === b.name && o.spec.kind === 'block').length).toBe(b.claims.blocks().length);
    // Nothing left to delete: a later sweep calls nothing.
    const calls = s.server.count();
    await a.cluster.sweep();
    expect(s.server.count()).toBe(calls);
  });
});

describe('API failures and a slow watch', () => {
  it('a block create whose reply was lost fails that ADD with try-again; the block is adopted from the cache', async () => {
    const s = cluster({ seed: 91, cidrs: ['10.0.0.0/24'], ipam: { blockPrefix: { 4: 26 } } });
    const [a] = await nodes(s, 1) as [SimNode];
    s.server.failNext({ method: 'POST', when: 'after' });
    const err = await a.add().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TryAgainLaterError);
    await eventually(() => a.claims.blocks().length === 1, 2000, 'block adopted');
    const posts = s.server.count('POST');
    await a.add();
    expect(s.server.count('POST')).toBe(posts);
    expectClean(s);
  });

  it('an ADD waits for a stalled watch only up to its bound, and claims no second block meanwhile', async () => {
    const s = cluster({ seed: 92, cidrs: ['10.0.0.0/24'], ipam: { blockPrefix: { 4: 26 }, waitMs: 150 } });
    const [a] = await nodes(s, 1) as [SimNode];
    a.cache.stall();
    const t0 = Date.now();
    const err = await a.add().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TryAgainLaterError);
    expect(Date.now() - t0).toBeLessThan(1000);
    const err2 = await a.add().catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(TryAgainLaterError);
    expect(s.server.count('POST')).toBe(1);
    a.cache.resume();
    await a.add();
    expectClean(s);
  });

  it('an ADD ends when its request is cancelled', async () => {
    const s = cluster({ seed: 93, cidrs: ['10.0.0.0/24'], ipam: { blockPrefix: { 4: 26 }, waitMs: 5000 } });
    const [a] = await nodes(s, 1) as [SimNode];
    a.cache.stall();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    const t0 = Date.now();
    await expect(a.add(undefined, ac.signal)).rejects.toThrow(/request ended while waiting/);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
