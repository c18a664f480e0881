// The daemon's dependencies, built once in main.ts and handed to every handler: no
// module-level state, so tests build their own.

import type { VmAddressKeeper } from './cluster/vm-addresses';
import type { Logger } from 'pino';
import type { NativeOps } from '../native/index';
import type { SubnetRegistry } from './ipam/registry';
import type { ObjectStore } from './objects/types';
import type { PolicyEngine } from './policy/engine';
import type { Metrics } from './metrics';
import type { ConntrackFlusher } from './ovs/conntrack';
import type { OvsdbClient } from './ovsdb/client';
import type { PodPlumber } from './plumb/pod-interface';
import type { CniRequest } from './server/request';
import type { Attachment } from './store/attachment';
import type { PodObj } from './objects/types';
import type { PreparedPortsHook } from './cluster/prepared-ports';
import type { VfAttacher } from './sriov/vf-attach';

export interface NodeSettings {
  name: string;
  bridge: string;
  mtu: number;
  datapathType: 'netdev' | 'system';
}

export interface Readiness { ready: boolean; reason?: string }

export interface Deps {
  log: Logger;
  ovs: OvsdbClient;
  nb: OvsdbClient;
  native: NativeOps;
  plumber: PodPlumber;
  subnets: SubnetRegistry;
  node: NodeSettings;
  metrics: Metrics;
  readiness: () => Readiness;
  /** Kubernetes-shaped objects (manifests dir in embedded mode). */
  objects: ObjectStore;
  policy: PolicyEngine;
  /**
   * Flushes conntrack for addresses a removal released, holding them until that succeeded.
   * Optional so that handler unit tests need not build one.
   */
  conntrack?: ConntrackFlusher;
  /** Set on a Kubernetes node: where pods come from and what is written back to the API. */
  cluster?: ClusterHooks;
  /** Running VMs' addresses held on this node (cluster/vm-addresses.ts): a DEL gives them back to their VM. */
  vmAddresses?: Pick<VmAddressKeeper, 'reclaim'>;
  /** Set on a Kubernetes node: pods' ports written when they are scheduled here, before their ADD. */
  prepared?: PreparedPortsHook;
  /** SR-IOV VFs as pod interfaces (networks with a deviceID). */
  sriov?: VfAttacher;
}

/** What the request path needs of the Kubernetes side; nothing here makes an API call inline. */
export interface ClusterHooks {
  /**
   * The pod as the watch delivered it. An ADD can arrive before the watch event of its pod: it
   * waits (bounded, event-driven) and then fails with TryAgainLaterError rather than guess.
   * `uid` (K8S_POD_UID) tells the pod from an earlier namesake still in the cache.
   */
  podFor(namespace: string, name: string, uid: string | undefined, signal: AbortSignal): Promise<PodObj>;
  /** A successful ADD: the pod's annotations are written back, off the request path. */
  attached(a: Attachment, network: { cidrs: string[]; gateways: string[] }): void;
  /** The NB options of a VM pod's port (where its VM is bound, cluster/vm-migration.ts); {} for other pods. */
  vmPortOptions?(pod: PodObj | undefined): Record<string, string>;
}

/** What one handler call gets: the deps, the decoded request, its logger and deadline signal. */
export interface RequestContext {
  deps: Deps;
  req: CniRequest;
  log: Logger;
  signal: AbortSignal;
}
