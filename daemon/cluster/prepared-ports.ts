// Ports prepared before their ADD: when a pod is scheduled to this node, its Logical_Switch_Port is
// written right away, with addresses from this node's blocks, so that ovn-northd (which in OVN
// 23.03 recomputes every logical flow on any NB change: ~0.3 s with 5000 ports) has created the
// port's binding by the time kubelet's runtime calls ADD. The ADD then takes the addresses over
// (the pool hands a port's earlier holder's addresses to its next one) and replaces the row under
// its sandbox; ovn-controller claims the existing binding as soon as the OVS port appears, and
// northd's recompute for the replacement is off the ADD's path. Kube-OVN's controller writes the
// port on pod creation too; here the node does it for its own pods only, with no API call.
//
// A prepared row has no sandbox (nothing on this node's data path refers to it: the leak loop,
// GC and write-backs all skip it) and is marked ovnode:prepared; its addresses are held by the
// plain port name, which is how the registry holds them again after a restart. It goes when its
// pod goes, finishes, or is no longer to be prepared; an ADD in flight for the port stops any
// preparation of it, and waits for one in progress.

import type { Logger } from 'pino';
import type { Family } from '../ipam/cidr';
import { macForIp } from '../ipam/mac';
import type { SubnetPool } from '../ipam/pool';
import type { SubnetRegistry } from '../ipam/registry';
import type { ObjectChanges, ObjectStore, PodObj } from '../objects/types';
import { assertAddressLine, deleteLsps, findLsp } from '../ovn/lsp';
import type { OvsdbClient } from '../ovsdb/client';
import type { Operation } from '../ovsdb/types';
import { asMap, namedUuid, ovsMap, ovsSet } from '../ovsdb/values';
import { NB } from '../ovs/schema';
import { ANNOTATION } from '../policy/port-settings';
import { EXT, OWNER, PREPARED } from '../store/external-ids';
import { portKeyIn } from './tunnel-keys';
import { vmOf } from './kubevirt';

export interface PreparedPortsDeps {
  nb: OvsdbClient;
  store: Pick<ObjectStore, 'get' | 'list'> & ObjectChanges;
  subnets: Pick<SubnetRegistry, 'forPods' | 'allocatorFor' | 'all' | 'defaultSwitch'>;
  /** The pod's switch from its annotation or namespace (the policy engine's decision). */
  switchFor: (pod: PodObj, namespace: string) => string | undefined;
  /** port_security for the pod, as the ADD writes it. */
  portSecurity: (pod: PodObj, mac: string, ips: string[]) => string[];
  nodeName: string;
  log: Logger;
}

/** The primary port an ADD is attaching. */
export interface AddingPort { lspName: string; namespace: string; name: string }

/** What the ADD path uses: it announces itself, and gets a function to call when it has ended. */
export interface PreparedPortsHook {
  beginAdd(port: AddingPort, signal?: AbortSignal): Promise<() => void>;
}

/** The primary port's name (Kube-OVN's `<pod>.<namespace>`), as the ADD names it. */
export const podPortName = (namespace: string, name: string): string => `${name}.${namespace}`;

/**
 * Whether this node prepares the pod's port: its own, not host-network, not done or going, and
 * with nothing the ADD would have to honour from the request (a static address or MAC, or an
 * earlier allocation to take again).
 */
export function preparable(pod: PodObj, nodeName: string): boolean {
  // A VM's port is named for the VM and may be bound elsewhere still (a migration's source).
  if (pod.spec.nodeName !== nodeName || pod.spec.hostNetwork || vmOf(pod)) return false;
  if (pod.status?.finished || pod.status?.deleting) return false;
  const ann = pod.metadata.annotations ?? {};
  return ann[ANNOTATION.ipAddress] === undefined && ann[ANNOTATION.macAddress] === undefined && ann[ANNOTATION.allocated] === undefined;
}

export function isPreparedRow(externalIds: unknown): boolean {
  const ids = asMap(externalIds);
  return ids[EXT.owner] === OWNER && ids[PREPARED] !== undefined && ids[EXT.sandbox] === undefined;
}

export class PreparedPorts implements PreparedPortsHook {
  /** ADDs in flight per port name. */
  readonly #adding = new Map<string, number>();
  /** The last queued work per port name: one at a time per port. */
  readonly #queue = new Map<string, Promise<void>>();
  /** Names of the prepared rows (so that other nodes' pods cost no NB lookup). */
  readonly #rows = new Set<string>();
  #unsubscribe: (() => void) | undefined;
  /** Ports prepared and removed, for logs and tests. */
  prepared = 0;
  removed = 0;

  constructor(private readonly deps: PreparedPortsDeps) {}

  /** Looks at every pod and every prepared row once, then follows pod changes. */
  start(): void {
    this.#unsubscribe = this.deps.store.onObjectChange((c) => {
      if (c.kind !== 'Pod') return;
      const lspName = podPortName(c.namespace, c.name);
      // Only this node's pods, and pods whose prepared port is here (gone or moved since).
      if (this.#rows.has(lspName) || this.deps.store.get('Pod', c.name, c.namespace)?.spec.nodeName === this.deps.nodeName) {
        this.#schedule(lspName, c.namespace, c.name);
      }
    });
    for (const pod of this.deps.store.list('Pod')) {
      if (pod.spec.nodeName === this.deps.nodeName) this.#schedule(podPortName(pod.metadata.namespace ?? '', pod.metadata.name), pod.metadata.namespace ?? '', pod.metadata.name);
    }
    for (const row of this.deps.nb.rows(NB.lsp).values()) {
      if (!isPreparedRow(row.external_ids)) continue;
      this.#rows.add(row.name as string);
      const ids = asMap(row.external_ids);
      this.#schedule(row.name as string, String(ids[EXT.podNamespace] ?? ''), String(ids[EXT.podName] ?? ''));
    }
  }

  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Resolves when no work is queued (tests). */
  async idle(): Promise<void> {
    while (this.#queue.size > 0) await Promise.all([...this.#queue.values()]);
  }

  async beginAdd(port: AddingPort, signal?: AbortSignal): Promise<() => void> {
    const { lspName } = port;
    this.#adding.set(lspName, (this.#adding.get(lspName) ?? 0) + 1);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      const left = (this.#adding.get(lspName) ?? 1) - 1;
      if (left > 0) { this.#adding.set(lspName, left); return; }
      this.#adding.delete(lspName);
      // The ADD replaced the prepared row, or failed after replacing it: a pod still waiting is
      // prepared again (with the addresses its failed ADD gave back), otherwise they are freed.
      this.#schedule(lspName, port.namespace, port.name);
    };
    // A preparation in progress ends first: its row commits (and is replaced by this ADD) or not;
    // the ADD's deadline bounds the wait.
    const inFlight = this.#queue.get(lspName);
    if (inFlight) {
      try {
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => reject(signal?.reason ?? new Error('aborted'));
          if (signal?.aborted) { onAbort(); return; }
          signal?.addEventListener('abort', onAbort, { once: true });
          void inFlight.finally(() => { signal?.removeEventListener('abort', onAbort); resolve(); });
        });
      } catch (e) {
        end();
        throw e;
      }
    }
    return end;
  }

  #schedule(lspName: string, namespace: string, name: string): void {
    const prev = this.#queue.get(lspName) ?? Promise.resolve();
    const next = prev.then(() => this.#reconcile(lspName, namespace, name)).catch((e: unknown) => {
      this.deps.log.warn({ step: 'prepare', lsp: lspName, pod: `${namespace}/${name}`, err: e }, 'preparing the port failed; the ADD will write it');
    }).finally(() => {
      if (this.#queue.get(lspName) === next) this.#queue.delete(lspName);
    });
    this.#queue.set(lspName, next);
  }

  async #reconcile(lspName: string, namespace: string, name: string): Promise<void> {
    if (this.#adding.has(lspName)) return;
    const pod = name ? this.deps.store.get('Pod', name, namespace) : undefined;
    const row = findLsp(this.deps.nb, lspName);
    const prepared = row !== undefined && isPreparedRow(row.external_ids);
    const wasPrepared = !prepared && this.#rows.delete(lspName);
    if (row && !prepared) {
      // Attached (or not ours): the ADD/DEL own it. An ADD that took the port over left nothing
      // under the plain name, unless the pod's subnet changed in between.
      if (wasPrepared) this.#releaseHolder(lspName);
      return;
    }
    const wanted = pod !== undefined && preparable(pod, this.deps.nodeName) ? this.#switchOf(pod, namespace) : undefined;
    if (prepared && asMap(row.external_ids)[EXT.logicalSwitch] === wanted) return;
    if (prepared) await this.#remove(lspName, row._uuid, pod ? 'no longer to be prepared here' : 'pod gone');
    if (wanted === undefined || !pod) {
      // A failed ADD gave the prepared addresses back to the plain name: nobody's now.
      const released = wasPrepared ? this.#releaseHolder(lspName) : [];
      if (released.length > 0) this.deps.log.info({ step: 'prepare', lsp: lspName, released }, 'addresses of a port no longer prepared freed');
      return;
    }
    await this.#prepare(lspName, pod, wanted);
  }

  #switchOf(pod: PodObj, namespace: string): string | undefined {
    const ls = this.deps.switchFor(pod, namespace) ?? this.deps.subnets.defaultSwitch;
    try { this.deps.subnets.forPods(ls); return ls; } catch { return undefined; }
  }

  async #prepare(lspName: string, pod: PodObj, logicalSwitch: string): Promise<void> {
    const pool = this.deps.subnets.forPods(logicalSwitch);
    const allocator = this.deps.subnets.allocatorFor(pool);
    const podKey = `${pod.metadata.namespace}/${pod.metadata.name}`;
    const ips: string[] = [];
    let written = false;
    try {
      for (const family of pool.families) ips.push(await allocator.allocate(lspName, family as Family, { pod: podKey }));
      // An ADD that began meanwhile takes these addresses over and writes the port itself.
      if (this.#adding.has(lspName)) return;
      ips.sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
      const mac = macForIp(ips.find((ip) => !ip.includes(':')));
      await this.deps.nb.transact(this.#insertOps({ lspName, pod, logicalSwitch, mac, ips, pool }));
      written = true;
      this.#rows.add(lspName);
      this.prepared++;
      this.deps.log.info({ step: 'prepare', lsp: lspName, pod: podKey, ips }, 'port prepared');
    } finally {
      // Nothing of ours refers to them unless the row committed (or an ADD took them over).
      if (!written && !this.#adding.has(lspName)) pool.release(lspName);
    }
  }

  #insertOps(p: { lspName: string; pod: PodObj; logicalSwitch: string; mac: string; ips: string[]; pool: SubnetPool }): Operation[] {
    const line = [p.mac, ...p.ips].join(' ');
    assertAddressLine(line, 'addresses');
    const security = this.deps.portSecurity(p.pod, p.mac, p.ips);
    for (const s of security) assertAddressLine(s, 'port_security');
    const key = portKeyIn(p.pool.cidr(4) ?? p.pool.cidr(6), p.ips);
    const ids: Record<string, string> = {
      [EXT.owner]: OWNER, [PREPARED]: 'true', [EXT.logicalSwitch]: p.logicalSwitch,
      [EXT.podName]: p.pod.metadata.name, [EXT.podNamespace]: p.pod.metadata.namespace ?? '',
    };
    if (p.pod.metadata.uid) ids[EXT.ifaceIdVer] = p.pod.metadata.uid;
    return [
      {
        op: 'insert', table: NB.lsp, 'uuid-name': 'prepared',
        row: {
          name: p.lspName, addresses: ovsSet([line]), port_security: ovsSet(security),
          options: ovsMap(key === undefined ? {} : { 'requested-tnl-key': String(key) }), external_ids: ovsMap(ids),
        },
      },
      { op: 'mutate', table: NB.ls, where: [['name', '==', p.logicalSwitch]], mutations: [['ports', 'insert', ovsSet([namedUuid('prepared')])]] },
      { op: 'comment', comment: `ovnode: prepare ${p.lspName}` },
    ];
  }

  async #remove(lspName: string, rowUuid: string, why: string): Promise<void> {
    // The same unlink-and-delete by UUID as a DEL's (ovn/lsp.ts).
    await deleteLsps(this.deps.nb, [{ uuid: rowUuid, name: lspName, sandbox: 'prepared' }]);
    this.#rows.delete(lspName);
    const released = this.#releaseHolder(lspName);
    this.removed++;
    this.deps.log.info({ step: 'prepare', lsp: lspName, released, why }, 'prepared port removed');
  }

  #releaseHolder(lspName: string): string[] {
    return this.deps.subnets.all().flatMap((pool) => pool.release(lspName));
  }
}
