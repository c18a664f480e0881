// Service and EndpointSlice objects reduced to what load balancing needs, as the reflectors parse
// them: kept per object instead of the raw JSON (a Service's managedFields and annotations, an
// EndpointSlice's topology, hostnames and target references are dropped).
//
// EndpointSlices come in discovery.k8s.io/v1 or v1beta1 (Kubernetes 1.20 serves only v1beta1).
// The fields read here have the same shape in both: addressType, ports[].{name,protocol,port},
// endpoints[].addresses and endpoints[].conditions.ready; the versions differ in where the
// endpoint's node and zone are (v1beta1 topology, v1 nodeName/zone), which is not read. `ready`
// is the only condition used: nil means ready ("consumers should interpret this unknown state as
// ready"), and it is never true for a terminating endpoint. `serving` and `terminating` appeared
// in 1.20 behind the EndpointSliceTerminatingCondition gate (alpha, off by default; beta in 1.22,
// GA in 1.26), so a 1.20 server does not send them.

import { isIP } from 'node:net';
import type { Family } from '../ipam/cidr';
import type { KubeRawObject } from '../sources/kube/reflector';
import { DEFAULT_AFFINITY_TIMEOUT_SECONDS } from './names';
import type { LbProtocol, ServicePort, ServiceSlim, SlicePort, SliceSlim } from './types';

/** The label tying an EndpointSlice to its Service (same namespace). */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** Services (and their slices) so labelled are served by another proxy, as kube-proxy skips them. */
export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';
/** Set by the EndpointSlice controller on slices of headless Services, which get no VIP. */
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';

type Json = Record<string, unknown>;

const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const records = (v: unknown): Json[] => (Array.isArray(v) ? v.filter(isRecord) : []);
const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

/** Kubernetes protocol (default TCP) to the NB's; undefined for anything else. */
function protocolOf(v: unknown): LbProtocol | undefined {
  if (v === undefined || v === null || v === 'TCP') return 'tcp';
  if (v === 'UDP') return 'udp';
  if (v === 'SCTP') return 'sctp';
  return undefined;
}

function clusterIPsOf(spec: Json): string[] {
  const listed = Array.isArray(spec.clusterIPs) ? spec.clusterIPs : [spec.clusterIP];
  const out: string[] = [];
  const families = new Set<number>();
  for (const ip of listed) {
    if (typeof ip !== 'string') continue;
    const family = isIP(ip);
    // One per family, as the API guarantees; 'None' and '' are not addresses.
    if (family === 0 || families.has(family)) continue;
    families.add(family);
    out.push(ip);
  }
  return out;
}

function servicePorts(spec: Json, nodePorts: boolean): ServicePort[] {
  const out: ServicePort[] = [];
  for (const p of records(spec.ports)) {
    const protocol = protocolOf(p.protocol);
    if (protocol === undefined || !isPort(p.port)) continue;
    const port: ServicePort = { name: typeof p.name === 'string' ? p.name : '', protocol, port: p.port };
    if (nodePorts && isPort(p.nodePort)) port.nodePort = p.nodePort;
    out.push(port);
  }
  return out;
}

function affinityOf(spec: Json): number | undefined {
  if (spec.sessionAffinity !== 'ClientIP') return undefined;
  const config = isRecord(spec.sessionAffinityConfig) ? spec.sessionAffinityConfig : {};
  const clientIP = isRecord(config.clientIP) ? config.clientIP : {};
  const t = clientIP.timeoutSeconds;
  return Number.isInteger(t) && (t as number) > 0 ? (t as number) : DEFAULT_AFFINITY_TIMEOUT_SECONDS;
}

/**
 * A Service with virtual IPs, or undefined for those that get no load balancer: ExternalName
 * (a DNS alias), headless (clusterIP None: DNS returns the endpoints themselves) and Services
 * whose clusterIP is not allocated yet.
 */
export function projectService(raw: KubeRawObject): ServiceSlim | undefined {
  const meta = raw.metadata;
  const spec = raw.spec;
  if (!meta || typeof meta.name !== 'string' || typeof meta.namespace !== 'string' || !isRecord(spec)) return undefined;
  if (spec.type === 'ExternalName') return undefined;
  const clusterIPs = clusterIPsOf(spec);
  if (clusterIPs.length === 0) return undefined;
  const nodePorts = spec.type === 'NodePort' || spec.type === 'LoadBalancer';
  const svc: ServiceSlim = { namespace: meta.namespace, name: meta.name, clusterIPs, ports: servicePorts(spec, nodePorts), nodePorts };
  const affinity = affinityOf(spec);
  if (affinity !== undefined) svc.affinityTimeoutSeconds = affinity;
  return svc;
}

function familyOf(addressType: unknown): Family | undefined {
  if (addressType === 'IPv4') return 4;
  if (addressType === 'IPv6') return 6;
  return undefined; // FQDN: not something a load balancer can forward to
}

function slicePorts(v: unknown): SlicePort[] {
  const out: SlicePort[] = [];
  for (const p of records(v)) {
    const protocol = protocolOf(p.protocol);
    // A nil port means "not restricted", which has no meaning for a VIP's backend.
    if (protocol === undefined || !isPort(p.port)) continue;
    out.push({ name: typeof p.name === 'string' ? p.name : '', protocol, port: p.port });
  }
  return out;
}

function readyAddresses(endpoints: unknown, family: Family): string[] {
  const out: string[] = [];
  for (const ep of records(endpoints)) {
    const conditions = isRecord(ep.conditions) ? ep.conditions : {};
    if (conditions.ready === false) continue;
    const address = (Array.isArray(ep.addresses) ? ep.addresses : []).find((a): a is string => typeof a === 'string' && isIP(a) === family);
    if (address !== undefined) out.push(address);
  }
  return out;
}

/** An IPv4 or IPv6 EndpointSlice of a Service (v1 or v1beta1), or undefined for any other. */
export function projectEndpointSlice(raw: KubeRawObject): SliceSlim | undefined {
  const meta = raw.metadata;
  if (!meta || typeof meta.namespace !== 'string') return undefined;
  const labels = isRecord(meta.labels) ? meta.labels : {};
  const service = labels[SERVICE_NAME_LABEL];
  if (typeof service !== 'string' || service === '') return undefined;
  const family = familyOf(raw.addressType);
  if (family === undefined) return undefined;
  return { service: `${meta.namespace}/${service}`, family, ports: slicePorts(raw.ports), ready: readyAddresses(raw.endpoints, family) };
}
