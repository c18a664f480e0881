// A node's Kubernetes side, from the daemon's start to its stop: the API connection (in-cluster
// or --kubeconfig), the watched objects, the write-backs (pod annotations, Events, the Node's
// NetworkUnavailable condition), and the CNI installation, which goes last: kubelet must never
// find a configuration before the daemon answers.

import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ClusterHooks } from '../context';
import { ClusterIpam } from '../ipam/claims/cluster';
import { KubeClaimStore } from '../ipam/claims/store';
import type { NodeRef } from '../ipam/claims/types';
import type { Cidr } from '../ipam/cidr';
import { claimJoinAddress } from './join-address';
import type { SubnetRegistry } from '../ipam/registry';
import { installExecutable, writeConflist } from '../node/cni-install';
import { loadKubeConnection } from '../sources/kube/config';
import { HttpKubeApi } from '../sources/kube/http-api';
import { WatchedClaims } from './claims-cache';
import { EventRecorder } from './events';
import { KubeClusterHooks } from './hooks';
import { KubeStore } from './kube-store';
import { markNetworkAvailable } from './node-status';
import { publishNodeContract, type NodeContract } from './node-contract';
import { PeerNodes } from './peer-nodes';
import { RemoteChassis } from './remote-chassis';
import { RemotePorts } from './remote-ports-sync';
import { ChassisNames, VmMigrations, vmPortOptions } from './vm-migration';
import { providerLabelPatch, type JoinedProvider } from './provider-labels';
import { ServicesController } from '../services/controller';
import type { OvsdbClient } from '../ovsdb/client';
import { PodAnnotationWriter } from './pod-annotations';
import { RetryQueue } from './retry-queue';

export interface ClusterSettings {
  nodeName: string;
  kubeconfig?: string;
  cniBinDir?: string;
  cniConfDir?: string;
  /** The CNI executable to install (default: the one built next to this daemon). */
  cniExecutable?: string;
  daemonSocket: string;
}

export interface JoinOptions {
  /** The join switch, where the peers' node ports go. */
  joinSwitch: string;
  /** Other nodes' pod addresses that left this zone: their conntrack state is flushed here. */
  onAddressesGone?: (ips: string[]) => void;
  /** Remote ports were written (security groups list them in their port groups). */
  onPortsWritten?: () => void;
}

export interface ClusterNode {
  api: HttpKubeApi;
  store: KubeStore;
  hooks: ClusterHooks;
  /**
   * Cluster-wide IPAM: the registry's pod pools allocate only inside this node's claimed blocks.
   * Call after the pools were rebuilt from the NB and before serving CNI.
   */
  /** subnetInUse: a subnet this node has claims in but no pool for still has its switch here. */
  useClaims(subnets: SubnetRegistry, subnetInUse: (subnet: string) => boolean): Promise<void>;
  /** This node's address on the join switch, claimed cluster-wide (the same one after a restart). */
  claimJoinAddress(joinSwitch: string, cidr: Cidr): Promise<string>;
  /**
   * Joins this node's OVN zone to the others: publishes its contract on its Node object, keeps
   * the other nodes' chassis in the local SB and their pods as remote ports on the shared
   * switches of the local NB. Call once the chassis is configured.
   */
  joinZones(dbs: { nb: OvsdbClient; sb: OvsdbClient }, contract: NodeContract, opts: JoinOptions): Promise<void>;
  /** Services as OVN load balancers in this node's NB (no kube-proxy); call once the topology exists. */
  startServices(nb: OvsdbClient, nodeAddresses: () => string[], signal: AbortSignal): Promise<ServicesController>;
  /** Marks the Node with the provider networks it joined (Kube-OVN's labels), off the caller's path. */
  publishProviderLabels(joined: readonly JoinedProvider[]): void;
  /** This node's labels as the Node watch has them now, and a subscription to their changes. */
  nodeLabels(): Readonly<Record<string, string>>;
  onNodeLabels(listener: () => void): () => void;
  /** The daemon serves: install the plugin, then the conflist, then tell the API. */
  serving(): Promise<void>;
  close(): Promise<void>;
}

/** dist/daemon/cluster -> dist/bin/ovnode */
export const BUILT_CNI_EXECUTABLE = join(__dirname, '..', '..', 'bin', 'ovnode');

export async function startCluster(s: ClusterSettings, log: Logger, signal: AbortSignal): Promise<ClusterNode> {
  const conn = await loadKubeConnection(s.kubeconfig !== undefined ? { kubeconfig: s.kubeconfig } : {});
  const api = new HttpKubeApi(conn, { userAgent: `ovnoded/${s.nodeName}` });
  const events = new EventRecorder(api, s.nodeName, log);
  const store = new KubeStore({ api, log, events });
  const writer = new PodAnnotationWriter(api, (ns, name) => store.pod(ns, name)?.metadata.annotations, log);
  const nodeStatus = new RetryQueue('node-status', log, { concurrency: 1 });
  const claims = new WatchedClaims(api, log);
  let remote: RemoteChassis | undefined;
  let remotePorts: RemotePorts | undefined;
  let chassisNames: ChassisNames | undefined;
  let migrations: VmMigrations | undefined;
  let services: ServicesController | undefined;
  const labelListeners = new Set<() => void>();
  const peers = new PeerNodes({
    api, log, onPeers: (list) => { void remote?.sync(list); void remotePorts?.sync(); },
    localNode: { name: s.nodeName, onLabels: () => { for (const l of labelListeners) l(); } },
  });
  let ipam: ClusterIpam | undefined;
  try {
    const started = Date.now();
    claims.start();
    peers.start();
    await Promise.all([store.start(signal), claims.synced(), peers.whenSynced(signal)]);
    log.info({ step: 'kube', server: conn.server.origin, ms: Date.now() - started }, 'watches synced');
  } catch (e) {
    await Promise.all([store.close(), claims.stop(), peers.stop()]);
    api.close();
    throw e;
  }
  const claimStore = new KubeClaimStore(api, claims);
  // Claims are owned by this Node, so the garbage collector frees the claims of a deleted node.
  let uid: Promise<string> | undefined;
  const nodeRef = async (): Promise<NodeRef> => ({ name: s.nodeName, uid: await (uid ??= nodeUid(api, s.nodeName)) });
  const claimJoin = async (joinSwitch: string, cidr: Cidr): Promise<string> =>
    claimJoinAddress({ store: claimStore, node: await nodeRef(), subnet: joinSwitch, cidr, log, signal });
  const useClaims = async (subnets: SubnetRegistry, subnetInUse: (subnet: string) => boolean): Promise<void> => {
    ipam = new ClusterIpam({ node: await nodeRef(), store: claimStore, log, subnetInUse });
    subnets.useClaims(ipam);
    await ipam.start();
  };
  const joinZones = async ({ nb, sb }: { nb: OvsdbClient; sb: OvsdbClient }, contract: NodeContract, join: JoinOptions): Promise<void> => {
    nodeStatus.enqueue('contract', async () => { await publishNodeContract(api, s.nodeName, contract); return true; });
    remote = new RemoteChassis({ sb, localChassis: contract.chassisId, log });
    chassisNames = new ChassisNames(s.nodeName, contract.chassisId, () => peers.peers());
    await remote.sync(peers.peers());
    remotePorts = new RemotePorts({
      nb, sb, store, localNode: s.nodeName, joinSwitch: join.joinSwitch, peers: () => peers.peers(), log,
      ...(join.onAddressesGone ? { onAddressesGone: join.onAddressesGone } : {}),
      ...(join.onPortsWritten ? { onPortsWritten: join.onPortsWritten } : {}),
    });
    await remotePorts.start();
    migrations = new VmMigrations({ nb, sb, store, localNode: s.nodeName, chassis: chassisNames, writer, log });
    await migrations.start();
  };
  const startServices = async (nb: OvsdbClient, nodeAddresses: () => string[], startSignal: AbortSignal): Promise<ServicesController> => {
    services = new ServicesController({ api, nb, nodeAddresses, log });
    await services.start(startSignal);
    return services;
  };
  const serving = async (): Promise<void> => {
    if (s.cniBinDir && s.cniConfDir) {
      const installed = installExecutable({
        binDir: s.cniBinDir, confDir: s.cniConfDir, executable: s.cniExecutable ?? BUILT_CNI_EXECUTABLE,
        daemonSocket: s.daemonSocket, aliases: ['kube-ovn'],
      });
      const conflist = writeConflist({ confDir: s.cniConfDir, daemonSocket: s.daemonSocket });
      log.info({ step: 'cni-install', installed, conflist }, 'CNI plugin and configuration installed');
    }
    nodeStatus.enqueue('network-available', async () => { await markNetworkAvailable(api, s.nodeName); return true; });
  };
  return {
    api, store, serving,
    nodeLabels: () => peers.labels(s.nodeName),
    publishProviderLabels: (joined) => nodeStatus.enqueue('provider-labels', async () => {
      // Against the labels as the watch has them when the write runs: nothing sent when they match.
      const labels = providerLabelPatch(peers.labels(s.nodeName), joined);
      if (!labels) return true;
      const res = await api.request({
        method: 'PATCH', path: `/api/v1/nodes/${encodeURIComponent(s.nodeName)}`,
        contentType: 'application/merge-patch+json', body: { metadata: { labels } },
      });
      if (res.status < 200 || res.status > 299) throw new Error(`PATCH node ${s.nodeName} labels: HTTP ${res.status}`);
      return true;
    }),
    onNodeLabels: (listener) => { labelListeners.add(listener); return () => labelListeners.delete(listener); },
    hooks: new KubeClusterHooks(store, writer, undefined, (pod) => (chassisNames ? vmPortOptions(store, chassisNames, pod) : {})), useClaims, joinZones, claimJoinAddress: claimJoin, startServices,
    close: async () => {
      writer.close();
      remotePorts?.stop();
      migrations?.stop();
      nodeStatus.close();
      ipam?.stop();
      await Promise.all([store.close(), claims.stop(), peers.stop(), services?.stop()]);
      api.close();
    },
  };
}

async function nodeUid(api: HttpKubeApi, nodeName: string): Promise<string> {
  const res = await api.request<{ metadata?: { uid?: string } }>({ method: 'GET', path: `/api/v1/nodes/${encodeURIComponent(nodeName)}` });
  const uid = res.body.metadata?.uid;
  if (res.status !== 200 || !uid) throw new Error(`Node ${nodeName}: HTTP ${res.status}; is --node-name (NODE_NAME) this node's name?`);
  return uid;
}
