// Seeded random worlds for the admission tests: namespaces, NetworkPolicies of every peer
// shape, selector operator and policyTypes order, security groups, and pods of one or both
// address families, plus random store edits of the kinds the admission index must follow.

import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type {
  LabelSelector, LabelSelectorRequirement, NetworkPolicyObj, NetworkPolicyPeer, NetworkPolicyRule, PodObj,
} from '../../../../daemon/objects/types';
import { namespaceLabels, type PodPort } from '../../../../daemon/policy/pods';
import { SG_ANNOTATION } from '../../../../daemon/policy/security-groups';
import { namespace, netpol, pod, secgroup, sel } from './helpers';
import { seededRandom } from '../../../support/seeded-random';

/** mulberry32: small, fast, and the same sequence everywhere. */
export class Rng {
  readonly next: () => number;
  constructor(seed: number) { this.next = seededRandom(seed); }
  int(n: number): number { return Math.floor(this.next() * n); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)] as T; }
  some<T>(xs: readonly T[], max: number): T[] { return Array.from({ length: this.int(max + 1) }, () => this.pick(xs)); }
}

// Few keys and values, so that selectors often match and often do not.
const KEYS = ['app', 'tier', 'env', 'team'] as const;
const VALUES = ['a', 'b', 'c', ''] as const;
const NAMESPACES = ['ns-0', 'ns-1', 'ns-2', 'ns-3'] as const; // ns-3 starts without a Namespace object
const SG_NAMES = ['sg-0', 'sg-1', 'sg-2', 'sg-3'] as const;
const OPERATORS: LabelSelectorRequirement['operator'][] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

export function labels(rng: Rng): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of KEYS) if (rng.chance(0.6)) out[k] = rng.pick(VALUES);
  return out;
}

export function selector(rng: Rng, keys: readonly string[] = KEYS): LabelSelector {
  const matchLabels: Record<string, string> = {};
  for (let i = rng.int(3); i > 0; i--) matchLabels[rng.pick(keys)] = rng.pick(VALUES);
  const matchExpressions: LabelSelectorRequirement[] = Array.from({ length: rng.int(3) }, () => {
    const operator = rng.pick(OPERATORS);
    const values = operator === 'In' || operator === 'NotIn' ? [...new Set(rng.some(VALUES, 3))] : [];
    return { key: rng.pick(keys), operator, values };
  });
  return sel(matchLabels, matchExpressions);
}

function peer(rng: Rng): NetworkPolicyPeer {
  switch (rng.int(5)) {
    case 0: return { podSelector: selector(rng) };
    case 1: return { namespaceSelector: selector(rng, [...KEYS, 'kubernetes.io/metadata.name']) };
    case 2: return { namespaceSelector: rng.chance(0.3) ? sel({ 'kubernetes.io/metadata.name': rng.pick(NAMESPACES) }) : selector(rng), podSelector: selector(rng) };
    case 3: return { ipBlock: { cidr: '10.0.0.0/8', except: rng.chance(0.5) ? ['10.16.0.0/16'] : [] } };
    default: return rng.chance(0.5) ? { podSelector: sel() } : { namespaceSelector: sel() };
  }
}

function rules(rng: Rng): NetworkPolicyRule[] {
  return Array.from({ length: rng.int(4) }, () => ({
    peers: Array.from({ length: rng.int(4) }, () => peer(rng)),
    ports: rng.chance(0.5) ? [{ protocol: 'TCP' as const, port: 80 }] : [],
  }));
}

const POLICY_TYPES: Array<NetworkPolicyObj['spec']['policyTypes']> = [['Ingress'], ['Egress'], ['Ingress', 'Egress'], ['Egress', 'Ingress'], []];

export function policy(rng: Rng, name: string): NetworkPolicyObj {
  return netpol(name, rng.pick(NAMESPACES), {
    podSelector: rng.chance(0.2) ? sel() : selector(rng),
    policyTypes: rng.pick(POLICY_TYPES),
    ingress: rules(rng),
    egress: rules(rng),
  });
}

function securityGroups(rng: Rng): string {
  // Unknown groups, repeats and stray spaces included: the annotation is free text.
  return rng.some([...SG_NAMES, 'sg-missing'], 3).map((s) => (rng.chance(0.2) ? ` ${s} ` : s)).join(',');
}

export function podObj(rng: Rng, name: string): PodObj {
  const annotations: Record<string, string> = {};
  if (rng.chance(0.4)) annotations[SG_ANNOTATION] = securityGroups(rng);
  return pod(name, rng.pick(NAMESPACES), { labels: labels(rng), annotations });
}

/** Unique per pod, of one or both families. */
export function ipsOf(rng: Rng, i: number): string[] {
  const v4 = `10.16.${Math.floor(i / 250)}.${(i % 250) + 2}`;
  const v6 = `fd00:10:16::${(i + 2).toString(16)}`;
  return rng.pick([[v4], [v4], [v6], [v4, v6]]);
}

export function portOf(store: MemoryStore, p: PodObj, ips: string[]): PodPort {
  const ns = p.metadata.namespace;
  return {
    lspName: `${p.metadata.name}.${ns}`, name: p.metadata.name, namespace: ns, logicalSwitch: 'ovn-default',
    mac: '0a:58:0a:10:00:99', ips, labels: p.metadata.labels, namespaceLabels: namespaceLabels(store, ns), pod: p,
  };
}

export interface World { rng: Rng; store: MemoryStore; existing: PodPort[]; policies: number; next: number }

export function world(seed: number): World {
  const rng = new Rng(seed);
  const store = new MemoryStore();
  for (const ns of NAMESPACES.slice(0, 3)) store.apply(namespace(ns, labels(rng)));
  let policies = 0;
  for (let i = rng.int(12); i > 0; i--) store.apply(policy(rng, `np-${policies++}`));
  for (const s of SG_NAMES) if (rng.chance(0.6)) store.apply(secgroup(s));
  const existing: PodPort[] = [];
  for (let i = 0; i < 15; i++) {
    const p = podObj(rng, `pod-${i}`);
    store.apply(p);
    existing.push(portOf(store, p, ipsOf(rng, i)));
  }
  return { rng, store, existing, policies, next: existing.length };
}

/** One edit of the kinds the index must follow: policies, namespace labels, security groups. */
export function edit(w: World): string {
  const { rng, store } = w;
  const nps = store.list('NetworkPolicy');
  switch (rng.int(6)) {
    case 0: { const np = policy(rng, `np-${w.policies++}`); store.apply(np); return `add ${np.metadata.namespace}/${np.metadata.name}`; }
    case 1: {
      const old = nps.length > 0 ? rng.pick(nps) : undefined;
      if (!old) return 'no policy to replace';
      // Same name and namespace, new spec: an edit of the object.
      store.apply({ ...policy(rng, old.metadata.name), metadata: old.metadata });
      return `edit ${old.metadata.namespace}/${old.metadata.name}`;
    }
    case 2: {
      const old = nps.length > 0 ? rng.pick(nps) : undefined;
      if (!old) return 'no policy to remove';
      store.remove('NetworkPolicy', old.metadata.name, old.metadata.namespace);
      return `remove ${old.metadata.namespace}/${old.metadata.name}`;
    }
    case 3: { const ns = rng.pick(NAMESPACES); store.apply(namespace(ns, labels(rng))); return `relabel namespace ${ns}`; }
    case 4: { const ns = rng.pick(NAMESPACES); store.remove('Namespace', ns); return `remove namespace ${ns}`; }
    default: {
      const s = rng.pick(SG_NAMES);
      if (store.get('SecurityGroup', s)) store.remove('SecurityGroup', s);
      else store.apply(secgroup(s));
      return `toggle ${s}`;
    }
  }
}

export function newPod(w: World): PodPort {
  const p = podObj(w.rng, `new-${w.next}`);
  // The ADD path gives the index the Pod object; its port does not exist yet.
  return portOf(w.store, p, ipsOf(w.rng, w.next++));
}
