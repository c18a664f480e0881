// KubeVirt's virtual machines as this daemon sees them: plain pods (virt-launcher) with KubeVirt's
// labels and annotations. All pods of one VM share one logical switch port, named for the VM as
// Kube-OVN names it, so its MAC and addresses stay with the VM wherever its pod runs. During a
// live migration two of its pods exist at once, on two nodes: the source, serving, and the target
// (KubeVirt's `kubevirt.io/migrationJobName`), which becomes the VM's location once the VM's RARP
// arrives from it (OVN's activation-strategy=rarp). This module decides, from the pods alone,
// where the VM's port is bound: every node computes the same answer from the same watch, so the
// nodes need no controller and no message to each other beyond the pods (and the one annotation
// the target's node writes when OVN saw the activation).

import type { ObjectStore, PodObj } from '../objects/types';

export const KUBEVIRT = {
  /** On every virt-launcher pod: the VM it runs. */
  vmLabel: 'vm.kubevirt.io/name',
  /** On a migration's target pod. */
  migrationJob: 'kubevirt.io/migrationJobName',
  /** The VM allows live migration over the pod network (bridge binding); Kube-OVN requires it too. */
  allowMigration: 'kubevirt.io/allow-pod-bridge-network-live-migration',
  /** Written by the target's node once OVN activated the target binding: the VM runs there now. */
  activated: 'ovnode.io/migration-activated',
} as const;

// A label value (<= 63 characters, alphanumerics with -_. inside), which is also a valid port name part.
const VM_NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;

export interface VmRef { namespace: string; name: string }

/** The VM a pod runs, if it is a virt-launcher pod with a usable VM name. */
export function vmOf(pod: PodObj | undefined): VmRef | undefined {
  const name = pod?.metadata.labels[KUBEVIRT.vmLabel];
  if (!pod || name === undefined || !VM_NAME_RE.test(name)) return undefined;
  return { namespace: pod.metadata.namespace, name };
}

export const vmKey = (vm: VmRef): string => `${vm.namespace}/${vm.name}`;

/** What a pod's ports are named after: its VM for a virt-launcher pod, else the pod itself. */
export function portBaseName(pod: PodObj): string {
  return vmOf(pod)?.name ?? pod.metadata.name;
}

/** A pod that holds (or is about to hold) its sandbox: bound to a node, not finished, not being deleted. */
function live(pod: PodObj): boolean {
  return !!pod.spec.nodeName && !pod.spec.hostNetwork && !pod.status?.finished && !pod.status?.deleting;
}

const isTarget = (pod: PodObj): boolean => pod.metadata.annotations[KUBEVIRT.migrationJob] !== undefined;
const isActivated = (pod: PodObj): boolean => pod.metadata.annotations[KUBEVIRT.activated] !== undefined;
export const allowsMigration = (pod: PodObj): boolean => pod.metadata.annotations[KUBEVIRT.allowMigration] !== undefined;

const byCreation = (a: PodObj, b: PodObj): number =>
  (a.status?.createdAt ?? '').localeCompare(b.status?.createdAt ?? '') || a.metadata.name.localeCompare(b.metadata.name);

/** Where a VM's port is bound, decided from its pods. */
export interface VmBinding {
  /** The pod whose node serves the VM now. */
  active: PodObj;
  /** A migration's target pod on another node whose binding waits for the VM's RARP. */
  pending?: PodObj;
}

/**
 * A pod whose node attached it: its ADD returned (the port installed, a migration target's
 * blocked until activation) and wrote its allocation back.
 */
export function isAttached(pod: PodObj): boolean {
  return Object.entries(pod.metadata.annotations).some(([k, v]) => v === 'true' && k.endsWith('.kubernetes.io/allocated'));
}

/**
 * The VM's binding from its pods (any order). The active pod is the newest live pod that is not a
 * migration target still waiting for its activation; a pending target is a live, allowed, not
 * yet activated target newer than that, on another node, once `targetReady` (by default: once its
 * node attached it; before, traffic sent to the target's chassis could meet its port while OVN is
 * still setting it up, unblocked: seen as duplicate replies and TCP resets). Pods being deleted
 * do not count unless nothing else is left (the port then follows the last one until its DEL).
 */
export function vmBinding(pods: readonly PodObj[], targetReady: (pod: PodObj) => boolean = isAttached): VmBinding | undefined {
  // A target the VM does not allow is refused at its ADD: it never holds the port.
  const eligible = pods.filter((p) => !isTarget(p) || allowsMigration(p));
  const livePods = eligible.filter(live).sort(byCreation);
  const pool = livePods.length > 0 ? livePods : eligible.filter((p) => !!p.spec.nodeName).sort(byCreation);
  const settled = pool.filter((p) => !isTarget(p) || isActivated(p));
  const active = settled.at(-1) ?? pool[0];
  if (!active) return undefined;
  const pending = livePods.filter((p) => isTarget(p) && !isActivated(p) && targetReady(p)
    && byCreation(p, active) > 0 && p.spec.nodeName !== active.spec.nodeName).at(-1);
  return pending ? { active, pending } : { active };
}

/** The nodes the VM's port is requested on, the serving one first (OVN's requested-chassis order). */
export function bindingNodes(b: VmBinding): string[] {
  const nodes = [b.active.spec.nodeName as string];
  if (b.pending) nodes.push(b.pending.spec.nodeName as string);
  return nodes;
}

/** The pods of one VM, from the store (the namespace's pods with its label). */
export function vmPods(store: Pick<ObjectStore, 'list'>, vm: VmRef): PodObj[] {
  return store.list('Pod').filter((p) => p.metadata.namespace === vm.namespace && p.metadata.labels[KUBEVIRT.vmLabel] === vm.name);
}

/**
 * Every VM's pods, grouped once per pass: remote-port and policy passes look up many pods and
 * must not rescan the store for each.
 */
export class VmPodIndex {
  readonly #byVm = new Map<string, PodObj[]>();

  constructor(pods: Iterable<PodObj>) {
    for (const p of pods) {
      const vm = vmOf(p);
      if (!vm) continue;
      const key = vmKey(vm);
      const list = this.#byVm.get(key);
      if (list) list.push(p); else this.#byVm.set(key, [p]);
    }
  }

  pods(vm: VmRef): readonly PodObj[] { return this.#byVm.get(vmKey(vm)) ?? []; }
  vms(): IterableIterator<string> { return this.#byVm.keys(); }
}

/**
 * The NB options of a VM port requested on these chassis: more than one means a migration in
 * progress, whose later locations wait for the VM's RARP.
 */
export function migrationOptions(chassis: readonly string[]): Record<string, string> {
  return chassis.length > 1
    ? { 'requested-chassis': chassis.join(','), 'activation-strategy': 'rarp' }
    : chassis.length === 1 ? { 'requested-chassis': chassis[0] as string } : {};
}

/**
 * The VM's MAC and addresses for one of its interfaces (provider "ovn" is the cluster network's),
 * as written back on another live pod of the VM that holds them: what a migration target (or a
 * new launcher pod while the old one still runs) must take over unchanged.
 */
export function vmAddressOf(pods: readonly PodObj[], self: { name: string }, provider: string): { mac: string; ips: string[] } | undefined {
  const at = (p: PodObj, k: string): string | undefined => p.metadata.annotations[`${provider}.kubernetes.io/${k}`];
  const holders = pods.filter((p) => p.metadata.name !== self.name && live(p) && at(p, 'allocated') === 'true').sort(byCreation);
  for (const p of holders.reverse()) {
    const ips = (at(p, 'ip_address') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const mac = at(p, 'mac_address');
    if (ips.length > 0 && mac) return { mac, ips };
  }
  return undefined;
}

export const isMigrationTarget = isTarget;

/**
 * The pod whose written-back addresses the VM's port carries for one of its interfaces (`has`
 * tells whether a pod has them): the serving pod's, else the pending target's, else the newest
 * pod's that has them. Two pods of a VM can hold different addresses (a VM relaunched while its
 * old pod is still being deleted): the port is one, with the address the VM uses.
 */
export function vmAddressPod(pods: readonly PodObj[], has: (pod: PodObj) => boolean): PodObj | undefined {
  const b = vmBinding(pods);
  if (b && has(b.active)) return b.active;
  if (b?.pending && has(b.pending)) return b.pending;
  return [...pods].sort(byCreation).reverse().find(has);
}
