// A VM's addresses belong to the VM, not to one of its pods: they must stay taken while any pod of
// the VM runs anywhere, although they come from the block of the node where the VM first started
// and the VM moves on. So every node holds the recorded addresses of every running VM in its
// pools, under the VM's port name (a plain holder: not a pod sandbox, so no address claim is made
// or repaired for it), unless one of its own ports holds them already; like the Vips, nobody then
// hands them out. A pod of the VM takes them over from that hold (same port), and a DEL that
// releases them while the VM runs on elsewhere gives them straight back to it. The holds are
// derived from the pods' annotations, so a restarted daemon has them again from its first sync.

import type { Logger } from 'pino';
import type { SubnetPool } from '../ipam/pool';
import { parsePortHolder } from '../ipam/pool';
import type { ObjectChanges, ObjectStore, PodObj } from '../objects/types';
import { PRIMARY_PROVIDER } from '../intent/provider';
import { portBaseName, vmBinding, vmOf, VmPodIndex } from './kubevirt';

export interface VmAddressesOptions {
  store: Pick<ObjectStore, 'list' | 'get'> & Partial<ObjectChanges>;
  pools: () => readonly SubnetPool[];
  log: Logger;
}

const ALLOCATED_SUFFIX = '.kubernetes.io/allocated';

/** Each running VM's recorded addresses, by address, with the port holding them. */
export function vmAddresses(pods: Iterable<PodObj>): Map<string, string> {
  const out = new Map<string, string>();
  const index = new VmPodIndex(pods);
  for (const key of index.vms()) {
    const at = key.indexOf('/');
    const vmPods = index.pods({ namespace: key.slice(0, at), name: key.slice(at + 1) });
    // A VM with no pod left running (all finished or being deleted) keeps nothing.
    if (!vmBinding(vmPods) || !vmPods.some((p) => !p.status?.finished && !p.status?.deleting)) continue;
    for (const pod of vmPods) {
      if (pod.status?.finished || pod.status?.deleting) continue;
      for (const [key2, value] of Object.entries(pod.metadata.annotations)) {
        if (value !== 'true' || !key2.endsWith(ALLOCATED_SUFFIX)) continue;
        const provider = key2.slice(0, -ALLOCATED_SUFFIX.length);
        const port = provider === PRIMARY_PROVIDER ? `${portBaseName(pod)}.${pod.metadata.namespace}` : `${portBaseName(pod)}.${pod.metadata.namespace}.${provider}`;
        for (const ip of (pod.metadata.annotations[`${provider}.kubernetes.io/ip_address`] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) out.set(ip, port);
      }
    }
  }
  return out;
}

const portOf = (holder: string): string => parsePortHolder(holder)?.lspName ?? holder;

export class VmAddressKeeper {
  /** What this keeper holds now: address -> port name. */
  readonly #held = new Map<string, string>();
  /** Running VMs' addresses as of the last VM pod change: address -> port name. */
  #want = new Map<string, string>();
  #unsubscribe: (() => void) | undefined;

  constructor(private readonly opts: VmAddressesOptions) {}

  start(): void {
    const { store } = this.opts;
    // Only a VM pod's change matters (thousands of other pods come and go): one that is, or was.
    const vmPodKeys = new Set<string>();
    this.#unsubscribe = store.onObjectChange?.((c) => {
      if (c.kind !== 'Pod') return;
      const key = `${c.namespace}/${c.name}`;
      const isVm = vmOf(store.get(c.kind, c.name, c.namespace)) !== undefined;
      if (!isVm && !vmPodKeys.has(key)) return;
      if (isVm) vmPodKeys.add(key); else vmPodKeys.delete(key);
      this.sync();
    });
    for (const p of store.list('Pod')) if (vmOf(p)) vmPodKeys.add(`${p.metadata.namespace}/${p.metadata.name}`);
    this.sync();
  }

  stop(): void { this.#unsubscribe?.(); }

  /**
   * Holds every running VM's addresses that are free here, gives back what no running VM has any
   * more. Synchronous: called in the same turn as a release, nothing can allocate in between.
   * Returns the addresses it took.
   */
  sync(): string[] {
    const want = vmAddresses(this.opts.store.list('Pod'));
    this.#want = want;
    const took: string[] = [];
    for (const [ip, port] of this.#held) {
      if (want.get(ip) === port) continue;
      for (const pool of this.opts.pools()) if (pool.covers(ip)) pool.releaseIp(ip, port);
      this.#held.delete(ip);
    }
    for (const [ip, port] of want) {
      const pool = this.opts.pools().find((p) => p.covers(ip));
      if (!pool) continue;
      const owner = pool.ownerOf(ip);
      if (owner !== undefined) {
        // Held by the VM's own port here (a sandbox of it, or this keeper): nothing to do.
        if (portOf(owner) !== port) this.opts.log.warn({ step: 'vm-addresses', ip, port, holder: owner }, 'a running VM\'s address is held by something else on this node');
        else if (owner === port) this.#held.set(ip, port);
        continue;
      }
      try {
        pool.reserve(ip, port);
        this.#held.set(ip, port);
        took.push(ip);
      } catch (e) {
        this.opts.log.warn({ step: 'vm-addresses', ip, port, err: String(e) }, 'cannot hold a running VM\'s address');
      }
    }
    return took;
  }

  /**
   * Addresses a DEL just released that a running VM still has: held for it again at once (same
   * turn, so nothing allocates them in between) and returned. Costs nothing for other addresses.
   */
  reclaim(ips: readonly string[]): string[] {
    const kept: string[] = [];
    for (const ip of ips) {
      const port = this.#want.get(ip);
      const pool = port === undefined ? undefined : this.opts.pools().find((p) => p.covers(ip));
      if (port === undefined || !pool || pool.ownerOf(ip) !== undefined) continue;
      pool.reserve(ip, port);
      this.#held.set(ip, port);
      kept.push(ip);
    }
    return kept;
  }
}
