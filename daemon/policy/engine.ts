// The policy engine: whenever the object store or the set of pod ports changes, recompute the
// desired NB state and apply the difference in ONE NB transaction. Runs are serialised and
// coalesced (a burst of changes yields one run after the current one). Also answers the CNI
// ADD path: where a pod goes and which port groups / address sets it joins at creation, so a new
// pod is isolated from its first packet.

import type { Logger } from 'pino';
import { SubnetRegistry, VIP_OWNER_PREFIX } from '../ipam/registry';
import type { SubnetSpec } from '../ipam/pool';
import type { ObjectStore, PodObj } from '../objects/types';
import { removeSwitchOps, routerRef, switchOps } from '../ovn/topology';
import { switchTunnelKeys } from '../cluster/tunnel-keys';
import type { OvsdbClient } from '../ovsdb/client';
import type { Operation } from '../ovsdb/types';
import { namedUuid, ovsSet, type Atom } from '../ovsdb/values';
import { computeDesired } from './desired';
import type { DesiredState } from './model';
import { macForIp } from '../ipam/mac';
import { policyTranslations } from './network-policy';
import { PeerIndex } from './peer-index';
import { podPorts, remotePodPorts, type PodPort } from './pods';
import { AdmissionIndex } from './admission-index';
import { UniqueIndex } from '../ovsdb/unique-index';
import { planReconcile } from './reconcile';
import { subnetShape } from './subnets';
import type { Metrics } from '../metrics';

export interface EngineDeps {
  nb: OvsdbClient;
  store: ObjectStore;
  subnets: SubnetRegistry;
  log: Logger;
  builtin: Array<{ name: string; cidrs: string[]; gateways: string[] }>;
  joinCidrs: readonly string[];
  nodeIps: string[];
  metrics?: Metrics;
  /** Set on a cluster: pods of other nodes (by spec.nodeName) are policy peers. */
  nodeName?: string;
}

export class PolicyEngine {
  private running: Promise<void> | undefined;
  private again = false;
  private applied = 0;
  private lastDesired: DesiredState | undefined;
  private failures = 0;
  private soonTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  private readonly admission: AdmissionIndex;
  private readonly portGroups: UniqueIndex;
  private readonly addressSets: UniqueIndex;
  /** Peer answers kept between runs: a label change re-evaluates one namespace's peers. */
  private readonly peerIndex = new PeerIndex();
  /** Policies translated in earlier runs, by policy object. */
  private readonly translations = policyTranslations();

  constructor(private readonly deps: EngineDeps) {
    this.admission = new AdmissionIndex(deps.store);
    this.portGroups = new UniqueIndex(deps.nb, 'Port_Group');
    this.addressSets = new UniqueIndex(deps.nb, 'Address_Set');
  }

  /**
   * Subscribes to the store and applies once. Pod ports coming and going are reported by the
   * CNI handlers (scheduleSoon); the store logs the objects it refuses.
   */
  async start(): Promise<void> {
    this.deps.store.onChange(() => this.schedule('objects'));
    await this.reconcileNow('start');
  }

  /** Requests a run; resolves when a run that started after this call has finished. */
  schedule(reason: string): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running.then(() => this.running ?? Promise.resolve());
    }
    // Start on the next turn: the caller (a store update, an ADD) is not blocked by the run,
    // and a burst of changes made in one turn is folded into it.
    this.running = new Promise<void>((r) => setImmediate(r)).then(() => this.run(reason)).finally(() => {
      this.running = undefined;
      if (this.again) { this.again = false; void this.schedule('coalesced'); }
    });
    return this.running;
  }

  reconcileNow(reason: string): Promise<void> { return this.schedule(reason); }

  /**
   * A run soon, for pod ports coming and going: their memberships were already written with the
   * ADD (admissionOps) or vanish with the port (weak references), so this run only catches the
   * rest (QoS, address sets of peers). Deferring it keeps it off the next CNI request's path and
   * folds a burst of ADD/DELs into one run.
   */
  scheduleSoon(reason: string, delayMs = 100): void {
    if (this.soonTimer) return;
    this.soonTimer = setTimeout(() => { this.soonTimer = undefined; void this.schedule(reason); }, delayMs);
    this.soonTimer.unref();
  }

  private async run(reason: string): Promise<void> {
    const started = performance.now();
    const { nb, store, log } = this.deps;
    try {
      this.syncPools();
      // Off the ADD path: the next admission finds the indexes current.
      this.admission.refresh();
      const pods = podPorts(nb, store);
      const remotePods = this.deps.nodeName ? remotePodPorts(store, this.deps.nodeName) : [];
      const desired = computeDesired({ store, pods, remotePods, peerIndex: this.peerIndex, translations: this.translations, builtin: this.deps.builtin, joinCidrs: this.deps.joinCidrs, nodeIps: this.deps.nodeIps });
      this.lastDesired = desired;
      const keys = switchTunnelKeys(desired.switches.map((s) => s.name));
      for (const s of desired.switches) s.tunnelKey = keys.get(s.name);
      const router = routerRef(nb);
      const plan = planReconcile(nb, desired, {
        switchOps: (s, i) => (router ? switchOps(nb, { name: s.name, cidrs: s.cidrs, gateways: s.gateways, tunnelKey: s.tunnelKey, routerPortMac: macForIp(s.gateways.find((g) => !g.includes(':')) ?? s.gateways[0]), ...(s.underlay ? { underlay: s.underlay } : {}) }, router, 1000 + i, { 'ovnode:subnet': 'true' }) : []),
        removeSwitchOps: (name) => removeSwitchOps(nb, name),
      });
      const version = 'version' in store ? (store as { version: number }).version : this.applied;
      if (plan.ops.length > 0) await nb.transact([...plan.ops, { op: 'comment', comment: `ovnode: policy (${reason})` }]);
      this.applied++;
      const ms = performance.now() - started;
      this.deps.metrics?.policyApply.observe({ outcome: 'ok' }, ms / 1000);
      this.deps.metrics?.policyOps.inc(plan.ops.length);
      this.deps.metrics?.rejectedObjects.set(store.rejected().length);
      log.info({ step: 'policy', reason, version, ops: plan.ops.length, ...plan.counts, ms: +ms.toFixed(2) }, 'policy applied');
    } catch (e) {
      this.deps.metrics?.policyApply.observe({ outcome: 'error' }, (performance.now() - started) / 1000);
      this.failures++;
      const delay = Math.min(30_000, 250 * 2 ** Math.min(this.failures, 7));
      log.error({ step: 'policy', reason, err: String(e), retryInMs: delay }, 'policy apply failed; retrying');
      if (!this.retryTimer) {
        this.retryTimer = setTimeout(() => { this.retryTimer = undefined; void this.schedule('retry'); }, delay);
        this.retryTimer.unref();
      }
      return;
    }
    this.failures = 0;
  }

  /** Subnet pools for Subnet objects (and VIP reservations), kept in step with the store. */
  private syncPools(): void {
    const { store, subnets, nb } = this.deps;
    const specs: SubnetSpec[] = store.list('Subnet')
      .filter((s) => !this.deps.builtin.some((b) => b.name === s.metadata.name))
      .map((s) => { const sh = subnetShape(s); return { name: sh.name, cidrs: sh.cidrs, gateways: sh.gateways, excludeIps: sh.excludeIps }; });
    const vips = store.list('Vip').flatMap((v) => [v.spec.v4ip, v.spec.v6ip].filter((x): x is string => Boolean(x))
      .map((ip) => ({ subnet: v.spec.subnet, ip, owner: `${VIP_OWNER_PREFIX}${v.metadata.name}` })));
    subnets.sync(specs, nb, vips, this.deps.log);
  }

  /** Logical switch of a pod: its annotation, else a Subnet that lists its namespace. */
  switchFor(pod: PodObj | undefined, namespace: string | undefined): string | undefined {
    const annotated = pod?.metadata.annotations['ovn.kubernetes.io/logical_switch'];
    if (annotated) return annotated;
    if (!namespace) return undefined;
    return this.deps.store.list('Subnet').find((s) => s.spec.namespaces.includes(namespace))?.metadata.name;
  }

  /**
   * NB operations that put a new port (referred to by `lspRef`, a named-uuid of the ADD's own
   * transaction) into the port groups and address sets it belongs to, so it is isolated from
   * its first packet. Only this pod is evaluated, against indexes of the store (see
   * admission-index.ts): no other pod is looked at. Groups and sets not in the NB yet are left
   * to the next run, which creates them with their members.
   */
  admissionOps(p: Omit<PodPort, 'namespaceLabels'>, lspRef: string): Operation[] {
    const started = performance.now();
    const m = this.admission.memberships(p);
    const ops: Operation[] = [];
    for (const name of m.portGroups) {
      if (!this.portGroups.get(name)) continue;
      ops.push({ op: 'mutate', table: 'Port_Group', where: [['name', '==', name]], mutations: [['ports', 'insert', ovsSet([namedUuid(lspRef)])]] });
    }
    for (const { name, ips } of m.addressSets) {
      if (!this.addressSets.get(name)) continue;
      // Not filtered against the set's addresses: that would scan sets that grow with the
      // cluster, and inserting an element a set already holds changes nothing (RFC 7047 5.1).
      ops.push({ op: 'mutate', table: 'Address_Set', where: [['name', '==', name]], mutations: [['addresses', 'insert', ovsSet(ips as Atom[])]] });
    }
    if (this.deps.log.isLevelEnabled('debug')) {
      this.deps.log.debug({ step: 'admission', lsp: p.lspName, ops: ops.length, ms: +(performance.now() - started).toFixed(3) }, 'admission ops');
    }
    return ops;
  }

  get desired(): DesiredState | undefined { return this.lastDesired; }
}
