// VmMigrations (cluster/vm-migration.ts) on real OvsdbClients against FakeOvsdbServers with the
// real NB and SB schemas, pods from a MemoryStore, a fake annotation writer. On a node holding a
// VM pod's local port it requests the binding's chassis (serving first, RARP activation while a
// target waits), writes into the SB the other node's part of the binding as that node's
// ovn-controller would have in a shared SB (never this node's own claim), reports the target's
// activation on the target pod, and leaves every other port alone. No ovn-controller runs here:
// the tests play its claims and its activation report by writing the SB themselves.
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KUBEVIRT } from '../../../../daemon/cluster/kubevirt';
import type { PeerNode } from '../../../../daemon/cluster/node-contract';
import { ChassisNames, VmMigrations, vmPortOptions } from '../../../../daemon/cluster/vm-migration';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { PodObj } from '../../../../daemon/objects/types';
import { OvsdbClient } from '../../../../daemon/ovsdb/client';
import type { Operation } from '../../../../daemon/ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, type Row } from '../../../../daemon/ovsdb/values';
import { EXT, OWNER, REMOTE_NODE } from '../../../../daemon/store/external-ids';
import { FakeOvsdbServer } from '../../../fakes/fake-ovsdb-server';
import { LS, LSP, monitoredClient, NB_SCHEMA, PB, SB_SCHEMA, THREE_NODES } from '../../../fakes/ovn-zone-clients';
import { applyOk } from '../../../fakes/fake-ovsdb-view';

const PEERS: PeerNode[] = THREE_NODES;

const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:05:00Z';
const SRC = 'virt-launcher-vm1-src';
const DST = 'virt-launcher-vm1-dst';

function pod(name: string, s: { node: string; createdAt?: string; vm?: string; target?: boolean; activated?: string; deleting?: boolean; attached?: boolean }): PodObj {
  // Attached by its node (allocation written back) unless said otherwise: a target counts as pending from then on.
  const annotations: Record<string, string> = { [KUBEVIRT.allowMigration]: '', ...(s.attached ?? true ? { 'ovn.kubernetes.io/allocated': 'true' } : {}) };
  if (s.target) annotations[KUBEVIRT.migrationJob] = 'job-1';
  if (s.activated !== undefined) annotations[KUBEVIRT.activated] = s.activated;
  return {
    kind: 'Pod',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, labels: s.vm === '' ? {} : { [KUBEVIRT.vmLabel]: s.vm ?? 'vm1' }, annotations },
    spec: { containers: [{ name: 'compute', ports: [] }], nodeName: s.node },
    status: { createdAt: s.createdAt ?? T0, ...(s.deleting ? { deleting: true } : {}) },
  };
}

const source = (): PodObj => pod(SRC, { node: 'node1', createdAt: T0 });
const target = (over: { activated?: string; deleting?: boolean; node?: string } = {}): PodObj => pod(DST, { node: 'node2', createdAt: T1, target: true, ...over });

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const client = (fake: FakeOvsdbServer, database: string): Promise<OvsdbClient> => monitoredClient(fake, database, cleanups);

/** A local pod's port as an ADD writes it (owner, sandbox, pod), keyed 5 unless told. */
function localPortOps(name: string, podName: string, opts: { key?: number; ref?: string } = {}): Operation[] {
  const ref = opts.ref ?? `l${podName.replace(/[^a-z0-9]/gi, '')}`;
  return [
    {
      op: 'insert', table: LSP, 'uuid-name': ref, row: {
        name, addresses: ovsSet(['0a:58:0a:10:00:05 10.16.0.5']), options: ovsMap({ 'requested-tnl-key': String(opts.key ?? 5) }),
        external_ids: ovsMap({ [EXT.owner]: OWNER, [EXT.sandbox]: `sb-${podName}`, [EXT.podName]: podName, [EXT.podNamespace]: 'default' }),
      },
    },
    { op: 'mutate', table: LS, where: [['name', '==', 'ovn-default']], mutations: [['ports', 'insert', ovsSet([namedUuid(ref)])]] },
  ];
}

interface Env {
  nbFake: FakeOvsdbServer;
  sbFake: FakeOvsdbServer;
  nb: OvsdbClient;
  sb: OvsdbClient;
  store: MemoryStore;
  write: ReturnType<typeof vi.fn>;
  migrations: VmMigrations;
  errors: () => unknown[];
}

/**
 * Node `local` with NB ports `nbOps` (plus ovn-default), an SB with every node's chassis and a
 * binding per named port (`claims`: what the local ovn-controller claimed already), the pods;
 * VmMigrations started and idle.
 */
async function env(local: string, nbOps: Operation[], bindings: Array<{ port: string; chassis?: string; additional?: string[] }>, pods: PodObj[]): Promise<Env> {
  const nbFake = await FakeOvsdbServer.start({ database: 'OVN_Northbound', schema: NB_SCHEMA });
  cleanups.push(() => nbFake.close());
  const sbFake = await FakeOvsdbServer.start({ database: 'OVN_Southbound', schema: SB_SCHEMA });
  cleanups.push(() => sbFake.close());
  applyOk(nbFake, [{ op: 'insert', table: LS, row: { name: 'ovn-default', external_ids: ovsMap({ 'ovnode:cidrs': '10.16.0.0/16' }) } }, ...nbOps]);
  applyOk(sbFake, [
    ...PEERS.flatMap((p): Operation[] => [
      { op: 'insert', table: 'Encap', 'uuid-name': `e${p.node}`, row: { type: 'geneve', ip: p.encapIp, chassis_name: p.chassisId } },
      { op: 'insert', table: 'Chassis', 'uuid-name': `c${p.node}`, row: { name: p.chassisId, hostname: p.node, encaps: ovsSet([namedUuid(`e${p.node}`)]) } },
    ]),
    { op: 'insert', table: 'Datapath_Binding', 'uuid-name': 'dp', row: { tunnel_key: 1 } },
    ...bindings.map((b, i): Operation => ({
      op: 'insert', table: PB, row: {
        logical_port: b.port, type: '', datapath: namedUuid('dp'), tunnel_key: i + 5,
        chassis: b.chassis ? namedUuid(`c${b.chassis}`) : ovsSet([]),
        additional_chassis: ovsSet((b.additional ?? []).map((n) => namedUuid(`c${n}`))),
      },
    })),
  ]);
  const [nb, sb] = [await client(nbFake, 'OVN_Northbound'), await client(sbFake, 'OVN_Southbound')];
  const store = new MemoryStore();
  for (const p of pods) store.apply(p);
  const logs: Array<{ level: number }> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => { logs.push(JSON.parse(s) as { level: number }); } });
  const write = vi.fn();
  const chassis = new ChassisNames(local, `ch-${local}`, () => PEERS.filter((p) => p.node !== local));
  const migrations = new VmMigrations({ nb, sb, store, localNode: local, chassis, writer: { write }, log, retryMs: 20 });
  cleanups.push(() => migrations.stop());
  await migrations.start();
  await migrations.idle();
  return { nbFake, sbFake, nb, sb, store, write, migrations, errors: () => logs.filter((l) => l.level >= 50) };
}

const lspOptions = (e: Env, name: string): Record<string, unknown> => asMap(e.nbFake.rows(LSP).find((r) => r.name === name)?.options);
const lspRow = (e: Env, name: string): Row | undefined => e.nbFake.rows(LSP).find((r) => r.name === name);
const pbRow = (e: Env, port: string): Row => e.sbFake.rows(PB).find((r) => r.logical_port === port) as Row;
const chassisName = (e: Env, u: string): string => e.sbFake.rows('Chassis').find((c) => c._uuid === u)?.name as string;
const bound = (e: Env, port: string): { chassis: string[]; additional: string[] } => {
  const pb = pbRow(e, port);
  return { chassis: asArray<string>(pb.chassis).map((u) => chassisName(e, u)), additional: asArray<string>(pb.additional_chassis).map((u) => chassisName(e, u)).sort() };
};

/** Applies SB ops behind VmMigrations' back (as ovn-controller would), waits for its client and its pass. */
async function sbExternal(e: Env, ops: Operation[], cond: () => boolean): Promise<void> {
  applyOk(e.sbFake, ops);
  await new Promise<void>((resolve) => {
    const check = (): void => { if (cond()) { e.sb.off('change', check); resolve(); } };
    e.sb.on('change', check);
    check();
  });
  await e.migrations.idle();
}

/** The target's ovn-controller reports the activation (in the binding's options). */
async function activate(e: Env, chassis: string): Promise<void> {
  const pb = pbRow(e, 'vm1.default');
  await sbExternal(e, [{ op: 'update', table: PB, where: [['_uuid', '==', uuid(pb._uuid)]], row: { options: ovsMap({ 'additional-chassis-activated': chassis }) } }],
    () => asMap([...e.sb.rows(PB).values()].find((r) => r.logical_port === 'vm1.default')?.options)['additional-chassis-activated'] === chassis);
}

describe('VmMigrations on the source\'s node', () => {
  it('requests the VM port on both chassis with RARP activation (its key kept) and lists the target\'s chassis as additional', async () => {
    const e = await env('node1', localPortOps('vm1.default', SRC), [{ port: 'vm1.default', chassis: 'node1' }], [source(), target()]);
    expect(lspOptions(e, 'vm1.default')).toEqual({ 'requested-tnl-key': '5', 'requested-chassis': 'ch-node1,ch-node2', 'activation-strategy': 'rarp' });
    // The local claim (main chassis) is ovn-controller's: kept as it was.
    expect(bound(e, 'vm1.default')).toEqual({ chassis: ['ch-node1'], additional: ['ch-node2'] });
    expect(e.write).not.toHaveBeenCalled();
    expect(e.errors()).toEqual([]);
  });

  it('does not write a main chassis for the local node when its ovn-controller has not claimed yet', async () => {
    const e = await env('node1', localPortOps('vm1.default', SRC), [{ port: 'vm1.default' }], [source(), target()]);
    expect(bound(e, 'vm1.default')).toEqual({ chassis: [], additional: ['ch-node2'] });
  });

  it('after the activation: the target\'s chassis alone, no activation strategy; the SB binding moves to it', async () => {
    const e = await env('node1', localPortOps('vm1.default', SRC), [{ port: 'vm1.default', chassis: 'node1' }], [source(), target()]);
    e.store.apply(target({ activated: 'node2' }));
    await e.migrations.idle();
    expect(lspOptions(e, 'vm1.default')).toEqual({ 'requested-tnl-key': '5', 'requested-chassis': 'ch-node2' });
    expect(bound(e, 'vm1.default')).toEqual({ chassis: ['ch-node2'], additional: [] });
    expect(e.write).not.toHaveBeenCalled();
  });

  it('a failed migration (the target goes): back to the local chassis alone, the additional one cleared', async () => {
    const e = await env('node1', localPortOps('vm1.default', SRC), [{ port: 'vm1.default', chassis: 'node1' }], [source(), target()]);
    expect(bound(e, 'vm1.default').additional).toEqual(['ch-node2']);
    e.store.remove('Pod', DST, 'default');
    await e.migrations.idle();
    expect(lspOptions(e, 'vm1.default')).toEqual({ 'requested-tnl-key': '5', 'requested-chassis': 'ch-node1' });
    expect(bound(e, 'vm1.default')).toEqual({ chassis: ['ch-node1'], additional: [] });
  });
});

describe('VmMigrations on the target\'s node', () => {
  it('binds the VM\'s SB binding to the source\'s chassis, keeping the local additional claim', async () => {
    const e = await env('node2', localPortOps('vm1.default', DST), [{ port: 'vm1.default', additional: ['node2'] }], [source(), target()]);
    expect(lspOptions(e, 'vm1.default')).toEqual({ 'requested-tnl-key': '5', 'requested-chassis': 'ch-node1,ch-node2', 'activation-strategy': 'rarp' });
    expect(bound(e, 'vm1.default')).toEqual({ chassis: ['ch-node1'], additional: ['ch-node2'] });
    expect(e.write).not.toHaveBeenCalled();
    expect(e.errors()).toEqual([]);
  });

  it('reports the activation its ovn-controller saw on the target pod, then requests the local chassis alone', async () => {
    const e = await env('node2', localPortOps('vm1.default', DST), [{ port: 'vm1.default', additional: ['node2'] }], [source(), target()]);
    // Another chassis' activation is not this node's to report.
    await activate(e, 'ch-node9');
    expect(e.write).not.toHaveBeenCalled();

    await activate(e, 'ch-node2');
    expect(e.write).toHaveBeenCalledWith({ namespace: 'default', name: DST, uid: `uid-${DST}` }, { [KUBEVIRT.activated]: 'node2' }, expect.any(String));
    const calls = e.write.mock.calls.length;

    // The annotation arrives through the watch.
    e.store.apply(target({ activated: 'node2' }));
    await e.migrations.idle();
    expect(lspOptions(e, 'vm1.default')).toEqual({ 'requested-tnl-key': '5', 'requested-chassis': 'ch-node2' });
    // The main claim is the local ovn-controller's to take: the daemon does not write it; the
    // local additional claim stays until that controller moves it.
    expect(bound(e, 'vm1.default')).toEqual({ chassis: ['ch-node1'], additional: ['ch-node2'] });
    // No longer a pending target: nothing more reported.
    await activate(e, 'ch-node2,ch-node3');
    expect(e.write.mock.calls.length).toBe(calls);
  });

  it('sets the source\'s chassis again when something else wrote another main chassis', async () => {
    const e = await env('node2', localPortOps('vm1.default', DST), [{ port: 'vm1.default', chassis: 'node3', additional: ['node2'] }], [source(), target()]);
    expect(bound(e, 'vm1.default')).toEqual({ chassis: ['ch-node1'], additional: ['ch-node2'] });
  });
});

describe('VmMigrations and other ports', () => {
  it('never touches a local port of a non-VM pod, a remote row of a VM, or a VM port whose pod is unknown', async () => {
    const remoteVm: Operation[] = [
      { op: 'insert', table: LSP, 'uuid-name': 'rvm', row: { name: 'vm2.default', options: ovsMap({ 'requested-chassis': 'ch-node3', 'requested-tnl-key': '7' }), external_ids: ovsMap({ [REMOTE_NODE]: 'node3', 'ovnode:pod': 'default/virt-launcher-vm2-x' }) } },
      { op: 'mutate', table: LS, where: [['name', '==', 'ovn-default']], mutations: [['ports', 'insert', ovsSet([namedUuid('rvm')])]] },
    ];
    const e = await env('node1', [
      ...localPortOps('web.default', 'web', { key: 9 }),
      ...localPortOps('vm3.default', 'virt-launcher-vm3-gone', { key: 11 }),
      ...remoteVm,
    ], [{ port: 'web.default', chassis: 'node1' }, { port: 'vm2.default' }], [
      pod('web', { node: 'node1', vm: '' }),
      pod('virt-launcher-vm2-x', { node: 'node3', vm: 'vm2' }),
      pod('virt-launcher-vm2-y', { node: 'node2', vm: 'vm2', createdAt: T1, target: true }),
    ]);
    const before = { web: lspRow(e, 'web.default'), vm2: lspRow(e, 'vm2.default'), vm3: lspRow(e, 'vm3.default'), pbWeb: pbRow(e, 'web.default'), pbVm2: pbRow(e, 'vm2.default') };
    // A non-VM pod's change, and the VM pods' changes: still nothing to do for these ports.
    e.store.apply({ ...pod('web', { node: 'node1', vm: '' }), metadata: { ...pod('web', { node: 'node1', vm: '' }).metadata, annotations: { x: 'y' } } });
    e.store.apply(pod('virt-launcher-vm2-y', { node: 'node2', vm: 'vm2', createdAt: T1, target: true, activated: 'node2' }));
    await e.migrations.idle();
    expect(lspRow(e, 'web.default')).toEqual(before.web);
    expect(lspRow(e, 'vm2.default')).toEqual(before.vm2);
    expect(lspRow(e, 'vm3.default')).toEqual(before.vm3);
    expect(pbRow(e, 'web.default')).toEqual(before.pbWeb);
    expect(pbRow(e, 'vm2.default')).toEqual(before.pbVm2);
    expect(e.write).not.toHaveBeenCalled();
    expect(e.errors()).toEqual([]);
  });
});

describe('vmPortOptions', () => {
  it('gives a VM pod\'s new port its binding\'s options, and other pods none', () => {
    const store = new MemoryStore();
    for (const p of [source(), target(), pod('web', { node: 'node1', vm: '' })]) store.apply(p);
    const chassis = new ChassisNames('node2', 'ch-node2', () => PEERS.filter((p) => p.node !== 'node2'));
    expect(vmPortOptions(store, chassis, store.get('Pod', DST, 'default'))).toEqual({ 'requested-chassis': 'ch-node1,ch-node2', 'activation-strategy': 'rarp' });
    expect(vmPortOptions(store, chassis, store.get('Pod', 'web', 'default'))).toEqual({});
    expect(vmPortOptions(store, chassis, undefined)).toEqual({});
    // A node that has not joined is left out of the list.
    const alone = new ChassisNames('node2', 'ch-node2', () => []);
    expect(vmPortOptions(store, alone, store.get('Pod', DST, 'default'))).toEqual({ 'requested-chassis': 'ch-node2' });
  });
});
