// SubnetRegistry in cluster mode: which pools go through claims, which allocator the ADD path
// gets, and pools created or dropped by sync(). The NB is a FAKE with no rows (nothing to rebuild).
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterIpam } from '../../../../../daemon/ipam/claims/cluster';
import { SubnetClaims } from '../../../../../daemon/ipam/claims/allocator';
import { KubeClaimStore } from '../../../../../daemon/ipam/claims/store';
import { SubnetRegistry } from '../../../../../daemon/ipam/registry';
import type { OvsdbClient } from '../../../../../daemon/ovsdb/client';
import { FakeClaimsApiServer } from './fake-claims-api';

const fakeEmptyNb = { rows: () => new Map() } as unknown as OvsdbClient;
const log = pino({ enabled: false });
let cluster: ClusterIpam | undefined;
afterEach(() => { cluster?.stop(); cluster = undefined; });

function setup(): { reg: SubnetRegistry; server: FakeClaimsApiServer; cluster: ClusterIpam } {
  const server = new FakeClaimsApiServer();
  cluster = new ClusterIpam({ node: { name: 'n1', uid: 'u1' }, store: new KubeClaimStore(server, server.watch()), log, sweepIntervalMs: 0 });
  const reg = new SubnetRegistry('ovn-default');
  reg.add({ name: 'ovn-default', cidrs: ['10.16.0.0/16'] });
  reg.addNodeOnly({ name: 'join', cidrs: ['100.64.0.0/16'] });
  return { reg, server, cluster };
}

describe('SubnetRegistry with claims', () => {
  it('gives the pool itself without claims (embedded mode)', async () => {
    const reg = new SubnetRegistry('ovn-default');
    const pool = reg.add({ name: 'ovn-default', cidrs: ['10.16.0.0/16'] });
    const alloc = reg.allocatorFor(pool);
    expect(alloc).not.toBeInstanceOf(SubnetClaims);
    expect(await alloc.allocate('x', 4)).toBe('10.16.0.2');
  });

  it('puts pod pools, not node-only ones, under claims', async () => {
    const { reg, server, cluster: c } = setup();
    reg.useClaims(c);
    await c.start();
    expect(reg.allocatorFor(reg.get('ovn-default'))).toBeInstanceOf(SubnetClaims);
    expect(reg.allocatorFor(reg.get('join'))).not.toBeInstanceOf(SubnetClaims);
    const ip = await reg.allocatorFor(reg.get('ovn-default')).allocate('p|s', 4);
    expect(server.objectsNow().map((o) => o.spec)).toEqual([expect.objectContaining({ kind: 'block', node: 'n1', subnet: 'ovn-default' })]);
    expect(ip.startsWith('10.16.')).toBe(true);
    expect(reg.get('join').allocate('node', 4)).toBe('100.64.0.2');
  });

  it('attaches pools sync() creates and detaches the ones it drops', async () => {
    const { reg, cluster: c } = setup();
    reg.useClaims(c);
    await c.start();
    reg.sync([{ name: 'blue', cidrs: ['10.20.0.0/24'] }], fakeEmptyNb, [{ subnet: 'blue', ip: '10.20.0.9', owner: 'vip:v1' }], log);
    const blue = reg.get('blue');
    expect(c.get('blue')?.pool).toBe(blue);
    // The VIP was reserved before the pool was attached: never handed out.
    const got = await Promise.all(Array.from({ length: 20 }, (_, i) => reg.allocatorFor(blue).allocate(`p${i}|s`, 4)));
    expect(got).not.toContain('10.20.0.9');
    reg.sync([], fakeEmptyNb, [], log);
    expect(c.get('blue')).toBeUndefined();
  });
});
