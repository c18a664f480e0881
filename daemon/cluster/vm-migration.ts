// Live migration of KubeVirt VMs, node side. A VM's port is bound where kubevirt.ts's vmBinding
// says: on the serving node's chassis, and during a migration also on the target's, whose binding
// OVN keeps blocked until the VM's RARP arrives from there (activation-strategy=rarp). With one
// OVN zone per node, no ovn-controller sees another zone's claims, so the daemons write what a
// central SB would show:
//
// - On a node holding one of the VM's pods (its local port), the NB port requests the binding's
//   chassis (source first) and, in the SB, the binding lists the other node's chassis as what
//   its ovn-controller would have claimed: the main chassis when the VM is served elsewhere, an
//   additional chassis when this node serves it and the other is the target. The local
//   ovn-controller claims its own part itself (main, or additional with the RARP block).
// - Every other zone holds the VM as a remote port (remote-ports.ts) requested on the same chassis
//   list: traffic to the VM goes to both nodes during the move, so the target serves from the
//   moment its ovn-controller lifts the block, with no daemon on the path.
// - When the target's ovn-controller reports the activation (SB options
//   additional-chassis-activated), its node writes `ovnode.io/migration-activated` on the target
//   pod: every node then binds the VM to the target alone, and the source's node stops receiving
//   the duplicates. A target removed before that (a failed migration) leaves the source alone.

import type { Logger } from 'pino';
import { LatestSync } from '../node/latest-sync';
import type { ObjectChanges, ObjectStore, PodObj } from '../objects/types';
import type { OvsdbClient } from '../ovsdb/client';
import type { Operation, WireRow } from '../ovsdb/types';
import { UniqueIndex } from '../ovsdb/unique-index';
import { asArray, asMap, ovsMap, ovsSet, uuid, type Row } from '../ovsdb/values';
import { NB, SB } from '../ovs/schema';
import { EXT, OWNER } from '../store/external-ids';
import { bindingNodes, isAttached, KUBEVIRT, migrationOptions, vmBinding, vmOf, VmPodIndex, type VmBinding } from './kubevirt';
import type { PeerNode } from './node-contract';
import type { PodAnnotationWriter } from './pod-annotations';

/** The NB options a migration decides; the others of a port (its tunnel key) are kept. */
const MIGRATION_KEYS = ['requested-chassis', 'activation-strategy'] as const;
const ACTIVATED_OPTION = 'additional-chassis-activated';

/** Node name to chassis name, for this node and its peers. */
export class ChassisNames {
  constructor(private readonly localNode: string, private readonly localChassis: string, private readonly peers: () => readonly PeerNode[]) {}

  of(node: string): string | undefined {
    if (node === this.localNode) return this.localChassis;
    return this.peers().find((p) => p.node === node)?.chassisId;
  }

  get local(): string { return this.localChassis; }

  /** The chassis of a VM's binding, serving first; nodes that have not joined are left out. */
  forBinding(b: VmBinding): string[] {
    return bindingNodes(b).map((n) => this.of(n)).filter((c): c is string => c !== undefined);
  }
}

/** The NB options of a VM pod's port as the cluster stands now ({} for a pod of no VM). */
export function vmPortOptions(store: Pick<ObjectStore, 'list'>, chassis: ChassisNames, pod: PodObj | undefined): Record<string, string> {
  const vm = vmOf(pod);
  if (!vm) return {};
  // The pod's own port is requested with the target it is (its ADD makes it ready).
  const b = vmBinding(new VmPodIndex(store.list('Pod')).pods(vm), (p) => p === pod || isAttached(p));
  return b ? migrationOptions(chassis.forBinding(b)) : {};
}

export interface VmMigrationsOptions {
  nb: OvsdbClient;
  sb: OvsdbClient;
  store: Pick<ObjectStore, 'list' | 'get'> & ObjectChanges;
  localNode: string;
  chassis: ChassisNames;
  writer: Pick<PodAnnotationWriter, 'write'>;
  log: Logger;
  retryMs?: number;
}

/** A local port of a VM pod, with the binding its VM has now. */
interface LocalVmPort { row: Row; pod: PodObj; binding: VmBinding }

export class VmMigrations {
  readonly #sync: LatestSync<void>;
  readonly #bindingByPort: UniqueIndex;
  readonly #unsubscribe: Array<() => void> = [];
  #retry: NodeJS.Timeout | undefined;
  /** The local VM ports of the last pass: their bindings' changes matter. */
  #vmPortNames = new Set<string>();

  constructor(private readonly opts: VmMigrationsOptions) {
    this.#bindingByPort = new UniqueIndex(opts.sb, SB.pb, 'logical_port');
    this.#sync = new LatestSync(() => this.#pass(), (e) => {
      opts.log.error({ step: 'vm-migration', err: e }, 'applying VM port bindings failed; retrying');
      this.#retry ??= setTimeout(() => { this.#retry = undefined; void this.request(); }, opts.retryMs ?? 1_000);
      this.#retry.unref();
    });
  }

  start(): Promise<void> {
    const { store, nb, sb } = this.opts;
    // A VM pod's change (one that is, or was: a source that went); not the many other pods'.
    const vmPodKeys = new Set<string>();
    for (const p of store.list('Pod')) if (vmOf(p)) vmPodKeys.add(`${p.metadata.namespace}/${p.metadata.name}`);
    this.#unsubscribe.push(store.onObjectChange((c) => {
      if (c.kind !== 'Pod') return;
      const key = `${c.namespace}/${c.name}`;
      const isVm = vmOf(store.get('Pod', c.name, c.namespace)) !== undefined;
      if (!isVm && !vmPodKeys.has(key)) return;
      if (isVm) vmPodKeys.add(key); else vmPodKeys.delete(key);
      void this.request();
    }));
    // A local VM port that appears or changes; its binding changing (claims, the activation).
    const isVmPort = (row: Row | undefined): boolean => {
      if (!isLocalPort(row)) return false;
      const ids = asMap(row.external_ids);
      return vmOf(store.get('Pod', String(ids[EXT.podName]), String(ids[EXT.podNamespace] ?? ''))) !== undefined || this.#vmPortNames.has(row.name as string);
    };
    const onNb = (table: string, _u: string, old: Row | undefined, row: Row | undefined): void => {
      if (table === NB.lsp && (isVmPort(row) || isVmPort(old))) void this.request();
    };
    const onSb = (table: string, _u: string, old: Row | undefined, row: Row | undefined): void => {
      if (table !== SB.pb || !row || !this.#vmPortNames.has(row.logical_port as string)) return;
      if (!old || asArray(old.chassis).join() !== asArray(row.chassis).join()
        || asArray(old.additional_chassis).join() !== asArray(row.additional_chassis).join()
        || asMap(old.options)[ACTIVATED_OPTION] !== asMap(row.options)[ACTIVATED_OPTION]) void this.request();
    };
    nb.on('change', onNb);
    sb.on('change', onSb);
    this.#unsubscribe.push(() => nb.off('change', onNb), () => sb.off('change', onSb));
    return this.request();
  }

  request(): Promise<void> { return this.#sync.request(undefined); }
  idle(): Promise<void> { return this.#sync.idle(); }

  stop(): void {
    for (const u of this.#unsubscribe.splice(0)) u();
    if (this.#retry) clearTimeout(this.#retry);
    this.#bindingByPort.close();
  }

  /** This node's ports of VM pods. */
  #localVmPorts(): LocalVmPort[] {
    const { nb, store } = this.opts;
    const out: LocalVmPort[] = [];
    let index: VmPodIndex | undefined;
    for (const row of nb.rows(NB.lsp).values()) {
      if (!isLocalPort(row)) continue;
      const ids = asMap(row.external_ids);
      const pod = store.get('Pod', String(ids[EXT.podName] ?? ''), String(ids[EXT.podNamespace] ?? ''));
      const vm = vmOf(pod);
      if (!vm || !pod) continue;
      index ??= new VmPodIndex(store.list('Pod'));
      // A local target's own port keeps naming it while its ADD runs.
      const binding = vmBinding(index.pods(vm), (p) => p === pod || isAttached(p));
      if (binding) out.push({ row, pod, binding });
    }
    return out;
  }

  async #pass(): Promise<void> {
    const { nb, sb, chassis, log } = this.opts;
    const nbOps: Operation[] = [];
    const ports = this.#localVmPorts();
    this.#vmPortNames = new Set(ports.map((p) => p.row.name as string));
    for (const { row, binding } of ports) {
      const want = migrationOptions(chassis.forBinding(binding));
      const have = asMap(row.options);
      if (MIGRATION_KEYS.every((k) => have[k] === want[k])) continue;
      const next: Record<string, string> = {};
      for (const [k, v] of Object.entries(have)) if (!(MIGRATION_KEYS as readonly string[]).includes(k)) next[k] = String(v);
      nbOps.push({ op: 'update', table: NB.lsp, where: [['_uuid', '==', uuid(row._uuid)]], row: { options: ovsMap({ ...next, ...want }) } });
      log.info({ step: 'vm-migration', lsp: row.name, requestedChassis: want['requested-chassis'] ?? '', strategy: want['activation-strategy'] ?? '' }, 'VM port requested chassis changed');
    }
    if (nbOps.length > 0) await nb.transact([...nbOps, { op: 'comment', comment: 'ovnode: VM port migration' }]);
    const sbOps = this.#bindingOps(ports);
    if (sbOps.length > 0) await sb.transact([...sbOps, { op: 'comment', comment: 'ovnode: VM port bindings of other zones' }]);
    this.#reportActivations(ports);
  }

  /**
   * What the other node's ovn-controller would have written into a shared SB: its claim as the
   * main chassis (the VM is served there) or as an additional one (it is the target). This
   * node's own claim is its ovn-controller's and is never written here.
   */
  #bindingOps(ports: readonly LocalVmPort[]): Operation[] {
    const { sb, chassis } = this.opts;
    const chassisUuid = new Map<string, string>();
    for (const c of sb.rows(SB.chassis).values()) chassisUuid.set(c.name as string, c._uuid);
    const local = chassisUuid.get(chassis.local);
    const ops: Operation[] = [];
    for (const { row, binding } of ports) {
      const pb = this.#bindingByPort.get(row.name as string);
      if (!pb) continue; // northd has not created it yet: its creation brings another pass
      const [main, ...additional] = chassis.forBinding(binding).map((c) => chassisUuid.get(c));
      if (main === undefined) continue;
      const update: WireRow = {};
      const haveMain = asArray<string>(pb.chassis)[0];
      if (main !== local && haveMain !== main) update.chassis = uuid(main);
      const haveAdditional = asArray<string>(pb.additional_chassis);
      const wantRemote = additional.filter((c): c is string => c !== undefined && c !== local);
      const keepLocal = haveAdditional.filter((c) => c === local);
      const wantAdditional = [...keepLocal, ...wantRemote];
      if (wantAdditional.length !== haveAdditional.length || wantAdditional.some((c) => !haveAdditional.includes(c))) {
        update.additional_chassis = ovsSet(wantAdditional.map((c) => uuid(c)));
      }
      if (Object.keys(update).length > 0) ops.push({ op: 'update', table: SB.pb, where: [['_uuid', '==', uuid(pb._uuid)]], row: update });
    }
    return ops;
  }

  /** A pending target here whose binding the local ovn-controller activated: the pod says so. */
  #reportActivations(ports: readonly LocalVmPort[]): void {
    const { chassis, localNode, log, writer } = this.opts;
    for (const { row, pod, binding } of ports) {
      if (binding.pending !== pod || pod.spec.nodeName !== localNode) continue;
      const activated = String(asMap(this.#bindingByPort.get(row.name as string)?.options)[ACTIVATED_OPTION] ?? '');
      if (!activated.split(',').map((s) => s.trim()).includes(chassis.local)) continue;
      log.info({ step: 'vm-migration', lsp: row.name, pod: `${pod.metadata.namespace}/${pod.metadata.name}` }, 'VM activated on this node (RARP seen by OVN)');
      const ref = { namespace: pod.metadata.namespace, name: pod.metadata.name, ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}) };
      writer.write(ref, { [KUBEVIRT.activated]: localNode }, 'migration');
    }
  }
}

/** A port a local ADD wrote (not a remote or prepared row). */
function isLocalPort(row: Row | undefined): row is Row {
  if (!row) return false;
  const ids = asMap(row.external_ids);
  return ids[EXT.owner] === OWNER && ids[EXT.sandbox] !== undefined && ids[EXT.podName] !== undefined;
}
