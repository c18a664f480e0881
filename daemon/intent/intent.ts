// What one attachment must get, decided from the request alone (netconf, runtimeConfig,
// CNI_ARGS) and node settings. Later issues add the manifest / Kubernetes sources here.

import { createHash } from 'node:crypto';
import type { NodeSettings } from '../context';
import type { PodObj } from '../objects/types';
import { ANNOTATION } from '../policy/port-settings';
import type { CniRequest } from '../server/request';
import { requireMac, requireStaticIps } from './addresses';
import { providerAnnotation } from './provider';

export interface PodIntent {
  lspName: string;
  /** A secondary interface's provider as its annotations and port are named (provider.ts); none for the cluster network. */
  provider?: string;
  logicalSwitch: string;
  hostIfName: string;
  staticIps: string[];
  /**
   * Addresses the pod had before (its written-back ip_address): taken again when free or held by
   * this same pod's port, otherwise the pod gets new ones. Never a hard request.
   */
  preferredIps: string[];
  staticMac?: string;
  /**
   * A VM's addresses, held by another of its pods (a live migration's source): this pod shares
   * that pod's port, so they are taken as the port's own, never allocated or claimed anew.
   */
  vmIps: string[];
  /** The pod is a migration's target: the VM's address is in use elsewhere until it moves here. */
  migrationTarget?: boolean;
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

/**
 * `<pod>.<namespace>` as Kube-OVN names pod ports (`base` replaces the pod name: a VM's pods
 * share its port); extra interfaces get their name appended.
 */
export function lspNameFor(req: Pick<CniRequest, 'containerId' | 'ifName' | 'args'>, base?: string): string {
  const { podName, podNamespace } = req.args;
  const name = base ?? podName;
  if (name && podNamespace) return req.ifName === 'eth0' ? `${name}.${podNamespace}` : `${name}.${podNamespace}.${req.ifName}`;
  return `${req.containerId}.${req.ifName}`;
}

/** What the Pod object (manifest or Kubernetes API) says about this attachment. */
export interface PodSource {
  pod?: PodObj;
  /** The pod's subnet from its annotation or its namespace's Subnet (or its provider's). */
  logicalSwitch?: string;
  /** A secondary interface: its provider as named on the pod (interfaceProvider). */
  provider?: string;
  /** What the pod's ports are named after (a VM's name for its virt-launcher pods). */
  portBase?: string;
  /** The VM's MAC and addresses, as another of its pods holds them. */
  vmAddress?: { mac: string; ips: string[] };
  migrationTarget?: boolean;
}

/**
 * The port of a secondary interface carries its provider (Kube-OVN's `<pod>.<namespace>.<provider>`);
 * the cluster network's is lspNameFor's.
 */
export function portNameFor(req: Pick<CniRequest, 'containerId' | 'ifName' | 'args'>, provider: string | undefined, base?: string): string {
  const { podName, podNamespace } = req.args;
  const name = base ?? podName;
  if (provider !== undefined && name && podNamespace) return `${name}.${podNamespace}.${provider}`;
  return lspNameFor(req, base);
}

/**
 * Precedence, most specific first: the runtime's capabilities (runtimeConfig ips/mac), the
 * Pod's annotations, CNI_ARGS, the netconf, the node default.
 */
export function buildIntent(req: CniRequest, node: NodeSettings, defaultSwitch: string, source: PodSource = {}): PodIntent {
  const ann = source.pod?.metadata.annotations ?? {};
  // ovn.kubernetes.io/* are the cluster network's; a secondary interface reads its provider's.
  const key = (k: 'ip_address' | 'mac_address' | 'allocated'): string => (source.provider === undefined
    ? { ip_address: ANNOTATION.ipAddress, mac_address: ANNOTATION.macAddress, allocated: ANNOTATION.allocated }[k]
    : providerAnnotation(source.provider, k));
  const annIps = requireStaticIps(
    (ann[key('ip_address')] ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    `pod annotation ${key('ip_address')}`,
  );
  // A written-back allocation is the pod's record, not a user's static request.
  const writtenBack = ann[key('allocated')] === 'true';
  const intent: PodIntent = {
    lspName: portNameFor(req, source.provider, source.portBase),
    logicalSwitch: source.logicalSwitch ?? req.conf.logicalSwitch ?? defaultSwitch,
    hostIfName: hostIfName(req.containerId, req.ifName),
    // A VM's address held by its other pod wins over anything this pod asks for: the port is one.
    staticIps: source.vmAddress ? [] : req.conf.staticIps.length > 0 ? req.conf.staticIps : annIps.length > 0 && !writtenBack ? annIps : req.args.ips ?? [],
    preferredIps: writtenBack && !source.vmAddress ? annIps : [],
    vmIps: source.vmAddress?.ips ?? [],
    mtu: req.conf.mtu ?? node.mtu,
  };
  if (source.migrationTarget) intent.migrationTarget = true;
  const annMac = ann[key('mac_address')];
  const mac = source.vmAddress?.mac ?? req.conf.staticMac ?? (annMac ? requireMac(annMac, `pod annotation ${key('mac_address')}`) : undefined) ?? req.args.mac;
  if (source.provider !== undefined) intent.provider = source.provider;
  if (mac) intent.staticMac = mac;
  if (req.args.podName) intent.podName = req.args.podName;
  if (req.args.podNamespace) intent.podNamespace = req.args.podNamespace;
  if (req.args.podUid) intent.podUid = req.args.podUid;
  return intent;
}
