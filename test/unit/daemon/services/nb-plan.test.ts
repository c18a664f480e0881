// The services NB plan against a FakeOvsdbServer holding the real OVN_Northbound schema, so the
// planned operations are applied for real (weak references from switches and the router to
// Load_Balancer, named UUIDs across the transaction) and a second pass must plan nothing. The
// planner reads the NB through a rows(table) view of decoded rows, as the monitor cache gives.
import { afterEach, describe, expect, it } from 'vitest';
import type { OvsdbClient } from '../../../../daemon/ovsdb/client';
import type { Operation } from '../../../../daemon/ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, uuid, type Row } from '../../../../daemon/ovsdb/values';
import { planServiceLbs, UnmonitoredColumnError } from '../../../../daemon/services/nb-plan';
import type { DesiredLb } from '../../../../daemon/services/types';
import { FakeOvsdbServer, loadSchema, NB_SCHEMA_PATH } from '../../../fakes/fake-ovsdb-server';
import { applyOk, closedAfterEach, viewOf, type View } from '../../../fakes/fake-ovsdb-view';

const NB_SCHEMA = loadSchema(NB_SCHEMA_PATH);
const LS = 'Logical_Switch';
const LR = 'Logical_Router';
const LB = 'Load_Balancer';


const fakes = closedAfterEach();

/** A switch; with CIDRs, one of ovnode's; optionally holding a load balancer inserted in the same transaction. */
function switchOp(name: string, cidrs?: string, lbRef?: string): Operation {
  const row: Record<string, unknown> = { name, external_ids: ovsMap(cidrs === undefined ? {} : { 'ovnode:owner': 'ovnode', 'ovnode:cidrs': cidrs }) };
  if (lbRef !== undefined) row.load_balancer = namedUuid(lbRef);
  return { op: 'insert', table: LS, row } as Operation;
}

/**
 * This node's NB: ovnode's switches ovn-default and join, a switch ovnode did not create, the
 * cluster router, and a load balancer someone else owns attached to ovn-default and the router.
 */
async function zone(): Promise<FakeOvsdbServer> {
  const fake = await FakeOvsdbServer.start({ database: 'OVN_Northbound', schema: NB_SCHEMA });
  fakes.push(fake);
  applyOk(fake, [
    { op: 'insert', table: LB, 'uuid-name': 'foreign', row: { name: 'foreign-lb', protocol: 'tcp', vips: ovsMap({ '172.30.0.1:443': '192.168.0.1:6443' }) } },
    switchOp('ovn-default', '10.16.0.0/16', 'foreign'),
    switchOp('join', '100.64.0.0/16'),
    switchOp('outside'),
    { op: 'insert', table: LR, row: { name: 'ovn-cluster', load_balancer: namedUuid('foreign') } },
    { op: 'insert', table: LR, row: { name: 'other-router' } },
  ]);
  return fake;
}

const lb = (service: string, vips: Record<string, string>, extra: Partial<DesiredLb> = {}): DesiredLb =>
  ({ name: `Service_${service}_TCP`, protocol: 'tcp', service, vips, options: { reject: 'true' }, ...extra });

const WEB = lb('default/web', { '10.96.0.10:80': '10.16.0.5:8080,10.16.0.6:8080' });
const DNS = lb('kube-system/dns', { '10.96.0.3:53': '10.16.0.2:53' }, { name: 'Service_kube-system/dns_UDP', protocol: 'udp' });
const IDLE = lb('default/idle', { '10.96.0.20:80': '' });

/** One pass: plan against the fake's rows, apply, return the operations. */
function pass(fake: FakeOvsdbServer, desired: DesiredLb[], scope?: Set<string>): Operation[] {
  const ops = planServiceLbs({ nb: viewOf(fake), desired, ...(scope ? { scope } : {}) });
  if (ops.length > 0) applyOk(fake, ops);
  return ops;
}

const lbNamed = (fake: FakeOvsdbServer, name: string): Row | undefined => fake.rows(LB).find((r) => r.name === name);

/** Names of the load balancers a switch or router holds, sorted. */
function lbsOf(fake: FakeOvsdbServer, table: string, name: string): string[] {
  const row = fake.rows(table).find((r) => r.name === name);
  const names = new Map(fake.rows(LB).map((r) => [r._uuid, r.name as string]));
  return asArray<string>(row?.load_balancer).map((u) => names.get(u) ?? `?${u}`).sort();
}

const ALL_TARGETS: Array<[string, string]> = [[LS, 'ovn-default'], [LS, 'join'], [LR, 'ovn-cluster']];

describe('planServiceLbs', () => {
  it('creates the rows marked as own and attaches them to ovnode\'s switches and the router; a second pass plans nothing', async () => {
    const fake = await zone();
    const ops = pass(fake, [WEB, DNS, IDLE]);
    expect(ops.map((o) => `${o.op} ${'table' in o ? o.table : ''}`)).toEqual([
      `insert ${LB}`, `insert ${LB}`, `insert ${LB}`, `mutate ${LS}`, `mutate ${LS}`, `mutate ${LR}`,
    ]);
    const web = lbNamed(fake, 'Service_default/web_TCP');
    expect(web).toMatchObject({ protocol: 'tcp', vips: { '10.96.0.10:80': '10.16.0.5:8080,10.16.0.6:8080' }, options: { reject: 'true' } });
    expect(asMap(web?.external_ids)).toEqual({ 'ovnode:owner': 'services', 'ovnode:service': 'default/web' });
    expect(asMap(lbNamed(fake, 'Service_default/idle_TCP')?.vips)).toEqual({ '10.96.0.20:80': '' });
    expect(lbNamed(fake, 'Service_kube-system/dns_UDP')?.protocol).toBe('udp');
    const ours = ['Service_default/idle_TCP', 'Service_default/web_TCP', 'Service_kube-system/dns_UDP'];
    expect(lbsOf(fake, LS, 'ovn-default')).toEqual([...ours, 'foreign-lb'].sort());
    expect(lbsOf(fake, LS, 'join')).toEqual(ours);
    expect(lbsOf(fake, LR, 'ovn-cluster')).toEqual([...ours, 'foreign-lb'].sort());
    expect(lbsOf(fake, LS, 'outside')).toEqual([]);
    expect(lbsOf(fake, LR, 'other-router')).toEqual([]);

    expect(pass(fake, [WEB, DNS, IDLE])).toEqual([]);
    // Order of the desired list does not matter either.
    expect(pass(fake, [IDLE, DNS, WEB])).toEqual([]);
  });

  it('updates a row in place when its backends change: one operation', async () => {
    const fake = await zone();
    pass(fake, [WEB, DNS]);
    const before = lbNamed(fake, WEB.name);
    const changed = { ...WEB, vips: { '10.96.0.10:80': '10.16.0.6:8080,10.16.0.7:8080' } };
    const ops = pass(fake, [changed, DNS]);
    expect(ops).toEqual([{
      op: 'update', table: LB, where: [['_uuid', '==', uuid(before?._uuid as string)]],
      row: {
        name: WEB.name, protocol: 'tcp', vips: ovsMap(changed.vips), options: ovsMap({ reject: 'true' }),
        external_ids: ovsMap({ 'ovnode:owner': 'services', 'ovnode:service': 'default/web' }),
      },
    }]);
    expect(lbNamed(fake, WEB.name)?._uuid).toBe(before?._uuid);
    expect(asMap(lbNamed(fake, WEB.name)?.vips)).toEqual(changed.vips);
    expect(pass(fake, [changed, DNS])).toEqual([]);
    // Affinity on: an update too.
    const sticky = { ...changed, options: { reject: 'true', affinity_timeout: '10800' } };
    expect(pass(fake, [sticky, DNS]).map((o) => o.op)).toEqual(['update']);
    expect(asMap(lbNamed(fake, WEB.name)?.options)).toEqual({ reject: 'true', affinity_timeout: '10800' });
  });

  it('deletes and detaches the rows of a Service that is gone; the foreign load balancer stays', async () => {
    const fake = await zone();
    pass(fake, [WEB, DNS]);
    const web = lbNamed(fake, WEB.name);
    const ops = pass(fake, [DNS]);
    expect(ops.filter((o) => o.op === 'delete')).toEqual([{ op: 'delete', table: LB, where: [['_uuid', '==', uuid(web?._uuid as string)]] }]);
    expect(ops.filter((o) => o.op === 'mutate')).toHaveLength(3);
    for (const o of ops) if (o.op === 'mutate') expect(o.mutations).toEqual([['load_balancer', 'delete', ['set', [uuid(web?._uuid as string)]]]]);
    expect(lbNamed(fake, WEB.name)).toBeUndefined();
    expect(lbsOf(fake, LS, 'ovn-default')).toEqual(['Service_kube-system/dns_UDP', 'foreign-lb']);
    expect(lbsOf(fake, LS, 'join')).toEqual(['Service_kube-system/dns_UDP']);
    expect(lbsOf(fake, LR, 'ovn-cluster')).toEqual(['Service_kube-system/dns_UDP', 'foreign-lb']);
    expect(pass(fake, [DNS])).toEqual([]);

    // Nothing desired: every own row goes, the foreign one stays where it was.
    pass(fake, []);
    expect(fake.rows(LB).map((r) => r.name)).toEqual(['foreign-lb']);
    expect(lbsOf(fake, LS, 'ovn-default')).toEqual(['foreign-lb']);
    expect(lbsOf(fake, LS, 'join')).toEqual([]);
    expect(lbsOf(fake, LR, 'ovn-cluster')).toEqual(['foreign-lb']);
    expect(pass(fake, [])).toEqual([]);
  });

  it('never touches a load balancer it does not own, even one named like its own', async () => {
    const fake = await zone();
    applyOk(fake, [{ op: 'insert', table: LB, row: { name: WEB.name, protocol: 'tcp', vips: ovsMap({ '1.2.3.4:80': '5.6.7.8:80' }) } }]);
    const impostor = lbNamed(fake, WEB.name);
    const ops = pass(fake, [WEB]);
    expect(JSON.stringify(ops)).not.toContain(impostor?._uuid as string);
    expect(JSON.stringify(ops)).not.toContain(fake.rows(LB).find((r) => r.name === 'foreign-lb')?._uuid as string);
    expect(fake.rows(LB).filter((r) => r.name === WEB.name)).toHaveLength(2);
    expect(pass(fake, [])).toHaveLength(4); // delete own + detach from three targets
    expect(fake.rows(LB).filter((r) => r.name === WEB.name)).toEqual([impostor]);
  });

  it('attaches every own row to a switch created later, in one mutation, and to the router once it exists', async () => {
    const fake = await zone();
    pass(fake, [WEB, DNS]);
    applyOk(fake, [switchOp('blue', '10.18.0.0/24'), { op: 'delete', table: LR, where: [['name', '==', 'ovn-cluster']] }]);
    const ops = pass(fake, [WEB, DNS]);
    expect(ops).toHaveLength(1);
    expect(ops[0]).toMatchObject({ op: 'mutate', table: LS, mutations: [['load_balancer', 'insert', expect.anything()]] });
    expect(lbsOf(fake, LS, 'blue')).toEqual(['Service_default/web_TCP', 'Service_kube-system/dns_UDP']);
    applyOk(fake, [{ op: 'insert', table: LR, row: { name: 'ovn-cluster' } }]);
    expect(pass(fake, [WEB, DNS]).map((o) => `${o.op} ${'table' in o ? o.table : ''}`)).toEqual([`mutate ${LR}`]);
    expect(lbsOf(fake, LR, 'ovn-cluster')).toEqual(['Service_default/web_TCP', 'Service_kube-system/dns_UDP']);
    // An empty scope (what a switch change triggers) still attaches.
    applyOk(fake, [switchOp('green', '10.19.0.0/24')]);
    expect(pass(fake, [], new Set())).toHaveLength(1);
    expect(lbsOf(fake, LS, 'green')).toEqual(['Service_default/web_TCP', 'Service_kube-system/dns_UDP']);
  });

  it('puts back an own row someone detached or changed', async () => {
    const fake = await zone();
    pass(fake, [WEB]);
    const web = lbNamed(fake, WEB.name);
    applyOk(fake, [
      { op: 'mutate', table: LS, where: [['name', '==', 'join']], mutations: [['load_balancer', 'delete', uuid(web?._uuid as string)]] },
      { op: 'update', table: LB, where: [['_uuid', '==', uuid(web?._uuid as string)]], row: { options: ovsMap({}) } },
    ]);
    expect(pass(fake, [WEB]).map((o) => o.op).sort()).toEqual(['mutate', 'update']);
    expect(lbsOf(fake, LS, 'join')).toEqual([WEB.name]);
    expect(asMap(lbNamed(fake, WEB.name)?.options)).toEqual({ reject: 'true' });
  });

  it('reconciles only the Services in scope: rows of others stay even when not desired', async () => {
    const fake = await zone();
    pass(fake, [WEB, DNS]);
    const changed = { ...WEB, vips: { '10.96.0.10:80': '' } };
    const ops = pass(fake, [changed], new Set(['default/web']));
    expect(ops.map((o) => o.op)).toEqual(['update']);
    expect(lbNamed(fake, DNS.name)).toBeDefined();
    // In scope and not desired: deleted.
    expect(pass(fake, [], new Set(['kube-system/dns'])).map((o) => o.op).sort()).toEqual(['delete', 'mutate', 'mutate', 'mutate']);
    expect(lbNamed(fake, DNS.name)).toBeUndefined();
    expect(lbNamed(fake, WEB.name)).toBeDefined();
  });

  it('keeps one row of a name written twice (a retried transaction) and deletes the other', async () => {
    const fake = await zone();
    pass(fake, [WEB]);
    const first = lbNamed(fake, WEB.name);
    applyOk(fake, [{ op: 'insert', table: LB, row: { name: WEB.name, protocol: 'tcp', vips: ovsMap(WEB.vips), options: ovsMap(WEB.options),
      external_ids: ovsMap({ 'ovnode:owner': 'services', 'ovnode:service': 'default/web' }) } }]);
    const ops = pass(fake, [WEB]);
    expect(ops.filter((o) => o.op === 'delete')).toHaveLength(1);
    expect(fake.rows(LB).filter((r) => r.name === WEB.name).map((r) => r._uuid)).toEqual([first?._uuid]);
    expect(pass(fake, [WEB])).toEqual([]);
    for (const [table, name] of ALL_TARGETS) expect(lbsOf(fake, table, name)).toContain(WEB.name);
  });

  it('refuses to plan from switches whose load_balancer column is not monitored', () => {
    const nb: View = { rows: (t: string) => new Map(t === LS ? [['u1', { _uuid: 'u1', name: 'ovn-default', external_ids: { 'ovnode:cidrs': '10.16.0.0/16' } }]] : []) };
    expect(() => planServiceLbs({ nb, desired: [WEB] })).toThrow(UnmonitoredColumnError);
  });
});
