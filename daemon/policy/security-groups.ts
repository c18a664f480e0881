// SecurityGroup -> a port group of its member pods (annotation security_groups), address sets
// of their IPs (for rules whose remote is this group), and ACLs: members drop what no rule of
// their groups allows, in both directions; rules are stateful (allow-related), and a drop rule
// wins over an allow rule of the same priority.

import type { ObjectStore, SecurityGroupObj, SecurityGroupRule } from '../objects/types';
import type { DesiredAcl, DesiredAddressSet, DesiredPortGroup } from './model';
import { asSecurityGroup, pgSecurityGroup } from './names';
import { PRIORITY, sgRulePriority } from './priorities';
import type { PodPort } from './pods';

export const SG_ANNOTATION = 'ovn.kubernetes.io/security_groups';

export function podSecurityGroups(p: Pick<PodPort, 'pod'>): string[] {
  return (p.pod?.metadata.annotations[SG_ANNOTATION] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

export interface SecurityGroupOutput { portGroups: DesiredPortGroup[]; addressSets: DesiredAddressSet[] }

export function translateSecurityGroups(store: ObjectStore, pods: PodPort[]): SecurityGroupOutput {
  const portGroups: DesiredPortGroup[] = [];
  const addressSets: DesiredAddressSet[] = [];
  for (const sg of store.list('SecurityGroup')) {
    const name = sg.metadata.name;
    const owner = `sg/${name}`;
    const members = pods.filter((p) => podSecurityGroups(p).includes(name));
    // Member addresses for remoteSecurityGroup rules come from northd's own per-port-group sets.
    portGroups.push({ name: pgSecurityGroup(name), ports: members.map((m) => m.lspName), acls: groupAcls(sg), owner });
  }
  return { portGroups, addressSets };
}

function groupAcls(sg: SecurityGroupObj): DesiredAcl[] {
  const pg = pgSecurityGroup(sg.metadata.name);
  const owner = `sg/${sg.metadata.name}`;
  const inPort = `outport == @${pg}`;
  const outPort = `inport == @${pg}`;
  const acls: DesiredAcl[] = [
    { direction: 'to-lport', priority: PRIORITY.sgDefaultDrop, match: `${inPort} && ip`, action: 'drop', owner },
    { direction: 'from-lport', priority: PRIORITY.sgDefaultDrop, match: `${outPort} && ip`, action: 'drop', owner },
    // ARP and neighbour discovery are below what a security group filters.
    { direction: 'to-lport', priority: PRIORITY.sgSameGroup, match: `${inPort} && (arp || nd)`, action: 'allow', owner },
    { direction: 'from-lport', priority: PRIORITY.sgSameGroup, match: `${outPort} && (arp || nd)`, action: 'allow', owner },
  ];
  if (sg.spec.allowSameGroupTraffic) {
    for (const fam of [4, 6] as const) {
      const set = asSecurityGroup(sg.metadata.name, fam);
      acls.push(
        { direction: 'to-lport', priority: PRIORITY.sgSameGroup, match: `${inPort} && ip${fam}.src == $${set}`, action: 'allow-related', owner },
        { direction: 'from-lport', priority: PRIORITY.sgSameGroup, match: `${outPort} && ip${fam}.dst == $${set}`, action: 'allow-related', owner },
      );
    }
  }
  for (const rule of sg.spec.ingressRules) acls.push(ruleAcl(rule, true, inPort, owner));
  for (const rule of sg.spec.egressRules) acls.push(ruleAcl(rule, false, outPort, owner));
  return acls;
}

function ruleAcl(rule: SecurityGroupRule, ingress: boolean, port: string, owner: string): DesiredAcl {
  const fam = rule.ipVersion === 'ipv6' ? 'ip6' : 'ip4';
  const side = ingress ? 'src' : 'dst';
  const parts = [port, fam];
  if (rule.remoteType === 'securityGroup' && rule.remoteSecurityGroup) {
    parts.push(`${fam}.${side} == $${asSecurityGroup(rule.remoteSecurityGroup, fam === 'ip6' ? 6 : 4)}`);
  } else if (rule.remoteAddress) {
    parts.push(`${fam}.${side} == ${rule.remoteAddress}`);
  }
  if (rule.protocol === 'icmp') parts.push(fam === 'ip6' ? 'icmp6' : 'icmp4');
  if (rule.protocol === 'tcp' || rule.protocol === 'udp') {
    parts.push(rule.protocol);
    if (rule.portRangeMin !== undefined) {
      const max = rule.portRangeMax ?? rule.portRangeMin;
      parts.push(max === rule.portRangeMin
        ? `${rule.protocol}.dst == ${rule.portRangeMin}`
        : `${rule.protocol}.dst >= ${rule.portRangeMin} && ${rule.protocol}.dst <= ${max}`);
    }
  }
  return {
    direction: ingress ? 'to-lport' : 'from-lport',
    priority: sgRulePriority(rule.priority, rule.policy),
    match: parts.join(' && '),
    action: rule.policy === 'drop' ? 'drop' : 'allow-related',
    owner,
  };
}
