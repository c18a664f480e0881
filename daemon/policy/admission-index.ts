// Which port groups and address sets a new pod joins, answered from indexes of the store instead
// of a full desired-state computation, so the CNI ADD path costs the same with 10 or 10,000 pods:
//  - NetworkPolicies by namespace (a policy selects pods of its own namespace only);
//  - selector peers without a namespaceSelector by the policy's namespace, peers with one in a
//    list whose matches are cached per namespace (valid while that Namespace object is);
//  - security groups by name.
// Policies are compiled once per object (objects are immutable in the store; an edit replaces
// the object), and the indexes are rebuilt lazily after a store change, in O(policies).
// The answer is the pod's memberships in a full computation with the pod added, in the same
// order (test/unit/daemon/policy/admission-index.test.ts checks exactly that).

import type { NamespaceObj, NetworkPolicyObj, ObjectStore, PodObj, SecurityGroupObj } from '../objects/types';
import { compileNetworkPolicy, type CompiledPeer, type CompiledPolicy } from './compiled-policy';
import { PG_DENY_EGRESS, PG_DENY_INGRESS, pgSecurityGroup } from './names';
import { namespaceLabels, v4, v6 } from './pods';
import { podSecurityGroups } from './security-groups';

/** What admission needs of a pod: the ADD's view, before its port exists. */
export interface AdmittedPod {
  namespace: string;
  labels: Readonly<Record<string, string>>;
  ips: string[];
  pod?: PodObj;
}

export interface PodMemberships {
  /** Port groups with this pod among their ports. */
  portGroups: string[];
  /** Address sets with this pod's addresses (of the set's family) among theirs. */
  addressSets: Array<{ name: string; ips: string[] }>;
}

/** A peer with the list position of its policy: together they give the full computation's order. */
interface RankedPeer { policy: number; peer: CompiledPeer }

export class AdmissionIndex {
  readonly #store: ObjectStore;
  readonly #unsubscribe: () => void;
  #stale = true;
  readonly #compiled = new WeakMap<NetworkPolicyObj, CompiledPolicy>();
  #policies: ReadonlyArray<NetworkPolicyObj> = [];
  #selecting = new Map<string, CompiledPolicy[]>();
  #localPeers = new Map<string, RankedPeer[]>();
  #crossPeers: RankedPeer[] = [];
  readonly #crossByNamespace = new Map<string, { object: NamespaceObj | undefined; peers: RankedPeer[] }>();
  #groups: ReadonlyArray<SecurityGroupObj> = [];
  #groupRank = new Map<string, number>();
  #groupPortGroups: string[] = [];

  constructor(store: ObjectStore) {
    this.#store = store;
    this.#unsubscribe = store.onChange(() => { this.#stale = true; });
  }

  close(): void { this.#unsubscribe(); }

  /** Brings the indexes up to date with the store; cheap when nothing relevant changed. */
  refresh(): void {
    if (!this.#stale) return;
    this.#stale = false;
    // Most changes are Pods: the policy and group lists then hold the very same objects.
    const policies = this.#store.list('NetworkPolicy');
    if (!sameObjects(policies, this.#policies)) this.#indexPolicies(policies);
    const groups = this.#store.list('SecurityGroup');
    if (!sameObjects(groups, this.#groups)) this.#indexGroups(groups);
  }

  memberships(p: AdmittedPod): PodMemberships {
    this.refresh();
    const portGroups: string[] = [];
    let ingress = false;
    let egress = false;
    for (const policy of this.#selecting.get(p.namespace) ?? []) {
      if (!policy.selects(p.labels)) continue;
      portGroups.push(policy.portGroup);
      ingress ||= policy.isolatesIngress;
      egress ||= policy.isolatesEgress;
    }
    if (ingress) portGroups.push(PG_DENY_INGRESS);
    if (egress) portGroups.push(PG_DENY_EGRESS);
    portGroups.push(...this.#securityGroups(p));
    return { portGroups, addressSets: this.#peerSets(p) };
  }

  #indexPolicies(policies: ReadonlyArray<NetworkPolicyObj>): void {
    const selecting = new Map<string, CompiledPolicy[]>();
    const local = new Map<string, RankedPeer[]>();
    const cross: RankedPeer[] = [];
    policies.forEach((np, order) => {
      let c = this.#compiled.get(np);
      if (!c) { c = compileNetworkPolicy(np); this.#compiled.set(np, c); }
      pushTo(selecting, c.namespace, c);
      for (const peer of c.peers) {
        if (peer.namespaces) cross.push({ policy: order, peer });
        else pushTo(local, c.namespace, { policy: order, peer });
      }
    });
    this.#policies = policies;
    this.#selecting = selecting;
    this.#localPeers = local;
    this.#crossPeers = cross;
    this.#crossByNamespace.clear();
  }

  #indexGroups(groups: ReadonlyArray<SecurityGroupObj>): void {
    this.#groups = groups;
    this.#groupRank = new Map(groups.map((g, i) => [g.metadata.name, i]));
    this.#groupPortGroups = groups.map((g) => pgSecurityGroup(g.metadata.name));
  }

  /** Port groups of the pod's security groups that exist, in the store's order, once each. */
  #securityGroups(p: AdmittedPod): string[] {
    const names = podSecurityGroups(p);
    if (names.length === 0) return [];
    const ranks = new Set<number>();
    for (const n of names) {
      const r = this.#groupRank.get(n);
      if (r !== undefined) ranks.add(r);
    }
    return [...ranks].sort((a, b) => a - b).map((r) => this.#groupPortGroups[r] as string);
  }

  /** Peer address sets the pod's addresses belong in, ordered as translateNetworkPolicies emits them. */
  #peerSets(p: AdmittedPod): PodMemberships['addressSets'] {
    const ips4 = v4(p.ips);
    const ips6 = v6(p.ips);
    if (ips4.length === 0 && ips6.length === 0) return [];
    const matched: RankedPeer[] = [];
    for (const r of this.#localPeers.get(p.namespace) ?? []) if (r.peer.pods(p.labels)) matched.push(r);
    for (const r of this.#crossPeersOf(p.namespace)) if (r.peer.pods(p.labels)) matched.push(r);
    matched.sort((a, b) => a.policy - b.policy || a.peer.rank - b.peer.rank);
    const out: PodMemberships['addressSets'] = [];
    for (const { peer } of matched) {
      if (ips4.length > 0) out.push({ name: peer.sets[4], ips: ips4 });
      if (ips6.length > 0) out.push({ name: peer.sets[6], ips: ips6 });
    }
    return out;
  }

  /** Peers whose namespaceSelector selects `ns`, kept until that Namespace object or a policy changes. */
  #crossPeersOf(ns: string): RankedPeer[] {
    if (this.#crossPeers.length === 0) return [];
    const object = this.#store.get('Namespace', ns);
    const cached = this.#crossByNamespace.get(ns);
    if (cached && cached.object === object) return cached.peers;
    const labels = namespaceLabels(this.#store, ns);
    const peers = this.#crossPeers.filter((r) => r.peer.namespaces?.(labels));
    this.#crossByNamespace.set(ns, { object, peers });
    return peers;
  }
}

function sameObjects<T>(a: ReadonlyArray<T>, b: ReadonlyArray<T>): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function pushTo<T>(m: Map<string, T[]>, key: string, v: T): void {
  const list = m.get(key);
  if (list) list.push(v);
  else m.set(key, [v]);
}
