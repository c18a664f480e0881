// ACL priority bands (see docs/acl-priorities.md for how they interact). OVN 23.03 evaluates
// the ACLs of a switch and of the port groups of its ports in ONE priority space per direction:
// the highest-priority match decides. Values follow Kube-OVN's where it has them, so priorities
// users wrote for Kube-OVN (subnet ACLs at 1000-3000) keep their meaning relative to policies.

export const PRIORITY = {
  /** Subnet baseline: makes every subnet stateful, so replies of allowed connections pass. */
  subnetStateful: 1,
  /** Private subnets: traffic from outside the subnet (and its allowSubnets) is dropped. */
  privateSubnetDrop: 1000,
  privateSubnetAllow: 1001,
  /** NetworkPolicy: isolated pods drop everything not allowed... */
  npDeny: 2000,
  /** ...by an allow of a policy that selects them. */
  npAllow: 2001,
  /** Security groups: members drop everything not allowed by a rule of their groups. */
  sgDefaultDrop: 2050,
  /** allowSameGroupTraffic: below every rule, so a drop rule can still override it. */
  sgSameGroup: 2099,
  /** Rule priority p (1 = first) maps to sgRuleBase - 2p (+1 for drop: drop wins a tie). */
  sgRuleBase: 2500,
} as const;

/** The ACL priority of a security-group rule: 2498 (p=1) down to 2100 (p=200). */
export function sgRulePriority(rulePriority: number, policy: 'allow' | 'drop'): number {
  return PRIORITY.sgRuleBase - 2 * rulePriority + (policy === 'drop' ? 1 : 0);
}
