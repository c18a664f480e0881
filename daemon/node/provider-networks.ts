// Kube-OVN's ProviderNetworks on this node: which uplink each one puts into its provider bridge
// here (its custom interface for this node, else its default one; none when the node is
// excluded), with the tags of the Vlans on it as the uplink's trunks. The bridges follow the
// objects: every change re-syncs (one OVSDB transaction, none when nothing differs), one sync at
// a time, a failed one retried with backoff.

import type { Logger } from 'pino';
import type { ObjectStore } from '../objects/types';
import type { Rtnl } from '../kernel/rtnl';
import type { OvsdbClient } from '../ovsdb/client';
import { syncProviderBridges, type ProviderBridgeSpec } from './provider-bridges';
import { matchesSelector } from '../objects/selectors';
import type { JoinedProvider } from '../cluster/provider-labels';

export function desiredProviderBridges(store: ObjectStore, nodeName: string, nodeLabels: Readonly<Record<string, string>> = {}): ProviderBridgeSpec[] {
  const out: ProviderBridgeSpec[] = [];
  for (const pn of store.list('ProviderNetwork')) {
    // As Kube-OVN: a nodeSelector decides alone (excludeNodes is then ignored).
    if (pn.spec.nodeSelector !== undefined ? !matchesSelector(pn.spec.nodeSelector, nodeLabels) : pn.spec.excludeNodes.includes(nodeName)) continue;
    const iface = pn.spec.customInterfaces.find((c) => c.nodes.includes(nodeName))?.interface ?? pn.spec.defaultInterface;
    if (!iface) continue;
    // Untagged (0) too, as Kube-OVN trunks it: a Vlan with id 0 is the native network.
    const tags = store.list('Vlan').filter((v) => v.spec.provider === pn.metadata.name).map((v) => v.spec.id);
    out.push({ provider: pn.metadata.name, interface: iface, vlanIds: [...new Set([0, ...tags])].sort((a, b) => a - b) });
  }
  return out.sort((a, b) => a.provider.localeCompare(b.provider));
}

export interface ProviderNetworkDeps {
  ovs: OvsdbClient;
  /** The node netns' rtnetlink: the uplinks are brought up (vswitchd does not). */
  rtnl: Pick<Rtnl, 'getLink' | 'setUp'>;
  store: ObjectStore;
  nodeName: string;
  datapathType: 'netdev' | 'system';
  /** This node's labels (a cluster's Node; none in embedded mode). */
  nodeLabels?: () => Readonly<Record<string, string>>;
  /** After each sync that changed the plan: the networks this node joined, with their uplinks' MTU. */
  onJoined?: (joined: JoinedProvider[]) => void;
  log: Logger;
}

export class ProviderNetworks {
  private running: Promise<void> | undefined;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastKey = '';
  private stopped = false;

  constructor(private readonly deps: ProviderNetworkDeps) {}

  /** Syncs now and after every change of the objects; returns the unsubscribe. */
  start(): () => void {
    const off = this.deps.store.onChange(() => this.schedule());
    this.schedule();
    return () => { this.stopped = true; off(); if (this.retryTimer) clearTimeout(this.retryTimer); };
  }

  /** Resolves once no sync is running or queued (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** The node's labels changed (a nodeSelector may now match, or no longer). */
  nodeLabelsChanged(): void { this.schedule(); }

  private schedule(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again) { this.again = false; this.schedule(); }
    });
  }

  private async run(): Promise<void> {
    const desired = desiredProviderBridges(this.deps.store, this.deps.nodeName, this.deps.nodeLabels?.() ?? {});
    // Most store changes are pods: an unchanged plan costs nothing, not even a cache scan.
    const key = JSON.stringify(desired);
    if (key === this.lastKey && this.failures === 0) return;
    try {
      const r = await syncProviderBridges({ ovs: this.deps.ovs, log: this.deps.log, datapathType: this.deps.datapathType }, desired);
      // vswitchd opens a system port as it is (measured: the userspace datapath left a down
      // uplink down, so nothing left or arrived): the uplink is brought up, as Kube-OVN does.
      const joined: JoinedProvider[] = [];
      for (const { provider, interface: name } of desired) {
        const link = await this.deps.rtnl.getLink(name);
        if (!link) throw new Error(`uplink ${name} is not an interface of this node`);
        if (!link.up) await this.deps.rtnl.setUp(link.index);
        joined.push({ provider, interface: name, mtu: link.mtu });
      }
      this.lastKey = key;
      this.deps.onJoined?.(joined);
      this.failures = 0;
      if (r.created.length + r.removed.length + r.updated.length > 0) this.deps.log.info({ step: 'provider-networks', ...r }, 'provider bridges synced');
    } catch (e) {
      this.failures++;
      const delay = Math.min(30_000, 500 * 2 ** Math.min(this.failures, 6));
      this.deps.log.error({ step: 'provider-networks', err: e, retryInMs: delay }, 'provider bridges sync failed; retrying');
      if (!this.retryTimer) {
        this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.schedule(); }, delay);
        this.retryTimer.unref();
      }
    }
  }
}
