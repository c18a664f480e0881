// The parts of cluster IPAM below the allocator: claim names, block geometry, the pool's
// allocation constraint and observer, and KubeClaimStore's requests against the FAKE apiserver.
import { describe, expect, it } from 'vitest';
import { parseCidr, parseIp } from '../../../../../daemon/ipam/cidr';
import { BlockGeometry } from '../../../../../daemon/ipam/claims/blocks';
import { addressClaimName, blockClaimName, claimName, isDnsSubdomain, MAX_NAME } from '../../../../../daemon/ipam/claims/names';
import { ClaimApiError, KubeClaimStore, newClaim } from '../../../../../daemon/ipam/claims/store';
import { CLAIMS_PATH } from '../../../../../daemon/ipam/claims/types';
import { SubnetPool, localAllocator } from '../../../../../daemon/ipam/pool';
import { IpamError } from '../../../../../common/errors';
import type { KubeApi } from '../../../../../daemon/sources/kube/api';
import { FakeClaimsApiServer } from './fake-claims-api';

describe('claim names', () => {
  const cases: Array<{ subnet: string; kind: 'block' | 'address'; cidr: string; want: string }> = [
    { subnet: 'ovn-default', kind: 'block', cidr: '10.16.0.64/26', want: 'ovn-default.b.10-16-0-64-26' },
    { subnet: 'ovn-default', kind: 'address', cidr: '10.16.0.5/32', want: 'ovn-default.a.10-16-0-5' },
    { subnet: 'ovn-default', kind: 'address', cidr: '10.16.0.5', want: 'ovn-default.a.10-16-0-5' },
    { subnet: 'ovn-default', kind: 'block', cidr: 'fd00:10:16::40/122', want: 'ovn-default.b.fd00-10-16-0-0-0-0-40-122' },
    { subnet: 'ovn-default', kind: 'address', cidr: '::1/128', want: 'ovn-default.a.0-0-0-0-0-0-0-1' },
    { subnet: 'net1.team-a', kind: 'address', cidr: 'fd00::/128', want: 'net1.team-a.a.fd00-0-0-0-0-0-0-0' },
  ];
  for (const c of cases) {
    it(`${c.kind} ${c.cidr} of ${c.subnet} is ${c.want}`, () => {
      const name = claimName(c.subnet, c.kind, c.cidr);
      expect(name).toBe(c.want);
      expect(isDnsSubdomain(name)).toBe(true);
    });
  }

  it('never gives two different claims one name (kinds, families, subnets with dots)', () => {
    const names = [
      blockClaimName('s', parseCidr('10.0.0.0/26')), blockClaimName('s', parseCidr('10.0.0.0/27')),
      addressClaimName('s', '10.0.0.0'), addressClaimName('s.b', '10.0.0.0'), blockClaimName('s.a', parseCidr('10.0.0.0/26')),
      addressClaimName('s', '::a00:0'), blockClaimName('s', parseCidr('::a00:0/122')),
    ];
    expect(new Set(names).size).toBe(names.length);
  });

  const hashed = [
    { desc: 'uppercase and underscores', subnet: 'My_Subnet' },
    { desc: 'a name starting with a dot', subnet: '.hidden' },
    { desc: 'a name of 240 characters', subnet: 'a'.repeat(240) },
    { desc: 'a name of only symbols', subnet: '___' },
  ];
  for (const c of hashed) {
    it(`hashes ${c.desc} deterministically into a valid name`, () => {
      const a = addressClaimName(c.subnet, 'fd00:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
      expect(isDnsSubdomain(a)).toBe(true);
      expect(a.length).toBeLessThanOrEqual(MAX_NAME);
      expect(a).toMatch(/-[0-9a-f]{20}\.a\.fd00-ffff-ffff-ffff-ffff-ffff-ffff-ffff$/);
      expect(addressClaimName(c.subnet, 'fd00:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toBe(a);
    });
  }

  it('keeps hashed names of different subnets apart', () => {
    expect(addressClaimName('A_b', '10.0.0.1')).not.toBe(addressClaimName('a_B', '10.0.0.1'));
  });
});

describe('block geometry', () => {
  it('tiles a subnet into aligned blocks', () => {
    const g = new BlockGeometry(parseCidr('10.16.0.0/24'), 26);
    expect(g.count).toBe(4n);
    expect(g.block(1n).cidr.text).toBe('10.16.0.64/26');
    expect(g.block(3n).hi).toBe(parseIp('10.16.0.255').value);
    expect(g.indexOf(parseIp('10.16.0.130').value)).toBe(2n);
    expect(g.isBlock([parseIp('10.16.0.64').value, parseIp('10.16.0.127').value])).toBe(true);
    expect(g.isBlock([parseIp('10.16.0.64').value, parseIp('10.16.0.95').value])).toBe(false);
  });

  it('makes a subnet smaller than a block one block', () => {
    const g = new BlockGeometry(parseCidr('10.16.0.0/28'), 26);
    expect(g.count).toBe(1n);
    expect(g.block(0n).cidr.text).toBe('10.16.0.0/28');
  });

  it('cuts IPv6 into /122 blocks and starts each node somewhere in range', () => {
    const g = new BlockGeometry(parseCidr('fd00:10:16::/64'), 122);
    expect(g.count).toBe(1n << 58n);
    const starts = ['node-a', 'node-b', 'node-c'].map((n) => g.startIndex(n));
    for (const s of starts) expect(s >= 0n && s < g.count).toBe(true);
    expect(new Set(starts).size).toBe(3);
    expect(g.startIndex('node-a')).toBe(starts[0]);
  });
});

describe('SubnetPool in cluster mode', () => {
  const pool = (): SubnetPool => new SubnetPool({ name: 's', cidrs: ['10.0.0.0/24'], excludeIps: ['10.0.0.70..10.0.0.72'] });
  const v = (ip: string): bigint => parseIp(ip).value;

  it('hands out dynamic addresses only inside the allowed ranges, statics anywhere', () => {
    const p = pool();
    p.setAllocatable(4, [[v('10.0.0.64'), v('10.0.0.79')]]);
    const got = Array.from({ length: 13 }, (_, i) => p.allocate(`o${i}`, 4));
    expect(got[0]).toBe('10.0.0.64');
    expect(got).not.toContain('10.0.0.70');
    expect(got[got.length - 1]).toBe('10.0.0.79');
    expect(p.tryAllocate('x', 4)).toBeUndefined();
    expect(() => p.allocate('x', 4)).toThrow(/no free IPv4 address in this node's blocks/);
    p.reserve('10.0.0.5', 'static');
    expect(p.ownerOf('10.0.0.5')).toBe('static');
  });

  it('allows nothing with an empty constraint and everything again without one', () => {
    const p = pool();
    p.setAllocatable(4, []);
    expect(() => p.allocate('x', 4)).toThrow(IpamError);
    p.setAllocatable(4, undefined);
    expect(p.allocate('x', 4)).toBe('10.0.0.2');
  });

  it('keeps the constraint across a reshape', () => {
    const p = pool();
    p.setAllocatable(4, [[v('10.0.0.128'), v('10.0.0.191')]]);
    p.reshape({ name: 's', cidrs: ['10.0.0.0/24'] });
    expect(p.allocate('x', 4)).toBe('10.0.0.128');
  });

  it('counts capacity without network, broadcast, gateway, exclusions; free without holders', () => {
    const p = pool();
    expect(p.capacity(4, [[v('10.0.0.0'), v('10.0.0.63')]])).toEqual({ total: 62n, free: 62n });
    expect(p.capacity(4, [[v('10.0.0.64'), v('10.0.0.127')]]).total).toBe(61n);
    p.reserve('10.0.0.65', 'a');
    p.reserve('10.0.0.71', 'pinned'); // an operator may pin one inside an excluded range: not counted twice
    expect(p.capacity(4, [[v('10.0.0.64'), v('10.0.0.127')], [v('10.0.0.192'), v('10.0.0.255')]])).toEqual({ total: 61n + 63n, free: 60n + 63n });
  });

  it('tells its observer of every address that stops being held', () => {
    const p = pool();
    const freed: string[] = [];
    p.setObserver({ freed: (ip, holder) => freed.push(`${ip} ${holder}`) });
    p.reserve('10.0.0.10', 'a');
    p.reserve('10.0.0.11', 'a');
    p.reserve('10.0.0.12', 'b');
    p.release('a');
    p.releaseIp('10.0.0.12', 'b');
    p.releaseIp('10.0.0.12', 'b');
    p.reserve('10.0.0.13', 'c');
    p.reshape({ name: 's', cidrs: ['10.0.1.0/24'] });
    expect(freed).toEqual(['10.0.0.10 a', '10.0.0.11 a', '10.0.0.12 b', '10.0.0.13 c']);
  });

  it('localAllocator is the pool itself', async () => {
    const p = pool();
    const a = localAllocator(p);
    expect(await a.allocate('x', 4)).toBe('10.0.0.2');
    await a.reserve('10.0.0.9', 'y');
    await expect(a.reserve('10.0.0.9', 'z')).rejects.toThrow(/already in use by y/);
  });
});

describe('KubeClaimStore over the fake apiserver', () => {
  const node = { name: 'n1', uid: 'u-n1' };
  const spec = { subnet: 'ovn-default', cidr: '10.0.0.64/26', node: 'n1', kind: 'block' as const };

  it('creates with the derived name and a Node owner reference, 409 is "exists"', async () => {
    const server = new FakeClaimsApiServer();
    const store = new KubeClaimStore(server, server.watch());
    const r = await store.create(spec, node);
    expect(r.created).toBe(true);
    const obj = server.objectsNow()[0];
    expect(obj?.metadata.name).toBe('ovn-default.b.10-0-0-64-26');
    expect(obj?.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'u-n1' }]);
    expect(server.requests[0]).toMatchObject({ method: 'POST', path: CLAIMS_PATH });
    expect(await store.create({ ...spec, node: 'n2' }, { name: 'n2', uid: 'u-n2' })).toEqual({ created: false });
  });

  it('deletes only the object with the given uid', async () => {
    const server = new FakeClaimsApiServer();
    const store = new KubeClaimStore(server, server.watch());
    const r = await store.create(spec, node);
    if (!r.created) throw new Error('not created');
    expect(await store.delete(r.claim.metadata.name, 'some-other-uid')).toBe('conflict');
    expect(await store.delete(r.claim.metadata.name, r.claim.metadata.uid as string)).toBe('deleted');
    expect(await store.delete(r.claim.metadata.name, r.claim.metadata.uid as string)).toBe('gone');
    expect(server.requests[1]?.body).toEqual({ apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: 'some-other-uid' } });
  });

  it('patches the status subresource with uid and resourceVersion preconditions', async () => {
    const server = new FakeClaimsApiServer();
    const store = new KubeClaimStore(server, server.watch());
    const r = await store.create({ ...spec, cidr: '10.0.0.70/32', kind: 'address', pod: 'ns/p' }, node);
    if (!r.created) throw new Error('not created');
    const { name, uid, resourceVersion } = r.claim.metadata as { name: string; uid: string; resourceVersion: string };
    expect(await store.patchStatus(name, { uid: 'x' }, { phase: 'Bound' })).toBe('conflict');
    expect(await store.patchStatus(name, { uid, resourceVersion }, { phase: 'Refused', reason: 'held' })).toBe('patched');
    expect(await store.patchStatus(name, { uid, resourceVersion }, { phase: 'Bound' })).toBe('conflict');
    expect(server.objectsNow()[0]?.status).toEqual({ phase: 'Refused', reason: 'held' });
    expect(server.requests[2]).toMatchObject({ method: 'PATCH', path: `${CLAIMS_PATH}/${name}/status`, contentType: 'application/merge-patch+json' });
    expect(await store.patchStatus('nope', { uid }, { phase: 'Bound' })).toBe('gone');
  });

  it('turns transport failures and unexpected answers into ClaimApiError (try again later)', async () => {
    const server = new FakeClaimsApiServer();
    const store = new KubeClaimStore(server, server.watch());
    server.failNext({ when: 'before' });
    const e1 = await store.create(spec, node).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ClaimApiError);
    expect((e1 as ClaimApiError).cniCode).toBe(11);
    const refusing: KubeApi = { request: async () => ({ status: 403, body: { kind: 'Status', message: 'ipclaims is forbidden' } }) as never };
    const e2 = await new KubeClaimStore(refusing, server.watch()).create(spec, node).catch((e: unknown) => e);
    expect(String(e2)).toMatch(/HTTP 403.*forbidden/);
  });

  it('waitFor resolves on the cache change that makes the probe true, or undefined at the timeout', async () => {
    const server = new FakeClaimsApiServer({ watchJitterMs: 5 });
    const cache = server.watch();
    const store = new KubeClaimStore(server, cache);
    await store.synced();
    const name = 'ovn-default.b.10-0-0-64-26';
    const seen = store.waitFor(() => store.get(name)?.spec.node, { timeoutMs: 2000 });
    await store.create(spec, node);
    expect(await seen).toBe('n1');
    expect(await store.waitFor(() => store.get('absent'), { timeoutMs: 20 })).toBeUndefined();
  });

  it('builds claims cluster-scoped objects of the right kind', () => {
    expect(newClaim(spec, node)).toMatchObject({ apiVersion: 'ovnode.io/v1', kind: 'IPClaim', spec });
  });
});
