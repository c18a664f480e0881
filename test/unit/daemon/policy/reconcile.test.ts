// planReconcile against an OvsdbClient on a FakeOvsdbServer holding an NB-like state: applying a
// plan and planning again writes nothing; a membership change is set mutations only; deleting a
// policy deletes its rows only; rows without our marker are never touched; Subnet objects go
// through the SwitchPlanner.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { KubeObject } from '../../../../daemon/objects/types';
import type { Operation } from '../../../../daemon/ovsdb/types';
import { asArray, asMap, ovsMap, ovsSet, uuid, type Row } from '../../../../daemon/ovsdb/values';
import { computeDesired } from '../../../../daemon/policy/desired';
import { aclKey, type DesiredAcl } from '../../../../daemon/policy/model';
import { PG_DENY_EGRESS, PG_DENY_INGRESS, asNetworkPolicyPeer, asSecurityGroup, pgNetworkPolicy, pgSecurityGroup } from '../../../../daemon/policy/names';
import { ANNOTATION } from '../../../../daemon/policy/port-settings';
import { podPorts } from '../../../../daemon/policy/pods';
import { OWNER_KEY, ROW_KEY, planReconcile, type Plan } from '../../../../daemon/policy/reconcile';
import { SG_ANNOTATION } from '../../../../daemon/policy/security-groups';
import {
  BUILTIN, JOIN_CIDR, NODE_IPS, RecordingSwitchPlanner, aclsOf, addressesOf, byName, namespace, netpol, pod, portNames,
  rowsOf, secgroup, sel, sgRule, startNb, subnet, type Nb, type NbPod,
} from './helpers';

const NB_PODS: NbPod[] = [
  { name: 'web', namespace: 'shop', ips: ['10.16.0.10'], mac: '0a:58:0a:10:00:0a' },
  { name: 'db', namespace: 'shop', ips: ['10.16.0.20', 'fd00:10:16::20'], mac: '0a:58:0a:10:00:14' },
  { name: 'prom', namespace: 'monitoring', ips: ['10.16.2.10'], mac: '0a:58:0a:10:02:0a' },
];

const ALLOW_WEB = netpol('allow-web', 'shop', {
  podSelector: sel({ app: 'web' }),
  ingress: [{ peers: [{ namespaceSelector: sel({ team: 'ops' }), podSelector: sel({ app: 'prom' }) }], ports: [{ protocol: 'TCP', port: 80 }] }],
});
const DENY_ALL = netpol('deny-all', 'shop', { podSelector: sel(), policyTypes: ['Ingress'] });
const SG1 = secgroup('sg1', { allowSameGroupTraffic: true, ingressRules: [sgRule({ protocol: 'tcp', portRangeMin: 5432, remoteType: 'securityGroup', remoteSecurityGroup: 'sg1' })] });

const OBJECTS: KubeObject[] = [
  namespace('shop'), namespace('monitoring', { team: 'ops' }),
  pod('web', 'shop', { labels: { app: 'web' }, annotations: { [ANNOTATION.egressRate]: '10' } }),
  pod('db', 'shop', { labels: { app: 'db' }, annotations: { [SG_ANNOTATION]: 'sg1' } }),
  pod('prom', 'monitoring', { labels: { app: 'prom' }, annotations: { [ANNOTATION.portSecurity]: 'false' } }),
  ALLOW_WEB, DENY_ALL, SG1,
];

const PG_ALLOW_WEB = pgNetworkPolicy('shop', 'allow-web');
const AS_PROM = [4, 6].map((f) => asNetworkPolicyPeer('shop', 'allow-web', 'in', 0, 0, f as 4 | 6));

let env: Nb;
let store: MemoryStore;
let planner: RecordingSwitchPlanner;

beforeEach(async () => {
  env = await startNb(NB_PODS);
  store = new MemoryStore();
  for (const o of OBJECTS) store.apply(o);
  planner = new RecordingSwitchPlanner(env.nb);
});

afterEach(async () => {
  await env.close();
});

function plan(): Plan {
  const desired = computeDesired({ store, pods: podPorts(env.nb, store), builtin: BUILTIN, joinCidrs: [JOIN_CIDR], nodeIps: NODE_IPS });
  return planReconcile(env.nb, desired, planner);
}

async function apply(p: Plan): Promise<void> {
  if (p.ops.length > 0) await env.nb.transact(p.ops);
}

/** Plans and applies until nothing is left, failing if that takes more than one round. */
async function converge(): Promise<void> {
  await apply(plan());
  expect(summary(plan().ops)).toEqual([]);
}

/** One line per operation: op, table and, for mutations, column and mutator. */
function summary(ops: Operation[]): string[] {
  return ops.map((o) => {
    if (o.op === 'mutate') return `mutate ${o.table} ${o.mutations.map(([c, m]) => `${c} ${m}`).join(',')}`;
    return 'table' in o ? `${o.op} ${o.table}` : o.op;
  });
}

const lspUuid = (name: string): string => byName(env.nb, 'Logical_Switch_Port', name)?._uuid as string;
const whereUuid = (o: Operation): unknown => ('where' in o ? o.where : undefined);

describe('idempotence', () => {
  it('applying the plan and planning again gives zero operations', async () => {
    const first = plan();
    expect(first.ops.length).toBeGreaterThan(0);
    await apply(first);
    const again = plan();
    expect(again.ops).toEqual([]);
    expect(Object.values(again.counts).every((n) => n === 0)).toBe(true);
    expect(planner.created).toEqual([]); // built-in switches exist with matching ids
  });

  it('the applied NB holds the desired rows', async () => {
    await converge();
    expect(portNames(env.nb, PG_ALLOW_WEB)).toEqual(['web.shop']);
    expect(portNames(env.nb, pgNetworkPolicy('shop', 'deny-all'))).toEqual(['db.shop', 'web.shop']);
    expect(portNames(env.nb, PG_DENY_INGRESS)).toEqual(['db.shop', 'web.shop']);
    expect(portNames(env.nb, PG_DENY_EGRESS)).toEqual([]);
    expect(portNames(env.nb, pgSecurityGroup('sg1'))).toEqual(['db.shop']);
    expect(AS_PROM.map((n) => addressesOf(env.nb, n))).toEqual([['10.16.2.10'], []]);
    expect(byName(env.nb, 'Address_Set', asSecurityGroup('sg1', 6))).toBeUndefined(); // northd's own set, not ours
    const allow = aclsOf(env.nb, 'Port_Group', PG_ALLOW_WEB);
    expect(allow.map((a) => [a.direction, a.priority, a.action, a.match])).toEqual([
      ['to-lport', 2001, 'allow-related', `outport == @${PG_ALLOW_WEB} && ip && (ip4.src == $${AS_PROM[0]} || ip6.src == $${AS_PROM[1]}) && tcp.dst == 80`],
    ]);
    const a0 = allow[0] as Row;
    const key = aclKey({ direction: a0.direction as DesiredAcl['direction'], priority: a0.priority as number, match: a0.match as string, action: a0.action as DesiredAcl['action'], owner: 'np/shop/allow-web' });
    expect(asMap(a0.external_ids)).toEqual({ [OWNER_KEY]: 'np/shop/allow-web', [ROW_KEY]: key });
    expect(asMap(byName(env.nb, 'Port_Group', PG_ALLOW_WEB)?.external_ids)).toEqual({ [OWNER_KEY]: 'np/shop/allow-web' });
    expect(aclsOf(env.nb, 'Logical_Switch', 'ovn-default').map((a) => [a.priority, a.action, a.match])).toEqual([[1, 'allow-related', 'ip']]);
    const qos = asArray<string>(byName(env.nb, 'Logical_Switch', 'ovn-default')?.qos_rules).map((u) => env.nb.rows('QoS').get(u));
    expect(qos.map((q) => [q?.direction, q?.match, q?.bandwidth])).toEqual([['from-lport', 'inport == "web.shop"', { rate: 10000, burst: 10000 }]]);
    expect(byName(env.nb, 'Logical_Switch_Port', 'prom.monitoring')?.port_security).toEqual([]);
    expect(asArray(byName(env.nb, 'Logical_Switch_Port', 'web.shop')?.port_security)).toEqual(['0a:58:0a:10:00:0a 10.16.0.10']);
  });

  it('port_security that drifted is put back with one update, then left alone', async () => {
    await converge();
    env.fake.apply([{ op: 'update', table: 'Logical_Switch_Port', where: [['name', '==', 'web.shop']], row: { port_security: ovsSet(['0a:58:0a:10:00:0a 10.16.0.99']) } }]);
    await env.nb.echo();
    const p = plan();
    expect(summary(p.ops)).toEqual(['update Logical_Switch_Port']);
    await apply(p);
    expect(plan().ops).toEqual([]);
  });

  it('identical rules in one policy do not make the next plan non-empty', async () => {
    // Two rules that translate to the same ACL (valid Kubernetes, e.g. merged manifests).
    store.apply(netpol('dup', 'shop', { podSelector: sel({ app: 'web' }), ingress: [
      { peers: [], ports: [{ protocol: 'TCP', port: 8080 }] },
      { peers: [], ports: [{ protocol: 'TCP', port: 8080 }] },
    ] }));
    await apply(plan());
    expect(summary(plan().ops)).toEqual([]);
  });
});

describe('membership changes', () => {
  const cases: { desc: string; change: KubeObject; ops: string[]; check: () => void }[] = [
    {
      desc: 'a pod starts matching a policy: one Port_Group ports insert',
      change: pod('db', 'shop', { labels: { app: 'web' }, annotations: { [SG_ANNOTATION]: 'sg1' } }),
      ops: ['mutate Port_Group ports insert'],
      check: () => expect(portNames(env.nb, PG_ALLOW_WEB)).toEqual(['db.shop', 'web.shop']),
    },
    {
      desc: 'a pod stops matching a policy: one Port_Group ports delete',
      change: pod('web', 'shop', { labels: { app: 'other' }, annotations: { [ANNOTATION.egressRate]: '10' } }),
      ops: ['mutate Port_Group ports delete'],
      check: () => expect(portNames(env.nb, PG_ALLOW_WEB)).toEqual([]),
    },
    {
      desc: 'a peer pod stops matching: one Address_Set addresses delete',
      change: pod('prom', 'monitoring', { labels: { app: 'other' }, annotations: { [ANNOTATION.portSecurity]: 'false' } }),
      ops: ['mutate Address_Set addresses delete'],
      check: () => expect(addressesOf(env.nb, AS_PROM[0] as string)).toEqual([]),
    },
    {
      // Member addresses live in northd's own <pg>_ip4 set: only the Port_Group changes here.
      desc: 'a pod joins a security group: one Port_Group mutation only',
      change: pod('web', 'shop', { labels: { app: 'web' }, annotations: { [ANNOTATION.egressRate]: '10', [SG_ANNOTATION]: 'sg1' } }),
      ops: ['mutate Port_Group ports insert'],
      check: () => {
        expect(portNames(env.nb, pgSecurityGroup('sg1'))).toEqual(['db.shop', 'web.shop']);
      },
    },
  ];
  it.each(cases)('$desc', async ({ change, ops, check }) => {
    await converge();
    const aclsBefore = rowsOf(env.nb, 'ACL').map((r) => r._uuid).sort();
    store.apply(change);
    const p = plan();
    expect(summary(p.ops)).toEqual(ops);
    expect(p.counts.aclsAdded ?? 0).toBe(0);
    expect(p.counts.aclsRemoved ?? 0).toBe(0);
    await apply(p);
    check();
    expect(rowsOf(env.nb, 'ACL').map((r) => r._uuid).sort()).toEqual(aclsBefore);
    expect(plan().ops).toEqual([]);
  });

  it('the Port_Group mutation names the row and the pod port by UUID', async () => {
    await converge();
    store.apply(pod('db', 'shop', { labels: { app: 'web' }, annotations: { [SG_ANNOTATION]: 'sg1' } }));
    const [op] = plan().ops;
    expect(op).toEqual({
      op: 'mutate', table: 'Port_Group', where: [['_uuid', '==', uuid(byName(env.nb, 'Port_Group', PG_ALLOW_WEB)?._uuid as string)]],
      mutations: [['ports', 'insert', ovsSet([uuid(lspUuid('db.shop'))])]],
    });
  });
});

describe('deleting a policy', () => {
  it('deletes its Port_Group and its address sets, nothing else', async () => {
    await converge();
    const pg = byName(env.nb, 'Port_Group', PG_ALLOW_WEB) as Row;
    const sets = AS_PROM.map((n) => byName(env.nb, 'Address_Set', n) as Row);
    store.remove('NetworkPolicy', 'allow-web', 'shop');
    const p = plan();
    expect(summary(p.ops)).toEqual(['delete Address_Set', 'delete Address_Set', 'delete Port_Group']);
    expect(p.ops.map(whereUuid)).toEqual([...sets, pg].map((r) => [['_uuid', '==', uuid(r._uuid)]]));
    await apply(p);
    expect(byName(env.nb, 'Port_Group', PG_ALLOW_WEB)).toBeUndefined();
    expect(AS_PROM.map((n) => byName(env.nb, 'Address_Set', n))).toEqual([undefined, undefined]);
    // deny-all still isolates both pods.
    expect(portNames(env.nb, PG_DENY_INGRESS)).toEqual(['db.shop', 'web.shop']);
    expect(plan().ops).toEqual([]);
  });

  it('the last policy selecting the pods also takes them out of the deny group', async () => {
    await converge();
    store.remove('NetworkPolicy', 'allow-web', 'shop');
    store.remove('NetworkPolicy', 'deny-all', 'shop');
    const p = plan();
    expect(summary(p.ops)).toEqual(['delete Address_Set', 'delete Address_Set', 'mutate Port_Group ports delete', 'delete Port_Group', 'delete Port_Group']);
    await apply(p);
    expect(portNames(env.nb, PG_DENY_INGRESS)).toEqual([]);
    expect(plan().ops).toEqual([]);
  });
});

describe('rows without our marker', () => {
  /** Inserts a foreign ACL and refers to it from `parent` (a where on Logical_Switch or Port_Group). */
  function foreignAcl(ids: Record<string, string>, parent: { table: string; name: string }): string {
    const res = env.fake.apply([
      { op: 'insert', table: 'ACL', 'uuid-name': 'a', row: { direction: 'to-lport', priority: 1500, match: 'ip4.src == 192.0.2.1', action: 'drop', external_ids: ovsMap(ids) } },
      { op: 'mutate', table: parent.table, where: [['name', '==', parent.name]], mutations: [['acls', 'insert', ['named-uuid', 'a']]] },
    ]) as [{ uuid: [string, string] }, { count: number }];
    expect(res[1].count).toBe(1);
    return res[0].uuid[1];
  }

  const cases: { desc: string; ids: Record<string, string>; parent: { table: string; name: string } }[] = [
    { desc: 'no external_ids, on a built-in switch', ids: {}, parent: { table: 'Logical_Switch', name: 'ovn-default' } },
    { desc: 'another controller\'s external_ids, on a built-in switch', ids: { 'neutron:id': 'x' }, parent: { table: 'Logical_Switch', name: 'join' } },
    { desc: 'no external_ids, on a foreign port group', ids: {}, parent: { table: 'Port_Group', name: 'pg_foreign' } },
    { desc: 'no external_ids, on one of our port groups', ids: {}, parent: { table: 'Port_Group', name: PG_DENY_INGRESS } },
    // The marker is ovnode:policy (docs/acl-priorities.md); a leftover ovnode:key alone is not it.
    { desc: 'ovnode:key but no ovnode:policy, on a built-in switch', ids: { [ROW_KEY]: 'legacy' }, parent: { table: 'Logical_Switch', name: 'ovn-default' } },
  ];
  it.each(cases)('an ACL with $desc survives every change', async ({ ids, parent }) => {
    env.fake.apply([
      { op: 'insert', table: 'Port_Group', row: { name: 'pg_foreign', ports: ovsSet([uuid(lspUuid('web.shop'))]) } },
      { op: 'insert', table: 'Address_Set', row: { name: 'as_foreign', addresses: ovsSet(['192.0.2.1']) } },
    ]);
    await converge(); // our port groups exist now
    const acl = foreignAcl(ids, parent);
    await env.nb.echo();
    const before = structuredClone(env.fake.rows('ACL').find((r) => r._uuid === acl));
    const seen: Operation[] = [];
    const step = async (change: () => void): Promise<void> => {
      change();
      const p = plan();
      seen.push(...p.ops);
      await apply(p);
    };
    await step(() => undefined);
    await step(() => store.apply(pod('db', 'shop', { labels: { app: 'web' } })));
    await step(() => store.remove('NetworkPolicy', 'allow-web', 'shop'));
    await step(() => store.remove('SecurityGroup', 'sg1'));
    await step(() => store.remove('NetworkPolicy', 'deny-all', 'shop'));
    expect(JSON.stringify(seen)).not.toContain(acl);
    expect(env.fake.rows('ACL').find((r) => r._uuid === acl)).toEqual(before);
    const parentRow = env.fake.rows(parent.table).find((r) => r.name === parent.name);
    expect(asArray(parentRow?.acls)).toContain(acl);
    expect(env.fake.rows('Port_Group').find((r) => r.name === 'pg_foreign')).toBeDefined();
    expect(asArray(env.fake.rows('Address_Set').find((r) => r.name === 'as_foreign')?.addresses)).toEqual(['192.0.2.1']);
  });
});

describe('Subnet objects', () => {
  const SUBNET = subnet('vswitch1', {
    cidrBlock: '10.10.0.0/24',
    acls: [
      { action: 'drop', direction: 'to-lport', match: 'ip4.dst == 10.10.0.2', priority: 1005 },
      { action: 'allow-related', direction: 'from-lport', match: 'ip4.src == 10.10.0.2', priority: 1006 },
    ],
  });

  it('creates the switch through the SwitchPlanner, then its ACLs, in one transaction', async () => {
    await converge();
    store.apply(SUBNET);
    const p = plan();
    expect(planner.created).toEqual([{ name: 'vswitch1', index: 2, cidrs: ['10.10.0.0/24'], gateways: ['10.10.0.1'] }]);
    // The switch row comes first, then the ACL rows, then the mutation that hangs them on it (by name).
    expect(summary(p.ops)).toEqual(['insert Logical_Switch', 'insert ACL', 'insert ACL', 'insert ACL', 'mutate Logical_Switch acls insert']);
    expect(whereUuid(p.ops[4] as Operation)).toEqual([['name', '==', 'vswitch1']]);
    await apply(p);
    const acls = aclsOf(env.nb, 'Logical_Switch', 'vswitch1');
    expect(acls.map((a) => [a.direction, a.priority, a.action, a.match, asMap(a.external_ids)[OWNER_KEY]])).toEqual([
      ['to-lport', 1, 'allow-related', 'ip', 'subnet/vswitch1'],
      ['to-lport', 1005, 'drop', 'ip4.dst == 10.10.0.2', 'subnet/vswitch1'],
      ['from-lport', 1006, 'allow-related', 'ip4.src == 10.10.0.2', 'subnet/vswitch1'],
    ]);
    expect(plan().ops).toEqual([]);
    expect(planner.created).toHaveLength(1);
  });

  it('a changed ACL replaces that ACL only; a removed Subnet goes through removeSwitchOps', async () => {
    store.apply(SUBNET);
    await converge();
    const kept = aclsOf(env.nb, 'Logical_Switch', 'vswitch1').filter((a) => a.priority !== 1005).map((a) => a._uuid).sort();
    store.apply(subnet('vswitch1', { cidrBlock: '10.10.0.0/24', acls: [
      { action: 'drop', direction: 'to-lport', match: 'ip4.dst == 10.10.0.2', priority: 1007 },
      { action: 'allow-related', direction: 'from-lport', match: 'ip4.src == 10.10.0.2', priority: 1006 },
    ] }));
    const p = plan();
    expect(summary(p.ops)).toEqual(['insert ACL', 'mutate Logical_Switch acls delete', 'mutate Logical_Switch acls insert']);
    expect(planner.created).toHaveLength(1);
    await apply(p);
    const now = aclsOf(env.nb, 'Logical_Switch', 'vswitch1');
    expect(now.map((a) => a.priority).sort()).toEqual([1, 1006, 1007]);
    expect(now.filter((a) => a.priority !== 1007).map((a) => a._uuid).sort()).toEqual(kept);

    store.remove('Subnet', 'vswitch1');
    const q = plan();
    expect(planner.removed).toEqual(['vswitch1']);
    expect(summary(q.ops)).toEqual(['delete Logical_Switch']);
    await apply(q);
    expect(plan().ops).toEqual([]);
  });

  it('a switch that still has pod ports is not removed', async () => {
    store.apply(SUBNET);
    await converge();
    env.fake.apply([
      { op: 'insert', table: 'Logical_Switch_Port', 'uuid-name': 'p', row: { name: 'x.shop' } },
      { op: 'mutate', table: 'Logical_Switch', where: [['name', '==', 'vswitch1']], mutations: [['ports', 'insert', ['named-uuid', 'p']]] },
    ]);
    await env.nb.echo();
    store.remove('Subnet', 'vswitch1');
    expect(plan().ops).toEqual([]);
    expect(planner.removed).toEqual([]);
  });

  it('a switch whose only ports are other nodes\' pods (marked, VIF type) is removed with them', async () => {
    store.apply(SUBNET);
    await converge();
    env.fake.apply([
      { op: 'insert', table: 'Logical_Switch_Port', 'uuid-name': 'p', row: { name: 'x.shop', type: '', external_ids: ['map', [['ovnode:remote-node', 'node2']]] } },
      { op: 'mutate', table: 'Logical_Switch', where: [['name', '==', 'vswitch1']], mutations: [['ports', 'insert', ['named-uuid', 'p']]] },
    ]);
    await env.nb.echo();
    store.remove('Subnet', 'vswitch1');
    expect(summary(plan().ops)).toEqual(['delete Logical_Switch']);
    expect(planner.removed).toEqual(['vswitch1']);
  });

  it('identical ACLs in a Subnet do not make the next plan non-empty', async () => {
    const acl = { action: 'drop' as const, direction: 'to-lport' as const, match: 'ip4.dst == 10.10.0.9', priority: 1005 };
    store.apply(subnet('vswitch1', { cidrBlock: '10.10.0.0/24', acls: [acl, acl] }));
    await apply(plan());
    expect(summary(plan().ops)).toEqual([]);
  });
});
