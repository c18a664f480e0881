// RemotePorts (remote-ports-sync.ts) on real OvsdbClients against FakeOvsdbServers with the real
// NB and SB schemas, pods from a MemoryStore. The reference is the whole computation
// (desiredRemotePorts + planRemotePorts): whichever passes ran, incremental or full, the NB must be
// a state it plans nothing on. Waits are on the clients' change events and idle(), never timers:
// the fake sends a transaction's update before its reply, so after idle() the caches are current.
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { PeerNode } from '../../../../daemon/cluster/node-contract';
import { planRemotePorts } from '../../../../daemon/cluster/remote-port-plan';
import { desiredRemotePorts } from '../../../../daemon/cluster/remote-ports';
import { REMOTE_NODE } from '../../../../daemon/store/external-ids';
import { RemotePorts } from '../../../../daemon/cluster/remote-ports-sync';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { PodObj } from '../../../../daemon/objects/types';
import { OvsdbClient } from '../../../../daemon/ovsdb/client';
import type { Operation } from '../../../../daemon/ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, type Row } from '../../../../daemon/ovsdb/values';
import { ANNOTATION } from '../../../../daemon/policy/port-settings';
import type { Fault } from '../../../fakes/fake-ovsdb-server';
import { FakeOvsdbServer } from '../../../fakes/fake-ovsdb-server';
import { monitoredClient, NB_SCHEMA, SB_SCHEMA } from '../../../fakes/ovn-zone-clients';
import { applyOk, viewOf } from '../../../fakes/fake-ovsdb-view';
import { seededRandom } from '../../../support/seeded-random';

const LS = 'Logical_Switch';
const LSP = 'Logical_Switch_Port';
const PB = 'Port_Binding';
const LOCAL = 'node1';
const JOIN = 'join';

const peer = (node: string, n: number): PeerNode => ({ node, chassisId: `ch-${node}`, encapIp: `10.250.0.${n}`, zone: node, transitIp: `100.64.0.${n}` });

interface PodState { name: string; namespace: string; node: string; ls: string; ip: string; mac: string; createdAt: string; deleting: boolean }

const podOf = (s: PodState): PodObj => ({
  kind: 'Pod',
  metadata: {
    name: s.name, namespace: s.namespace, labels: {},
    annotations: { [ANNOTATION.allocated]: 'true', [ANNOTATION.logicalSwitch]: s.ls, [ANNOTATION.ipAddress]: s.ip, [ANNOTATION.macAddress]: s.mac },
  },
  spec: { containers: [{ name: 'c', ports: [] }], nodeName: s.node },
  status: { createdAt: s.createdAt, deleting: s.deleting },
});

const podState = (name: string, node: string, ip: string, more: Partial<PodState> = {}): PodState =>
  ({ name, namespace: 'default', node, ls: ip.startsWith('10.18.') ? 'blue' : 'ovn-default', ip, mac: '0a:58:00:00:00:01', createdAt: '2026-01-01T00:00:00Z', deleting: false, ...more });

// ---- environment ----

interface LogLine { level: number; msg: string; reason?: string }
interface Env {
  nbFake: FakeOvsdbServer;
  sbFake: FakeOvsdbServer;
  nb: OvsdbClient;
  sb: OvsdbClient;
  store: MemoryStore;
  peers: PeerNode[];
  ports: RemotePorts;
  /** Every onAddressesGone report, flattened; tests splice it. */
  gone: string[];
  logs: LogLine[];
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function chassisOps(p: PeerNode): Operation[] {
  const ref = `e${p.node}`;
  return [
    { op: 'insert', table: 'Encap', 'uuid-name': ref, row: { type: 'geneve', ip: p.encapIp, chassis_name: p.chassisId } },
    { op: 'insert', table: 'Chassis', row: { name: p.chassisId, hostname: p.node, encaps: ovsSet([namedUuid(ref)]) } },
  ];
}

const client = (fake: FakeOvsdbServer, database: string): Promise<OvsdbClient> => monitoredClient(fake, database, cleanups);

/** This zone: ovn-default (its router port requests key 1), blue, join; peers node2 and node3 with SB chassis; started and idle. */
async function env(pods: PodState[] = [], opts: { retryMs?: number } = {}): Promise<Env> {
  const nbFake = await FakeOvsdbServer.start({ database: 'OVN_Northbound', schema: NB_SCHEMA });
  cleanups.push(() => nbFake.close());
  const sbFake = await FakeOvsdbServer.start({ database: 'OVN_Southbound', schema: SB_SCHEMA });
  cleanups.push(() => sbFake.close());
  const ls = (name: string, cidrs: string): Operation => ({ op: 'insert', table: LS, row: { name, external_ids: ovsMap({ 'ovnode:cidrs': cidrs }) } });
  applyOk(nbFake, [ls('ovn-default', '10.16.0.0/16'), ls('blue', '10.18.0.0/24'), ls(JOIN, '100.64.0.0/16'), ...localPortOps('ovn-default-ovn-cluster', 'ovn-default', 1)]);
  const peers = [peer('node1', 1), peer('node2', 2), peer('node3', 3)];
  applyOk(sbFake, [...chassisOps(peers[1] as PeerNode), ...chassisOps(peers[2] as PeerNode), { op: 'insert', table: 'Datapath_Binding', row: { tunnel_key: 1 } }]);
  const [nb, sb] = [await client(nbFake, 'OVN_Northbound'), await client(sbFake, 'OVN_Southbound')];
  const store = new MemoryStore();
  for (const p of pods) store.apply(podOf(p));
  const logs: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => { logs.push(JSON.parse(s) as LogLine); } });
  const gone: string[] = [];
  const ports = new RemotePorts({
    nb, sb, store, localNode: LOCAL, joinSwitch: JOIN, peers: () => peers, log, onAddressesGone: (ips) => gone.push(...ips), ...opts,
  });
  cleanups.push(() => ports.stop());
  await ports.start();
  await ports.idle();
  return { nbFake, sbFake, nb, sb, store, peers, ports, gone, logs };
}

/** A port of this node (no remote marker), linked to its switch, optionally requesting a key. */
function localPortOps(name: string, ls: string, key?: number): Operation[] {
  return [
    { op: 'insert', table: LSP, 'uuid-name': 'local', row: { name, options: ovsMap(key === undefined ? {} : { 'requested-tnl-key': String(key) }) } },
    { op: 'mutate', table: LS, where: [['name', '==', ls]], mutations: [['ports', 'insert', ovsSet([namedUuid('local')])]] },
  ];
}

/** Unlinks and deletes the NB port of that name (as the CNI DEL or createLsp's replacement does). */
function dropPortOps(e: Env, name: string): Operation[] {
  const row = lsp(e, name) as Row;
  const sw = [...e.nb.rows(LS).values()].find((s) => asArray<string>(s.ports).includes(row._uuid)) as Row;
  return [
    { op: 'mutate', table: LS, where: [['_uuid', '==', uuid(sw._uuid)]], mutations: [['ports', 'delete', ovsSet([uuid(row._uuid)])]] },
    { op: 'delete', table: LSP, where: [['_uuid', '==', uuid(row._uuid)]] },
  ];
}

const lsp = (e: Env, name: string): Row | undefined => [...e.nb.rows(LSP).values()].find((r) => r.name === name);
const isRemote = (r: Row | undefined): boolean => r !== undefined && asMap(r.external_ids)[REMOTE_NODE] !== undefined;
const remoteRows = (e: Env): Row[] => [...e.nb.rows(LSP).values()].filter(isRemote);
const remoteNames = (e: Env): string[] => remoteRows(e).map((r) => r.name as string).sort();

/** Resolves once `cond` holds on the client's cache (checked now and after each change it publishes). */
function until(c: OvsdbClient, cond: () => boolean): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve) => {
    const on = (): void => {
      if (!cond()) return;
      c.off('change', on);
      resolve();
    };
    c.on('change', on);
  });
}

/**
 * Applies ops to a fake behind RemotePorts' back, waits until its client saw `cond` (RemotePorts'
 * listener was added before ours, so it has requested its pass by then) and until that pass ran.
 */
async function external(e: Env, db: 'nb' | 'sb', ops: Operation[], cond: () => boolean): Promise<void> {
  applyOk(db === 'nb' ? e.nbFake : e.sbFake, ops);
  await until(db === 'nb' ? e.nb : e.sb, cond);
  await e.ports.idle();
}

/** The NB, in the client's cache and on the server, is what the whole computation wants. */
function expectConverged(e: Env): void {
  const desired = desiredRemotePorts({ store: e.store, localNode: LOCAL, joinSwitch: JOIN, peers: e.peers, nb: e.nb });
  expect(planRemotePorts(e.nb, desired)).toEqual([]);
  expect(planRemotePorts(viewOf(e.nbFake), desired)).toEqual([]);
}

const errors = (e: Env): LogLine[] => e.logs.filter((l) => l.level >= 50);

// ---- random churn ----

// Few addresses for many pods, so slots are often shared. 10.16.0.1 is the router port's key
// (a local slot); 10.16.200.1 is past the keyable range. node9 never joined.
const IPS: Record<string, string[]> = {
  'ovn-default': ['10.16.0.1', '10.16.0.2', '10.16.0.3', '10.16.0.4', '10.16.0.5', '10.16.0.6', '10.16.0.7', '10.16.0.8', '10.16.200.1'],
  blue: ['10.18.0.2', '10.18.0.3', '10.18.0.4'],
};
const NODES = ['node2', 'node2', 'node3', 'node3', LOCAL, 'node9'];
const TIMES = ['2026-01-01T00:00:00Z', '2026-01-01T00:01:00Z', '2026-01-01T00:02:00Z'];
const OPS = ['add', 'add', 'delete', 'ip', 'mac', 'deleting', 'twin', 'move', 'local', 'unjoined', 'switch'] as const;

function churn(e: Env, rand: () => number): { step: (pods: Map<string, PodState>) => void } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const fresh = (): PodState => {
    const ls = rand() < 0.8 ? 'ovn-default' : 'blue';
    return podState(`p${Math.floor(rand() * 14)}`, pick(NODES), pick(IPS[ls] as string[]), {
      namespace: pick(['default', 'team']), ls, mac: `0a:58:00:00:00:0${Math.floor(rand() * 8)}`, createdAt: pick(TIMES),
    });
  };
  const step = (pods: Map<string, PodState>): void => {
    const op = pick(OPS);
    const key = pick([...pods.keys()]);
    const cur = key === undefined ? undefined : pods.get(key);
    let next: PodState | undefined;
    if (!cur || op === 'add') next = fresh();
    else if (op === 'delete') {
      pods.delete(key as string);
      e.store.remove('Pod', cur.name, cur.namespace);
      return;
    } else if (op === 'ip') next = { ...cur, ip: pick(IPS[cur.ls] as string[]) };
    else if (op === 'mac') next = { ...cur, mac: `0a:58:00:00:01:0${Math.floor(rand() * 8)}` };
    else if (op === 'deleting') next = { ...cur, deleting: true };
    else if (op === 'twin') next = { ...fresh(), ls: cur.ls, ip: cur.ip };
    else if (op === 'move') next = { ...cur, node: cur.node === 'node2' ? 'node3' : 'node2' };
    else if (op === 'local') next = { ...cur, node: LOCAL };
    else if (op === 'unjoined') next = { ...cur, node: 'node9' };
    else {
      const ls = cur.ls === 'blue' ? 'ovn-default' : 'blue';
      next = { ...cur, ls, ip: pick(IPS[ls] as string[]) };
    }
    pods.set(`${next.namespace}/${next.name}`, next);
    e.store.apply(podOf(next));
  };
  return { step };
}

/** Addresses of our rows, by port name: what onAddressesGone must report when they change or go. */
function addressesByPort(e: Env): Map<string, { mac: string; ips: string[] }> {
  return new Map(remoteRows(e).map((r) => {
    const [mac, ...ips] = (asArray<string>(r.addresses)[0] ?? '').split(' ');
    return [r.name as string, { mac: mac ?? '', ips }];
  }));
}

describe('RemotePorts', () => {
  it.each([1, 7, 2026])('under random pod churn (seed %i) keeps the NB what a full computation wants, with incremental passes', async (seed) => {
    const e = await env();
    const rand = seededRandom(seed);
    const { step } = churn(e, rand);
    const pods = new Map<string, PodState>();
    let batches = 0;
    let maxPorts = 0;
    for (let done = 0; done < 300;) {
      const before = addressesByPort(e);
      const version = e.store.version;
      e.gone.splice(0);
      for (let n = 1 + Math.floor(rand() * 5); n > 0 && done < 300; n--, done++) step(pods);
      if (e.store.version !== version) batches++;
      await e.ports.idle();
      expectConverged(e);
      // Every address a port gave up in this batch (port gone, address dropped, MAC changed) was reported.
      const after = addressesByPort(e);
      for (const [name, was] of before) {
        const now = after.get(name);
        const kept = now && now.mac === was.mac ? new Set(now.ips) : new Set<string>();
        for (const ip of was.ips) if (!kept.has(ip)) expect(e.gone, `${name} gave up ${ip}`).toContain(ip);
      }
      maxPorts = Math.max(maxPorts, after.size);
    }
    expect(errors(e)).toEqual([]);
    // The churn did reach the cases it is for: shared addresses, a local slot, an unjoined node.
    const reasons = e.logs.map((l) => l.reason ?? '');
    for (const why of [/another pod has address/, /still a local port's/, /has not joined/, /outside the first 32767/]) expect(reasons.some((r) => why.test(r))).toBe(true);
    expect(maxPorts).toBeGreaterThan(4);
    // Only start() ran a full pass; each burst of pod changes was one incremental pass.
    expect(e.ports.passes.full).toBe(1);
    expect(e.ports.passes.incremental).toBe(batches);
  });

  it('reports the address of a deleted pod and the old address of a pod whose address changed', async () => {
    const e = await env([podState('a', 'node2', '10.16.0.5'), podState('b', 'node3', '10.16.0.6')]);
    expect(remoteNames(e)).toEqual(['a.default', 'b.default', 'node-node2', 'node-node3']);
    e.store.apply(podOf(podState('a', 'node2', '10.16.0.7')));
    await e.ports.idle();
    expect(e.gone.splice(0)).toEqual(['10.16.0.5']);
    expect(asMap(lsp(e, 'a.default')?.options)['requested-tnl-key']).toBe('7');
    e.store.remove('Pod', 'b', 'default');
    await e.ports.idle();
    expect(e.gone.splice(0)).toEqual(['10.16.0.6']);
    expect(remoteNames(e)).toEqual(['a.default', 'node-node2', 'node-node3']);
    expect(e.ports.passes).toEqual({ full: 1, incremental: 2 });
  });

  it('binds each remote binding northd creates to its node\'s chassis, and again when it loses it', async () => {
    const e = await env([podState('a', 'node2', '10.16.0.5'), podState('b', 'node3', '10.16.0.6'), podState('c', 'node2', '10.18.0.7')]);
    const dp = e.sbFake.rows('Datapath_Binding')[0]?._uuid as string;
    let key = 0;
    // Plays northd: one Port_Binding (a VIF's, type "") per remote LSP, none for ports that went; no chassis.
    const northd = async (): Promise<void> => {
      const want = new Set(remoteNames(e));
      const have = new Map(e.sbFake.rows(PB).map((r) => [r.logical_port as string, r._uuid]));
      const ops: Operation[] = [
        ...[...want].filter((n) => !have.has(n)).map((n): Operation => ({ op: 'insert', table: PB, row: { logical_port: n, type: '', datapath: uuid(dp), tunnel_key: ++key } })),
        ...[...have].filter(([n]) => !want.has(n)).map(([, u]): Operation => ({ op: 'delete', table: PB, where: [['_uuid', '==', uuid(u)]] })),
      ];
      const names = (): string => [...e.sb.rows(PB).values()].map((r) => r.logical_port as string).sort().join();
      await external(e, 'sb', ops, () => names() === [...want].sort().join());
    };
    const chassisOf = (name: string): string | undefined => [...e.sb.rows('Chassis').values()].find((c) => c.name === name)?._uuid;
    const bound = (): Record<string, string | undefined> => Object.fromEntries([...e.sb.rows(PB).values()]
      .map((r) => [r.logical_port as string, [...e.sb.rows('Chassis').values()].find((c) => c._uuid === asArray<string>(r.chassis)[0])?.name as string | undefined]));
    await northd();
    expect(bound()).toEqual({ 'a.default': 'ch-node2', 'b.default': 'ch-node3', 'c.default': 'ch-node2', 'node-node2': 'ch-node2', 'node-node3': 'ch-node3' });
    const full = e.ports.passes.full;

    // A binding left without its chassis (as after a northd re-creation) gets it back, incrementally.
    const pbA = [...e.sb.rows(PB).values()].find((r) => r.logical_port === 'a.default') as Row;
    await external(e, 'sb', [{ op: 'update', table: PB, where: [['_uuid', '==', uuid(pbA._uuid)]], row: { chassis: ovsSet([]) } }],
      () => asArray(e.sb.rows(PB).get(pbA._uuid)?.chassis).length === 0);
    expect(bound()['a.default']).toBe('ch-node2');
    // A pod moving to another node: its port and binding follow in the same incremental pass.
    e.store.apply(podOf(podState('a', 'node3', '10.16.0.5')));
    await e.ports.idle();
    expect(asMap(lsp(e, 'a.default')?.options)['requested-chassis']).toBe('ch-node3');
    expect(bound()['a.default']).toBe('ch-node3');
    expect(e.ports.passes.full).toBe(full);

    // node3's chassis goes (its bindings lose it: a weak reference) and comes back: a full pass binds them again.
    await external(e, 'sb', [{ op: 'delete', table: 'Chassis', where: [['name', '==', 'ch-node3']] }], () => chassisOf('ch-node3') === undefined);
    expect(bound()['b.default']).toBeUndefined();
    await external(e, 'sb', chassisOps(e.peers[2] as PeerNode), () => chassisOf('ch-node3') !== undefined);
    expect(bound()).toEqual({ 'a.default': 'ch-node3', 'b.default': 'ch-node3', 'c.default': 'ch-node2', 'node-node2': 'ch-node2', 'node-node3': 'ch-node3' });
    expect(e.ports.passes.full).toBe(full + 2);
    expect(errors(e)).toEqual([]);
  });

  it('gives way to a local port of the same name or key, and comes back when it goes (full passes)', async () => {
    const e = await env([podState('x', 'node2', '10.16.0.9'), podState('y', 'node3', '10.16.0.10')]);
    const full = e.ports.passes.full;
    // The pod's previous sandbox here: its ADD replaced the remote port by a local one in one transaction.
    await external(e, 'nb', [...dropPortOps(e, 'x.default'), ...localPortOps('x.default', 'ovn-default')], () => lsp(e, 'x.default') !== undefined && !isRemote(lsp(e, 'x.default')));
    expect(isRemote(lsp(e, 'x.default'))).toBe(false);
    expect(e.ports.passes.full).toBe(full + 1);
    expectConverged(e);
    await external(e, 'nb', dropPortOps(e, 'x.default'), () => lsp(e, 'x.default') === undefined || isRemote(lsp(e, 'x.default')));
    expect(asMap(lsp(e, 'x.default')?.external_ids)[REMOTE_NODE]).toBe('node2');
    expect(e.ports.passes.full).toBe(full + 2);

    // A local port still requesting y's key on its switch (its DEL not done yet): y's port goes, then returns.
    e.gone.splice(0);
    await external(e, 'nb', localPortOps('old-y.default', 'ovn-default', 10), () => lsp(e, 'old-y.default') !== undefined);
    expect(lsp(e, 'y.default')).toBeUndefined();
    expect(e.gone).toEqual(['10.16.0.10']);
    expectConverged(e);
    await external(e, 'nb', dropPortOps(e, 'old-y.default'), () => lsp(e, 'old-y.default') === undefined);
    expect(asMap(lsp(e, 'y.default')?.options)).toEqual({ 'requested-chassis': 'ch-node3', 'requested-tnl-key': '10' });
    expect(e.ports.passes.full).toBe(full + 4);
    expectConverged(e);
  });

  it.each<Fault['kind']>(['fail-commit', 'disconnect-before-commit'])('after a failed NB transaction (%s), a full pass makes the NB right', async (kind) => {
    const e = await env([podState('a', 'node2', '10.16.0.5')], { retryMs: 50 });
    const full = e.ports.passes.full;
    const fault = e.nbFake.faults.next({ kind, match: { comment: 'remote ports' } } as Fault);
    e.store.apply(podOf(podState('z', 'node3', '10.16.0.6')));
    await fault.fired;
    await e.ports.idle();
    expect(lsp(e, 'z.default')).toBeUndefined();
    expect(errors(e)).toHaveLength(1);
    // No pod changes since: only a full retry (not an incremental pass with nothing dirty) writes
    // z's port. Without a retry this waits forever: the test's timeout is the failure.
    await until(e.nb, () => isRemote(lsp(e, 'z.default')));
    await e.ports.idle();
    expectConverged(e);
    expect(e.ports.passes.full).toBeGreaterThan(full);
  });

  it('drops the ports of a peer that left and writes them again when it is back', async () => {
    const e = await env([podState('a', 'node2', '10.16.0.5'), podState('b', 'node3', '10.16.0.6'), podState('c', 'node3', '10.18.0.6')]);
    expect(remoteNames(e)).toEqual(['a.default', 'b.default', 'c.default', 'node-node2', 'node-node3']);
    const node3 = e.peers.splice(2, 1);
    await e.ports.sync();
    expect(remoteNames(e)).toEqual(['a.default', 'node-node2']);
    expect(e.gone.splice(0).sort()).toEqual(['10.16.0.6', '10.18.0.6', '100.64.0.3']);
    expectConverged(e);
    e.peers.push(...node3);
    await e.ports.sync();
    expect(remoteNames(e)).toEqual(['a.default', 'b.default', 'c.default', 'node-node2', 'node-node3']);
    expectConverged(e);
    expect(e.ports.passes).toEqual({ full: 3, incremental: 0 });
  });

  // A pod leaving the join switch frees a slot a peer's node port wanted: decided by a full pass.
  it('writes a peer\'s node port back when the pod that held its join-switch slot goes', async () => {
    const e = await env([podState('j', 'node3', '100.64.0.2', { ls: JOIN })]);
    expect(remoteNames(e)).toEqual(['j.default', 'node-node3']);
    e.store.remove('Pod', 'j', 'default');
    await e.ports.idle();
    expect(remoteNames(e)).toEqual(['node-node2', 'node-node3']);
  });
});
