// What the services controller keeps of Services and EndpointSlices (projections small enough to
// hold for every Service of a large cluster) and what they become: Load_Balancer rows of this
// node's NB and the node-port rules the kernel's DNAT is programmed from.

import type { Family } from '../ipam/cidr';

/** Load_Balancer.protocol as the NB schema spells it (Kubernetes' TCP/UDP/SCTP, lower case). */
export type LbProtocol = 'tcp' | 'udp' | 'sctp';

export interface ServicePort {
  /** "" for the unnamed port of a single-port Service. */
  name: string;
  protocol: LbProtocol;
  port: number;
  /** Set on NodePort and LoadBalancer Services (unless node ports are not allocated). */
  nodePort?: number;
}

/** A Service that has virtual IPs: ExternalName and headless Services are not kept. */
export interface ServiceSlim {
  namespace: string;
  name: string;
  /** spec.clusterIPs (dual stack), else [spec.clusterIP]; at most one per family. */
  clusterIPs: string[];
  ports: ServicePort[];
  /** NodePort and LoadBalancer Services: their node ports are served on the node's addresses. */
  nodePorts: boolean;
  /** sessionAffinity ClientIP: sessionAffinityConfig.clientIP.timeoutSeconds (default 10800). */
  affinityTimeoutSeconds?: number;
}

export interface SlicePort {
  /** Matches a Service port by name ("" for an unnamed port). */
  name: string;
  protocol: LbProtocol;
  /** The endpoints' port: the Service's targetPort, resolved by the EndpointSlice controller. */
  port: number;
}

/** An EndpointSlice of an IP family with only its ready endpoints' addresses. */
export interface SliceSlim {
  /** `namespace/name` of the Service (label kubernetes.io/service-name). */
  service: string;
  family: Family;
  ports: SlicePort[];
  /** First address of each ready endpoint (an endpoint's addresses are fungible, per the API). */
  ready: string[];
}

/** One Load_Balancer row: a Service's VIPs of one protocol. */
export interface DesiredLb {
  name: string;
  protocol: LbProtocol;
  /** `namespace/name`. */
  service: string;
  /** "vip:port" (IPv6 "[vip]:port") to "backend:port,..." ("" when nothing is ready: rejected). */
  vips: Record<string, string>;
  options: Record<string, string>;
}

/** A node port the kernel forwards to a cluster IP (whose Load_Balancer then picks a backend). */
export interface NodePortRule {
  protocol: LbProtocol;
  nodePort: number;
  clusterIp: string;
  port: number;
}
