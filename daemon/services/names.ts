// Names and markers of the services controller's NB rows: Load_Balancer names as OVN-Kubernetes
// spells them (Service_<namespace>/<name>_<PROTOCOL>), the external_ids that say a row is ours,
// and the VIP/backend notation of Load_Balancer.vips.

import type { LbProtocol } from './types';

/** external_ids key and value of every Load_Balancer row this controller owns. */
export const LB_OWNER_KEY = 'ovnode:owner';
export const LB_OWNER = 'services';
/** external_ids key holding the row's Service, `namespace/name`. */
export const LB_SERVICE_KEY = 'ovnode:service';
/** Switches ovnode created carry their CIDRs under this key; only they get the load balancers. */
export const SWITCH_CIDRS_KEY = 'ovnode:cidrs';

/** Kubernetes' default ClientIP affinity timeout (3 hours). */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10_800;

export function lbName(service: string, protocol: LbProtocol): string {
  return `Service_${service}_${protocol.toUpperCase()}`;
}

/** An address and port as Load_Balancer.vips writes them: IPv6 addresses in brackets. */
export function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
