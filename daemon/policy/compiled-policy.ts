// A NetworkPolicy reduced to what decides which of its port groups and address sets a pod
// joins: its selectors compiled once, the names of its groups and sets (hashes) computed once,
// and each selector peer ranked as translateNetworkPolicies emits its address sets, so the
// admission of one pod can give its memberships in the order a full computation would.

import { compileSelector, type LabelPredicate } from '../objects/selectors';
import type { NetworkPolicyObj } from '../objects/types';
import { asNetworkPolicyPeer, pgNetworkPolicy } from './names';

/** A `from`/`to` peer that selects pods (ipBlock peers select addresses, not pods). */
export interface CompiledPeer {
  /** Position among the policy's selector peers in translateNetworkPolicies' output. */
  rank: number;
  /** undefined: pods of the policy's own namespace only. */
  namespaces: LabelPredicate | undefined;
  pods: LabelPredicate;
  /** Address set of the peer's addresses, per family. */
  sets: { 4: string; 6: string };
}

export interface CompiledPolicy {
  namespace: string;
  portGroup: string;
  selects: LabelPredicate;
  /** Pods it selects are in the default-deny group of that direction. */
  isolatesIngress: boolean;
  isolatesEgress: boolean;
  peers: CompiledPeer[];
}

export function compileNetworkPolicy(np: NetworkPolicyObj): CompiledPolicy {
  const { namespace, name } = np.metadata;
  const peers: CompiledPeer[] = [];
  // Same walk as translateNetworkPolicies: only the rules of listed policy types have sets,
  // in policyTypes order, rule by rule, peer by peer.
  for (const type of np.spec.policyTypes) {
    const ingress = type === 'Ingress';
    const rules = ingress ? np.spec.ingress : np.spec.egress;
    rules.forEach((rule, r) => rule.peers.forEach((peer, p) => {
      if (peer.ipBlock) return;
      const set = (family: 4 | 6): string => asNetworkPolicyPeer(namespace, name, ingress ? 'in' : 'eg', r, p, family);
      peers.push({
        rank: peers.length,
        namespaces: peer.namespaceSelector ? compileSelector(peer.namespaceSelector) : undefined,
        pods: compileSelector(peer.podSelector),
        sets: { 4: set(4), 6: set(6) },
      });
    }));
  }
  return {
    namespace,
    portGroup: pgNetworkPolicy(namespace, name),
    selects: compileSelector(np.spec.podSelector),
    isolatesIngress: np.spec.policyTypes.includes('Ingress'),
    isolatesEgress: np.spec.policyTypes.includes('Egress'),
    peers,
  };
}
