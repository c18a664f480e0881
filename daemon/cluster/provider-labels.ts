// Kube-OVN marks each node with the provider networks it joined, as Node labels that users select
// underlay pods' nodes by: `<provider>.provider-network.kubernetes.io/ready=true`, `/interface`
// (the uplink) and `/mtu` (the uplink's MTU). ovnode writes the same labels for the networks
// this node joined and removes them for networks it left; other labels are never touched.

/** A provider network this node joined, as the labels tell it. */
export interface JoinedProvider { provider: string; interface: string; mtu: number }

const SUFFIX = '.provider-network.kubernetes.io/';
const KEYS = ['ready', 'interface', 'mtu'] as const;

/** The labels `joined` implies. */
export function providerLabels(joined: readonly JoinedProvider[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const j of joined) {
    out[`${j.provider}${SUFFIX}ready`] = 'true';
    out[`${j.provider}${SUFFIX}interface`] = j.interface;
    out[`${j.provider}${SUFFIX}mtu`] = String(j.mtu);
  }
  return out;
}

/**
 * The merge patch of metadata.labels that makes the node's provider labels `joined`'s (null
 * removes a label); undefined when they already are.
 */
export function providerLabelPatch(current: Readonly<Record<string, string>>, joined: readonly JoinedProvider[]): Record<string, string | null> | undefined {
  const want = providerLabels(joined);
  const patch: Record<string, string | null> = {};
  for (const key of Object.keys(current)) {
    const at = key.indexOf(SUFFIX);
    if (at > 0 && (KEYS as readonly string[]).includes(key.slice(at + SUFFIX.length)) && !(key in want)) patch[key] = null;
  }
  for (const [k, v] of Object.entries(want)) if (current[k] !== v) patch[k] = v;
  return Object.keys(patch).length > 0 ? patch : undefined;
}
