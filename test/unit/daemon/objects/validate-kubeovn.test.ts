// Kube-OVN kinds: Subnet (cidrBlock, gateway and excludeIps defaults, ACLs), SecurityGroup rules
// and Vip, with the CRD enums and the webhook's checks.
import { describe, expect, it } from 'vitest';
import type { SecurityGroupObj, SubnetObj, VipObj } from '../../../../daemon/objects/types';
import { runRow, type Body, type Row } from './validate-helpers';

const subnet = (spec: Body): Body => ({ metadata: { name: 'sn' }, spec: { cidrBlock: '10.16.0.0/24', ...spec } });
const subnetSpec = (o: unknown) => (o as SubnetObj).spec;
const acl = (a: Body): Body => subnet({ acls: [{ action: 'drop', direction: 'to-lport', match: 'ip4.dst == 10.16.0.2', priority: 1005, ...a }] });
const S = 'Subnet sn';

describe('Subnet', () => {
  const rows: Row[] = [
    {
      desc: 'defaults: gateway = first address, excludeIps gets the gateway, provider ovn, protocol from cidrBlock, no vlan, logicalGateway false',
      body: { metadata: { name: 'sn' }, spec: { cidrBlock: '10.16.0.0/24' } },
      check: (o) =>
        expect(subnetSpec(o)).toEqual({
          cidrBlock: '10.16.0.0/24',
          gateway: '10.16.0.1',
          excludeIps: ['10.16.0.1'],
          acls: [],
          namespaces: [],
          provider: 'ovn',
          private: false,
          allowSubnets: [],
          protocol: 'IPv4',
          logicalGateway: false,
        }),
    },
    {
      desc: 'dual stack: one gateway per family, comma-joined in cidrBlock order',
      body: subnet({ cidrBlock: '10.16.0.0/24,fd00:10:16::/64' }),
      check: (o) => {
        expect(subnetSpec(o).gateway).toBe('10.16.0.1,fd00:10:16::1');
        expect(subnetSpec(o).protocol).toBe('Dual');
        expect(subnetSpec(o).excludeIps).toEqual(['10.16.0.1', 'fd00:10:16::1']);
      },
    },
    {
      desc: 'cidrBlock with host bits is normalised to the network',
      body: subnet({ cidrBlock: '10.16.0.9/24' }),
      check: (o) => expect(subnetSpec(o).cidrBlock).toBe('10.16.0.0/24'),
    },
    {
      desc: 'excludeIps: addresses and ranges inside the CIDR; a covered gateway is not added again',
      body: subnet({ excludeIps: ['10.16.0.1..10.16.0.10', '10.16.0.200'], gateway: '10.16.0.1' }),
      check: (o) => expect(subnetSpec(o).excludeIps).toEqual(['10.16.0.1..10.16.0.10', '10.16.0.200']),
    },
    {
      desc: 'acls: every action and direction Kube-OVN allows, priorities 0 and 32767',
      body: subnet({
        acls: ['allow', 'allow-related', 'allow-stateless', 'drop', 'reject'].map((action, i) => ({
          action,
          direction: i % 2 ? 'from-lport' : 'to-lport',
          match: 'ip',
          priority: i === 0 ? 0 : 32767,
        })),
      }),
      check: (o) => expect(subnetSpec(o).acls.map((a) => a.action)).toEqual(['allow', 'allow-related', 'allow-stateless', 'drop', 'reject']),
    },
    {
      desc: 'other fields: namespaces, private, allowSubnets, vpc',
      body: subnet({ namespaces: ['ns1', 'ns2'], private: true, allowSubnets: ['10.18.0.0/16'], vpc: 'vpc1', provider: 'x.default.ovn' }),
      check: (o) =>
        expect(subnetSpec(o)).toMatchObject({ namespaces: ['ns1', 'ns2'], private: true, allowSubnets: ['10.18.0.0/16'], vpc: 'vpc1', provider: 'x.default.ovn' }),
    },
    { desc: 'cidrBlock missing', body: { metadata: { name: 'sn' }, spec: {} }, error: `${S}: spec.cidrBlock: Required value` },
    {
      desc: 'cidrBlock not a CIDR',
      body: subnet({ cidrBlock: '10.16.0.0' }),
      error: `${S}: spec.cidrBlock: Invalid value: "10.16.0.0": "10.16.0.0" is not a valid CIDR (e.g. 10.16.0.0/16 or fd00:10:16::/64)`,
    },
    {
      desc: 'cidrBlock: two CIDRs of one family',
      body: subnet({ cidrBlock: '10.16.0.0/24,10.17.0.0/24' }),
      error: `${S}: spec.cidrBlock: Invalid value: "10.16.0.0/24,10.17.0.0/24": a dual-stack cidrBlock is one IPv4 and one IPv6 CIDR`,
    },
    {
      desc: 'cidrBlock: three CIDRs',
      body: subnet({ cidrBlock: '10.16.0.0/24,fd00::/64,10.17.0.0/24' }),
      error: `${S}: spec.cidrBlock: Invalid value: "10.16.0.0/24,fd00::/64,10.17.0.0/24": must be one CIDR or an IPv4,IPv6 pair`,
    },
    {
      desc: 'cidrBlock: a /32 has no addresses',
      body: subnet({ cidrBlock: '10.16.0.5/32' }),
      error: `${S}: spec.cidrBlock: Invalid value: "10.16.0.5/32": 10.16.0.5/32 has a /32 mask and so no addresses to hand out`,
    },
    {
      desc: 'protocol contradicts cidrBlock',
      body: subnet({ protocol: 'IPv6' }),
      error: `${S}: spec.protocol: Invalid value: "IPv6": does not match cidrBlock, which is IPv4`,
    },
    {
      desc: 'protocol unknown',
      body: subnet({ protocol: 'ipv4' }),
      error: `${S}: spec.protocol: Unsupported value: "ipv4": supported values: "IPv4", "IPv6", "Dual"`,
    },
    {
      desc: 'gateway outside the CIDR',
      body: subnet({ gateway: '10.17.0.1' }),
      error: `${S}: spec.gateway: Invalid value: "10.17.0.1": gateway 10.17.0.1 is not in cidr 10.16.0.0/24`,
    },
    {
      desc: 'gateway is the network address',
      body: subnet({ gateway: '10.16.0.0' }),
      error: `${S}: spec.gateway: Invalid value: "10.16.0.0": 10.16.0.0 is the network number ip in cidr 10.16.0.0/24`,
    },
    {
      desc: 'gateway is the broadcast address',
      body: subnet({ gateway: '10.16.0.255' }),
      error: `${S}: spec.gateway: Invalid value: "10.16.0.255": 10.16.0.255 is the broadcast ip in cidr 10.16.0.0/24`,
    },
    {
      desc: 'gateway: one address for a dual-stack subnet',
      body: subnet({ cidrBlock: '10.16.0.0/24,fd00::/64', gateway: '10.16.0.1' }),
      error: `${S}: spec.gateway: Invalid value: "10.16.0.1": must hold one address per CIDR of cidrBlock (2)`,
    },
    {
      desc: 'gateway not an address',
      body: subnet({ gateway: 'router' }),
      error: `${S}: spec.gateway: Invalid value: "router": "router" is not a valid IP address`,
    },
    {
      desc: 'excludeIps: not an address',
      body: subnet({ excludeIps: ['10.16.0.x'] }),
      error: `${S}: spec.excludeIps[0]: Invalid value: "10.16.0.x": "10.16.0.x" is not a valid IP address`,
    },
    {
      desc: 'excludeIps: range backwards',
      body: subnet({ excludeIps: ['10.16.0.9..10.16.0.2'] }),
      error: `${S}: spec.excludeIps[0]: Invalid value: "10.16.0.9..10.16.0.2": is not a valid ip range: the first address must not be after the last, in one family`,
    },
    {
      desc: 'excludeIps: range leaves the CIDR',
      body: subnet({ excludeIps: ['10.16.0.250..10.16.1.5'] }),
      error: `${S}: spec.excludeIps[0]: Invalid value: "10.16.0.250..10.16.1.5": is not in cidr 10.16.0.0/24`,
    },
    {
      desc: 'excludeIps: address of a family the subnet does not have',
      body: subnet({ excludeIps: ['fd00::5'] }),
      error: `${S}: spec.excludeIps[0]: Invalid value: "fd00::5": is not in cidr 10.16.0.0/24`,
    },
    {
      desc: 'excludeIps: three dots',
      body: subnet({ excludeIps: ['10.16.0.1..10.16.0.2..10.16.0.3'] }),
      error: `${S}: spec.excludeIps[0]: Invalid value: "10.16.0.1..10.16.0.2..10.16.0.3": must be an IP address or a range "first..last"`,
    },
    {
      desc: 'acl: action unknown',
      body: acl({ action: 'deny' }),
      error: `${S}: spec.acls[0].action: Unsupported value: "deny": supported values: "allow", "allow-related", "allow-stateless", "drop", "reject"`,
    },
    {
      desc: 'acl: direction unknown',
      body: acl({ direction: 'ingress' }),
      error: `${S}: spec.acls[0].direction: Unsupported value: "ingress": supported values: "from-lport", "to-lport"`,
    },
    {
      desc: 'acl: empty match',
      body: acl({ match: ' ' }),
      error: `${S}: spec.acls[0].match: Invalid value: " ": must be a non-empty OVN match expression`,
    },
    {
      desc: 'acl: priority above 32767',
      body: acl({ priority: 40000 }),
      error: `${S}: spec.acls[0].priority: Invalid value: 40000: must be between 0 and 32767, inclusive`,
    },
    {
      desc: 'acl: negative priority',
      body: acl({ priority: -1 }),
      error: `${S}: spec.acls[0].priority: Invalid value: -1: must be between 0 and 32767, inclusive`,
    },
    {
      desc: 'acl: priority quoted',
      body: acl({ priority: '1005' }),
      error: `${S}: spec.acls[0].priority: Invalid value: "1005": must be an integer`,
    },
    {
      desc: 'acl: fields missing',
      body: subnet({ acls: [{ action: 'drop' }] }),
      error: `${S}: spec.acls[0].direction: Required value; spec.acls[0].match: Required value; spec.acls[0].priority: Required value`,
    },
    {
      desc: 'acl: unknown field',
      body: acl({ prority: 1 }),
      error: `${S}: unknown field "spec.acls[0].prority"`,
    },
    {
      desc: 'private not a boolean',
      body: subnet({ private: 'true' }),
      error: `${S}: spec.private: Invalid value: "true": must be true or false`,
    },
    {
      desc: 'allowSubnets entry not a CIDR',
      body: subnet({ allowSubnets: ['10.18.0.0'] }),
      error: `${S}: spec.allowSubnets[0]: Invalid value: "10.18.0.0": is not a valid CIDR`,
    },
    {
      desc: 'namespaces entry not a namespace name',
      body: subnet({ namespaces: ['Team'] }),
      error:
        `${S}: spec.namespaces[0]: Invalid value: "Team": a lowercase RFC 1123 label must consist of lower case alphanumeric ` +
        "characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc')",
    },
  ];
  for (const row of rows) it(row.desc, () => runRow('Subnet', row));
});

const SG = 'SecurityGroup sg';
const sg = (rule: Body, more: Body = {}): Body => ({
  metadata: { name: 'sg' },
  spec: { ingressRules: [{ protocol: 'tcp', priority: 10, remoteType: 'address', remoteAddress: '10.0.0.0/8', portRangeMin: 80, portRangeMax: 80, policy: 'allow', ...rule }], ...more },
});
const sgSpec = (o: unknown) => (o as SecurityGroupObj).spec;

describe('SecurityGroup', () => {
  const rows: Row[] = [
    {
      desc: 'defaults: ipVersion ipv4, allowSameGroupTraffic false, egressRules []',
      body: sg({}),
      check: (o) =>
        expect(sgSpec(o)).toEqual({
          ingressRules: [{ ipVersion: 'ipv4', protocol: 'tcp', priority: 10, remoteType: 'address', remoteAddress: '10.0.0.0/8', portRangeMin: 80, portRangeMax: 80, policy: 'allow' }],
          egressRules: [],
          allowSameGroupTraffic: false,
        }),
    },
    {
      desc: 'remote security group, icmp without ports, ipv6, priorities 1 and 200',
      body: {
        metadata: { name: 'sg' },
        spec: {
          allowSameGroupTraffic: true,
          egressRules: [
            { ipVersion: 'ipv6', protocol: 'icmp', priority: 1, remoteType: 'securityGroup', remoteSecurityGroup: 'web', policy: 'drop' },
            { protocol: 'all', priority: 200, remoteType: 'address', remoteAddress: '10.1.2.3', policy: 'allow' },
          ],
        },
      },
      check: (o) =>
        expect(sgSpec(o)).toEqual({
          ingressRules: [],
          egressRules: [
            { ipVersion: 'ipv6', protocol: 'icmp', priority: 1, remoteType: 'securityGroup', remoteSecurityGroup: 'web', policy: 'drop' },
            { ipVersion: 'ipv4', protocol: 'all', priority: 200, remoteType: 'address', remoteAddress: '10.1.2.3', policy: 'allow' },
          ],
          allowSameGroupTraffic: true,
        }),
    },
    {
      desc: 'ipVersion unknown',
      body: sg({ ipVersion: 'IPv4' }),
      error: `${SG}: spec.ingressRules[0].ipVersion: Unsupported value: "IPv4": supported values: "ipv4", "ipv6"`,
    },
    {
      desc: 'protocol unknown',
      body: sg({ protocol: 'sctp' }),
      error: `${SG}: spec.ingressRules[0].protocol: Unsupported value: "sctp": supported values: "all", "icmp", "tcp", "udp"`,
    },
    {
      desc: 'priority 0',
      body: sg({ priority: 0 }),
      error: `${SG}: spec.ingressRules[0].priority: Invalid value: 0: must be between 1 and 200, inclusive (lower is evaluated first)`,
    },
    {
      desc: 'priority 201',
      body: sg({ priority: 201 }),
      error: `${SG}: spec.ingressRules[0].priority: Invalid value: 201: must be between 1 and 200, inclusive (lower is evaluated first)`,
    },
    {
      desc: 'remoteType unknown',
      body: sg({ remoteType: 'cidr' }),
      error: `${SG}: spec.ingressRules[0].remoteType: Unsupported value: "cidr": supported values: "address", "securityGroup"`,
    },
    {
      desc: 'remoteType address without remoteAddress',
      body: sg({ remoteAddress: undefined }),
      error: `${SG}: spec.ingressRules[0].remoteAddress: Required value: must be set when remoteType is address (an IP address or a CIDR)`,
    },
    {
      desc: 'remoteAddress neither address nor CIDR',
      body: sg({ remoteAddress: '10.0.0.0/33' }),
      error: `${SG}: spec.ingressRules[0].remoteAddress: Invalid value: "10.0.0.0/33": must be an IP address or a CIDR`,
    },
    {
      desc: 'remoteAddress of the other family',
      body: sg({ remoteAddress: 'fd00::/64' }),
      error: `${SG}: spec.ingressRules[0].remoteAddress: Invalid value: "fd00::/64": is an IPv6 address but ipVersion is ipv4`,
    },
    {
      desc: 'remoteType address with remoteSecurityGroup too',
      body: sg({ remoteSecurityGroup: 'web' }),
      error: `${SG}: spec.ingressRules[0].remoteSecurityGroup: Forbidden: may not be set when remoteType is address`,
    },
    {
      desc: 'remoteType securityGroup without remoteSecurityGroup',
      body: sg({ remoteType: 'securityGroup', remoteAddress: undefined }),
      error: `${SG}: spec.ingressRules[0].remoteSecurityGroup: Required value: must be set when remoteType is securityGroup`,
    },
    {
      desc: 'remoteType securityGroup with remoteAddress too',
      body: sg({ remoteType: 'securityGroup', remoteSecurityGroup: 'web' }),
      error: `${SG}: spec.ingressRules[0].remoteAddress: Forbidden: may not be set when remoteType is securityGroup`,
    },
    {
      desc: 'ports on an icmp rule',
      body: sg({ protocol: 'icmp' }),
      error:
        `${SG}: spec.ingressRules[0].portRangeMin: Forbidden: may only be set when protocol is tcp or udp, not icmp; ` +
        'spec.ingressRules[0].portRangeMax: Forbidden: may only be set when protocol is tcp or udp, not icmp',
    },
    {
      desc: 'ports on an all rule',
      body: sg({ protocol: 'all', portRangeMax: undefined }),
      error: `${SG}: spec.ingressRules[0].portRangeMin: Forbidden: may only be set when protocol is tcp or udp, not all`,
    },
    {
      desc: 'tcp without ports (the webhook refuses it)',
      body: sg({ portRangeMin: undefined, portRangeMax: undefined }),
      error:
        `${SG}: spec.ingressRules[0].portRangeMin: Required value: must be set for tcp and udp rules (1 and 65535 cover every port); ` +
        'spec.ingressRules[0].portRangeMax: Required value: must be set for tcp and udp rules (1 and 65535 cover every port)',
    },
    {
      desc: 'udp port 0',
      body: sg({ protocol: 'udp', portRangeMin: 0 }),
      error: `${SG}: spec.ingressRules[0].portRangeMin: Invalid value: 0: must be between 1 and 65535, inclusive`,
    },
    {
      desc: 'port above 65535',
      body: sg({ portRangeMax: 65536 }),
      error: `${SG}: spec.ingressRules[0].portRangeMax: Invalid value: 65536: must be between 1 and 65535, inclusive`,
    },
    {
      desc: 'portRangeMin above portRangeMax',
      body: sg({ portRangeMin: 90, portRangeMax: 80 }),
      error: `${SG}: spec.ingressRules[0].portRangeMax: Invalid value: 80: must be greater than or equal to portRangeMin (90)`,
    },
    {
      desc: 'policy unknown',
      body: sg({ policy: 'deny' }),
      error: `${SG}: spec.ingressRules[0].policy: Unsupported value: "deny": supported values: "allow", "drop"`,
    },
    {
      desc: 'required fields missing',
      body: { metadata: { name: 'sg' }, spec: { egressRules: [{ ipVersion: 'ipv4' }] } },
      error:
        `${SG}: spec.egressRules[0].protocol: Required value; spec.egressRules[0].priority: Required value; ` +
        'spec.egressRules[0].remoteType: Required value; spec.egressRules[0].policy: Required value',
    },
    {
      desc: 'rule field misspelt',
      body: sg({ remoteAdress: '10.0.0.1' }),
      error: `${SG}: unknown field "spec.ingressRules[0].remoteAdress"`,
    },
    {
      desc: 'allowSameGroupTraffic not a boolean',
      body: sg({}, { allowSameGroupTraffic: 'yes' }),
      error: `${SG}: spec.allowSameGroupTraffic: Invalid value: "yes": must be true or false`,
    },
  ];
  for (const row of rows) it(row.desc, () => runRow('SecurityGroup', row));
});

const V = 'Vip v';
const vip = (spec: Body): Body => ({ metadata: { name: 'v' }, spec: { subnet: 'sn', ...spec } });
const vipSpec = (o: unknown) => (o as VipObj).spec;

describe('Vip', () => {
  const rows: Row[] = [
    { desc: 'subnet only', body: vip({}), check: (o) => expect(vipSpec(o)).toEqual({ subnet: 'sn' }) },
    {
      desc: 'addresses and a MAC (normalised to lower case, colons)',
      body: vip({ v4ip: '10.16.0.9', v6ip: 'FD00::9', macAddress: '00-AA-bb-cc-dd-EE' }),
      check: (o) => expect(vipSpec(o)).toEqual({ subnet: 'sn', v4ip: '10.16.0.9', v6ip: 'fd00::9', macAddress: '00:aa:bb:cc:dd:ee' }),
    },
    { desc: 'subnet missing', body: { metadata: { name: 'v' }, spec: {} }, error: `${V}: spec.subnet: Required value: the name of the Subnet the address is reserved in` },
    { desc: 'v4ip not IPv4', body: vip({ v4ip: 'fd00::1' }), error: `${V}: spec.v4ip: Invalid value: "fd00::1": must be a valid IPv4 address` },
    { desc: 'v4ip malformed', body: vip({ v4ip: '10.16.0.256' }), error: `${V}: spec.v4ip: Invalid value: "10.16.0.256": must be a valid IPv4 address` },
    { desc: 'v6ip not IPv6', body: vip({ v6ip: '10.0.0.1' }), error: `${V}: spec.v6ip: Invalid value: "10.0.0.1": must be a valid IPv6 address` },
    {
      desc: 'MAC malformed',
      body: vip({ macAddress: '00:11:22:33:44' }),
      error: `${V}: spec.macAddress: Invalid value: "00:11:22:33:44": must be six hexadecimal octets separated by colons (e.g. 00:00:00:12:34:56)`,
    },
    {
      desc: 'MAC multicast',
      body: vip({ macAddress: '01:00:5e:00:00:01' }),
      error: `${V}: spec.macAddress: Invalid value: "01:00:5e:00:00:01": must be a unicast address (the first octet must be even)`,
    },
    {
      desc: 'MAC broadcast',
      body: vip({ macAddress: 'ff:ff:ff:ff:ff:ff' }),
      error: `${V}: spec.macAddress: Invalid value: "ff:ff:ff:ff:ff:ff": must be a unicast address (the first octet must be even)`,
    },
    { desc: 'MAC all zeros', body: vip({ macAddress: '00:00:00:00:00:00' }), error: `${V}: spec.macAddress: Invalid value: "00:00:00:00:00:00": must not be all zeros` },
    {
      desc: 'MAC with mixed separators',
      body: vip({ macAddress: '00:11-22:33:44:55' }),
      error: `${V}: spec.macAddress: Invalid value: "00:11-22:33:44:55": must be six hexadecimal octets separated by colons (e.g. 00:00:00:12:34:56)`,
    },
  ];
  for (const row of rows) it(row.desc, () => runRow('Vip', row));
});
