// Bringing a node up (and down): embedded OVS/OVN stack, OVSDB sessions with their monitors,
// chassis and bridge, logical topology, the node port, start-up reconciliation, then the CNI
// socket and metrics. Start-up may exec OVS tools; the request path never does.

import { InvalidConfigError } from '../../common/errors';
import { closeSync, existsSync, openSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { networkInterfaces } from 'node:os';
import type { Logger } from 'pino';
import { loadNative, type NativeOps } from '../../native/index';
import type { Deps, NodeSettings, Readiness } from '../context';
import { ExternalStack } from '../embedded/external-stack';
import { EmbeddedStack, type NodeStack } from '../embedded/stack';
import { atSameOffset, formatIp, parseCidr } from '../ipam/cidr';
import { macForIp } from '../ipam/mac';
import { SubnetRegistry } from '../ipam/registry';
import { openRtnl } from '../kernel/rtnl';
import { createRtNetlink } from 'netlink';
import { FakeNic } from '../sriov/fake-nic';
import type { Nic } from '../sriov/nic';
import { NetlinkNic } from '../sriov/pf-netlink';
import { SriovSysfs } from '../sriov/sysfs';
import { VfAttacher } from '../sriov/vf-attach';
import { registerOffloadMetrics } from '../ovs/offload-stats';
import { ProviderNetworks } from './provider-networks';
import type { SriovOptions } from './options';
import { Metrics } from '../metrics';
import { egressRouteOps, ensureTopology, type SwitchSpec } from '../ovn/topology';
import { NodeNat, type NodePortRule } from './node-nat';
import { servicesNbMonitor } from '../services/nb-monitor';
import { configureChassis, ensureBridge } from '../ovs/bridge';
import { NB, SB } from '../ovs/schema';
import { PreparedPorts } from '../cluster/prepared-ports';
import { portSecurityLine } from '../policy/port-settings';
import { OvsdbClient } from '../ovsdb/client';
import { PodPlumber } from '../plumb/pod-interface';
import { ConntrackFlusher } from '../ovs/conntrack';
import { UnixctlClient } from '../ovs/unixctl';
import { CniServer } from '../server/cni-server';
import { nbAttachments, ovsAttachments } from '../store/lookup';
import { NodeLeaks, reconcile } from './reconcile';
import { loopSettingsFromEnv, ReconcileLoop } from './reconcile-loop';
import { startCluster, type ClusterNode } from '../cluster/cluster-node';
import { poolNetwork } from '../cluster/hooks';
import { VmAddressKeeper } from '../cluster/vm-addresses';
import type { JoinedProvider } from '../cluster/provider-labels';
import { MemoryStore } from '../objects/memory-store';
import type { ObjectStore } from '../objects/types';
import { PolicyEngine } from '../policy/engine';
import { subnetShape } from '../policy/subnets';
import type { SubnetObj } from '../objects/types';
import { NB_MONITOR, OVS_MONITOR, SB_MONITOR } from './monitors';
import { configureNodePort } from './node-port';
import { SubnetRoutes } from './subnet-routes';
import { finishUnderlayBridge, openUnderlayKernel, prepareUnderlayBridge, releaseUnderlayBridge } from './underlay-bridge';
import { portTunnelKey, switchTunnelKeys } from '../cluster/tunnel-keys';
import { podMtu, type DaemonOptions } from './options';

export const DEFAULT_SWITCH = 'ovn-default';
export const JOIN_SWITCH = 'join';
const NODE_PORT = 'ovn0';
const BRIDGE = 'br-int';
const STARTUP_TIMEOUT_MS = 60_000;
/** Tap devices of the userspace datapath that outlive ovs-vswitchd. */
export const NODE_TAP_DEVICES: readonly string[] = [NODE_PORT, BRIDGE, 'ovs-netdev'];

export interface RunningNode {
  deps: Deps;
  /** Full stop: everything this daemon started goes, nothing is left behind. */
  stop(): Promise<void>;
  /** Hand-over: the daemon goes, OVS/OVN keep forwarding for the next daemon to adopt. */
  handOver(): Promise<void>;
}

export async function startNode(opts: DaemonOptions, log: Logger): Promise<RunningNode> {
  const fromEnv = loopSettingsFromEnv();
  const loopSettings = opts.reconcileIntervalMs === undefined ? fromEnv
    : { ...fromEnv, intervalMs: opts.reconcileIntervalMs, graceMs: fromEnv.graceMs ?? opts.reconcileIntervalMs };
  const native = loadNative();
  const datapathType: NodeSettings['datapathType'] = existsSync('/sys/module/openvswitch') ? 'system' : 'netdev';
  const rtnl = openRtnl();
  // Worker threads may be created while the main thread is inside a pod netns: name the node's
  // netns by an fd held open for the daemon's lifetime.
  const nodeNetnsFd = openSync('/proc/thread-self/ns/net', 'r');
  const nodeNetnsPath = `/proc/${process.pid}/fd/${nodeNetnsFd}`;
  const lo = await rtnl.getLink('lo');
  if (lo && !lo.up) await rtnl.setUp(lo.index); // a fresh node netns has lo down; metrics listen there
  const stack: NodeStack = opts.stack === 'external'
    ? new ExternalStack(opts.stateDir, log)
    : new EmbeddedStack(opts.stateDir, log, (pid) => native.watchExit(pid));
  // The userspace datapath's tap devices outlive ovs-vswitchd (even with exit --cleanup): remove
  // them after it stops, and before it starts in case an earlier daemon was killed.
  const removeTaps = async (): Promise<void> => {
    if (datapathType !== 'netdev' || !stack.owned) return;
    for (const name of NODE_TAP_DEVICES) await rtnl.deleteLink(name);
  };
  let releaseUnderlay: (() => Promise<void>) | undefined;
  const nodeNat = new NodeNat({ log });
  // A stack the daemon does not own is left as it is: its stop and its taps are the owner's.
  const cleanups: Array<() => Promise<unknown> | unknown> = [() => closeSync(nodeNetnsFd), () => rtnl.close(), removeTaps, () => stack.stop()];
  const stop = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) {
      try { await c(); } catch (e) { log.warn({ err: String(e) }, 'shutdown step failed'); }
    }
  };
  try {
    // The first lists from the API (every pod of a large cluster) load while the stack is set up.
    const clusterStarting = opts.kubernetes
      ? startCluster({ ...opts.kubernetes, nodeName: opts.nodeName, daemonSocket: opts.socket }, log, AbortSignal.timeout(STARTUP_TIMEOUT_MS))
      : undefined;
    if (clusterStarting) {
      clusterStarting.catch(() => undefined); // awaited below; a start-up failure before that must not go unhandled
      cleanups.push(async () => (await clusterStarting.catch(() => undefined))?.close());
    }
    await stack.startDatabases();
    const clients = {
      ovs: new OvsdbClient({ socketPath: stack.paths.ovsSocket, database: 'Open_vSwitch', logger: log }),
      nb: new OvsdbClient({ socketPath: stack.paths.nbSocket, database: 'OVN_Northbound', logger: log }),
      sb: new OvsdbClient({ socketPath: stack.paths.sbSocket, database: 'OVN_Southbound', logger: log }),
    };
    for (const c of Object.values(clients)) cleanups.push(() => c.close());
    await Promise.all(Object.values(clients).map((c) => c.connect()));
    await Promise.all([clients.ovs.monitor(OVS_MONITOR), clients.nb.monitor(servicesNbMonitor(NB_MONITOR)), clients.sb.monitor(SB_MONITOR)]);

    // Pod MTU follows the overlay network's, the same on every node of a uniform underlay.
    const overlayLink = opts.encapInterface ? await rtnl.getLink(opts.encapInterface) : undefined;
    const mtu = podMtu(opts.mtu, overlayLink?.mtu);
    const join = parseCidr(opts.joinCidr);
    const joinGw = formatIp(join.family, join.network + 1n);
    // Dual stack: the IPv6 join network mirrors the IPv4 one, offset for offset.
    const join6 = opts.joinCidr6 === undefined ? undefined : parseCidr(opts.joinCidr6);
    const joinCidrs = [join.text, ...(join6 ? [join6.text] : [])];
    const joinGws = [joinGw, ...(join6 ? [formatIp(6, join6.network + 1n)] : [])];
    let cluster: ClusterNode | undefined;
    if (clusterStarting) cluster = await clusterStarting;
    // Other zones route to this address (replies to the node's own traffic): on a cluster it is
    // claimed, unique per node; alone, a node takes the join switch's first address.
    const nodeJoinIp = cluster ? await cluster.claimJoinAddress(JOIN_SWITCH, join) : formatIp(join.family, join.network + 2n);
    const nodeJoinIps = [nodeJoinIp, ...(join6 ? [atSameOffset(join, nodeJoinIp, join6) as string] : [])];
    // A live ovs-vswitchd of this state dir is adopted: its tap devices carry the pods' traffic.
    const freshSwitch = !stack.switchAlive();
    // The userspace datapath sends tunnels itself, through a bridge holding the overlay interface
    // (underlay-bridge.ts); a kernel datapath uses the kernel's Geneve on the interface as it is.
    const underlay = datapathType === 'netdev' && opts.encapInterface !== undefined && opts.encapIp === undefined
      ? { deps: { ovs: clients.ovs, rtnl, kernel: openUnderlayKernel(), log }, spec: { interface: opts.encapInterface, freshSwitch } }
      : undefined;
    if (underlay) cleanups.push(() => underlay.deps.kernel.close());
    const underlayPlan = underlay ? await prepareUnderlayBridge(underlay.deps, underlay.spec) : undefined;
    const chassis = {
      systemId: opts.nodeName, hostname: opts.nodeName, sbRemote: `unix:${stack.paths.sbSocket}`,
      encapIp: opts.encapIp ?? underlayPlan?.encapIp ?? (opts.encapInterface ? encapIpOf(opts.encapInterface) : defaultEncapIp()),
      bridge: BRIDGE, datapathType, interconnect: opts.kubernetes !== undefined, hwOffload: vswitchdOffload(opts.sriov, datapathType, log),
    };
    await configureChassis(clients.ovs, chassis);
    await ensureBridge(clients.ovs, chassis, { name: NODE_PORT, mac: macForIp(nodeJoinIp), ifaceId: `node-${opts.nodeName}` }, { freshSwitch });
    if (freshSwitch) await removeTaps();
    await stack.startSwitch();
    if (underlay && underlayPlan) {
      await finishUnderlayBridge(underlay.deps, underlayPlan, AbortSignal.timeout(STARTUP_TIMEOUT_MS));
      // A full stop gives the interface its address back; a hand-over leaves the datapath as it is.
      if (stack.owned) {
        releaseUnderlay = () => releaseUnderlayBridge(underlay.deps, underlay.spec);
        cleanups.push(releaseUnderlay);
      }
    }

    const podSwitch: SwitchSpec = {
      name: DEFAULT_SWITCH, cidrs: opts.subnets,
      gateways: opts.subnets.map((c) => { const p = parseCidr(c); return formatIp(p.family, p.network + 1n); }),
      routerPortMac: '',
    };
    podSwitch.routerPortMac = macForIp(podSwitch.gateways.find((g) => !g.includes(':')) ?? podSwitch.gateways[0]);
    const joinSwitch: SwitchSpec = { name: JOIN_SWITCH, cidrs: joinCidrs, gateways: joinGws, routerPortMac: macForIp(joinGw) };
    // Shared by every zone; the policy engine re-derives them with the Subnets' switches.
    const builtinKeys = switchTunnelKeys([DEFAULT_SWITCH, JOIN_SWITCH]);
    podSwitch.tunnelKey = builtinKeys.get(DEFAULT_SWITCH);
    joinSwitch.tunnelKey = builtinKeys.get(JOIN_SWITCH);
    await ensureTopology(clients.nb, [podSwitch, joinSwitch], {
      switchName: JOIN_SWITCH, lspName: `node-${opts.nodeName}`, mac: macForIp(nodeJoinIp), ips: nodeJoinIps,
      tunnelKey: portTunnelKey([join.text], [nodeJoinIp]), forwards: cluster !== undefined,
    });
    if (cluster) {
      // Egress leaves through this node: its router's default route, the kernel's forwarding and SNAT.
      const egress = egressRouteOps(clients.nb, nodeJoinIps);
      if (egress.length > 0) await clients.nb.transact([...egress, { op: 'comment', comment: 'ovnode: egress route' }]);
      writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
      if (join6) {
        try { writeFileSync('/proc/sys/net/ipv6/conf/all/forwarding', '1'); } catch (e) {
          throw new Error(`--join-cidr has an IPv6 CIDR (${join6.text}) but this node cannot forward IPv6: ${(e as Error).message}`);
        }
      }
      await nodeNat.apply({ podInterface: NODE_PORT, nodePorts: [] });
    }

    const startup = AbortSignal.timeout(STARTUP_TIMEOUT_MS);
    await clients.sb.waitFor(SB.chassis, (r) => r.name === opts.nodeName, startup);
    await configureNodePort({ ovs: clients.ovs, rtnl, native }, {
      name: NODE_PORT, addresses: nodeJoinIps.map((ip) => `${ip}/${(ip.includes(':') ? join6 : join)?.prefix}`), joinGateways: joinGws, podCidrs: opts.subnets,
      mtu, disableTxChecksum: datapathType === 'netdev',
    }, startup);

    const subnets = new SubnetRegistry(DEFAULT_SWITCH);
    subnets.add({ name: DEFAULT_SWITCH, cidrs: podSwitch.cidrs, gateways: podSwitch.gateways });
    subnets.addNodeOnly({ name: JOIN_SWITCH, cidrs: joinCidrs, gateways: joinGws });
    const reserved = subnets.rebuildFromNb(clients.nb);

    const metrics = new Metrics();
    const node: NodeSettings = { name: opts.nodeName, bridge: BRIDGE, mtu, datapathType };
    const readiness = (): Readiness => {
      if (!clients.ovs.connected) return { ready: false, reason: 'not connected to the Open_vSwitch database' };
      if (!clients.nb.connected) return { ready: false, reason: 'not connected to the OVN northbound database' };
      if (!stack.healthy()) return { ready: false, reason: 'an OVS/OVN process is down (restarting)' };
      return { ready: true };
    };
    let objects: ObjectStore & { close(): unknown };
    // The flusher exists once the deps do (below); remote ports may report before that.
    let conntrack: Deps['conntrack'];
    const conntrackOf = (): Deps['conntrack'] => conntrack;
    let policyEngine: PolicyEngine | undefined;
    const policyOf = (): PolicyEngine | undefined => policyEngine;
    if (cluster) {
      objects = cluster.store;
      // Chassis ids are node names: stable across a lost state directory, so a node that comes
      // back replaces its own remote chassis everywhere instead of leaving a stale one.
      await cluster.joinZones(clients, { chassisId: opts.nodeName, encapIp: chassis.encapIp, zone: opts.nodeName, transitIp: nodeJoinIp }, {
        joinSwitch: JOIN_SWITCH,
        // A remote pod's address may come back on another pod: its flows here go first.
        onAddressesGone: (ips) => void conntrackOf()?.released(ips),
        onPortsWritten: () => policyOf()?.scheduleSoon('remote ports'),
      });
    } else {
      objects = await openObjectStore(opts, log);
      cleanups.push(() => objects.close());
    }
    const policy = new PolicyEngine({
      nb: clients.nb, store: objects, subnets, log,
      builtin: [podSwitch, joinSwitch].map(({ name, cidrs, gateways }) => ({ name, cidrs, gateways })),
      joinCidrs, nodeIps: nodeJoinIps, metrics,
      ...(opts.kubernetes ? { nodeName: opts.nodeName } : {}),
    });
    const deps: Deps = {
      log, ovs: clients.ovs, nb: clients.nb, native, node, metrics, readiness, subnets, objects, policy,
      plumber: new PodPlumber({ nodeRtnl: rtnl, native, openRtnl, nodeNetnsPath }),
      conntrack: new ConntrackFlusher({ unixctl: new UnixctlClient(stack.paths.vswitchdCtl), subnets, log, metrics }),
    };
    deps.sriov = new VfAttacher({
      sysfs: new SriovSysfs(opts.sriov.sysfsRoot), nic: openNic(opts.sriov, native, cleanups), native, nodeRtnl: rtnl, nodeNetnsPath,
      podLink: (netns, ifName) => deps.plumber.inspect(netns, ifName),
      ovs: clients.ovs, hwOffload: opts.sriov.hwOffload, log,
    });
    if (cluster) {
      const hooks = cluster.hooks;
      deps.cluster = hooks;
      // A deleted Subnet's claims go once its switch has gone from this zone too (no pods left).
      const hasSwitch = (name: string): boolean => { for (const ls of clients.nb.rows(NB.ls).values()) if (ls.name === name) return true; return false; };
      await cluster.useClaims(subnets, (name) => subnets.has(name) || hasSwitch(name));
      // The NB is the record: a write-back a crash (or an API outage) cut short is redone; pods
      // whose annotations already match cost nothing.
      for (const a of nbAttachments(clients.nb)) {
        try { hooks.attached(a, poolNetwork(subnets.get(a.logicalSwitch), a.ips)); } catch { /* not a pod subnet */ }
      }
      // Running VMs' addresses stay taken on every node, wherever the VM runs now.
      const vmAddressKeeper = new VmAddressKeeper({ store: cluster.store, pools: () => subnets.all(), log });
      vmAddressKeeper.start();
      cleanups.push(() => vmAddressKeeper.stop());
      deps.vmAddresses = vmAddressKeeper;
    }
    conntrack = deps.conntrack;
    policyEngine = policy;
    if (cluster) {
      // NodePorts: the kernel DNATs node-port traffic to the ClusterIP, OVN balances it (node-nat.ts).
      const services = await cluster.startServices(clients.nb, () => [], AbortSignal.timeout(STARTUP_TIMEOUT_MS));
      const programNodePorts = (rules: readonly NodePortRule[]): void => void nodeNat.sync({ podInterface: NODE_PORT, nodePorts: rules });
      programNodePorts(services.nodePortRules());
      services.onNodePorts(programNodePorts);
    }
    // Offloaded datapath flows (smart NICs), read from vswitchd at each scrape.
    const offloadMetrics = registerOffloadMetrics({ registry: metrics.registry, socketPath: stack.paths.vswitchdCtl, log });
    cleanups.push(() => offloadMetrics.unregister());
    metrics.attachmentCount = () => ovsAttachments(clients.ovs).length;
    metrics.conntrackPendingCount = () => deps.conntrack?.pendingCount ?? 0;
    metrics.reconnectSources = {
      Open_vSwitch: () => clients.ovs.reconnects,
      OVN_Northbound: () => clients.nb.reconnects,
      OVN_Southbound: () => clients.sb.reconnects,
    };
    const swept = await reconcile(deps);
    // Subnets, port groups and ACLs exist before the first ADD is served.
    await policy.start();
    // Underlay: this node's uplinks in their provider bridges, mapped for localnet ports.
    const providerNetworks = new ProviderNetworks({
      ovs: clients.ovs, rtnl, store: objects, nodeName: opts.nodeName, datapathType, log,
      ...(cluster ? {
        nodeLabels: () => (cluster as ClusterNode).nodeLabels(),
        onJoined: (joined: JoinedProvider[]) => (cluster as ClusterNode).publishProviderLabels(joined),
      } : {}),
    });
    cleanups.push(providerNetworks.start());
    if (cluster) cleanups.push(cluster.onNodeLabels(() => providerNetworks.nodeLabelsChanged()));
    if (cluster) {
      // Pods scheduled here get their port before their ADD (prepared-ports.ts).
      const prepared = new PreparedPorts({
        nb: clients.nb, store: cluster.store, subnets, nodeName: opts.nodeName, log,
        switchFor: (pod, ns) => policy.switchFor(pod, ns),
        portSecurity: (pod, mac, ips) => portSecurityLine(objects, pod, mac, ips),
      });
      prepared.start();
      cleanups.push(() => prepared.stop());
      deps.prepared = prepared;
    }
    // The node reaches pods of every Subnet (kubelet probes), not only of the default one.
    const routes = new SubnetRoutes({ rtnl, device: NODE_PORT, joinGateways: joinGws, joinCidrs, log });
    // Service CIDRs too: the node (hostNetwork pods, NodePort's DNAT) reaches ClusterIPs through OVN.
    // Not an underlay subnet whose gateway is the physical router: OVN does not route it.
    const routedHere = (sn: SubnetObj): boolean => !sn.spec.vlan || sn.spec.logicalGateway;
    const subnetCidrs = (): string[] => [...opts.subnets, ...opts.serviceCidrs, ...objects.list('Subnet').filter(routedHere).flatMap((sn) => subnetShape(sn).cidrs)];
    let routedKey = subnetCidrs().join(',');
    await routes.sync(subnetCidrs());
    // Most store changes are pods: only a different CIDR list costs a route dump.
    cleanups.push(objects.onChange(() => {
      const cidrs = subnetCidrs();
      if (cidrs.join(',') === routedKey) return;
      routedKey = cidrs.join(',');
      void routes.sync(cidrs);
    }));
    log.info({ step: 'start', reservedIps: reserved, removedStale: swept }, 'state rebuilt from OVSDB');

    cleanups.push(() => deps.plumber.drain());
    const server = new CniServer(deps);
    await server.listen(opts.socket);
    cleanups.push(() => server.close());
    // Only now may kubelet find the plugin: it calls it as soon as a configuration exists.
    await cluster?.serving();
    const loop = new ReconcileLoop({
      ...loopSettings, log, metrics,
      source: new NodeLeaks(deps, { index: async (name) => (await rtnl.getLink(name))?.index }),
      withSandboxLock: (sandbox, fn) => server.withSandboxLock(sandbox, fn),
      chores: [
        { name: 'conntrack retry', run: () => deps.conntrack?.retryPending() ?? Promise.resolve() },
        // A route someone removed by hand comes back within a reconcile interval.
        { name: 'node routes', run: () => routes.sync(subnetCidrs()) },
      ],
      onRemoved: () => policy.scheduleSoon('leak removed'),
    });
    loop.start();
    // SIGHUP: reconcile now (an operator, or a test, need not wait for the timer).
    const onHup = (): void => void loop.trigger('SIGHUP');
    process.on('SIGHUP', onHup);
    cleanups.push(() => { process.off('SIGHUP', onHup); return loop.stop(); });
    let metricsServer: Server | undefined;
    if (opts.metricsAddress) {
      metricsServer = await metrics.listen(opts.metricsAddress, log);
      cleanups.push(() => new Promise((r) => metricsServer?.close(r)));
    }
    const handOver = async (): Promise<void> => {
      stack.release();
      // Everything but the stack (and the taps, and the underlay bridge) is the daemon's own and goes with it.
      cleanups.splice(cleanups.indexOf(removeTaps), 2);
      if (releaseUnderlay) cleanups.splice(cleanups.indexOf(releaseUnderlay), 1);
      await stop();
    };
    return { deps, stop, handOver };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function openObjectStore(opts: DaemonOptions, log: Logger): Promise<ObjectStore & { close(): void }> {
  if (!opts.manifests) return new MemoryStore();
  // Loaded only when used: the YAML parser and validators cost ~10 MB of a node daemon's RSS.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ManifestStore } = require('../objects/manifest-store') as typeof import('../objects/manifest-store');
  const store = new ManifestStore(opts.manifests, log);
  await store.load();
  return store;
}

/** The first IPv4 address of `name` in the node's netns; refusing to start without one. */
function encapIpOf(name: string): string {
  const addrs = networkInterfaces()[name];
  if (!addrs) throw new InvalidConfigError(`--encap-interface ${name}: no such interface in this network namespace`);
  const v4 = addrs.find((a) => a.family === 'IPv4');
  if (!v4) throw new InvalidConfigError(`--encap-interface ${name}: the interface has no IPv4 address`);
  return v4.address;
}

function defaultEncapIp(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/**
 * The NIC seam: the PF drivers through rtnetlink and ethtool, or the test double that records
 * into a fake sysfs tree (--sriov-fake-nic).
 */
function openNic(o: SriovOptions, native: NativeOps, cleanups: Array<() => unknown>): Nic {
  if (o.fakeNic) return new FakeNic(o.sysfsRoot);
  const sock = createRtNetlink();
  cleanups.push(() => sock.socket.close());
  return new NetlinkNic({ rtnl: sock, ethtool: native });
}

/**
 * Whether vswitchd's other_config:hw-offload is set. Only on the kernel datapath: on the
 * userspace one vswitchd would give its AF_PACKET (system) ports the tc flow API (it adds their
 * ingress qdisc), i.e. let the kernel forward some datapath flows behind its back, while nothing
 * there can reach a NIC. The NIC side (hw-tc-offload, representors) is configured either way.
 */
function vswitchdOffload(o: SriovOptions, datapathType: 'netdev' | 'system', log: Logger): boolean {
  if (!o.hwOffload || datapathType === 'system') return o.hwOffload;
  log.warn({ step: 'start', datapathType }, 'hw-offload: other_config:hw-offload left unset on the userspace datapath (tc offload of its system ports would bypass it); hw-tc-offload on PFs and representors still applies');
  return false;
}
