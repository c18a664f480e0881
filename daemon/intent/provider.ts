// Providers: which of a pod's networks an attachment is, in Kube-OVN's terms. The cluster network
// is provider "ovn" (annotations ovn.kubernetes.io/*); a NetworkAttachmentDefinition of type
// ovnode (or kube-ovn) names its own provider, by convention "<nad>.<namespace>.ovn", which binds
// it to the Subnet whose spec.provider is that name and prefixes its annotations
// (<provider>.kubernetes.io/ip_address, ...). When one NAD is attached to a pod more than once,
// each interface's provider gets ".<ifname>" appended (as Kube-OVN's controller does), so every
// interface has its own annotations and its own port.

import { InvalidConfigError } from '../../common/errors';
import type { ObjectStore, PodObj } from '../objects/types';

export const PRIMARY_PROVIDER = 'ovn';

/** Multus' list of a pod's extra networks. */
export const NETWORKS_ANNOTATION = 'k8s.v1.cni.cncf.io/networks';

/** Provider names end up in annotation keys and port names: a DNS subdomain-like name. */
const PROVIDER_RE = /^[a-z0-9]([a-z0-9.-]{0,200}[a-z0-9])?$/;

export function isPrimaryProvider(provider: string | undefined): boolean {
  return provider === undefined || provider === PRIMARY_PROVIDER;
}

export function checkProvider(provider: unknown, field: string): string {
  if (typeof provider !== 'string' || !PROVIDER_RE.test(provider)) {
    throw new InvalidConfigError(`invalid network config: ${field} must be a lower-case name of letters, digits, '.' and '-' (e.g. "<nad>.<namespace>.ovn")`);
  }
  return provider;
}

/** `<provider>.kubernetes.io/<key>`: the annotation of one of the pod's interfaces. */
export function providerAnnotation(provider: string, key: string): string {
  return `${provider}.kubernetes.io/${key}`;
}

/** The NAD a provider of the "<nad>.<namespace>.ovn" convention stands for. */
function nadOf(provider: string): { namespace: string; name: string } | undefined {
  const m = provider.match(/^([^.]+)\.([^.]+)\.ovn$/);
  return m ? { name: m[1] as string, namespace: m[2] as string } : undefined;
}

/** The pod's Multus selections, as `namespace/name` (the pod's namespace when none is given). */
export function selectedNetworks(pod: PodObj | undefined): string[] {
  const raw = pod?.metadata.annotations[NETWORKS_ANNOTATION]?.trim();
  if (!raw || !pod) return [];
  const ns = pod.metadata.namespace ?? 'default';
  if (raw.startsWith('[')) {
    try {
      const list: unknown = JSON.parse(raw);
      if (!Array.isArray(list)) return [];
      return list.flatMap((e) => {
        if (typeof e !== 'object' || e === null || typeof (e as { name?: unknown }).name !== 'string') return [];
        const { name, namespace } = e as { name: string; namespace?: unknown };
        return [`${typeof namespace === 'string' && namespace ? namespace : ns}/${name}`];
      });
    } catch {
      return [];
    }
  }
  // "ns/name@ifname, name, ..."
  return raw.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const ref = s.split('@')[0] as string;
    return ref.includes('/') ? ref : `${ns}/${ref}`;
  });
}

/**
 * The provider an interface's annotations and port are named with: the netconf's, with
 * ".<ifname>" when the pod attaches that provider's NAD more than once.
 */
export function interfaceProvider(pod: PodObj | undefined, provider: string, ifName: string): string {
  const nad = nadOf(provider);
  if (!nad) return provider;
  const key = `${nad.namespace}/${nad.name}`;
  const times = selectedNetworks(pod).filter((n) => n === key).length;
  return times > 1 ? `${provider}.${ifName}` : provider;
}

/**
 * The Subnet a secondary interface goes into: the one its own logical_switch annotation names,
 * else the Subnet bound to the provider (spec.provider). A provider bound to none is refused:
 * attaching it to the default subnet instead would silently put the interface in the wrong
 * network.
 */
export function providerSubnet(store: Pick<ObjectStore, 'list'>, pod: PodObj | undefined, provider: string, named: string): string {
  const annotated = pod?.metadata.annotations[providerAnnotation(named, 'logical_switch')]
    ?? (named !== provider ? pod?.metadata.annotations[providerAnnotation(provider, 'logical_switch')] : undefined);
  if (annotated) return annotated;
  const bound = store.list('Subnet').filter((s) => s.spec.provider === provider).map((s) => s.metadata.name).sort();
  if (bound.length === 0) throw new InvalidConfigError(`provider ${provider} is not bound to any subnet (no Subnet has spec.provider "${provider}")`);
  return bound[0] as string;
}
