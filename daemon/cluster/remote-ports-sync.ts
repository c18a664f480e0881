// Keeps this zone's remote ports (remote-ports.ts decides them, remote-port-plan.ts writes them)
// in step with the cluster, one NB and one SB transaction per pass, passes never overlapping and a
// burst of changes folded into two passes at most.
//
// Most changes are one pod of another node appearing, changing or going: such a pass re-decides
// only the slots that pod left and entered and looks its port up by name, so its cost does not
// grow with the cluster (a full pass at 5000 pods costs tens of milliseconds, and every node
// runs one for every pod of every other node). Everything else a port depends on (peers and
// their chassis, switches and their CIDRs, local ports) changes rarely and makes the next pass a
// full one, as does a failed pass.

import type { Logger } from 'pino';
import { LatestSync } from '../node/latest-sync';
import type { ObjectChanges, ObjectStore } from '../objects/types';
import type { OvsdbClient } from '../ovsdb/client';
import type { Operation } from '../ovsdb/types';
import { UniqueIndex } from '../ovsdb/unique-index';
import { asArray, asMap, type Row } from '../ovsdb/values';
import { NB, SB } from '../ovs/schema';
import type { PeerNode } from './node-contract';
import { vmOf, type VmRef } from './kubevirt';
import { indexedPorts, isOurs, planBindings, planChangedPorts, planRemotePorts, scanPorts, type ScannedPorts } from './remote-port-plan';
import {
  candidatesOf, holderPort, lostSlot, nodePorts, passContext, slotOf, slotTable, vmPodLookup, type PassContext, type RemotePort, type Skip, type SlotTable,
} from './remote-ports';

export interface RemotePortsOptions {
  nb: OvsdbClient;
  sb: OvsdbClient;
  /** With per-object changes where the store has them (a pod's change is then an incremental pass). */
  store: ObjectStore & Partial<ObjectChanges>;
  localNode: string;
  joinSwitch?: string;
  peers: () => readonly PeerNode[];
  /** Addresses other nodes' pods no longer hold here (gone, or now another pod's): flush their conntrack state. */
  onAddressesGone?: (ips: string[]) => void;
  /** Ports were written: port groups that list them can now hold them. */
  onPortsWritten?: () => void;
  log: Logger;
  /** After a failed pass, the next (full) one starts this much later unless a change comes first. */
  retryMs?: number;
}

/** What the last full pass decided, kept up to date by the incremental ones. */
interface Decided {
  ctx: PassContext;
  table: SlotTable;
  /** The ports this zone should hold, by name: slot holders and peers' node ports. */
  desired: Map<string, RemotePort>;
  /** The pod port holding each slot. */
  holderOf: Map<string, string>;
  /** Local ports as the full pass found them. */
  scanned: Pick<ScannedPorts, 'local' | 'localSlots'>;
}

export class RemotePorts {
  readonly #sync: LatestSync<void>;
  readonly #reported = new Set<string>();
  readonly #unsubscribe: Array<() => void> = [];
  readonly #lspByName: UniqueIndex;
  readonly #bindingByPort: UniqueIndex;
  #decided: Decided | undefined;
  #full = true;
  readonly #dirtyPods = new Set<string>();
  readonly #dirtyBindings = new Set<string>();
  #retry: NodeJS.Timeout | undefined;
  /** The VM of each VM pod seen (a deleted pod's siblings must be re-decided too). */
  readonly #vmOfPod = new Map<string, VmRef>();
  /** Passes run, by kind (tests and logs). */
  readonly passes = { full: 0, incremental: 0 };

  constructor(private readonly opts: RemotePortsOptions) {
    this.#lspByName = new UniqueIndex(opts.nb, NB.lsp);
    this.#bindingByPort = new UniqueIndex(opts.sb, SB.pb, 'logical_port');
    this.#sync = new LatestSync(() => this.#apply(), (e) => {
      this.#full = true;
      opts.log.error({ step: 'remote-ports', err: e }, 'writing remote ports failed; retried with a full pass');
      this.#retry ??= setTimeout(() => { this.#retry = undefined; void this.#request(); }, opts.retryMs ?? 1_000);
      this.#retry.unref();
    });
  }

  /** Follows the store, the NB's switches and local ports, and the SB's bindings from now on. */
  start(): Promise<void> {
    const { store, nb, sb } = this.opts;
    if (store.onObjectChange) {
      this.#unsubscribe.push(store.onObjectChange((c) => {
        if (c.kind !== 'Pod') return;
        this.#dirtyPods.add(`${c.namespace}/${c.name}`);
        void this.#request();
      }));
    } else {
      this.#unsubscribe.push(store.onChange(() => void this.sync()));
    }
    // A switch that appears, goes or changes its CIDRs (not the ports this controller links to
    // it); a local port that appears, goes or changes its key.
    const onNb = (table: string, _u: string, old: Row | undefined, row: Row | undefined): void => {
      if (table === NB.ls) {
        if (!old || !row || asMap(old.external_ids)['ovnode:cidrs'] !== asMap(row.external_ids)['ovnode:cidrs']) void this.sync();
      } else if (table === NB.lsp && !isOurs(old) && !isOurs(row)) {
        if (!old || !row || old.name !== row.name || asMap(old.options)['requested-tnl-key'] !== asMap(row.options)['requested-tnl-key']) void this.sync();
      }
    };
    // A remote binding northd created, or one left (or put back) without a chassis; a chassis that
    // appears or goes. Not the chassis this controller just set.
    const onSb = (table: string, u: string, old: Row | undefined, row: Row | undefined): void => {
      if (table === SB.pb && row && (!old || asArray<string>(row.chassis).length === 0) && this.#isOurs(row.logical_port as string)) {
        this.#dirtyBindings.add(u);
        void this.#request();
      } else if (table === SB.chassis && (!old || !row)) void this.sync();
    };
    nb.on('change', onNb);
    sb.on('change', onSb);
    this.#unsubscribe.push(() => nb.off('change', onNb), () => sb.off('change', onSb));
    return this.sync();
  }

  /** A full pass (peers changed, or a caller wants everything checked). */
  sync(): Promise<void> {
    this.#full = true;
    return this.#request();
  }

  /** Resolves once the passes requested so far have run (tests, shutdown). */
  idle(): Promise<void> {
    return this.#sync.idle();
  }

  stop(): void {
    for (const u of this.#unsubscribe.splice(0)) u();
    if (this.#retry) clearTimeout(this.#retry);
    this.#lspByName.close();
    this.#bindingByPort.close();
  }

  /** An NB port of that name is this controller's (looked up in the NB as it is now). */
  readonly #isOurs = (name: string): boolean => isOurs(this.#lspByName.get(name));

  #request(): Promise<void> {
    return this.#sync.request(undefined);
  }

  readonly #skip: Skip = (pod, why) => {
    // A node that has not joined holds back all its pods: one line per node, not per pod.
    const key = why.startsWith('node ') ? why : `${pod}|${why}`;
    if (this.#reported.has(key)) return;
    if (this.#reported.size > 10_000) this.#reported.clear();
    this.#reported.add(key);
    this.opts.log.warn({ step: 'remote-ports', pod, reason: why }, 'remote pod not reachable from this node');
  };

  async #apply(): Promise<void> {
    // What changed up to now is this pass's; what changes while it awaits is the next one's.
    const full = this.#full || !this.#decided;
    this.#full = false;
    const pods = [...this.#dirtyPods];
    const bindings = [...this.#dirtyBindings];
    this.#dirtyPods.clear();
    this.#dirtyBindings.clear();
    if (full) await this.#fullPass();
    else await this.#podsPass(this.#decided as Decided, pods, bindings);
  }

  async #fullPass(): Promise<void> {
    this.passes.full++;
    const { nb, sb, store, localNode, joinSwitch } = this.opts;
    const ctx = passContext({ store, localNode, peers: this.opts.peers(), nb, ...(joinSwitch === undefined ? {} : { joinSwitch }) });
    const table = slotTable(store, ctx, this.#skip);
    this.#vmOfPod.clear();
    for (const p of store.list('Pod')) {
      const vm = vmOf(p);
      if (vm) this.#vmOfPod.set(`${p.metadata.namespace}/${p.metadata.name}`, vm);
    }
    const desired = new Map<string, RemotePort>();
    const holderOf = new Map<string, string>();
    for (const slot of table.slots()) {
      const { holder, losers } = table.holder(slot);
      for (const l of losers) this.#skip(l.facts.pod, lostSlot(l));
      const port = holder && holderPort(holder, ctx);
      if (!port) continue;
      holderOf.set(slot, port.lspName);
      desired.set(port.lspName, port);
    }
    for (const p of nodePorts(ctx, new Set(holderOf.keys()), this.#skip)) desired.set(p.lspName, p);
    const scanned = scanPorts(nb);
    this.#decided = { ctx, table, desired, holderOf, scanned };
    const gone: string[] = [];
    const nbOps = planRemotePorts(nb, [...desired.values()], this.#skip, gone, scanned);
    await this.#write(nbOps, gone, () => planBindings(sb, sb.rows(SB.pb).values(), desired, this.#isOurs));
  }

  async #podsPass(d: Decided, pods: string[], bindings: string[]): Promise<void> {
    this.passes.incremental++;
    const { nb, sb, store } = this.opts;
    // Where VMs are bound depends on all their pods: looked up afresh in every pass.
    d.ctx = { ...d.ctx, vmPods: vmPodLookup(store) };
    const touched = new Set<string>();
    for (const key of pods) {
      const at = key.indexOf('/');
      const obj = store.get('Pod', key.slice(at + 1), key.slice(0, at));
      const candidates = obj ? candidatesOf(obj, d.ctx, this.#skip) : [];
      for (const slot of d.table.set(key, candidates)) touched.add(slot);
      // A VM pod's change (a target appearing, activated, going) moves its VM's port, which
      // another of its pods may hold; a pod gone from the store is known by what it was.
      const vm = vmOf(obj) ?? this.#vmOfPod.get(key);
      if (obj && vmOf(obj)) this.#vmOfPod.set(key, vmOf(obj) as VmRef); else this.#vmOfPod.delete(key);
      if (vm) for (const p of d.ctx.vmPods(vm)) for (const slot of d.table.slotsOf(`${p.metadata.namespace}/${p.metadata.name}`)) touched.add(slot);
    }
    // A pod entering or leaving the join switch competes with the peers' node ports: decided as a
    // whole (the table is rebuilt too).
    const joinSlots = d.ctx.joinSwitch === undefined ? '' : slotOf(d.ctx.joinSwitch, '');
    if (joinSlots && [...touched].some((slot) => slot.startsWith(joinSlots))) { await this.#fullPass(); return; }
    // Holders that lost their slot first, then the new ones: a pod whose address changed leaves
    // one slot and takes another in the same pass.
    const changed = new Set<string>();
    const holders: RemotePort[] = [];
    for (const slot of touched) {
      const { holder, losers } = d.table.holder(slot);
      for (const l of losers) this.#skip(l.facts.pod, lostSlot(l));
      const before = d.holderOf.get(slot);
      if (before !== undefined) { changed.add(before); d.desired.delete(before); d.holderOf.delete(slot); }
      const port = holder && holderPort(holder, d.ctx);
      if (port) holders.push(port);
    }
    for (const p of holders) {
      d.holderOf.set(slotOf(p.logicalSwitch, p.tunnelKey), p.lspName);
      d.desired.set(p.lspName, p);
      changed.add(p.lspName);
    }
    const gone: string[] = [];
    const view = indexedPorts(nb, (name) => this.#lspByName.get(name), d.scanned);
    const nbOps = planChangedPorts(view, changed, d.desired, this.#skip, gone);
    await this.#write(nbOps, gone, () => {
      const rows = sb.rows(SB.pb);
      const toBind = [...bindings.map((u) => rows.get(u)), ...[...changed].map((name) => this.#bindingByPort.get(name))];
      return planBindings(sb, toBind.filter((r): r is Row => r !== undefined), d.desired, this.#isOurs);
    });
  }

  async #write(nbOps: Operation[], gone: string[], bindings: () => Operation[]): Promise<void> {
    const { nb, sb, log } = this.opts;
    if (nbOps.length > 0) {
      await nb.transact([...nbOps, { op: 'comment', comment: 'ovnode: remote ports' }]);
      log.info({ step: 'remote-ports', ports: this.#decided?.desired.size, ops: nbOps.length, gone: gone.length }, 'remote ports written');
      if (gone.length > 0) this.opts.onAddressesGone?.([...new Set(gone)]);
      this.opts.onPortsWritten?.();
    }
    const sbOps = bindings();
    if (sbOps.length > 0) {
      await sb.transact([...sbOps, { op: 'comment', comment: 'ovnode: remote port bindings' }]);
      log.debug({ step: 'remote-ports', bound: sbOps.length }, 'remote ports bound');
    }
  }
}
