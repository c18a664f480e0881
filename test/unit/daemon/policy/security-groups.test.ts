// translateSecurityGroups: members from the pod annotation, their address sets, the default drop
// and ARP/ND allowances, same-group traffic, and each rule's priority and match.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { SecurityGroupObj, SecurityGroupRule } from '../../../../daemon/objects/types';
import type { DesiredAcl } from '../../../../daemon/policy/model';
import { asSecurityGroup, pgSecurityGroup } from '../../../../daemon/policy/names';
import type { PodPort } from '../../../../daemon/policy/pods';
import { PRIORITY, sgRulePriority } from '../../../../daemon/policy/priorities';
import { SG_ANNOTATION, podSecurityGroups, translateSecurityGroups, type SecurityGroupOutput } from '../../../../daemon/policy/security-groups';
import { pod, podPort, secgroup, sgRule } from './helpers';

const withSgs = (name: string, ips: string[], sgs?: string): PodPort =>
  podPort(pod(name, 'default', { annotations: sgs === undefined ? {} : { [SG_ANNOTATION]: sgs } }), ips);

const a = withSgs('a', ['10.16.0.3', 'fd00::3'], 'sg1');
const b = withSgs('b', ['10.16.0.2'], ' sg2 , sg1 ,');
const c = withSgs('c', ['10.16.0.4'], 'sg2');
const d = withSgs('d', ['10.16.0.5']);
const PODS = [a, b, c, d];

function translate(groups: SecurityGroupObj[], pods: PodPort[] = PODS): SecurityGroupOutput {
  const store = new MemoryStore();
  for (const g of groups) store.apply(g);
  return translateSecurityGroups(store, pods);
}

const PG1 = pgSecurityGroup('sg1');
const aclsOf = (out: SecurityGroupOutput, sg: string): DesiredAcl[] => out.portGroups.find((g) => g.name === pgSecurityGroup(sg))?.acls ?? [];

/** The ACL of the single rule of sg1 (ingress or egress). */
function ruleAcl(rule: Partial<SecurityGroupRule>, ingress = true): DesiredAcl | undefined {
  const sg = secgroup('sg1', ingress ? { ingressRules: [sgRule(rule)] } : { egressRules: [sgRule(rule)] });
  return aclsOf(translate([sg]), 'sg1').find((x) => x.priority > PRIORITY.sgSameGroup);
}

describe('members', () => {
  const cases: { desc: string; value: string | undefined; groups: string[] }[] = [
    { desc: 'one group', value: 'sg1', groups: ['sg1'] },
    { desc: 'comma list with spaces and an empty entry', value: ' sg2 , sg1 ,', groups: ['sg2', 'sg1'] },
    { desc: 'empty annotation', value: '', groups: [] },
    { desc: 'no annotation', value: undefined, groups: [] },
  ];
  it.each(cases)('podSecurityGroups: $desc', ({ value, groups }) => {
    expect(podSecurityGroups(withSgs('p', [], value))).toEqual(groups);
  });

  it('a port without a Pod object is in no group', () => {
    const bare: PodPort = { ...a };
    delete bare.pod;
    expect(podSecurityGroups(bare)).toEqual([]);
  });

  it('each group holds its members; member addresses come from northd\'s own <pg>_ip4/_ip6 sets', () => {
    const out = translate([secgroup('sg1'), secgroup('sg2'), secgroup('empty')]);
    expect(out.portGroups.map((g) => [g.name, g.ports, g.owner])).toEqual([
      [pgSecurityGroup('empty'), [], 'sg/empty'],
      [PG1, ['a.default', 'b.default'], 'sg/sg1'],
      [pgSecurityGroup('sg2'), ['b.default', 'c.default'], 'sg/sg2'],
    ]);
    // Creating sets under those names would collide with ovn-northd's (it then stops updating
    // the southbound), so the translation creates none and refers to northd's.
    expect(out.addressSets).toEqual([]);
    expect(asSecurityGroup('sg1', 4)).toBe(`${PG1}_ip4`);
    expect(asSecurityGroup('sg1', 6)).toBe(`${PG1}_ip6`);
  });

  it('a pod naming a group that does not exist creates nothing', () => {
    expect(translate([], [withSgs('x', ['10.16.0.9'], 'ghost')])).toEqual({ portGroups: [], addressSets: [] });
  });
});

describe('group ACLs', () => {
  it('members drop IP both ways at sgDefaultDrop, ARP/ND pass at sgSameGroup', () => {
    expect(aclsOf(translate([secgroup('sg1')]), 'sg1')).toEqual([
      { direction: 'to-lport', priority: 2050, match: `outport == @${PG1} && ip`, action: 'drop', owner: 'sg/sg1' },
      { direction: 'from-lport', priority: 2050, match: `inport == @${PG1} && ip`, action: 'drop', owner: 'sg/sg1' },
      { direction: 'to-lport', priority: 2099, match: `outport == @${PG1} && (arp || nd)`, action: 'allow', owner: 'sg/sg1' },
      { direction: 'from-lport', priority: 2099, match: `inport == @${PG1} && (arp || nd)`, action: 'allow', owner: 'sg/sg1' },
    ]);
  });

  const sameGroup: { desc: string; allow: boolean; matches: string[] }[] = [
    { desc: 'allowSameGroupTraffic false: no same-group ACL', allow: false, matches: [] },
    {
      desc: 'allowSameGroupTraffic true: allow-related from and to the group sets, both families',
      allow: true,
      matches: [
        `to-lport outport == @${PG1} && ip4.src == $${asSecurityGroup('sg1', 4)}`,
        `from-lport inport == @${PG1} && ip4.dst == $${asSecurityGroup('sg1', 4)}`,
        `to-lport outport == @${PG1} && ip6.src == $${asSecurityGroup('sg1', 6)}`,
        `from-lport inport == @${PG1} && ip6.dst == $${asSecurityGroup('sg1', 6)}`,
      ],
    },
  ];
  it.each(sameGroup)('$desc', ({ allow, matches }) => {
    const acls = aclsOf(translate([secgroup('sg1', { allowSameGroupTraffic: allow })]), 'sg1').filter((x) => x.action === 'allow-related');
    expect(acls.map((x) => `${x.direction} ${x.match}`)).toEqual(matches);
    for (const x of acls) expect(x.priority).toBe(PRIORITY.sgSameGroup);
  });
});

describe('rule priorities', () => {
  const cases: { desc: string; p: number; policy: 'allow' | 'drop'; want: number }[] = [
    { desc: 'p=1 allow', p: 1, policy: 'allow', want: 2498 },
    { desc: 'p=1 drop: one above the allow of the same priority', p: 1, policy: 'drop', want: 2499 },
    { desc: 'p=2 drop: below p=1 allow', p: 2, policy: 'drop', want: 2497 },
    { desc: 'p=200 allow: the bottom of the band', p: 200, policy: 'allow', want: 2100 },
    { desc: 'p=200 drop', p: 200, policy: 'drop', want: 2101 },
  ];
  it.each(cases)('$desc -> $want', ({ p, policy, want }) => {
    expect(sgRulePriority(p, policy)).toBe(want);
    expect(ruleAcl({ priority: p, policy })).toMatchObject({ priority: want, action: policy === 'drop' ? 'drop' : 'allow-related' });
  });

  it('the band sits above the same-group ACLs and the default drop', () => {
    expect(sgRulePriority(200, 'allow')).toBeGreaterThan(PRIORITY.sgSameGroup);
    expect(PRIORITY.sgSameGroup).toBeGreaterThan(PRIORITY.sgDefaultDrop);
    expect(PRIORITY.sgDefaultDrop).toBeGreaterThan(PRIORITY.npAllow);
  });
});

describe('rule matches', () => {
  const inP = `outport == @${PG1}`;
  const outP = `inport == @${PG1}`;
  const cases: { desc: string; rule: Partial<SecurityGroupRule>; ingress?: boolean; match: string }[] = [
    { desc: 'all protocols from anywhere', rule: {}, match: `${inP} && ip4` },
    { desc: 'remote address, ingress: source', rule: { remoteAddress: '10.0.0.0/8' }, match: `${inP} && ip4 && ip4.src == 10.0.0.0/8` },
    { desc: 'remote address, egress: destination', rule: { remoteAddress: '10.0.0.0/8' }, ingress: false, match: `${outP} && ip4 && ip4.dst == 10.0.0.0/8` },
    { desc: 'IPv6 remote address', rule: { ipVersion: 'ipv6', remoteAddress: 'fd00::/8' }, match: `${inP} && ip6 && ip6.src == fd00::/8` },
    { desc: 'remote group: its IPv4 address set', rule: { remoteType: 'securityGroup', remoteSecurityGroup: 'sg2' }, match: `${inP} && ip4 && ip4.src == $${asSecurityGroup('sg2', 4)}` },
    { desc: 'remote group, IPv6, egress', rule: { ipVersion: 'ipv6', remoteType: 'securityGroup', remoteSecurityGroup: 'sg2' }, ingress: false, match: `${outP} && ip6 && ip6.dst == $${asSecurityGroup('sg2', 6)}` },
    { desc: 'remote type securityGroup wins over a leftover address', rule: { remoteType: 'securityGroup', remoteSecurityGroup: 'sg2', remoteAddress: '1.2.3.4' }, match: `${inP} && ip4 && ip4.src == $${asSecurityGroup('sg2', 4)}` },
    { desc: 'icmp over IPv4 is icmp4', rule: { protocol: 'icmp' }, match: `${inP} && ip4 && icmp4` },
    { desc: 'icmp over IPv6 is icmp6', rule: { ipVersion: 'ipv6', protocol: 'icmp' }, match: `${inP} && ip6 && icmp6` },
    { desc: 'tcp, no ports', rule: { protocol: 'tcp' }, match: `${inP} && ip4 && tcp` },
    { desc: 'tcp, one port (min only)', rule: { protocol: 'tcp', portRangeMin: 22 }, match: `${inP} && ip4 && tcp && tcp.dst == 22` },
    { desc: 'tcp, min == max', rule: { protocol: 'tcp', portRangeMin: 22, portRangeMax: 22 }, match: `${inP} && ip4 && tcp && tcp.dst == 22` },
    { desc: 'udp, a range', rule: { protocol: 'udp', portRangeMin: 1000, portRangeMax: 2000 }, match: `${inP} && ip4 && udp && udp.dst >= 1000 && udp.dst <= 2000` },
    { desc: 'everything at once, egress', rule: { protocol: 'tcp', remoteAddress: '192.168.0.0/16', portRangeMin: 80, portRangeMax: 81, policy: 'drop', priority: 5 }, ingress: false, match: `${outP} && ip4 && ip4.dst == 192.168.0.0/16 && tcp && tcp.dst >= 80 && tcp.dst <= 81` },
  ];
  it.each(cases)('$desc', ({ rule, ingress, match }) => {
    const acl = ruleAcl(rule, ingress ?? true);
    expect(acl?.match).toBe(match);
    expect(acl?.direction).toBe(ingress === false ? 'from-lport' : 'to-lport');
    expect(acl?.owner).toBe('sg/sg1');
  });

  it('rules come after the fixed ACLs, ingress before egress, in spec order', () => {
    const sg = secgroup('sg1', {
      ingressRules: [sgRule({ priority: 3 }), sgRule({ priority: 1, policy: 'drop' })],
      egressRules: [sgRule({ priority: 2 })],
    });
    expect(aclsOf(translate([sg]), 'sg1').slice(4).map((x) => [x.direction, x.priority])).toEqual([['to-lport', 2494], ['to-lport', 2499], ['from-lport', 2496]]);
  });
});
