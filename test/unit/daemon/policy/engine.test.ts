// PolicyEngine with a MemoryStore and a fake NB: start() applies, store changes trigger runs,
// bursts coalesce, a failed transaction is retried on the next change, Subnet objects become
// switches on the router, and admissionOps puts a new port into its groups and sets.
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SubnetRegistry } from '../../../../daemon/ipam/registry';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { KubeObject } from '../../../../daemon/objects/types';
import type { Operation } from '../../../../daemon/ovsdb/types';
import { asArray, asMap, namedUuid, ovsSet } from '../../../../daemon/ovsdb/values';
import { PolicyEngine } from '../../../../daemon/policy/engine';
import { PG_DENY_INGRESS, asNetworkPolicyPeer, asSecurityGroup, pgNetworkPolicy, pgSecurityGroup } from '../../../../daemon/policy/names';
import type { PodPort } from '../../../../daemon/policy/pods';
import { planReconcile } from '../../../../daemon/policy/reconcile';
import { SG_ANNOTATION } from '../../../../daemon/policy/security-groups';
import {
  BUILTIN, JOIN_CIDR, NODE_IPS, RecordingSwitchPlanner, aclsOf, addressesOf, byName, lspInsertOps, namespace, netpol, pod,
  portNames, secgroup, sel, startNb, subnet, type Nb, type NbPod,
} from './helpers';

interface LogLine { level: number; msg: string; reason?: string; ops?: number; [k: string]: unknown }

/** A pino destination that keeps every line and announces it. */
class LogSink extends EventEmitter {
  readonly lines: LogLine[] = [];
  write(s: string): void {
    const line = JSON.parse(s) as LogLine;
    this.lines.push(line);
    this.emit('line', line);
  }
  /** The next line (from now on) satisfying `pred`. */
  next(pred: (l: LogLine) => boolean): Promise<LogLine> {
    return new Promise((resolve) => {
      const on = (l: LogLine): void => {
        if (!pred(l)) return;
        this.off('line', on);
        resolve(l);
      };
      this.on('line', on);
    });
  }
  get runs(): LogLine[] { return this.lines.filter((l) => l.msg === 'policy applied'); }
}

/** Lets a run that has just logged finish (its promise settles in the next microtasks). */
const idle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const applied = (reason?: string) => (l: LogLine): boolean => l.msg === 'policy applied' && (reason === undefined || l.reason === reason);

const NB_PODS: NbPod[] = [
  { name: 'web', namespace: 'shop', ips: ['10.16.0.10'], mac: '0a:58:0a:10:00:0a' },
  { name: 'db', namespace: 'shop', ips: ['10.16.0.20'], mac: '0a:58:0a:10:00:14' },
  { name: 'prom', namespace: 'monitoring', ips: ['10.16.2.10'], mac: '0a:58:0a:10:02:0a' },
];
const ALLOW_WEB = netpol('allow-web', 'shop', {
  podSelector: sel({ app: 'web' }),
  ingress: [{ peers: [{ namespaceSelector: sel({ team: 'ops' }), podSelector: sel({ app: 'prom' }) }], ports: [{ protocol: 'TCP', port: 80 }] }],
});
const OBJECTS: KubeObject[] = [
  namespace('shop'), namespace('monitoring', { team: 'ops' }),
  pod('web', 'shop', { labels: { app: 'web' } }),
  pod('db', 'shop', { labels: { app: 'db' }, annotations: { [SG_ANNOTATION]: 'sg1' } }),
  pod('prom', 'monitoring', { labels: { app: 'prom' } }),
  ALLOW_WEB, secgroup('sg1', { allowSameGroupTraffic: true }),
];
const PG_ALLOW_WEB = pgNetworkPolicy('shop', 'allow-web');
const AS_PROM4 = asNetworkPolicyPeer('shop', 'allow-web', 'in', 0, 0, 4);

let env: Nb;
let store: MemoryStore;
let sink: LogSink;
let engine: PolicyEngine;

beforeEach(async () => {
  env = await startNb(NB_PODS);
  store = new MemoryStore();
  for (const o of OBJECTS) store.apply(o);
  sink = new LogSink();
  const subnets = new SubnetRegistry('ovn-default');
  for (const b of BUILTIN) subnets.add(b);
  engine = new PolicyEngine({ nb: env.nb, store, subnets, log: pino({ level: 'debug', base: undefined }, sink), builtin: BUILTIN, joinCidrs: [JOIN_CIDR], nodeIps: NODE_IPS });
});

afterEach(async () => {
  await env.close();
});

/** Operations a fresh plan of the engine's last desired state would still write. */
function remaining(): Operation[] {
  const desired = engine.desired;
  if (!desired) throw new Error('the engine has not run');
  return planReconcile(env.nb, desired, new RecordingSwitchPlanner(env.nb)).ops;
}

describe('runs', () => {
  it('start() applies the whole state once, and the NB then matches it', async () => {
    await engine.start();
    expect(sink.runs).toHaveLength(1);
    expect(sink.runs[0]).toMatchObject({ reason: 'start', step: 'policy' });
    expect(sink.runs[0]?.ops).toBeGreaterThan(0);
    expect(portNames(env.nb, PG_ALLOW_WEB)).toEqual(['web.shop']);
    expect(portNames(env.nb, PG_DENY_INGRESS)).toEqual(['web.shop']);
    expect(portNames(env.nb, pgSecurityGroup('sg1'))).toEqual(['db.shop']);
    expect(addressesOf(env.nb, AS_PROM4)).toEqual(['10.16.2.10']);
    expect(remaining()).toEqual([]);
  });

  it('a second run with unchanged inputs writes nothing', async () => {
    await engine.start();
    await engine.reconcileNow('again');
    expect(sink.runs.at(-1)).toMatchObject({ reason: 'again', ops: 0 });
    expect(env.fake.requests.filter((r) => r.method === 'transact')).toHaveLength(1);
  });

  it('repairs sets and groups changed in the NB behind its back, although unchanged runs skip them', async () => {
    await engine.start();
    await engine.reconcileNow('again'); // every row is now known to be in step
    const set = byName(env.nb, 'Address_Set', AS_PROM4);
    const group = byName(env.nb, 'Port_Group', PG_ALLOW_WEB);
    await env.nb.transact([
      { op: 'mutate', table: 'Address_Set', where: [['_uuid', '==', ['uuid', set?._uuid as string]]], mutations: [['addresses', 'insert', ovsSet(['192.0.2.66'])]] },
      { op: 'update', table: 'Port_Group', where: [['_uuid', '==', ['uuid', group?._uuid as string]]], row: { ports: ovsSet([]) } },
    ]);
    expect(addressesOf(env.nb, AS_PROM4)).toEqual(['10.16.2.10', '192.0.2.66']);
    await engine.reconcileNow('drift');
    expect(sink.runs.at(-1)).toMatchObject({ reason: 'drift', ops: 2 });
    expect(addressesOf(env.nb, AS_PROM4)).toEqual(['10.16.2.10']);
    expect(portNames(env.nb, PG_ALLOW_WEB)).toEqual(['web.shop']);
  });

  it('a store change triggers a run that applies it', async () => {
    await engine.start();
    const done = sink.next(applied('objects'));
    store.apply(pod('db', 'shop', { labels: { app: 'web' }, annotations: { [SG_ANNOTATION]: 'sg1' } }));
    const run = await done;
    // db joins the policy's group and, now isolated, the deny group.
    expect(run).toMatchObject({ ops: 2, portsChanged: 2 });
    expect(portNames(env.nb, PG_ALLOW_WEB)).toEqual(['db.shop', 'web.shop']);
    expect(portNames(env.nb, PG_DENY_INGRESS)).toEqual(['db.shop', 'web.shop']);
    expect(remaining()).toEqual([]);
  });

  it('a burst of 10 changes coalesces into far fewer runs, ending in the final state', async () => {
    await engine.start();
    const before = sink.runs.length;
    const last = sink.next(applied('coalesced'));
    for (let i = 0; i < 10; i++) store.apply(netpol(`np-${i}`, 'shop', { podSelector: sel({ app: 'db' }) }));
    await last;
    await new Promise((r) => setTimeout(r, 50)); // any straggler run would have logged by now
    const runs = sink.runs.length - before;
    expect(runs).toBeGreaterThanOrEqual(1);
    expect(runs).toBeLessThanOrEqual(2);
    for (let i = 0; i < 10; i++) expect(portNames(env.nb, pgNetworkPolicy('shop', `np-${i}`))).toEqual(['db.shop']);
    expect(portNames(env.nb, PG_DENY_INGRESS)).toEqual(['db.shop', 'web.shop']);
    expect(remaining()).toEqual([]);
  });

  it('schedule() during a run resolves after a run that saw the change', async () => {
    await engine.start();
    store.apply(netpol('np-a', 'shop', { podSelector: sel({ app: 'db' }) })); // starts a run
    store.apply(netpol('np-b', 'shop', { podSelector: sel({ app: 'db' }) })); // during it
    await engine.schedule('waiter');
    expect(byName(env.nb, 'Port_Group', pgNetworkPolicy('shop', 'np-b'))).toBeDefined();
  });

  it('a failed NB transaction is logged and the next change retries', async () => {
    await engine.start();
    env.fake.failNextTransaction();
    const failed = sink.next((l) => l.msg.startsWith('policy apply failed'));
    store.apply(netpol('np-x', 'shop', { podSelector: sel({ app: 'db' }) }));
    expect(await failed).toMatchObject({ reason: 'objects', step: 'policy' });
    await idle();
    expect(byName(env.nb, 'Port_Group', pgNetworkPolicy('shop', 'np-x'))).toBeUndefined();
    const ok = sink.next(applied('objects'));
    store.apply(namespace('other'));
    await ok;
    expect(portNames(env.nb, pgNetworkPolicy('shop', 'np-x'))).toEqual(['db.shop']);
  });

  it('a Subnet object becomes a switch on the router with its ACLs; the next run writes nothing', async () => {
    await engine.start();
    const done = sink.next(applied('objects'));
    store.apply(subnet('vswitch1', { cidrBlock: '10.10.0.0/24', namespaces: ['team'], acls: [{ action: 'drop', direction: 'to-lport', match: 'ip4.dst == 10.10.0.2', priority: 1005 }] }));
    await done;
    await idle();
    const ls = byName(env.nb, 'Logical_Switch', 'vswitch1');
    expect(asMap(ls?.external_ids)).toMatchObject({ 'ovnode:subnet': 'true', 'ovnode:cidrs': '10.10.0.0/24', 'ovnode:gateways': '10.10.0.1' });
    expect(aclsOf(env.nb, 'Logical_Switch', 'vswitch1').map((a) => [a.priority, a.match])).toEqual([[1, 'ip'], [1005, 'ip4.dst == 10.10.0.2']]);
    const lrp = byName(env.nb, 'Logical_Router_Port', 'ovn-cluster-vswitch1');
    expect(asArray(lrp?.networks)).toEqual(['10.10.0.1/24']);
    expect(asArray(byName(env.nb, 'Logical_Router', 'ovn-cluster')?.ports)).toContain(lrp?._uuid);
    expect(engine.switchFor(undefined, 'team')).toBe('vswitch1');
    await engine.reconcileNow('again');
    expect(sink.runs.at(-1)).toMatchObject({ reason: 'again', ops: 0 });
  });
});

describe('underlay subnets (Subnet.spec.vlan)', () => {
  const vlan = (name: string, id: number, provider: string): KubeObject => ({ kind: 'Vlan', metadata: { name, namespace: '', labels: {}, annotations: {} }, spec: { id, provider } } as unknown as KubeObject);
  /** The daemon does not monitor `tag`: read from the server. */
  const tagOf = async (lsp: string): Promise<number[]> => {
    const [r] = await env.nb.transact([{ op: 'select', table: 'Logical_Switch_Port', where: [['name', '==', lsp]], columns: ['tag'] }]);
    const tag = (r?.rows as Array<{ tag: unknown }> | undefined)?.[0]?.tag;
    // Wire form: the bare integer, or ["set", [...]].
    if (typeof tag === 'number') return [tag];
    return Array.isArray(tag) && tag[0] === 'set' ? (tag[1] as number[]) : [];
  };
  const lsps = (ls: string): string[] => asArray<string>(byName(env.nb, 'Logical_Switch', ls)?.ports).map((u) => env.nb.rows('Logical_Switch_Port').get(u)?.name as string).sort();
  const run = async (what: string, change: () => void): Promise<void> => {
    const done = sink.next((l) => applied('objects')(l) || l.msg.startsWith('policy apply failed'));
    change();
    const line = await done;
    if (line.msg !== 'policy applied') throw new Error(`${what}: ${JSON.stringify(line)}`);
    await idle();
  };

  it('a localnet port with the Vlan\'s provider and tag, no router port; VLAN and gateway mode changes follow; overlay again removes it', async () => {
    await engine.start();
    await run('underlay', () => { store.apply(vlan('v100', 100, 'phys')); store.apply(subnet('under', { cidrBlock: '192.168.100.0/24', gateway: '192.168.100.1', vlan: 'v100' })); });
    expect(lsps('under')).toEqual(['localnet.under']);
    const ln = byName(env.nb, 'Logical_Switch_Port', 'localnet.under');
    expect(ln?.type).toBe('localnet');
    expect(asArray(ln?.addresses)).toEqual(['unknown']);
    expect(asMap(ln?.options)).toEqual({ network_name: 'phys' });
    expect(await tagOf('localnet.under')).toEqual([100]);
    expect(byName(env.nb, 'Logical_Router_Port', 'ovn-cluster-under')).toBeUndefined();
    await engine.reconcileNow('again');
    expect(sink.runs.at(-1)).toMatchObject({ reason: 'again', ops: 0 });

    await run('retag', () => store.apply(vlan('v100', 200, 'phys')));
    expect(await tagOf('localnet.under')).toEqual([200]);

    await run('logical gateway', () => store.apply(subnet('under', { cidrBlock: '192.168.100.0/24', gateway: '192.168.100.1', vlan: 'v100', logicalGateway: true })));
    expect(lsps('under')).toEqual(['localnet.under', 'under-ovn-cluster']);
    expect(asArray(byName(env.nb, 'Logical_Router_Port', 'ovn-cluster-under')?.networks)).toEqual(['192.168.100.1/24']);

    const lrp = byName(env.nb, 'Logical_Router_Port', 'ovn-cluster-under')?._uuid;
    await run('physical gateway', () => store.apply(subnet('under', { cidrBlock: '192.168.100.0/24', gateway: '192.168.100.1', vlan: 'v100' })));
    expect(lsps('under')).toEqual(['localnet.under']);
    // Unlinked from the router (the real schema then garbage-collects the row; this test's has no roots).
    expect(asArray(byName(env.nb, 'Logical_Router', 'ovn-cluster')?.ports)).not.toContain(lrp);

    await run('overlay', () => store.apply(subnet('under', { cidrBlock: '192.168.100.0/24', gateway: '192.168.100.1' })));
    expect(lsps('under')).toEqual(['under-ovn-cluster']);
  });

  it('a VLAN id 0 is untagged', async () => {
    await engine.start();
    await run('untagged', () => { store.apply(vlan('native', 0, 'phys')); store.apply(subnet('flat', { cidrBlock: '192.168.50.0/24', vlan: 'native' })); });
    expect(byName(env.nb, 'Logical_Switch_Port', 'localnet.flat')?.type).toBe('localnet');
    expect(await tagOf('localnet.flat')).toEqual([]);
  });
});

describe('switchFor', () => {
  const cases: { desc: string; annotations: Record<string, string> | undefined; ns: string | undefined; want: string | undefined }[] = [
    { desc: 'the logical_switch annotation wins', annotations: { 'ovn.kubernetes.io/logical_switch': 'other' }, ns: 'team', want: 'other' },
    { desc: 'a Subnet that lists the namespace', annotations: {}, ns: 'team', want: 'vswitch1' },
    { desc: 'no pod, namespace listed', annotations: undefined, ns: 'team', want: 'vswitch1' },
    { desc: 'a namespace no Subnet lists: none (the default switch applies)', annotations: {}, ns: 'shop', want: undefined },
    { desc: 'no namespace', annotations: undefined, ns: undefined, want: undefined },
  ];
  it.each(cases)('$desc', ({ annotations, ns, want }) => {
    store.apply(subnet('vswitch1', { cidrBlock: '10.10.0.0/24', namespaces: ['team'] }));
    const p = annotations === undefined ? undefined : pod('p', ns ?? 'default', { annotations });
    expect(engine.switchFor(p, ns)).toBe(want);
  });
});

describe('admissionOps', () => {
  const NEW = { name: 'new', namespace: 'shop', ips: ['10.16.0.30'], mac: '0a:58:0a:10:00:1e' };
  const view = (p: NbPod, labels: Record<string, string>, annotations: Record<string, string> = {}): Omit<PodPort, 'namespaceLabels'> => ({
    lspName: `${p.name}.${p.namespace}`, name: p.name, namespace: p.namespace, logicalSwitch: 'ovn-default',
    mac: p.mac ?? '', ips: p.ips, labels, pod: pod(p.name, p.namespace, { labels, annotations }),
  });
  const pgInsert = (name: string): Operation => ({ op: 'mutate', table: 'Port_Group', where: [['name', '==', name]], mutations: [['ports', 'insert', ovsSet([namedUuid('lsp')])]] });
  const asInsert = (name: string, ips: string[]): Operation => ({ op: 'mutate', table: 'Address_Set', where: [['name', '==', name]], mutations: [['addresses', 'insert', ovsSet(ips)]] });

  const cases: { desc: string; p: NbPod; labels: Record<string, string>; annotations?: Record<string, string>; ops: Operation[] }[] = [
    { desc: 'selected by a policy: its group and the deny group', p: NEW, labels: { app: 'web' }, ops: [pgInsert(PG_ALLOW_WEB), pgInsert(PG_DENY_INGRESS)] },
    { desc: 'selected by nothing: no operation', p: NEW, labels: { app: 'none' }, ops: [] },
    {
      // Its addresses reach the group's northd-maintained <pg>_ip4 set through the port itself.
      desc: 'a security group member: its group only',
      p: NEW, labels: { app: 'none' }, annotations: { [SG_ANNOTATION]: 'sg1' },
      ops: [pgInsert(pgSecurityGroup('sg1'))],
    },
    {
      desc: 'a policy peer: the peer address set only',
      p: { name: 'prom2', namespace: 'monitoring', ips: ['10.16.2.11'], mac: '0a:58:0a:10:02:0b' }, labels: { app: 'prom' },
      ops: [asInsert(AS_PROM4, ['10.16.2.11'])],
    },
  ];
  it.each(cases)('$desc', async ({ p, labels, annotations, ops }) => {
    await engine.start();
    const got = engine.admissionOps(view(p, labels, annotations), 'lsp');
    expect(got).toEqual(ops);
    // In the ADD's own transaction, next to the port's insert: the NB is then already as desired.
    const podRun = sink.next(applied('objects'));
    store.apply(pod(p.name, p.namespace, { labels, annotations: annotations ?? {} }));
    expect(await podRun).toMatchObject({ ops: 0 }); // the Pod object alone, without its port, changes nothing
    await idle();
    await env.nb.transact([...lspInsertOps(p, 'lsp'), ...got]);
    const lsp = byName(env.nb, 'Logical_Switch_Port', `${p.name}.${p.namespace}`);
    for (const op of got) {
      if (op.op !== 'mutate' || op.table !== 'Port_Group') continue;
      const name = op.where[0]?.[2] as string;
      expect(asArray(byName(env.nb, 'Port_Group', name)?.ports)).toContain(lsp?._uuid);
    }
    await engine.reconcileNow('pod added');
    expect(sink.runs.at(-1)).toMatchObject({ reason: 'pod added', ops: 0 });
  });

  it('a group that is not in the NB yet is left to the next run', async () => {
    await engine.start();
    const removed = sink.next(applied('objects'));
    store.remove('NetworkPolicy', 'allow-web', 'shop');
    await removed;
    await idle();
    expect(byName(env.nb, 'Port_Group', PG_ALLOW_WEB)).toBeUndefined();
    // A second engine whose store has the policy, before any run of its own wrote its group.
    const other = new MemoryStore();
    for (const o of OBJECTS) other.apply(o);
    const e2 = new PolicyEngine({ nb: env.nb, store: other, subnets: new SubnetRegistry('ovn-default'), log: pino({ enabled: false }), builtin: BUILTIN, joinCidrs: [JOIN_CIDR], nodeIps: NODE_IPS });
    expect(e2.admissionOps(view(NEW, { app: 'web' }), 'lsp')).toEqual([pgInsert(PG_DENY_INGRESS)]);
  });
});
