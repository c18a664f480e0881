// The daemon's dependencies, built once in main.ts and handed to every handler: no
// module-level state, so tests build their own.

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
}

/** What one handler call gets: the deps, the decoded request, its logger and deadline signal. */
export interface RequestContext {
  deps: Deps;
  req: CniRequest;
  log: Logger;
  signal: AbortSignal;
}
