// What one attachment must get, decided from the request alone (netconf, runtimeConfig,
// CNI_ARGS) and node settings. Later issues add the manifest / Kubernetes sources here.

import { createHash } from 'node:crypto';
import type { NodeSettings } from '../context';
import type { CniRequest } from '../server/request';

export interface PodIntent {
  lspName: string;
  logicalSwitch: string;
  hostIfName: string;
  staticIps: string[];
  staticMac?: string;
  portSecurity: boolean;
  mtu: number;
  podName?: string;
  podNamespace?: string;
  podUid?: string;
}

/** What every host-side veth name looks like (so start-up can recognise orphans). */
export const HOST_IF_RE = /^[0-9a-f]{12}_h$/;

/** Host-side veth name: derived from the sandbox, so DEL finds it even when nothing else is left. */
export function hostIfName(containerId: string, ifName: string): string {
  return `${createHash('sha256').update(`${containerId}/${ifName}`).digest('hex').slice(0, 12)}_h`;
}

/** `<pod>.<namespace>` as Kube-OVN names pod ports; extra interfaces get their name appended. */
export function lspNameFor(req: Pick<CniRequest, 'containerId' | 'ifName' | 'args'>): string {
  const { podName, podNamespace } = req.args;
  if (podName && podNamespace) return req.ifName === 'eth0' ? `${podName}.${podNamespace}` : `${podName}.${podNamespace}.${req.ifName}`;
  return `${req.containerId}.${req.ifName}`;
}

export function buildIntent(req: CniRequest, node: NodeSettings, defaultSwitch: string): PodIntent {
  const intent: PodIntent = {
    lspName: lspNameFor(req),
    logicalSwitch: req.conf.logicalSwitch ?? defaultSwitch,
    hostIfName: hostIfName(req.containerId, req.ifName),
    staticIps: req.conf.staticIps.length > 0 ? req.conf.staticIps : req.args.ips ?? [],
    portSecurity: true,
    mtu: req.conf.mtu ?? node.mtu,
  };
  const mac = req.conf.staticMac ?? req.args.mac;
  if (mac) intent.staticMac = mac.toLowerCase();
  if (req.args.podName) intent.podName = req.args.podName;
  if (req.args.podNamespace) intent.podNamespace = req.args.podNamespace;
  if (req.args.podUid) intent.podUid = req.args.podUid;
  return intent;
}
