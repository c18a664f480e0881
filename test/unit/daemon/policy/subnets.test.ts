// translateSubnets and subnetShape: the stateful baseline on every switch, user ACLs placed
// verbatim, private-subnet ACLs, gateway defaulting and QoS by switch.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { SubnetAcl, SubnetObj } from '../../../../daemon/objects/types';
import type { DesiredQos, DesiredSwitch } from '../../../../daemon/policy/model';
import { PRIORITY } from '../../../../daemon/policy/priorities';
import { subnetShape, translateSubnets } from '../../../../daemon/policy/subnets';
import { BUILTIN, JOIN_CIDR, subnet } from './helpers';

function translate(subnets: SubnetObj[], qosBySwitch = new Map<string, DesiredQos[]>()): DesiredSwitch[] {
  const store = new MemoryStore();
  for (const s of subnets) store.apply(s);
  return translateSubnets({ store, builtin: BUILTIN, joinCidrs: [JOIN_CIDR], qosBySwitch });
}

const stateful = (owner: string) => ({ direction: 'to-lport', priority: PRIORITY.subnetStateful, match: 'ip', action: 'allow-related', owner });

describe('translateSubnets', () => {
  it('built-in switches get the stateful baseline only', () => {
    expect(translate([])).toEqual([
      { ...BUILTIN[0], acls: [stateful('switch/ovn-default')], qos: [] },
      { ...BUILTIN[1], acls: [stateful('switch/join')], qos: [] },
    ]);
    expect(PRIORITY.subnetStateful).toBe(1);
  });

  it('user ACLs are kept verbatim (priority, action, direction, match) after the baseline', () => {
    const acls: SubnetAcl[] = [
      { action: 'drop', direction: 'to-lport', match: 'ip4.dst == 10.10.0.2 && ip', priority: 1005 },
      { action: 'allow-related', direction: 'from-lport', match: 'ip4.src == 10.10.0.2', priority: 1006 },
      { action: 'reject', direction: 'to-lport', match: 'tcp.dst == 23', priority: 3000 },
      { action: 'allow-stateless', direction: 'from-lport', match: 'udp', priority: 1 },
    ];
    const got = translate([subnet('vswitch1', { cidrBlock: '10.10.0.0/24', acls })]).find((s) => s.name === 'vswitch1');
    expect(got?.acls).toEqual([stateful('subnet/vswitch1'), ...acls.map((a) => ({ ...a, owner: 'subnet/vswitch1' }))]);
  });

  it('a Subnet object named like a built-in switch is skipped (the built-in wins)', () => {
    const got = translate([subnet('ovn-default', { cidrBlock: '10.99.0.0/16', acls: [{ action: 'drop', direction: 'to-lport', match: 'ip', priority: 1000 }] })]);
    expect(got.map((s) => s.name)).toEqual(['ovn-default', 'join']);
    expect(got[0]?.acls).toEqual([stateful('switch/ovn-default')]);
  });

  const privates: { desc: string; cidrBlock: string; allowSubnets: string[]; acls: Array<[number, string, string]> }[] = [
    {
      desc: 'IPv4: own CIDR, allowSubnets and the join network allowed, the rest dropped',
      cidrBlock: '10.20.0.0/24', allowSubnets: ['10.30.0.0/24', 'fd00:30::/64'],
      acls: [
        [1000, 'drop', 'ip4.dst == 10.20.0.0/24'],
        [1001, 'allow-related', `ip4.dst == 10.20.0.0/24 && ip4.src == {10.20.0.0/24, 10.30.0.0/24, ${JOIN_CIDR}}`],
      ],
    },
    {
      desc: 'dual stack: one pair per family, IPv6 without the (IPv4) join network',
      cidrBlock: '10.20.0.0/24,fd00:20::/64', allowSubnets: ['fd00:30::/64'],
      acls: [
        [1000, 'drop', 'ip4.dst == 10.20.0.0/24'],
        [1001, 'allow-related', `ip4.dst == 10.20.0.0/24 && ip4.src == {10.20.0.0/24, ${JOIN_CIDR}}`],
        [1000, 'drop', 'ip6.dst == fd00:20::/64'],
        [1001, 'allow-related', 'ip6.dst == fd00:20::/64 && ip6.src == {fd00:20::/64, fd00:30::/64}'],
      ],
    },
  ];
  it.each(privates)('private subnet, $desc', ({ cidrBlock, allowSubnets, acls }) => {
    const got = translate([subnet('priv', { cidrBlock, allowSubnets, private: true })]).find((s) => s.name === 'priv');
    expect(got?.acls[0]).toEqual(stateful('subnet/priv'));
    expect(got?.acls.slice(1)).toEqual(acls.map(([priority, action, match]) => ({ direction: 'to-lport', priority, action, match, owner: 'subnet/priv' })));
  });

  it('a non-private subnet with allowSubnets gets no private ACLs', () => {
    const got = translate([subnet('pub', { cidrBlock: '10.20.0.0/24', allowSubnets: ['10.30.0.0/24'] })]).find((s) => s.name === 'pub');
    expect(got?.acls).toEqual([stateful('subnet/pub')]);
  });

  it('QoS rules are attached to the switch they are keyed by', () => {
    const q: DesiredQos = { direction: 'from-lport', priority: 2001, match: 'inport == "p"', rate: 1000, burst: 1000, owner: 'qos/p' };
    const got = translate([subnet('s1', { cidrBlock: '10.20.0.0/24' })], new Map([['s1', [q]], ['ovn-default', [q]]]));
    expect(got.map((s) => [s.name, s.qos.length])).toEqual([['ovn-default', 1], ['join', 0], ['s1', 1]]);
  });
});

describe('subnetShape', () => {
  const cases: { desc: string; cidrBlock: string; gateway: string; cidrs: string[]; gateways: string[] }[] = [
    { desc: 'gateway defaults to the first address', cidrBlock: '10.20.0.0/24', gateway: '', cidrs: ['10.20.0.0/24'], gateways: ['10.20.0.1'] },
    { desc: 'a given gateway is kept', cidrBlock: '10.20.0.0/24', gateway: '10.20.0.254', cidrs: ['10.20.0.0/24'], gateways: ['10.20.0.254'] },
    { desc: 'dual stack, both defaulted', cidrBlock: '10.20.0.0/24,fd00:20::/64', gateway: '', cidrs: ['10.20.0.0/24', 'fd00:20::/64'], gateways: ['10.20.0.1', 'fd00:20::1'] },
    { desc: 'dual stack, only the first given: the second defaults', cidrBlock: '10.20.0.0/24, fd00:20::/64', gateway: '10.20.0.254', cidrs: ['10.20.0.0/24', 'fd00:20::/64'], gateways: ['10.20.0.254', 'fd00:20::1'] },
    { desc: 'dual stack, both given with spaces', cidrBlock: '10.20.0.0/24,fd00:20::/64', gateway: '10.20.0.254, fd00:20::fe', cidrs: ['10.20.0.0/24', 'fd00:20::/64'], gateways: ['10.20.0.254', 'fd00:20::fe'] },
    { desc: 'host bits in the CIDR are normalised away', cidrBlock: '10.20.0.7/24', gateway: '', cidrs: ['10.20.0.0/24'], gateways: ['10.20.0.1'] },
  ];
  it.each(cases)('$desc', ({ cidrBlock, gateway, cidrs, gateways }) => {
    const shape = subnetShape(subnet('s', { cidrBlock, gateway, excludeIps: ['10.20.0.2'] }));
    expect(shape).toEqual({ name: 's', cidrs, gateways, excludeIps: ['10.20.0.2'] });
  });

  it('translateSubnets uses the shape (defaulted gateways, normalised CIDRs)', () => {
    const got = translate([subnet('s', { cidrBlock: '10.20.0.0/24,fd00:20::/64' })]).find((s) => s.name === 's');
    expect(got).toMatchObject({ cidrs: ['10.20.0.0/24', 'fd00:20::/64'], gateways: ['10.20.0.1', 'fd00:20::1'] });
  });
});
