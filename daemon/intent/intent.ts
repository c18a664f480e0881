// What one attachment must get, decided from the request alone (netconf, runtimeConfig,
// CNI_ARGS) and node settings. Later issues add the manifest / Kubernetes sources here.

import { createHash } from 'node:crypto';
import type { NodeSettings } from '../context';
import type { PodObj } from '../objects/types';
import { ANNOTATION } from '../policy/port-settings';
import type { CniRequest } from '../server/request';
import { requireMac, requireStaticIps } from './addresses';

export interface PodIntent {
  lspName: string;
  logicalSwitch: string;
  hostIfName: string;
  staticIps: string[];
  /**
   * Addresses the pod had before (its written-back ip_address): taken again when free or held by
   * this same pod's port, otherwise the pod gets new ones. Never a hard request.
   */
  preferredIps: string[];
  staticMac?: string;
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

/** What the Pod object (manifest or Kubernetes API) says about this attachment. */
export interface PodSource {
  pod?: PodObj;
  /** The pod's subnet from its annotation or its namespace's Subnet. */
  logicalSwitch?: string;
}

/**
 * Precedence, most specific first: the runtime's capabilities (runtimeConfig ips/mac), the
 * Pod's annotations, CNI_ARGS, the netconf, the node default.
 */
export function buildIntent(req: CniRequest, node: NodeSettings, defaultSwitch: string, source: PodSource = {}): PodIntent {
  const ann = source.pod?.metadata.annotations ?? {};
  const annIps = requireStaticIps(
    (ann[ANNOTATION.ipAddress] ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    `pod annotation ${ANNOTATION.ipAddress}`,
  );
  // A written-back allocation is the pod's record, not a user's static request.
  const writtenBack = ann[ANNOTATION.allocated] === 'true';
  const intent: PodIntent = {
    lspName: lspNameFor(req),
    logicalSwitch: source.logicalSwitch ?? req.conf.logicalSwitch ?? defaultSwitch,
    hostIfName: hostIfName(req.containerId, req.ifName),
    staticIps: req.conf.staticIps.length > 0 ? req.conf.staticIps : annIps.length > 0 && !writtenBack ? annIps : req.args.ips ?? [],
    preferredIps: writtenBack ? annIps : [],
    mtu: req.conf.mtu ?? node.mtu,
  };
  const annMac = ann[ANNOTATION.macAddress];
  const mac = req.conf.staticMac ?? (annMac ? requireMac(annMac, `pod annotation ${ANNOTATION.macAddress}`) : undefined) ?? req.args.mac;
  if (mac) intent.staticMac = mac;
  if (req.args.podName) intent.podName = req.args.podName;
  if (req.args.podNamespace) intent.podNamespace = req.args.podNamespace;
  if (req.args.podUid) intent.podUid = req.args.podUid;
  return intent;
}
