// Remote ports: other nodes' pods on this zone's shared switches. The NB is a FakeOvsdbServer
// with the real OVN_Northbound schema, so planned operations are applied for real (references,
// the unique LSP name index) and a second pass must plan nothing; the planners read it through a
// `rows(table)` view holding decoded rows, as the monitor cache does. Pods come from a MemoryStore.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { desiredRemotePorts, type RemotePort } from '../../../../daemon/cluster/remote-ports';
import { REMOTE_NODE } from '../../../../daemon/store/external-ids';
import { planBindings, planRemotePorts } from '../../../../daemon/cluster/remote-port-plan';
import type { PeerNode } from '../../../../daemon/cluster/node-contract';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { PodObj } from '../../../../daemon/objects/types';
import type { OvsdbClient } from '../../../../daemon/ovsdb/client';
import type { Operation } from '../../../../daemon/ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, type Row } from '../../../../daemon/ovsdb/values';
import { ANNOTATION } from '../../../../daemon/policy/port-settings';
import { FakeOvsdbServer, loadSchema, NB_SCHEMA_PATH } from '../../../fakes/fake-ovsdb-server';
import { applyOk, closedAfterEach, viewOf, type View } from '../../../fakes/fake-ovsdb-view';

const NB_SCHEMA = loadSchema(NB_SCHEMA_PATH);
const SB_SCHEMA = loadSchema(NB_SCHEMA_PATH.replace('ovn-nb', 'ovn-sb'));
const LS = 'Logical_Switch';
const LSP = 'Logical_Switch_Port';

const LOCAL = 'node1';
const peer = (node: string): PeerNode => ({ node, chassisId: `ch-${node}`, encapIp: '10.250.0.1', zone: node });
const PEERS: PeerNode[] = [peer('node1'), peer('node2'), peer('node3')];

// ---- pods ----

interface PodSpec {
  node?: string;
  ip?: string;
  mac?: string;
  ls?: string;
  allocated?: string;
  hostNetwork?: boolean;
  finished?: boolean;
  ns?: string;
}

function pod(name: string, s: PodSpec): PodObj {
  const annotations: Record<string, string> = { [ANNOTATION.allocated]: s.allocated ?? 'true', [ANNOTATION.logicalSwitch]: s.ls ?? 'ovn-default' };
  if (s.ip !== undefined) annotations[ANNOTATION.ipAddress] = s.ip;
  if (s.mac !== '') annotations[ANNOTATION.macAddress] = s.mac ?? '0a:58:0a:10:00:05';
  const p: PodObj = {
    kind: 'Pod',
    metadata: { name, namespace: s.ns ?? 'default', labels: {}, annotations },
    spec: { containers: [{ name: 'c', ports: [] }], nodeName: s.node ?? 'node2' },
  };
  if (s.hostNetwork) p.spec.hostNetwork = true;
  if (s.finished) p.status = { finished: true };
  return p;
}

function storeOf(...pods: PodObj[]): MemoryStore {
  const store = new MemoryStore();
  for (const p of pods) store.apply(p);
  return store;
}

// ---- NB / SB fakes ----


const fakes = closedAfterEach();

function switchRow(name: string, cidrs?: string): Operation {
  const ids: Record<string, string> = { 'ovnode:owner': 'ovnode' };
  if (cidrs !== undefined) ids['ovnode:cidrs'] = cidrs;
  return { op: 'insert', table: LS, row: { name, external_ids: ovsMap(ids) } };
}

/** A port of this node (no remote-node id), optionally with a requested key, linked to its switch. */
function localPortOps(name: string, ls: string, opts: { key?: number; type?: string; ref?: string } = {}): Operation[] {
  const ref = opts.ref ?? `l${name.replace(/[^a-z0-9]/gi, '')}`;
  const options: Record<string, string> = opts.key === undefined ? {} : { 'requested-tnl-key': String(opts.key) };
  return [
    { op: 'insert', table: LSP, 'uuid-name': ref, row: { name, type: opts.type ?? '', addresses: ovsSet(['0a:58:0a:10:00:09 10.16.0.9']), options: ovsMap(options), external_ids: ovsMap({ 'ovnode:owner': 'ovnode' }) } },
    { op: 'mutate', table: LS, where: [['name', '==', ls]], mutations: [['ports', 'insert', ovsSet([namedUuid(ref)])]] },
  ];
}

/**
 * This zone's NB: ovn-default (dual stack, IPv4 CIDR listed second) with its router port keyed 1,
 * blue (10.18.0.0/24), and a switch ovnode did not create (no ovnode:cidrs).
 */
async function zone(extra: Operation[] = []): Promise<{ fake: FakeOvsdbServer; nb: View }> {
  const fake = await FakeOvsdbServer.start({ database: 'OVN_Northbound', schema: NB_SCHEMA });
  fakes.push(fake);
  applyOk(fake, [
    switchRow('ovn-default', 'fd00:10:16::/64,10.16.0.0/16'),
    switchRow('blue', '10.18.0.0/24'),
    switchRow('foreign'),
    ...localPortOps('ovn-default-ovn-cluster', 'ovn-default', { key: 1, type: 'router', ref: 'rp' }),
    ...extra,
  ]);
  return { fake, nb: viewOf(fake) };
}

const lspByName = (fake: FakeOvsdbServer, name: string): Row | undefined => fake.rows(LSP).find((r) => r.name === name);

/** Names of the ports a switch holds, sorted. */
function portsOf(fake: FakeOvsdbServer, ls: string): string[] {
  const sw = fake.rows(LS).find((r) => r.name === ls);
  const byUuid = new Map(fake.rows(LSP).map((r) => [r._uuid, r.name as string]));
  return asArray<string>(sw?.ports).map((u) => byUuid.get(u) ?? `?${u}`).sort();
}

/** One pass as RemotePorts runs it: desired ports from the store, NB ops applied. Returns the ops. */
function pass(fake: FakeOvsdbServer, store: MemoryStore, skip = vi.fn(), peers: PeerNode[] = PEERS): Operation[] {
  const nb = viewOf(fake);
  const desired = desiredRemotePorts({ store, localNode: LOCAL, peers, nb }, skip);
  const ops = planRemotePorts(nb, desired, skip);
  if (ops.length > 0) applyOk(fake, ops);
  return ops;
}

// ---- desired ports ----

describe('desiredRemotePorts', () => {
  it('makes a port of each allocated pod of another node, keyed by its IPv4 offset, for its node\'s chassis', async () => {
    const { nb } = await zone();
    const store = storeOf(
      pod('web-1', { ip: '10.16.0.5', mac: '0a:58:0a:10:00:05' }),
      pod('dual-0', { node: 'node3', ip: 'fd00:10:16::99, 10.16.1.2', mac: '0a:58:0a:10:01:02', ns: 'prod' }),
      pod('db-0', { ls: 'blue', ip: '10.18.0.20', mac: '0a:58:0a:12:00:14' }),
      pod('edge', { ip: '10.16.127.255', mac: '0a:58:0a:10:7f:ff' }),
    );
    const skip = vi.fn();
    const desired = desiredRemotePorts({ store, localNode: LOCAL, peers: PEERS, nb }, skip);
    expect(skip).not.toHaveBeenCalled();
    expect([...desired].sort((a, b) => a.lspName.localeCompare(b.lspName))).toEqual([
      { lspName: 'db-0.default', logicalSwitch: 'blue', node: 'node2', chassis: 'ch-node2', address: '0a:58:0a:12:00:14 10.18.0.20', tunnelKey: 20, pod: 'default/db-0' },
      { lspName: 'dual-0.prod', logicalSwitch: 'ovn-default', node: 'node3', chassis: 'ch-node3', address: '0a:58:0a:10:01:02 fd00:10:16::99 10.16.1.2', tunnelKey: 258, pod: 'prod/dual-0' },
      { lspName: 'edge.default', logicalSwitch: 'ovn-default', node: 'node2', chassis: 'ch-node2', address: '0a:58:0a:10:7f:ff 10.16.127.255', tunnelKey: 32767, pod: 'default/edge' },
      { lspName: 'web-1.default', logicalSwitch: 'ovn-default', node: 'node2', chassis: 'ch-node2', address: '0a:58:0a:10:00:05 10.16.0.5', tunnelKey: 5, pod: 'default/web-1' },
    ]);
  });

  it('leaves out, without a word, pods that are not other nodes\' allocated pods', async () => {
    const { nb } = await zone();
    const store = storeOf(
      pod('mine', { node: LOCAL, ip: '10.16.0.10' }),
      pod('host', { ip: '10.16.0.11', hostNetwork: true }),
      pod('done', { ip: '10.16.0.12', finished: true }),
      pod('pending', { ip: '10.16.0.13', allocated: 'false' }),
      pod('unscheduled', { node: '', ip: '10.16.0.14' }),
      pod('no-ip', {}),
    );
    const skip = vi.fn();
    expect(desiredRemotePorts({ store, localNode: LOCAL, peers: PEERS, nb }, skip)).toEqual([]);
    expect(skip).not.toHaveBeenCalled();
  });

  it.each([
    ['its node has not joined', { node: 'node9', ip: '10.16.0.5' }, /node node9 has not joined/],
    ['its switch does not exist here', { ls: 'nowhere', ip: '10.16.0.5' }, /logical switch nowhere does not exist here/],
    ['its switch is not one of ovnode\'s (no CIDRs)', { ls: 'foreign', ip: '10.16.0.5' }, /logical switch foreign does not exist here/],
    ['its address is past the first 32767 of the switch', { ip: '10.16.128.1' }, /address 10\.16\.128\.1 is outside the first 32767 addresses of ovn-default/],
    ['its address is outside the switch', { ip: '10.99.0.5' }, /outside the first 32767/],
    ['its address is the network address', { ip: '10.16.0.0' }, /outside the first 32767/],
    ['it has only an IPv6 address on a switch keyed by IPv4', { ip: 'fd00:10:16::8' }, /address fd00:10:16::8 is outside/],
    ['it has no MAC', { ip: '10.16.0.5', mac: '' }, /no mac_address annotation/],
  ])('gives no port to a pod when %s, and says why', async (_what, spec: PodSpec, why) => {
    const { nb } = await zone();
    const skip = vi.fn();
    const desired = desiredRemotePorts({ store: storeOf(pod('p', spec)), localNode: LOCAL, peers: PEERS, nb }, skip);
    expect(desired).toEqual([]);
    expect(skip).toHaveBeenCalledTimes(1);
    expect(skip).toHaveBeenCalledWith('default/p', expect.stringMatching(why));
  });

  it('keys one pod per address and switch: the first in store order wins, the same offset elsewhere is fine', async () => {
    const { nb } = await zone();
    const store = storeOf(
      pod('b-new', { node: 'node3', ip: '10.16.0.7', mac: '0a:58:0a:10:00:bb' }),
      pod('a-old', { ip: '10.16.0.7', mac: '0a:58:0a:10:00:aa' }),
      pod('c-blue', { ls: 'blue', ip: '10.18.0.7' }),
    );
    const skip = vi.fn();
    const desired = desiredRemotePorts({ store, localNode: LOCAL, peers: PEERS, nb }, skip);
    expect(desired.map((p) => [p.lspName, p.logicalSwitch, p.tunnelKey])).toEqual([['a-old.default', 'ovn-default', 7], ['c-blue.default', 'blue', 7]]);
    expect(skip).toHaveBeenCalledTimes(1);
    expect(skip).toHaveBeenCalledWith('default/b-new', expect.stringMatching(/another pod has address 10\.16\.0\.7 on ovn-default/));
  });

  it('makes a port for each secondary network a remote pod\'s node wrote back, named with its provider, on that network\'s switch', async () => {
    const { nb } = await zone();
    const multi = pod('multi', { ip: '10.16.0.8', mac: '0a:58:0a:10:00:08' });
    const withNet1: PodObj = { ...multi, metadata: { ...multi.metadata, annotations: {
      ...multi.metadata.annotations,
      'attnet.default.ovn.kubernetes.io/allocated': 'true', 'attnet.default.ovn.kubernetes.io/ip_address': '10.18.0.9',
      'attnet.default.ovn.kubernetes.io/mac_address': '0a:58:0a:12:00:09', 'attnet.default.ovn.kubernetes.io/logical_switch': 'blue',
      // Not written back yet (no allocated): no port.
      'other.default.ovn.kubernetes.io/ip_address': '10.18.0.10', 'other.default.ovn.kubernetes.io/logical_switch': 'blue',
    } } };
    const desired = desiredRemotePorts({ store: storeOf(withNet1), localNode: LOCAL, peers: PEERS, nb });
    expect(desired.map((p) => `${p.lspName} ${p.logicalSwitch} ${p.tunnelKey} ${p.address}`).sort()).toEqual([
      'multi.default ovn-default 8 0a:58:0a:10:00:08 10.16.0.8',
      'multi.default.attnet.default.ovn blue 9 0a:58:0a:12:00:09 10.18.0.9',
    ]);
  });

  it('gives each peer a node port on the join switch at its transit address, with the IPv6 twin when the join switch is dual-stack', async () => {
    const withTransit = (node: string, transitIp: string): PeerNode => ({ ...peer(node), transitIp });
    const peers = [withTransit('node1', '100.64.0.2'), withTransit('node2', '100.64.0.9'), withTransit('node3', '100.64.1.1')];
    const nodePortsOf = async (cidrs: string): Promise<string[]> => {
      const { nb } = await zone([switchRow('join', cidrs)]);
      return desiredRemotePorts({ store: storeOf(), localNode: LOCAL, joinSwitch: 'join', peers, nb })
        .map((p) => `${p.lspName} ${p.logicalSwitch} ${p.tunnelKey} ${p.address}`).sort();
    };
    expect(await nodePortsOf('100.64.0.0/16')).toEqual([
      'node-node2 join 9 0a:58:64:40:00:09 100.64.0.9', 'node-node3 join 257 0a:58:64:40:01:01 100.64.1.1',
    ]);
    expect(await nodePortsOf('100.64.0.0/16,fd00:100:64::/112')).toEqual([
      'node-node2 join 9 0a:58:64:40:00:09 100.64.0.9 fd00:100:64::9', 'node-node3 join 257 0a:58:64:40:01:01 100.64.1.1 fd00:100:64::101',
    ]);
  });
});

// ---- NB plan ----

describe('planRemotePorts', () => {
  it('inserts a remote port per pod and links it to its switch; a second pass plans nothing', async () => {
    const { fake, nb } = await zone();
    const store = storeOf(pod('web-1', { ip: '10.16.0.5', mac: '0a:58:0a:10:00:05' }), pod('db-0', { node: 'node3', ls: 'blue', ip: '10.18.0.20', mac: '0a:58:0a:12:00:14' }));
    const desired = desiredRemotePorts({ store, localNode: LOCAL, peers: PEERS, nb });
    const ops = planRemotePorts(nb, desired);
    const web = ops.find((o) => o.op === 'insert' && o.row.name === 'web-1.default');
    expect(web).toEqual({
      op: 'insert', table: LSP, 'uuid-name': expect.any(String),
      row: {
        name: 'web-1.default', type: '', addresses: ovsSet(['0a:58:0a:10:00:05 10.16.0.5']),
        options: ovsMap({ 'requested-chassis': 'ch-node2', 'requested-tnl-key': '5' }),
        external_ids: ovsMap({ [REMOTE_NODE]: 'node2', 'ovnode:pod': 'default/web-1' }),
      },
    });
    expect(ops.map((o) => o.op)).toEqual(['insert', 'mutate', 'insert', 'mutate']);
    applyOk(fake, ops);

    const row = lspByName(fake, 'web-1.default');
    // A VIF bound elsewhere, not ovn-ic's `remote` type (flooded once per chassis: remote-port-plan.ts).
    expect(row?.type).toBe('');
    expect(asArray(row?.addresses)).toEqual(['0a:58:0a:10:00:05 10.16.0.5']);
    expect(asMap(row?.options)).toEqual({ 'requested-chassis': 'ch-node2', 'requested-tnl-key': '5' });
    expect(asMap(row?.external_ids)).toEqual({ 'ovnode:remote-node': 'node2', 'ovnode:pod': 'default/web-1' });
    expect(asMap(lspByName(fake, 'db-0.default')?.options)).toEqual({ 'requested-chassis': 'ch-node3', 'requested-tnl-key': '20' });
    expect(portsOf(fake, 'ovn-default')).toEqual(['ovn-default-ovn-cluster', 'web-1.default']);
    expect(portsOf(fake, 'blue')).toEqual(['db-0.default']);

    expect(planRemotePorts(viewOf(fake), desiredRemotePorts({ store, localNode: LOCAL, peers: PEERS, nb: viewOf(fake) }))).toEqual([]);
  });

  it('updates a port in place when the pod\'s MAC, address or node\'s chassis changes', async () => {
    const { fake } = await zone();
    const store = storeOf(pod('web-1', { ip: '10.16.0.5', mac: '0a:58:0a:10:00:05' }));
    pass(fake, store);
    const before = lspByName(fake, 'web-1.default');
    expect(before).toBeDefined();

    store.apply(pod('web-1', { ip: '10.16.0.6', mac: '0a:58:0a:10:00:06' }));
    const ops = pass(fake, store);
    expect(ops).toEqual([{
      op: 'update', table: LSP, where: [['_uuid', '==', uuid(before?._uuid as string)]],
      row: {
        name: 'web-1.default', type: '', addresses: ovsSet(['0a:58:0a:10:00:06 10.16.0.6']),
        options: ovsMap({ 'requested-chassis': 'ch-node2', 'requested-tnl-key': '6' }),
        external_ids: ovsMap({ [REMOTE_NODE]: 'node2', 'ovnode:pod': 'default/web-1' }),
      },
    }]);
    expect(asArray(lspByName(fake, 'web-1.default')?.addresses)).toEqual(['0a:58:0a:10:00:06 10.16.0.6']);
    expect(pass(fake, store)).toEqual([]);

    // node2 reinstalled under a new chassis id.
    const peers = [peer('node1'), { ...peer('node2'), chassisId: 'ch-node2-b' }];
    const rebound = pass(fake, store, vi.fn(), peers);
    expect(rebound).toHaveLength(1);
    expect(rebound[0]).toMatchObject({ op: 'update', where: [['_uuid', '==', uuid(before?._uuid as string)]] });
    expect(asMap(lspByName(fake, 'web-1.default')?.options)['requested-chassis']).toBe('ch-node2-b');
    expect(lspByName(fake, 'web-1.default')?._uuid).toBe(before?._uuid);
    expect(pass(fake, store, vi.fn(), peers)).toEqual([]);
  });

  it('unlinks and deletes the port of a pod that is gone, and nothing else', async () => {
    const { fake } = await zone(localPortOps('local-a.default', 'ovn-default', { key: 9 }));
    const store = storeOf(pod('web-1', { ip: '10.16.0.5' }), pod('db-0', { ls: 'blue', ip: '10.18.0.20' }));
    pass(fake, store);
    const web = lspByName(fake, 'web-1.default');
    const sw = fake.rows(LS).find((r) => r.name === 'ovn-default');

    store.remove('Pod', 'web-1', 'default');
    const ops = pass(fake, store);
    expect(ops).toEqual([
      { op: 'mutate', table: LS, where: [['_uuid', '==', uuid(sw?._uuid as string)]], mutations: [['ports', 'delete', ovsSet([uuid(web?._uuid as string)])]] },
      { op: 'delete', table: LSP, where: [['_uuid', '==', uuid(web?._uuid as string)]] },
    ]);
    expect(lspByName(fake, 'web-1.default')).toBeUndefined();
    expect(portsOf(fake, 'ovn-default')).toEqual(['local-a.default', 'ovn-default-ovn-cluster']);
    expect(portsOf(fake, 'blue')).toEqual(['db-0.default']);
    expect(pass(fake, store)).toEqual([]);

    // Its node leaving takes the rest: the pods are no longer reachable peers.
    const left = pass(fake, store, vi.fn(), [peer('node1'), peer('node3')]);
    expect(left.map((o) => o.op)).toEqual(['mutate', 'delete']);
    expect(portsOf(fake, 'blue')).toEqual([]);
    expect(lspByName(fake, 'local-a.default')).toBeDefined();
  });

  it('reports the addresses a remote port gave up (pod gone, address or MAC now another pod\'s), for their conntrack flush', async () => {
    const { fake } = await zone();
    const store = storeOf(pod('web-1', { ip: '10.16.0.5', mac: '0a:58:0a:10:00:05' }), pod('web-2', { ip: '10.16.0.7', mac: '0a:58:0a:10:00:07' }));
    pass(fake, store);
    const goneAfter = (): string[] => {
      const gone: string[] = [];
      const nb = viewOf(fake);
      const ops = planRemotePorts(nb, desiredRemotePorts({ store, localNode: LOCAL, peers: PEERS, nb }), vi.fn(), gone);
      if (ops.length > 0) applyOk(fake, ops);
      return gone.sort();
    };
    expect(goneAfter()).toEqual([]);
    store.apply(pod('web-1', { ip: '10.16.0.6', mac: '0a:58:0a:10:00:05' }));
    expect(goneAfter()).toEqual(['10.16.0.5']);
    // Same address, another MAC: a new pod has it, the old one's flows must go.
    store.apply(pod('web-1', { ip: '10.16.0.6', mac: '0a:58:0a:10:00:99' }));
    expect(goneAfter()).toEqual(['10.16.0.6']);
    store.remove('Pod', 'web-2', 'default');
    expect(goneAfter()).toEqual(['10.16.0.7']);
    expect(goneAfter()).toEqual([]);
  });

  it('moves a port to the pod\'s new switch in one transaction', async () => {
    const { fake } = await zone();
    const store = storeOf(pod('web-1', { ip: '10.16.0.5' }));
    pass(fake, store);
    store.apply(pod('web-1', { ls: 'blue', ip: '10.18.0.5' }));
    const ops = pass(fake, store);
    expect(ops.map((o) => `${o.op} ${'table' in o ? o.table : ''}`)).toEqual([`mutate ${LS}`, `delete ${LSP}`, `insert ${LSP}`, `mutate ${LS}`]);
    expect(portsOf(fake, 'ovn-default')).toEqual(['ovn-default-ovn-cluster']);
    expect(portsOf(fake, 'blue')).toEqual(['web-1.default']);
    expect(asMap(lspByName(fake, 'web-1.default')?.options)['requested-tnl-key']).toBe('5');
    expect(pass(fake, store)).toEqual([]);
  });

  it('leaves a local port of the same name alone: the local one wins', async () => {
    const { fake } = await zone(localPortOps('web-1.default', 'ovn-default'));
    const local = lspByName(fake, 'web-1.default');
    const store = storeOf(pod('web-1', { ip: '10.16.0.5' }), pod('api-0', { ip: '10.16.0.6' }));
    const skip = vi.fn();
    const ops = pass(fake, store, skip);
    expect(ops.filter((o) => o.op === 'insert').map((o) => (o.op === 'insert' ? o.row.name : ''))).toEqual(['api-0.default']);
    expect(JSON.stringify(ops)).not.toContain(local?._uuid as string);
    expect(skip).toHaveBeenCalledWith('default/web-1', expect.stringMatching(/a local port web-1\.default exists/));
    expect(lspByName(fake, 'web-1.default')).toEqual(local);
    expect(pass(fake, store)).toEqual([]);
  });

  it('gives one of two remote pods with the same key on a switch a port', async () => {
    const { fake } = await zone();
    const store = storeOf(pod('b-new', { node: 'node3', ip: '10.16.0.7' }), pod('a-old', { ip: '10.16.0.7' }));
    const skip = vi.fn();
    pass(fake, store, skip);
    expect(portsOf(fake, 'ovn-default')).toEqual(['a-old.default', 'ovn-default-ovn-cluster']);
    expect(skip).toHaveBeenCalledWith('default/b-new', expect.stringMatching(/another pod/));
    // The old one's node released it: the new one takes the key.
    store.remove('Pod', 'a-old', 'default');
    pass(fake, store);
    expect(portsOf(fake, 'ovn-default')).toEqual(['b-new.default', 'ovn-default-ovn-cluster']);
    expect(asMap(lspByName(fake, 'b-new.default')?.options)).toEqual({ 'requested-chassis': 'ch-node3', 'requested-tnl-key': '7' });
  });

  it('gives a reused address to the live pod, not to one being deleted, and to the newer of two live ones', async () => {
    const { fake } = await zone();
    const old = pod('a-old', { ip: '10.16.0.7' });
    old.status = { deleting: true, createdAt: '2026-12-02T10:00:00Z' };
    const young = pod('b-new', { node: 'node3', ip: '10.16.0.7' });
    young.status = { createdAt: '2026-12-02T09:00:00Z' };
    const store = storeOf(old, young);
    pass(fake, store);
    expect(portsOf(fake, 'ovn-default')).toEqual(['b-new.default', 'ovn-default-ovn-cluster']);
    // Neither is being deleted: the one created later has the address now.
    store.apply({ ...old, status: { createdAt: '2026-12-02T10:00:00Z' } });
    pass(fake, store);
    expect(portsOf(fake, 'ovn-default')).toEqual(['a-old.default', 'ovn-default-ovn-cluster']);
  });

  it('keeps a remote port off a key a local port still requests on that switch, not on others', async () => {
    const { fake } = await zone([
      ...localPortOps('local-a.default', 'ovn-default', { key: 9 }),
      ...localPortOps('local-b.default', 'blue', { key: 10 }),
    ]);
    const store = storeOf(
      pod('x', { ip: '10.16.0.9' }),
      pod('gw', { ip: '10.16.0.1' }),
      pod('y', { ls: 'blue', ip: '10.18.0.9' }),
      pod('z', { ip: '10.16.0.10' }),
    );
    const skip = vi.fn();
    const ops = pass(fake, store, skip);
    expect(ops.filter((o) => o.op === 'insert').map((o) => (o.op === 'insert' ? o.row.name : '')).sort()).toEqual(['y.default', 'z.default']);
    expect(skip).toHaveBeenCalledWith('default/x', expect.stringMatching(/tunnel key 9 on ovn-default is still a local port's/));
    // The router port requests the gateway's key.
    expect(skip).toHaveBeenCalledWith('default/gw', expect.stringMatching(/tunnel key 1 on ovn-default is still a local port's/));
    expect(skip).toHaveBeenCalledTimes(2);
  });

  it('removes a remote port whose key a local port took since', async () => {
    const { fake } = await zone();
    const store = storeOf(pod('x', { ip: '10.16.0.9' }));
    pass(fake, store);
    const x = lspByName(fake, 'x.default');
    expect(x).toBeDefined();
    applyOk(fake, localPortOps('local-a.default', 'ovn-default', { key: 9 }));
    const ops = pass(fake, store);
    expect(ops).toEqual([
      expect.objectContaining({ op: 'mutate', mutations: [['ports', 'delete', ovsSet([uuid(x?._uuid as string)])]] }),
      { op: 'delete', table: LSP, where: [['_uuid', '==', uuid(x?._uuid as string)]] },
    ]);
    expect(portsOf(fake, 'ovn-default')).toEqual(['local-a.default', 'ovn-default-ovn-cluster']);
  });
});

// ---- SB plan ----

const rp = (lspName: string, chassis: string): RemotePort =>
  ({ lspName, logicalSwitch: 'ovn-default', node: chassis.replace(/^ch-/, ''), chassis, address: '0a:58:0a:10:00:05 10.16.0.5', tunnelKey: 5, pod: `default/${lspName.split('.')[0]}` });

/** A plain SB view: tables of decoded rows keyed by UUID. */
function sbView(tables: Record<string, Row[]>): View {
  return { rows: (t: string) => new Map((tables[t] ?? []).map((r) => [r._uuid, r])) };
}

describe('planBindings', () => {
  const chassis = [{ _uuid: 'c2-uuid', name: 'ch-node2' }, { _uuid: 'c3-uuid', name: 'ch-node3' }];
  // The NB ports this controller owns (marked with the peer's node): a local pod's port or a
  // router port is never bound elsewhere, whatever name the desired ports have.
  const OURS = new Set(['web-1.default', 'db-0.default', 'api-0.default', 'old-0.default', 'far-0.default', 'gone-0.default']);
  const bindings = (sb: Pick<OvsdbClient, 'rows'>, desired: RemotePort[]): Operation[] =>
    planBindings(sb, sb.rows('Port_Binding').values(), new Map(desired.map((p) => [p.lspName, p])), (name) => OURS.has(name));

  it('binds unbound and wrongly bound ports of its own to their chassis, never a local or router port', () => {
    const sb = sbView({
      Chassis: chassis,
      Port_Binding: [
        { _uuid: 'pb-web', logical_port: 'web-1.default', type: '', chassis: [] },
        { _uuid: 'pb-db', logical_port: 'db-0.default', type: '' },
        { _uuid: 'pb-bound', logical_port: 'api-0.default', type: '', chassis: 'c2-uuid' },
        { _uuid: 'pb-wrong', logical_port: 'old-0.default', type: '', chassis: 'c3-uuid' },
        { _uuid: 'pb-far', logical_port: 'far-0.default', type: '', chassis: [] },
        { _uuid: 'pb-local', logical_port: 'web-2.default', type: '', chassis: [] },
        { _uuid: 'pb-router', logical_port: 'ovn-default-ovn-cluster', type: 'patch', chassis: [] },
        { _uuid: 'pb-stray', logical_port: 'gone-0.default', type: '', chassis: [] },
      ],
    });
    const desired = [
      rp('web-1.default', 'ch-node2'), rp('db-0.default', 'ch-node3'), rp('api-0.default', 'ch-node2'),
      rp('old-0.default', 'ch-node2'), rp('far-0.default', 'ch-node9'), rp('web-2.default', 'ch-node2'),
      rp('ovn-default-ovn-cluster', 'ch-node2'),
    ];
    expect(bindings(sb, desired)).toEqual([
      { op: 'update', table: 'Port_Binding', where: [['_uuid', '==', uuid('pb-web')]], row: { chassis: uuid('c2-uuid') } },
      { op: 'update', table: 'Port_Binding', where: [['_uuid', '==', uuid('pb-db')]], row: { chassis: uuid('c3-uuid') } },
      { op: 'update', table: 'Port_Binding', where: [['_uuid', '==', uuid('pb-wrong')]], row: { chassis: uuid('c2-uuid') } },
    ]);
  });

  it('plans nothing when every remote binding is bound, or its chassis is unknown', () => {
    const sb = sbView({
      Chassis: chassis,
      Port_Binding: [
        { _uuid: 'pb-web', logical_port: 'web-1.default', type: '', chassis: 'c2-uuid' },
        { _uuid: 'pb-far', logical_port: 'far-0.default', type: '', chassis: [] },
      ],
    });
    expect(bindings(sb, [rp('web-1.default', 'ch-node2'), rp('far-0.default', 'ch-node9')])).toEqual([]);
    expect(bindings(sbView({ Port_Binding: [{ _uuid: 'pb', logical_port: 'web-1.default', type: '' }] }), [rp('web-1.default', 'ch-node2')])).toEqual([]);
  });

  it('writes a binding the real SB schema accepts, after which it plans nothing', async () => {
    const fake = await FakeOvsdbServer.start({ database: 'OVN_Southbound', schema: SB_SCHEMA });
    fakes.push(fake);
    applyOk(fake, [
      { op: 'insert', table: 'Encap', 'uuid-name': 'e', row: { type: 'geneve', ip: '10.250.0.12', chassis_name: 'ch-node2', options: ovsMap({ csum: 'true' }) } },
      { op: 'insert', table: 'Chassis', row: { name: 'ch-node2', hostname: 'node2', encaps: ovsSet([namedUuid('e')]), other_config: ovsMap({ 'is-remote': 'true' }) } },
      { op: 'insert', table: 'Datapath_Binding', 'uuid-name': 'dp', row: { tunnel_key: 16769529 } },
      { op: 'insert', table: 'Port_Binding', row: { logical_port: 'web-1.default', type: '', datapath: namedUuid('dp'), tunnel_key: 5 } },
    ]);
    const sb = viewOf(fake);
    const ops = bindings(sb, [rp('web-1.default', 'ch-node2')]);
    expect(ops).toHaveLength(1);
    applyOk(fake, ops);
    const ch = fake.rows('Chassis')[0];
    expect(asArray(fake.rows('Port_Binding')[0]?.chassis)).toEqual([ch?._uuid]);
    expect(bindings(viewOf(fake), [rp('web-1.default', 'ch-node2')])).toEqual([]);
  });
});
