// NetworkPolicy -> port groups, address sets and ACLs, the OVN-Kubernetes way: pods selected
// by any policy of a type join a default-deny port group for that direction (priority
// NP_DENY), and each rule becomes allow-related ACLs (NP_ALLOW) on the policy's own port group,
// so replies of allowed connections pass. Peers by selector become address sets.

import { matchesSelector } from '../objects/selectors';
import type { NetworkPolicyObj, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicyRule, ObjectStore } from '../objects/types';
import type { DesiredAcl, DesiredAddressSet, DesiredPortGroup } from './model';
import { PG_DENY_EGRESS, PG_DENY_INGRESS, asNetworkPolicyPeer, pgNetworkPolicy } from './names';
import { PRIORITY } from './priorities';
import { PeerIndex } from './peer-index';
import type { PodPort } from './pods';

export interface NetworkPolicyOutput { portGroups: DesiredPortGroup[]; addressSets: DesiredAddressSet[] }

export interface NetworkPolicyContext {
  store: ObjectStore;
  /** This node's pods: the ones policies select and isolate. */
  pods: PodPort[];
  /** Every pod a peer selector may pick, other nodes' included (default: `pods`). */
  peers?: PodPort[];
  /** The node's own address on the join network: kubelet probes must reach isolated pods. */
  nodeIps: string[];
  /** Address families in use (IPv6 address sets only on dual-stack or IPv6 clusters). */
  families: Array<4 | 6>;
  /** Kept by the caller from run to run, so that answers about unchanged namespaces are reused. */
  peerIndex?: PeerIndex;
  /** Kept by the caller from run to run: unchanged policies are not translated again. */
  translations?: PolicyTranslations;
}

export function translateNetworkPolicies(ctx: NetworkPolicyContext): NetworkPolicyOutput {
  const portGroups: DesiredPortGroup[] = [];
  const addressSets: DesiredAddressSet[] = [];
  const denyIn = new Set<string>();
  const denyEg = new Set<string>();
  const peers = ctx.peers ?? ctx.pods;
  const peerIndex = ctx.peerIndex ?? new PeerIndex();
  peerIndex.update(peers);
  const familiesKey = ctx.families.join(',');
  const translated = ctx.translations ?? policyTranslations();
  for (const np of ctx.store.list('NetworkPolicy')) {
    const owner = `np/${np.metadata.namespace}/${np.metadata.name}`;
    const selected = ctx.pods.filter((p) => p.namespace === np.metadata.namespace && matchesSelector(np.spec.podSelector, p.labels));
    for (const type of np.spec.policyTypes) selected.forEach((p) => (type === 'Ingress' ? denyIn : denyEg).add(p.lspName));
    let t = translated.get(np);
    if (!t || t.familiesKey !== familiesKey) {
      const pg = pgNetworkPolicy(np.metadata.namespace, np.metadata.name);
      const acls: DesiredAcl[] = [];
      const sets: PeerSet[] = [];
      for (const type of np.spec.policyTypes) {
        const ingress = type === 'Ingress';
        const rules = ingress ? np.spec.ingress : np.spec.egress;
        rules.forEach((rule, i) => acls.push(...ruleAcls({ ctx, np, pg, rule, index: i, ingress, selected, owner, sets })));
      }
      t = { familiesKey, pg, acls, sets };
      // A named port resolves against pods, not the policy alone: such policies are not kept.
      if (!usesNamedPorts(np)) translated.set(np, t);
    }
    for (const set of t.sets) {
      addressSets.push({ name: set.name, addresses: peerIndex.addresses(set.peer, np.metadata.namespace, set.family), owner });
    }
    portGroups.push({ name: t.pg, ports: selected.map((p) => p.lspName), acls: t.acls, owner });
  }
  portGroups.push(denyGroup(PG_DENY_INGRESS, [...denyIn], true, ctx.nodeIps), denyGroup(PG_DENY_EGRESS, [...denyEg], false, ctx.nodeIps));
  return { portGroups, addressSets };
}

function denyGroup(name: string, ports: string[], ingress: boolean, nodeIps: string[]): DesiredPortGroup {
  const owner = 'np/default-deny';
  const direction = ingress ? 'to-lport' : 'from-lport';
  const port = ingress ? `outport == @${name}` : `inport == @${name}`;
  const acls: DesiredAcl[] = [
    { direction, priority: PRIORITY.npDeny, match: `${port} && ip`, action: 'drop', owner },
    // Address resolution is not traffic a policy governs; without it nothing works at all.
    { direction, priority: PRIORITY.npAllow, match: `${port} && (arp || nd)`, action: 'allow', owner },
  ];
  if (ingress && nodeIps.length > 0) {
    acls.push({ direction, priority: PRIORITY.npAllow, match: `${port} && ${srcMatch(nodeIps)}`, action: 'allow-related', owner });
  }
  return { name, ports: ports.sort(), acls, owner };
}

interface RuleInput {
  ctx: NetworkPolicyContext;
  np: NetworkPolicyObj;
  pg: string;
  rule: NetworkPolicyRule;
  index: number;
  ingress: boolean;
  selected: PodPort[];
  owner: string;
  /** The address sets the rule's peers refer to, filled as the matches are written. */
  sets: PeerSet[];
}

/** An address set of a peer selector: its members are looked up on every run. */
interface PeerSet { name: string; peer: NetworkPolicyPeer; family: 4 | 6 }

/**
 * A policy's port group name, ACLs and peer sets depend only on the policy object and the address
 * families (named ports aside): kept per (immutable, stored) policy object, so that
 * a run after a label change rebuilds no ACL of the hundreds of policies it did not touch.
 */
interface TranslatedPolicy { familiesKey: string; pg: string; acls: DesiredAcl[]; sets: PeerSet[] }
export type PolicyTranslations = WeakMap<NetworkPolicyObj, TranslatedPolicy>;
export const policyTranslations = (): PolicyTranslations => new WeakMap();

function usesNamedPorts(np: NetworkPolicyObj): boolean {
  return [...np.spec.ingress, ...np.spec.egress].some((r) => r.ports.some((p) => typeof p.port === 'string'));
}

function ruleAcls(r: RuleInput): DesiredAcl[] {
  const dir = r.ingress ? 'to-lport' : 'from-lport';
  const port = r.ingress ? `outport == @${r.pg}` : `inport == @${r.pg}`;
  const peerMatches = r.rule.peers.length === 0 ? [''] : r.rule.peers.map((peer, i) => peerMatch(r, peer, i));
  const portMatches = portMatchesFor(r);
  const acls: DesiredAcl[] = [];
  for (const peer of peerMatches) {
    if (peer === null) continue; // a selector peer that selects no address: matches nothing
    for (const l4 of portMatches) {
      const match = [port, 'ip', peer, l4].filter(Boolean).join(' && ');
      acls.push({ direction: dir, priority: PRIORITY.npAllow, match, action: 'allow-related', owner: r.owner });
    }
  }
  return acls;
}

/** The address match of one peer, or null when it cannot match any packet. */
function peerMatch(r: RuleInput, peer: NetworkPolicyPeer, i: number): string | null {
  const side = r.ingress ? 'src' : 'dst';
  if (peer.ipBlock) {
    const fam = peer.ipBlock.cidr.includes(':') ? 'ip6' : 'ip4';
    const except = peer.ipBlock.except.length > 0 ? ` && ${fam}.${side} != {${peer.ipBlock.except.join(', ')}}` : '';
    return `${fam}.${side} == ${peer.ipBlock.cidr}${except}`;
  }
  const parts: string[] = [];
  for (const family of r.ctx.families) {
    const name = asNetworkPolicyPeer(r.np.metadata.namespace, r.np.metadata.name, r.ingress ? 'in' : 'eg', r.index, i, family);
    r.sets.push({ name, peer, family });
    parts.push(`ip${family}.${side} == $${name}`);
  }
  // Address sets are kept even when empty, so a pod that starts matching only changes a set.
  return `(${parts.join(' || ')})`;
}

/** L4 conditions of a rule: one string per port entry ('' = any port). */
function portMatchesFor(r: RuleInput): string[] {
  if (r.rule.ports.length === 0) return [''];
  const out = new Set<string>();
  for (const p of r.rule.ports) for (const m of portMatch(r, p)) out.add(m);
  return [...out];
}

function portMatch(r: RuleInput, p: NetworkPolicyPort): string[] {
  const proto = p.protocol.toLowerCase();
  if (p.port === undefined) return [proto];
  if (typeof p.port === 'number') {
    return [p.endPort ? `${proto}.dst >= ${p.port} && ${proto}.dst <= ${p.endPort}` : `${proto}.dst == ${p.port}`];
  }
  // A named port is resolved on the pods that receive the traffic: the selected pods for
  // ingress, every pod for egress (the peer is any pod that names a port so).
  const targets = r.ingress ? r.selected : r.ctx.peers ?? r.ctx.pods;
  const numbers = new Set<number>();
  for (const t of targets) {
    for (const c of t.pod?.spec.containers ?? []) {
      for (const cp of c.ports) if (cp.name === p.port && cp.protocol === p.protocol) numbers.add(cp.containerPort);
    }
  }
  return [...numbers].sort((a, b) => a - b).map((n) => `${proto}.dst == ${n}`);
}

function srcMatch(ips: string[]): string {
  return ips.map((ip) => `${ip.includes(':') ? 'ip6' : 'ip4'}.src == ${ip}`).join(' || ').replace(/^(.*\|\|.*)$/, '($1)');
}
