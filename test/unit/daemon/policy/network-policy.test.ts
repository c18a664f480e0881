// translateNetworkPolicies: which pods are isolated (deny groups) and selected (policy groups),
// the match text of each peer and port shape, the address sets of selector peers, and the
// deny groups' own allowances, all at the priorities of priorities.ts.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { KubeObject, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicyRule } from '../../../../daemon/objects/types';
import type { DesiredAcl, DesiredPortGroup } from '../../../../daemon/policy/model';
import { PG_DENY_EGRESS, PG_DENY_INGRESS, asNetworkPolicyPeer, pgNetworkPolicy } from '../../../../daemon/policy/names';
import { translateNetworkPolicies, type NetworkPolicyOutput } from '../../../../daemon/policy/network-policy';
import { PRIORITY } from '../../../../daemon/policy/priorities';
import { namespaceLabels, type PodPort } from '../../../../daemon/policy/pods';
import { namespace, netpol, pod, podPort, sel } from './helpers';

const PG = pgNetworkPolicy('shop', 'np');
const asIn = (rule: number, peer: number, fam: 4 | 6): string => asNetworkPolicyPeer('shop', 'np', 'in', rule, peer, fam);
const asEg = (rule: number, peer: number, fam: 4 | 6): string => asNetworkPolicyPeer('shop', 'np', 'eg', rule, peer, fam);

const web = podPort(pod('web', 'shop', { labels: { app: 'web' }, ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }), ['10.16.0.10', 'fd00:10:16::10']);
const web2 = podPort(pod('web2', 'shop', { labels: { app: 'web' }, ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'dns', containerPort: 53, protocol: 'UDP' }] }), ['10.16.0.11']);
const db = podPort(pod('db', 'shop', { labels: { app: 'db' }, ports: [{ name: 'pg', containerPort: 5432, protocol: 'TCP' }] }), ['10.16.0.20']);
const other = podPort(pod('web', 'other', { labels: { app: 'web' } }), ['10.16.1.10']);
const mon = podPort(pod('prom', 'monitoring', { labels: { app: 'prom' } }), ['10.16.2.10', 'fd00:10:16::2:10']);
const PODS = [web, web2, db, other, mon];

function translate(objects: KubeObject[], pods: PodPort[] = PODS, nodeIps: string[] = ['100.64.0.2']): NetworkPolicyOutput {
  const store = new MemoryStore();
  for (const o of objects) store.apply(o);
  // As podPorts() does in the daemon: a pod's namespace labels are those of the store.
  const withNs = pods.map((p) => ({ ...p, namespaceLabels: namespaceLabels(store, p.namespace) }));
  return translateNetworkPolicies({ store, pods: withNs, nodeIps, families: [4, 6] });
}

const group = (out: NetworkPolicyOutput, name: string): DesiredPortGroup => {
  const g = out.portGroups.find((p) => p.name === name);
  if (!g) throw new Error(`no port group ${name} in ${out.portGroups.map((p) => p.name).join(', ')}`);
  return g;
};
const matches = (acls: DesiredAcl[]): string[] => acls.map((a) => a.match);

/** The one ingress rule's ACL matches of policy shop/np selecting app=web. */
function ingressMatches(rule: NetworkPolicyRule, objects: KubeObject[] = [], pods: PodPort[] = PODS): string[] {
  const out = translate([...objects, netpol('np', 'shop', { podSelector: sel({ app: 'web' }), ingress: [rule] })], pods);
  return matches(group(out, PG).acls);
}

describe('pod selection', () => {
  const cases: { desc: string; types: Array<'Ingress' | 'Egress'>; denyIn: string[]; denyEg: string[] }[] = [
    { desc: 'Ingress: selected pods are isolated for ingress only', types: ['Ingress'], denyIn: ['web.shop', 'web2.shop'], denyEg: [] },
    { desc: 'Egress: selected pods are isolated for egress only', types: ['Egress'], denyIn: [], denyEg: ['web.shop', 'web2.shop'] },
    { desc: 'both types: isolated both ways', types: ['Ingress', 'Egress'], denyIn: ['web.shop', 'web2.shop'], denyEg: ['web.shop', 'web2.shop'] },
  ];
  it.each(cases)('$desc', ({ types, denyIn, denyEg }) => {
    const out = translate([netpol('np', 'shop', { podSelector: sel({ app: 'web' }), policyTypes: types })]);
    expect(group(out, PG).ports.sort()).toEqual(['web.shop', 'web2.shop']);
    expect(group(out, PG_DENY_INGRESS).ports).toEqual(denyIn);
    expect(group(out, PG_DENY_EGRESS).ports).toEqual(denyEg);
    // Not db (labels), not web.other (namespace), not prom.
    for (const g of [PG, PG_DENY_INGRESS, PG_DENY_EGRESS]) {
      expect(group(out, g).ports).not.toContain('db.shop');
      expect(group(out, g).ports).not.toContain('web.other');
    }
  });

  it('an empty podSelector selects every pod of the policy namespace, and only those', () => {
    const out = translate([netpol('np', 'shop', {})]);
    expect(group(out, PG).ports.sort()).toEqual(['db.shop', 'web.shop', 'web2.shop']);
    expect(group(out, PG_DENY_INGRESS).ports).toEqual(['db.shop', 'web.shop', 'web2.shop']);
  });

  it('a pod selected by two policies is in both policy groups and once in the deny group', () => {
    const out = translate([
      netpol('a', 'shop', { podSelector: sel({ app: 'web' }) }),
      netpol('b', 'shop', { podSelector: sel() }),
    ]);
    expect(group(out, pgNetworkPolicy('shop', 'a')).ports.sort()).toEqual(['web.shop', 'web2.shop']);
    expect(group(out, pgNetworkPolicy('shop', 'b')).ports.sort()).toEqual(['db.shop', 'web.shop', 'web2.shop']);
    expect(group(out, PG_DENY_INGRESS).ports).toEqual(['db.shop', 'web.shop', 'web2.shop']);
  });

  it('with no policy, nobody is isolated but both deny groups exist', () => {
    const out = translate([]);
    expect(out.portGroups.map((g) => [g.name, g.ports])).toEqual([[PG_DENY_INGRESS, []], [PG_DENY_EGRESS, []]]);
    expect(out.addressSets).toEqual([]);
  });

  it('no rules and type Ingress: the policy group carries no ACL, the pods only get the deny', () => {
    const out = translate([netpol('np', 'shop', { podSelector: sel({ app: 'web' }), policyTypes: ['Ingress'] })]);
    expect(group(out, PG)).toEqual({ name: PG, ports: ['web.shop', 'web2.shop'], acls: [], owner: 'np/shop/np' });
    expect(group(out, PG_DENY_INGRESS).acls).toContainEqual(
      { direction: 'to-lport', priority: PRIORITY.npDeny, match: `outport == @${PG_DENY_INGRESS} && ip`, action: 'drop', owner: 'np/default-deny' });
    expect(out.addressSets).toEqual([]);
  });

  it('rules of a type the policy does not list are ignored', () => {
    const out = translate([netpol('np', 'shop', { podSelector: sel({ app: 'web' }), policyTypes: ['Ingress'], egress: [{ peers: [], ports: [] }] })]);
    expect(group(out, PG).acls).toEqual([]);
    expect(group(out, PG_DENY_EGRESS).ports).toEqual([]);
  });
});

describe('peers', () => {
  const ipBlocks: { desc: string; peer: NetworkPolicyPeer; ingress: string; egress: string }[] = [
    {
      desc: 'IPv4 cidr with except',
      peer: { ipBlock: { cidr: '172.20.10.0/30', except: ['172.20.10.1/32', '172.20.10.2/32'] } },
      ingress: `outport == @${PG} && ip && ip4.src == 172.20.10.0/30 && ip4.src != {172.20.10.1/32, 172.20.10.2/32}`,
      egress: `inport == @${PG} && ip && ip4.dst == 172.20.10.0/30 && ip4.dst != {172.20.10.1/32, 172.20.10.2/32}`,
    },
    {
      desc: 'IPv4 cidr without except',
      peer: { ipBlock: { cidr: '0.0.0.0/0', except: [] } },
      ingress: `outport == @${PG} && ip && ip4.src == 0.0.0.0/0`,
      egress: `inport == @${PG} && ip && ip4.dst == 0.0.0.0/0`,
    },
    {
      desc: 'IPv6 cidr with except',
      peer: { ipBlock: { cidr: 'fd00:20::/64', except: ['fd00:20::1/128'] } },
      ingress: `outport == @${PG} && ip && ip6.src == fd00:20::/64 && ip6.src != {fd00:20::1/128}`,
      egress: `inport == @${PG} && ip && ip6.dst == fd00:20::/64 && ip6.dst != {fd00:20::1/128}`,
    },
  ];
  it.each(ipBlocks)('ipBlock, $desc: match text, no address set', ({ peer, ingress, egress }) => {
    const out = translate([netpol('np', 'shop', {
      podSelector: sel({ app: 'web' }), policyTypes: ['Ingress', 'Egress'],
      ingress: [{ peers: [peer], ports: [] }], egress: [{ peers: [peer], ports: [] }],
    })]);
    expect(group(out, PG).acls).toEqual([
      { direction: 'to-lport', priority: PRIORITY.npAllow, match: ingress, action: 'allow-related', owner: 'np/shop/np' },
      { direction: 'from-lport', priority: PRIORITY.npAllow, match: egress, action: 'allow-related', owner: 'np/shop/np' },
    ]);
    expect(out.addressSets).toEqual([]);
  });

  const namespaces = [namespace('shop', { team: 'a' }), namespace('other', { team: 'a' }), namespace('monitoring', { team: 'ops' })];
  const selectorPeers: { desc: string; peer: NetworkPolicyPeer; v4: string[]; v6: string[] }[] = [
    { desc: 'podSelector alone: pods of the policy namespace only', peer: { podSelector: sel({ app: 'web' }) }, v4: ['10.16.0.10', '10.16.0.11'], v6: ['fd00:10:16::10'] },
    { desc: 'empty podSelector: every pod of the policy namespace', peer: { podSelector: sel() }, v4: ['10.16.0.10', '10.16.0.11', '10.16.0.20'], v6: ['fd00:10:16::10'] },
    { desc: 'namespaceSelector alone, by a namespace label', peer: { namespaceSelector: sel({ team: 'ops' }) }, v4: ['10.16.2.10'], v6: ['fd00:10:16::2:10'] },
    { desc: 'namespaceSelector by the automatic kubernetes.io/metadata.name', peer: { namespaceSelector: sel({ 'kubernetes.io/metadata.name': 'other' }) }, v4: ['10.16.1.10'], v6: [] },
    { desc: 'empty namespaceSelector: every pod of every namespace', peer: { namespaceSelector: sel() }, v4: ['10.16.0.10', '10.16.0.11', '10.16.0.20', '10.16.1.10', '10.16.2.10'], v6: ['fd00:10:16::10', 'fd00:10:16::2:10'] },
    { desc: 'namespaceSelector and podSelector combined: both must hold', peer: { namespaceSelector: sel({ team: 'a' }), podSelector: sel({ app: 'web' }) }, v4: ['10.16.0.10', '10.16.0.11', '10.16.1.10'], v6: ['fd00:10:16::10'] },
    { desc: 'matchExpressions NotIn', peer: { podSelector: sel({}, [{ key: 'app', operator: 'NotIn', values: ['web'] }]) }, v4: ['10.16.0.20'], v6: [] },
    { desc: 'a selector that selects nothing: empty sets, still referenced', peer: { podSelector: sel({ app: 'nope' }) }, v4: [], v6: [] },
  ];
  it.each(selectorPeers)('$desc', ({ peer, v4, v6 }) => {
    const out = translate([...namespaces, netpol('np', 'shop', { podSelector: sel({ app: 'web' }), ingress: [{ peers: [peer], ports: [] }] })]);
    expect(out.addressSets).toEqual([
      { name: asIn(0, 0, 4), addresses: v4, owner: 'np/shop/np' },
      { name: asIn(0, 0, 6), addresses: v6, owner: 'np/shop/np' },
    ]);
    expect(matches(group(out, PG).acls)).toEqual([`outport == @${PG} && ip && (ip4.src == $${asIn(0, 0, 4)} || ip6.src == $${asIn(0, 0, 6)})`]);
  });

  it('namespace labels come from the Namespace objects of the store, not from the pod ports', () => {
    // Without the Namespace object only kubernetes.io/metadata.name is known.
    const peer: NetworkPolicyPeer = { namespaceSelector: sel({ team: 'ops' }) };
    const out = translate([netpol('np', 'shop', { ingress: [{ peers: [peer], ports: [] }] })]);
    expect(out.addressSets.flatMap((a) => a.addresses)).toEqual([]);
  });

  it('egress selector peers match the destination, one address-set pair per rule and peer', () => {
    const out = translate([...namespaces, netpol('np', 'shop', {
      podSelector: sel({ app: 'web' }), policyTypes: ['Egress'],
      egress: [
        { peers: [{ podSelector: sel({ app: 'db' }) }, { namespaceSelector: sel({ team: 'ops' }) }], ports: [{ protocol: 'TCP', port: 5432 }] },
        { peers: [{ ipBlock: { cidr: '10.0.0.0/8', except: [] } }], ports: [] },
      ],
    })]);
    expect(out.addressSets.map((a) => [a.name, a.addresses])).toEqual([
      [asEg(0, 0, 4), ['10.16.0.20']], [asEg(0, 0, 6), []],
      [asEg(0, 1, 4), ['10.16.2.10']], [asEg(0, 1, 6), ['fd00:10:16::2:10']],
    ]);
    expect(group(out, PG).acls.map((a) => [a.direction, a.match])).toEqual([
      ['from-lport', `inport == @${PG} && ip && (ip4.dst == $${asEg(0, 0, 4)} || ip6.dst == $${asEg(0, 0, 6)}) && tcp.dst == 5432`],
      ['from-lport', `inport == @${PG} && ip && (ip4.dst == $${asEg(0, 1, 4)} || ip6.dst == $${asEg(0, 1, 6)}) && tcp.dst == 5432`],
      ['from-lport', `inport == @${PG} && ip && ip4.dst == 10.0.0.0/8`],
    ]);
    expect(new Set(out.addressSets.map((a) => a.name)).size).toBe(4);
  });

  it('an empty `from` allows everyone: an ACL without any address condition', () => {
    expect(ingressMatches({ peers: [], ports: [] })).toEqual([`outport == @${PG} && ip`]);
    expect(ingressMatches({ peers: [], ports: [{ protocol: 'TCP', port: 80 }] })).toEqual([`outport == @${PG} && ip && tcp.dst == 80`]);
  });
});

describe('ports', () => {
  const cases: { desc: string; ports: NetworkPolicyPort[]; l4: string[] }[] = [
    { desc: 'protocol alone: every port of it', ports: [{ protocol: 'TCP' }], l4: ['tcp'] },
    { desc: 'UDP and SCTP lower-cased', ports: [{ protocol: 'UDP' }, { protocol: 'SCTP' }], l4: ['udp', 'sctp'] },
    { desc: 'numeric port', ports: [{ protocol: 'TCP', port: 443 }], l4: ['tcp.dst == 443'] },
    { desc: 'numeric UDP port', ports: [{ protocol: 'UDP', port: 53 }], l4: ['udp.dst == 53'] },
    { desc: 'endPort: a range', ports: [{ protocol: 'TCP', port: 32000, endPort: 32768 }], l4: ['tcp.dst >= 32000 && tcp.dst <= 32768'] },
    { desc: 'named port resolved on the selected pods', ports: [{ protocol: 'TCP', port: 'http' }], l4: ['tcp.dst == 8080'] },
    { desc: 'named port of another protocol does not resolve', ports: [{ protocol: 'UDP', port: 'http' }], l4: [] },
    { desc: 'named port only a non-selected pod has: no ACL', ports: [{ protocol: 'TCP', port: 'pg' }], l4: [] },
    { desc: 'unknown named port: no ACL at all', ports: [{ protocol: 'TCP', port: 'nope' }], l4: [] },
    { desc: 'unknown named port beside a numeric one: the numeric one stays', ports: [{ protocol: 'TCP', port: 'nope' }, { protocol: 'TCP', port: 80 }], l4: ['tcp.dst == 80'] },
    { desc: 'a number given twice (named and numeric) gives one ACL', ports: [{ protocol: 'TCP', port: 'http' }, { protocol: 'TCP', port: 8080 }], l4: ['tcp.dst == 8080'] },
  ];
  it.each(cases)('ingress: $desc', ({ ports, l4 }) => {
    expect(ingressMatches({ peers: [], ports })).toEqual(l4.map((m) => `outport == @${PG} && ip && ${m}`));
  });

  it('ingress: one ACL per peer and port', () => {
    const got = ingressMatches({ peers: [{ ipBlock: { cidr: '10.1.0.0/16', except: [] } }, { ipBlock: { cidr: '10.2.0.0/16', except: [] } }], ports: [{ protocol: 'TCP', port: 80 }, { protocol: 'UDP', port: 53 }] });
    expect(got).toEqual([
      `outport == @${PG} && ip && ip4.src == 10.1.0.0/16 && tcp.dst == 80`,
      `outport == @${PG} && ip && ip4.src == 10.1.0.0/16 && udp.dst == 53`,
      `outport == @${PG} && ip && ip4.src == 10.2.0.0/16 && tcp.dst == 80`,
      `outport == @${PG} && ip && ip4.src == 10.2.0.0/16 && udp.dst == 53`,
    ]);
  });

  it('egress: a named port is resolved on every pod (the destinations)', () => {
    const out = translate([netpol('np', 'shop', {
      podSelector: sel({ app: 'web' }), policyTypes: ['Egress'],
      egress: [{ peers: [], ports: [{ protocol: 'TCP', port: 'pg' }, { protocol: 'UDP', port: 'dns' }] }],
    })]);
    expect(matches(group(out, PG).acls)).toEqual([`inport == @${PG} && ip && tcp.dst == 5432`, `inport == @${PG} && ip && udp.dst == 53`]);
  });

  it('a named port of a pod with no Pod object does not resolve', () => {
    const bare: PodPort = { ...web };
    delete bare.pod;
    expect(ingressMatches({ peers: [], ports: [{ protocol: 'TCP', port: 'http' }] }, [], [bare])).toEqual([]);
  });
});

describe('deny groups', () => {
  it('drop IP at npDeny, allow ARP/ND and (ingress only) the node address at npAllow', () => {
    const out = translate([netpol('np', 'shop', { policyTypes: ['Ingress', 'Egress'] })]);
    const owner = 'np/default-deny';
    expect(group(out, PG_DENY_INGRESS).acls).toEqual([
      { direction: 'to-lport', priority: 2000, match: `outport == @${PG_DENY_INGRESS} && ip`, action: 'drop', owner },
      { direction: 'to-lport', priority: 2001, match: `outport == @${PG_DENY_INGRESS} && (arp || nd)`, action: 'allow', owner },
      { direction: 'to-lport', priority: 2001, match: `outport == @${PG_DENY_INGRESS} && ip4.src == 100.64.0.2`, action: 'allow-related', owner },
    ]);
    expect(group(out, PG_DENY_EGRESS).acls).toEqual([
      { direction: 'from-lport', priority: 2000, match: `inport == @${PG_DENY_EGRESS} && ip`, action: 'drop', owner },
      { direction: 'from-lport', priority: 2001, match: `inport == @${PG_DENY_EGRESS} && (arp || nd)`, action: 'allow', owner },
    ]);
    expect([PRIORITY.npDeny, PRIORITY.npAllow]).toEqual([2000, 2001]);
  });

  const nodeIpCases: { desc: string; nodeIps: string[]; match: string | undefined }[] = [
    { desc: 'no node address: no node ACL', nodeIps: [], match: undefined },
    { desc: 'one IPv6 node address', nodeIps: ['fd00:64::2'], match: `outport == @${PG_DENY_INGRESS} && ip6.src == fd00:64::2` },
    { desc: 'dual-stack node: one ACL, both addresses, parenthesised', nodeIps: ['100.64.0.2', 'fd00:64::2'], match: `outport == @${PG_DENY_INGRESS} && (ip4.src == 100.64.0.2 || ip6.src == fd00:64::2)` },
  ];
  it.each(nodeIpCases)('$desc', ({ nodeIps, match }) => {
    const out = translate([], PODS, nodeIps);
    const nodeAcls = group(out, PG_DENY_INGRESS).acls.filter((a) => a.action === 'allow-related');
    expect(nodeAcls.map((a) => a.match)).toEqual(match === undefined ? [] : [match]);
  });

  it('every policy ACL is allow-related at npAllow, owned by its policy', () => {
    const out = translate([netpol('np', 'shop', {
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ peers: [{ podSelector: sel() }], ports: [{ protocol: 'TCP', port: 80 }] }],
      egress: [{ peers: [], ports: [] }],
    })]);
    const acls = group(out, PG).acls;
    expect(acls).toHaveLength(2);
    for (const a of acls) expect(a).toMatchObject({ priority: PRIORITY.npAllow, action: 'allow-related', owner: 'np/shop/np' });
  });
});
