// A pod switch and its router port as switchOps writes them, applied to a FakeOvsdbServer with the
// real OVN_Northbound schema: the switch's shared datapath key (other_config:requested-tnl-key)
// and the router port's key, its gateway's offset (tunnel-keys.ts), on creation and on update;
// the egress default routes per family.
import { afterEach, describe, expect, it } from 'vitest';
import { egressRouteOps, ROUTER, switchOps, type SwitchSpec } from '../../../../daemon/ovn/topology';
import type { OvsdbClient } from '../../../../daemon/ovsdb/client';
import type { Operation } from '../../../../daemon/ovsdb/types';
import { asArray, asMap, uuid, type Row } from '../../../../daemon/ovsdb/values';
import { FakeOvsdbServer, loadSchema, NB_SCHEMA_PATH } from '../../../fakes/fake-ovsdb-server';

const NB_SCHEMA = loadSchema(NB_SCHEMA_PATH);

const fakes: FakeOvsdbServer[] = [];
afterEach(async () => {
  for (const f of fakes.splice(0)) await f.close();
});

interface Nb { fake: FakeOvsdbServer; routerRef: ReturnType<typeof uuid> }

async function nbWithRouter(): Promise<Nb> {
  const fake = await FakeOvsdbServer.start({ database: 'OVN_Northbound', schema: NB_SCHEMA });
  fakes.push(fake);
  fake.apply([{ op: 'insert', table: 'Logical_Router', row: { name: ROUTER } }]);
  const router = fake.rows('Logical_Router')[0] as Row;
  return { fake, routerRef: uuid(router._uuid) };
}

/** switchOps reads the NB through rows() only; the fake's decoded rows stand in for the monitor cache. */
function plan(n: Nb, s: SwitchSpec, extraIds: Record<string, string> = {}): Operation[] {
  const view = { rows: (t: string) => new Map(n.fake.rows(t).map((r) => [r._uuid, r])) };
  return switchOps(view as unknown as OvsdbClient, s, n.routerRef, 0, extraIds);
}

function applyOk(n: Nb, ops: Operation[]): void {
  const results = n.fake.apply(ops);
  expect(results.filter((r) => typeof r === 'object' && r !== null && 'error' in r)).toEqual([]);
}

const byName = (n: Nb, table: string, name: string): Row | undefined => n.fake.rows(table).find((r) => r.name === name);

const spec = (over: Partial<SwitchSpec> = {}): SwitchSpec =>
  ({ name: 'ovn-default', cidrs: ['10.16.0.0/16'], gateways: ['10.16.0.1'], routerPortMac: '0a:58:0a:10:00:01', ...over });

describe('switchOps tunnel keys', () => {
  it('creates the switch with its requested key and the router port with its gateway\'s key', async () => {
    const n = await nbWithRouter();
    applyOk(n, plan(n, spec({ tunnelKey: 16769529 })));
    const ls = byName(n, 'Logical_Switch', 'ovn-default');
    expect(asMap(ls?.other_config)).toEqual({ 'requested-tnl-key': '16769529' });
    const rp = byName(n, 'Logical_Switch_Port', `ovn-default-${ROUTER}`);
    expect(rp?.type).toBe('router');
    expect(asMap(rp?.options)).toEqual({ 'router-port': `${ROUTER}-ovn-default`, 'requested-tnl-key': '1' });
    expect(asArray(ls?.ports)).toEqual([rp?._uuid]);
  });

  it.each([
    ['a gateway at .254', { gateways: ['10.16.0.254'] }, '254'],
    ['a dual-stack switch listing IPv6 first (keyed by IPv4)', { cidrs: ['fd00:10:16::/64', '10.16.0.0/16'], gateways: ['fd00:10:16::1', '10.16.1.1'] }, '257'],
    ['an IPv6-only switch', { cidrs: ['fd00:10:16::/64'], gateways: ['fd00:10:16::a'] }, '10'],
  ])('keys the router port by its gateway on %s', async (_what, over: Partial<SwitchSpec>, key) => {
    const n = await nbWithRouter();
    applyOk(n, plan(n, spec({ ...over, tunnelKey: 16711681 })));
    expect(asMap(byName(n, 'Logical_Switch_Port', `ovn-default-${ROUTER}`)?.options)['requested-tnl-key']).toBe(key);
  });

  it('requests no key for a gateway past the keyable range, nor for a switch without a shared key', async () => {
    const n = await nbWithRouter();
    applyOk(n, plan(n, spec({ gateways: ['10.16.255.254'] })));
    expect(asMap(byName(n, 'Logical_Switch', 'ovn-default')?.other_config)).toEqual({});
    expect(asMap(byName(n, 'Logical_Switch_Port', `ovn-default-${ROUTER}`)?.options)).toEqual({ 'router-port': `${ROUTER}-ovn-default` });
  });

  it('rewrites both keys on an existing switch, keeping its ports', async () => {
    const n = await nbWithRouter();
    applyOk(n, plan(n, spec({ tunnelKey: 16769529 })));
    const rpBefore = byName(n, 'Logical_Switch_Port', `ovn-default-${ROUTER}`);

    const ops = plan(n, spec({ tunnelKey: 16769530, gateways: ['10.16.0.2'] }), { 'ovnode:subnet': 'true' });
    expect(ops.filter((o) => o.op === 'insert')).toEqual([]);
    applyOk(n, ops);
    const ls = byName(n, 'Logical_Switch', 'ovn-default');
    expect(asMap(ls?.other_config)).toEqual({ 'requested-tnl-key': '16769530' });
    expect(asMap(ls?.external_ids)).toMatchObject({ 'ovnode:cidrs': '10.16.0.0/16', 'ovnode:gateways': '10.16.0.2', 'ovnode:subnet': 'true' });
    const rp = byName(n, 'Logical_Switch_Port', `ovn-default-${ROUTER}`);
    expect(rp?._uuid).toBe(rpBefore?._uuid);
    expect(asMap(rp?.options)).toEqual({ 'router-port': `${ROUTER}-ovn-default`, 'requested-tnl-key': '2' });
    expect(n.fake.rows('Logical_Switch_Port')).toHaveLength(1);

    // The shared key withdrawn: the switch's request goes with it.
    applyOk(n, plan(n, spec({ gateways: ['10.16.0.2'] })));
    expect(asMap(byName(n, 'Logical_Switch', 'ovn-default')?.other_config)).toEqual({});
  });
});

describe('egressRouteOps', () => {
  const routes = (n: Nb): string[] => n.fake.rows('Logical_Router_Static_Route')
    .filter((r) => asArray<string>(byName(n, 'Logical_Router', ROUTER)?.static_routes).includes(r._uuid))
    .map((r) => `${String(r.ip_prefix)} via ${String(r.nexthop)}`).sort();
  const egress = (n: Nb, ips: string[]): Operation[] => {
    const view = { rows: (t: string) => new Map(n.fake.rows(t).map((r) => [r._uuid, r])) };
    return egressRouteOps(view as unknown as OvsdbClient, ips);
  };

  it('gives each family a default route to the node\'s join address of that family, then plans nothing', async () => {
    const n = await nbWithRouter();
    applyOk(n, egress(n, ['100.64.0.7', 'fd00:100:64::7']));
    expect(routes(n)).toEqual(['0.0.0.0/0 via 100.64.0.7', '::/0 via fd00:100:64::7']);
    expect(egress(n, ['100.64.0.7', 'fd00:100:64::7'])).toEqual([]);
  });

  it('replaces a route whose next hop changed and removes the family the node no longer has, keeping others\' routes', async () => {
    const n = await nbWithRouter();
    applyOk(n, egress(n, ['100.64.0.7', 'fd00:100:64::7']));
    applyOk(n, [
      { op: 'insert', table: 'Logical_Router_Static_Route', 'uuid-name': 'other', row: { ip_prefix: '192.168.0.0/16', nexthop: '100.64.0.9' } },
      { op: 'mutate', table: 'Logical_Router', where: [['name', '==', ROUTER]], mutations: [['static_routes', 'insert', ['set', [['named-uuid', 'other']]]]] },
    ] as Operation[]);
    applyOk(n, egress(n, ['100.64.0.8']));
    expect(routes(n)).toEqual(['0.0.0.0/0 via 100.64.0.8', '192.168.0.0/16 via 100.64.0.9']);
  });
});
