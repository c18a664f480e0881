// The addresses a NetworkPolicy peer selects, found through their namespace first and kept from
// one policy run to the next. On a node that sees every pod of the cluster as a peer, scanning
// all pods for every peer of every policy costs policies x peers x pods selector evaluations per
// run (seconds at 5000 pods and 500 policies, for a single label change). Grouped by namespace, a
// plain podSelector looks at its own namespace only; peers that say the same thing (the same
// selectors from the same namespace, common when policies are stamped from one template) are
// evaluated once; and an answer stays valid across runs until a namespace it looked at changes,
// so a label change re-evaluates the peers of one namespace, not the cluster's.

import { compileSelector, isEmptySelector } from '../objects/selectors';
import { stableStringify } from '../objects/object-index';
import type { NetworkPolicyPeer } from '../objects/types';
import type { PodPort } from './pods';

/** The pods of a namespace, as seen with one set of namespace labels (normally all of them). */
interface NamespacePods {
  ns: string;
  labels: Readonly<Record<string, string>>;
  labelsKey: string;
  pods: PodPort[];
  /** Changes whenever the namespace's pods (objects, addresses) do. */
  version: number;
}

interface Answer {
  addresses: Map<4 | 6, readonly string[]>;
  /** The groups looked at, with their versions then. */
  looked: Array<{ group: string; version: number }>;
  /** The namespace list (names and labels) then: a namespaceSelector's scope depends on it. */
  namespacesVersion: number;
  usedInRun: number;
}

export class PeerIndex {
  /** By namespace and its labels' key. */
  private groups = new Map<string, NamespacePods>();
  private byNamespace = new Map<string, NamespacePods[]>();
  private namespacesVersion = 0;
  private nextVersion = 1;
  private run = 0;
  private readonly answers = new Map<string, Answer>();

  constructor(pods?: readonly PodPort[]) {
    if (pods) this.update(pods);
  }

  /**
   * The pods of this run. Namespaces whose pods are the same objects with the same addresses
   * keep their version (and the answers that looked at them); answers no run asked for since
   * the previous update are dropped.
   */
  update(pods: readonly PodPort[]): void {
    const grouped = new Map<string, { ns: string; labels: Readonly<Record<string, string>>; labelsKey: string; pods: PodPort[] }>();
    // Pods of a namespace share one labels object in a run: one key per namespace, not per pod.
    const keys = new Map<Readonly<Record<string, string>>, string>();
    for (const p of pods) {
      let labelsKey = keys.get(p.namespaceLabels);
      if (labelsKey === undefined) keys.set(p.namespaceLabels, (labelsKey = stableStringify(p.namespaceLabels)));
      const key = `${p.namespace}\u0000${labelsKey}`;
      const g = grouped.get(key);
      if (g) g.pods.push(p);
      else grouped.set(key, { ns: p.namespace, labels: p.namespaceLabels, labelsKey, pods: [p] });
    }
    const next = new Map<string, NamespacePods>();
    const byNamespace = new Map<string, NamespacePods[]>();
    let namespacesChanged = grouped.size !== this.groups.size;
    for (const [key, g] of grouped) {
      const old = this.groups.get(key);
      if (!old) namespacesChanged = true;
      const version = old && samePods(old.pods, g.pods) ? old.version : this.nextVersion++;
      const group: NamespacePods = { ...g, version };
      next.set(key, group);
      byNamespace.set(g.ns, [...(byNamespace.get(g.ns) ?? []), group]);
    }
    this.groups = next;
    this.byNamespace = byNamespace;
    if (namespacesChanged) this.namespacesVersion = this.nextVersion++;
    for (const [key, a] of this.answers) if (a.usedInRun < this.run) this.answers.delete(key);
    this.run++;
  }

  /** The sorted addresses of one family of the pods `peer` (a selector peer) of a policy in `policyNamespace` selects; shared, never to be modified. */
  addresses(peer: NetworkPolicyPeer, policyNamespace: string, family: 4 | 6): readonly string[] {
    const key = peerKey(peer, policyNamespace);
    let answer = this.answers.get(key);
    if (!answer || !this.current(answer)) {
      answer = { addresses: new Map(), looked: [], namespacesVersion: this.namespacesVersion, usedInRun: this.run };
      this.answers.set(key, answer);
    }
    answer.usedInRun = this.run;
    const known = answer.addresses.get(family);
    if (known) return known;
    const ips: string[] = [];
    const looked: Answer['looked'] = [];
    const podMatches = compileSelector(peer.podSelector);
    for (const [group, ns] of this.inScope(peer, policyNamespace)) {
      looked.push({ group, version: ns.version });
      for (const p of ns.pods) {
        if (!podMatches(p.labels)) continue;
        for (const ip of p.ips) if (ip.includes(':') === (family === 6)) ips.push(ip);
      }
    }
    ips.sort();
    answer.looked = looked;
    answer.addresses.set(family, ips);
    return ips;
  }

  private current(a: Answer): boolean {
    if (a.namespacesVersion !== this.namespacesVersion) return false;
    return a.looked.every(({ group, version }) => this.groups.get(group)?.version === version);
  }

  private inScope(peer: NetworkPolicyPeer, policyNamespace: string): Array<[string, NamespacePods]> {
    if (!peer.namespaceSelector) {
      return (this.byNamespace.get(policyNamespace) ?? []).map((g) => [groupKey(g), g]);
    }
    const nsMatches = compileSelector(peer.namespaceSelector);
    return [...this.groups].filter(([, g]) => nsMatches(g.labels));
  }
}

const groupKey = (g: NamespacePods): string => `${g.ns}\u0000${g.labelsKey}`;

/** Equal for peers that select the same pods from the same policy namespace. */
function peerKey(peer: NetworkPolicyPeer, policyNamespace: string): string {
  const scope = peer.namespaceSelector ? `sel:${stableStringify(peer.namespaceSelector)}` : `ns:${policyNamespace}`;
  return `${scope}|${isEmptySelector(peer.podSelector) ? '*' : stableStringify(peer.podSelector)}`;
}

/** The same pod objects (labels are theirs), ports and addresses, in the same order. */
function samePods(a: readonly PodPort[], b: readonly PodPort[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as PodPort;
    const y = b[i] as PodPort;
    if (x.pod !== y.pod || x.lspName !== y.lspName || x.ips.length !== y.ips.length) return false;
    if (x.pod === undefined && stableStringify(x.labels) !== stableStringify(y.labels)) return false;
    for (let j = 0; j < x.ips.length; j++) if (x.ips[j] !== y.ips[j]) return false;
  }
  return true;
}
