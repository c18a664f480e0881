// A Service and its EndpointSlices to the Load_Balancer rows they need: one row per protocol, a
// VIP per cluster IP and port (and per node address and node port for NodePort/LoadBalancer
// Services), each to the ready endpoints of the same family on the port's target. A VIP without
// a ready endpoint stays, with no backend, so that OVN rejects its connections (options:reject)
// as kube-proxy does, instead of dropping them for the client to time out.

import { isIP } from 'node:net';
import type { Family } from '../ipam/cidr';
import { hostPort, lbName } from './names';
import type { DesiredLb, LbProtocol, NodePortRule, ServicePort, ServiceSlim, SliceSlim } from './types';

const PROTOCOLS: readonly LbProtocol[] = ['tcp', 'udp', 'sctp'];

export function serviceKey(svc: Pick<ServiceSlim, 'namespace' | 'name'>): string {
  return `${svc.namespace}/${svc.name}`;
}

/**
 * Backends of one Service port by family, sorted and without duplicates (an endpoint may sit in
 * two slices for a moment while the EndpointSlice controller moves it). A slice port matches by
 * name and protocol: the unnamed port of a single-port Service matches the slice's unnamed one.
 */
function backendsOf(port: ServicePort, slices: readonly SliceSlim[]): Map<Family, string> {
  const sets = new Map<Family, Set<string>>();
  for (const slice of slices) {
    const target = slice.ports.find((p) => p.name === port.name && p.protocol === port.protocol);
    if (!target) continue;
    let set = sets.get(slice.family);
    if (!set) sets.set(slice.family, (set = new Set()));
    for (const ip of slice.ready) set.add(hostPort(ip, target.port));
  }
  const out = new Map<Family, string>();
  for (const [family, set] of sets) out.set(family, [...set].sort().join(','));
  return out;
}

function lbOptions(svc: ServiceSlim): Record<string, string> {
  // reject: a VIP without backends answers TCP RST / ICMP port unreachable (ovn-nb(5)).
  const options: Record<string, string> = { reject: 'true' };
  // ovn-nb(5) affinity_timeout, in seconds: a client keeps its backend while it keeps talking.
  if (svc.affinityTimeoutSeconds !== undefined) options.affinity_timeout = String(svc.affinityTimeoutSeconds);
  return options;
}

/**
 * The Load_Balancer rows of one Service. `nodeAddresses` are this node's addresses that node
 * ports are served on; only those of a family the Service has a cluster IP in are used.
 */
export function serviceLoadBalancers(svc: ServiceSlim, slices: readonly SliceSlim[], nodeAddresses: readonly string[]): DesiredLb[] {
  // Headless: DNS answers with the endpoints themselves, there is nothing to balance.
  if (svc.clusterIPs.length === 0) return [];
  const service = serviceKey(svc);
  const families = new Set(svc.clusterIPs.map((ip) => isIP(ip)));
  const nodeIps = [...new Set(nodeAddresses)].filter((ip) => families.has(isIP(ip)));
  const vipsByProtocol = new Map<LbProtocol, Record<string, string>>();
  for (const port of svc.ports) {
    const backends = backendsOf(port, slices);
    let vips = vipsByProtocol.get(port.protocol);
    if (!vips) vipsByProtocol.set(port.protocol, (vips = {}));
    for (const ip of svc.clusterIPs) vips[hostPort(ip, port.port)] = backends.get(isIP(ip) as Family) ?? '';
    if (!svc.nodePorts || port.nodePort === undefined) continue;
    for (const ip of nodeIps) vips[hostPort(ip, port.nodePort)] = backends.get(isIP(ip) as Family) ?? '';
  }
  const options = lbOptions(svc);
  return PROTOCOLS.filter((p) => vipsByProtocol.has(p)).map((protocol) => ({
    name: lbName(service, protocol), protocol, service, vips: vipsByProtocol.get(protocol) as Record<string, string>, options: { ...options },
  }));
}

export interface DesiredInput {
  services: Iterable<ServiceSlim>;
  /** The slices of a Service, by `namespace/name`. */
  slicesOf: (service: string) => readonly SliceSlim[];
  nodeAddresses: readonly string[];
}

/** Every Service's rows, sorted by name. */
export function desiredLoadBalancers(input: DesiredInput): DesiredLb[] {
  const out: DesiredLb[] = [];
  for (const svc of input.services) out.push(...serviceLoadBalancers(svc, input.slicesOf(serviceKey(svc)), input.nodeAddresses));
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Node ports to forward to cluster IPs, one per node port and cluster IP, in a stable order. */
export function nodePortRules(services: Iterable<ServiceSlim>): NodePortRule[] {
  const out: NodePortRule[] = [];
  for (const svc of services) {
    if (!svc.nodePorts) continue;
    for (const p of svc.ports) {
      if (p.nodePort === undefined) continue;
      for (const clusterIp of svc.clusterIPs) out.push({ protocol: p.protocol, nodePort: p.nodePort, clusterIp, port: p.port });
    }
  }
  return out.sort((a, b) => a.nodePort - b.nodePort || a.protocol.localeCompare(b.protocol) || a.clusterIp.localeCompare(b.clusterIp));
}
