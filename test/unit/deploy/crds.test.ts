// deploy/00-crds.yaml: definitions a 1.20 API server accepts (structural schemas), with
// Kube-OVN's names, fields, subresources and printer columns, ovnode's IPClaim, and the long
// patterns exactly as crd-patterns.ts composes them.
import { describe, expect, it } from 'vitest';
import { admit, structuralErrors, type Schema } from '../../support/openapi-schema';
import { PATTERNS, yamlQuoted, type PatternName } from './crd-patterns';
import { crd, loadFile, schemaOf, version, type Doc } from './manifests';

const CRDS = loadFile('00-crds.yaml');

interface Expected {
  group: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames?: string[];
  status: boolean;
  columns: string[];
}

const EXPECTED: Record<string, Expected> = {
  'subnets.kubeovn.io': {
    group: 'kubeovn.io', kind: 'Subnet', plural: 'subnets', singular: 'subnet', shortNames: ['subnet'], status: true,
    columns: ['Provider', 'Vpc', 'Vlan', 'Protocol', 'CIDR', 'Private', 'NAT', 'Default', 'GatewayType', 'V4Used', 'V4Available', 'V6Used', 'V6Available', 'ExcludeIPs', 'U2OInterconnectionIP'],
  },
  'security-groups.kubeovn.io': {
    group: 'kubeovn.io', kind: 'SecurityGroup', plural: 'security-groups', singular: 'security-group', shortNames: ['sg'], status: true, columns: [],
  },
  'vips.kubeovn.io': {
    group: 'kubeovn.io', kind: 'Vip', plural: 'vips', singular: 'vip', shortNames: ['vip'], status: false,
    columns: ['Namespace', 'V4IP', 'V6IP', 'Mac', 'Subnet', 'Type'],
  },
  'ips.kubeovn.io': {
    group: 'kubeovn.io', kind: 'IP', plural: 'ips', singular: 'ip', shortNames: ['ip'], status: false, columns: ['V4IP', 'V6IP', 'Mac', 'Node', 'Subnet'],
  },
  'provider-networks.kubeovn.io': {
    group: 'kubeovn.io', kind: 'ProviderNetwork', plural: 'provider-networks', singular: 'provider-network', status: true, columns: ['DefaultInterface', 'Ready'],
  },
  'vlans.kubeovn.io': {
    group: 'kubeovn.io', kind: 'Vlan', plural: 'vlans', singular: 'vlan', shortNames: ['vlan'], status: true, columns: ['ID', 'Provider', 'conflict'],
  },
  'ipclaims.ovnode.io': {
    group: 'ovnode.io', kind: 'IPClaim', plural: 'ipclaims', singular: 'ipclaim', status: true, columns: ['Subnet', 'CIDR', 'Node', 'Phase', 'Kind', 'Pod', 'Age'],
  },
};

/** Every field of Kube-OVN's own CRDs (current chart, plus fields older releases wrote). */
const KUBE_OVN_FIELDS: Record<string, { spec: string[]; status: string[] }> = {
  'subnets.kubeovn.io': {
    spec: [
      'vpc', 'default', 'protocol', 'cidrBlock', 'namespaces', 'gateway', 'provider', 'excludeIps', 'vips', 'gatewayType', 'allowSubnets',
      'gatewayNode', 'gatewayNodeSelectors', 'natOutgoing', 'externalEgressGateway', 'policyRoutingPriority', 'policyRoutingTableID', 'mtu',
      'private', 'vlan', 'logicalGateway', 'disableGatewayCheck', 'disableInterConnection', 'enableDHCP', 'dhcpV4Options', 'dhcpV6Options',
      'enableIPv6RA', 'ipv6RAConfigs', 'allowEWTraffic', 'acls', 'natOutgoingPolicyRules', 'u2oInterconnection', 'u2oInterconnectionIP',
      'enableLb', 'enableEcmp', 'enableMulticastSnoop', 'enableExternalLBAddress', 'routeTable', 'namespaceSelectors', 'nodeNetwork',
      'underlayGateway', 'htbqos',
    ],
    status: [
      'v4availableIPs', 'v4usingIPs', 'v6availableIPs', 'v6usingIPs', 'activateGateway', 'dhcpV4OptionsUUID', 'dhcpV6OptionsUUID',
      'u2oInterconnectionIP', 'u2oInterconnectionMAC', 'u2oInterconnectionVPC', 'mcastQuerierIP', 'mcastQuerierMAC', 'v4usingIPrange',
      'v4availableIPrange', 'v6usingIPrange', 'v6availableIPrange', 'natOutgoingPolicyRules', 'conditions',
    ],
  },
  'security-groups.kubeovn.io': {
    spec: ['ingressRules', 'egressRules', 'allowSameGroupTraffic'],
    status: ['portGroup', 'allowSameGroupTraffic', 'ingressMd5', 'egressMd5', 'ingressLastSyncSuccess', 'egressLastSyncSuccess'],
  },
  'vips.kubeovn.io': {
    spec: ['namespace', 'subnet', 'type', 'attachSubnets', 'v4ip', 'macAddress', 'v6ip', 'selector', 'parentV4ip', 'parentMac', 'parentV6ip'],
    status: ['type', 'v4ip', 'v6ip', 'mac', 'pv4ip', 'pv6ip', 'pmac', 'ready', 'selector', 'conditions'],
  },
  'ips.kubeovn.io': {
    spec: ['podName', 'namespace', 'subnet', 'attachSubnets', 'nodeName', 'ipAddress', 'v4IpAddress', 'v6IpAddress', 'attachIps', 'macAddress', 'attachMacs', 'containerID', 'podType'],
    status: [],
  },
  'provider-networks.kubeovn.io': {
    spec: ['defaultInterface', 'customInterfaces', 'exchangeLinkName', 'nodeSelector', 'excludeNodes', 'autoCreateVlanSubinterfaces', 'preserveVlanInterfaces', 'vlanInterfaces'],
    status: ['ready', 'readyNodes', 'notReadyNodes', 'vlans', 'conditions'],
  },
  'vlans.kubeovn.io': {
    spec: ['id', 'provider', 'vlanId', 'providerInterfaceName', 'logicalInterfaceName', 'subnet'],
    status: ['subnets', 'conflict'],
  },
};

const SG_RULE_FIELDS = ['ipVersion', 'protocol', 'priority', 'remoteType', 'remoteAddress', 'remoteSecurityGroup', 'portRangeMin', 'portRangeMax', 'policy'];

function props(s: Schema | undefined): Record<string, Schema> {
  return (s?.properties ?? {}) as Record<string, Schema>;
}

/** The schema node at a dotted path (`spec.acls[].priority`). */
function at(schema: Schema, path: string): Schema {
  let s: Schema | undefined = schema;
  for (const part of path.split('.')) {
    const list = part.endsWith('[]');
    s = props(s)[list ? part.slice(0, -2) : part];
    if (s && list) s = s.items as Schema;
    if (!s) throw new Error(`no schema at ${path}`);
  }
  return s;
}

describe('deploy/00-crds.yaml', () => {
  it('holds exactly the expected CRDs, all apiextensions.k8s.io/v1', () => {
    expect(CRDS.map((d) => d.metadata.name)).toEqual(Object.keys(EXPECTED));
    for (const d of CRDS) {
      expect(d.apiVersion).toBe('apiextensions.k8s.io/v1');
      expect(d.kind).toBe('CustomResourceDefinition');
    }
  });

  for (const [name, want] of Object.entries(EXPECTED)) {
    describe(name, () => {
      const def = crd(name);
      const v = version(name);

      it('names, scope and the one served, stored version v1', () => {
        expect(name).toBe(`${def.spec.names.plural}.${def.spec.group}`);
        expect(def.spec.group).toBe(want.group);
        expect(def.spec.scope).toBe('Cluster');
        expect(def.spec.names).toEqual({
          plural: want.plural, singular: want.singular, kind: want.kind, listKind: `${want.kind}List`,
          ...(want.shortNames ? { shortNames: want.shortNames } : {}),
        });
        expect(v.name).toBe('v1');
        expect(v.served).toBe(true);
        expect(v.storage).toBe(true);
      });

      it('is a structural schema the 1.20 API server accepts', () => {
        expect(structuralErrors(schemaOf(name))).toEqual([]);
      });

      it(want.status ? 'has a status subresource' : 'has no status subresource (as in Kube-OVN)', () => {
        if (want.status) expect(v.subresources).toEqual({ status: {} });
        else expect(v.subresources).toBeUndefined();
      });

      it('printer columns as Kube-OVN prints them, each pointing at a specified field', () => {
        const cols = (v.additionalPrinterColumns ?? []) as Doc[];
        expect(cols.map((c) => c.name)).toEqual(want.columns);
        for (const c of cols) {
          expect(['integer', 'number', 'string', 'boolean', 'date']).toContain(c.type);
          if (c.jsonPath === '.metadata.creationTimestamp') continue;
          expect(c.jsonPath).toMatch(/^(\.[A-Za-z0-9]+)+$/);
          expect(() => at(schemaOf(name), c.jsonPath.slice(1))).not.toThrow();
        }
      });

      const fields = KUBE_OVN_FIELDS[name];
      if (fields) {
        it("carries every field of Kube-OVN's CRD, typed", () => {
          const s = schemaOf(name);
          const spec = props(props(s).spec);
          expect(Object.keys(spec).sort()).toEqual([...fields.spec].sort());
          const status = props(props(s).status);
          expect(Object.keys(status).sort()).toEqual([...fields.status].sort());
          for (const [k, f] of [...Object.entries(spec), ...Object.entries(status)]) expect(f.type, k).toBeTruthy();
        });
      }
    });
  }

  it('security group rules carry every Kube-OVN rule field, the same for ingress and egress', () => {
    const spec = at(schemaOf('security-groups.kubeovn.io'), 'spec');
    const ingress = at(spec, 'ingressRules[]');
    expect(Object.keys(props(ingress)).sort()).toEqual([...SG_RULE_FIELDS].sort());
    expect(at(spec, 'egressRules[]')).toEqual(ingress);
  });
});

describe('the long patterns are the ones crd-patterns.ts composes', () => {
  const subnet = schemaOf('subnets.kubeovn.io');
  const rule = at(schemaOf('security-groups.kubeovn.io'), 'spec.ingressRules[]');
  const remote = ((rule.allOf as Schema[])[0] as Schema).anyOf as Schema[];
  const vip = schemaOf('vips.kubeovn.io');
  const claim = schemaOf('ipclaims.ovnode.io');
  const pn = schemaOf('provider-networks.kubeovn.io');
  const cases: Array<[string, Schema, PatternName]> = [
    ['Subnet cidrBlock', at(subnet, 'spec.cidrBlock'), 'cidrBlock'],
    ['Subnet gateway', at(subnet, 'spec.gateway'), 'gateway'],
    ['Subnet excludeIps[]', at(subnet, 'spec.excludeIps[]'), 'excludeIp'],
    ['Subnet allowSubnets[]', at(subnet, 'spec.allowSubnets[]'), 'allowSubnet'],
    ['Subnet namespaces[]', at(subnet, 'spec.namespaces[]'), 'label'],
    ['Subnet acls[].match', at(subnet, 'spec.acls[].match'), 'nonBlank'],
    ['SecurityGroup ipv4 remoteAddress', at(remote[0] as Schema, 'remoteAddress'), 'remoteV4'],
    ['SecurityGroup ipv6 remoteAddress', at(remote[1] as Schema, 'remoteAddress'), 'remoteV6'],
    ['SecurityGroup remoteSecurityGroup', at(remote[2] as Schema, 'remoteSecurityGroup'), 'subdomain'],
    ['Vip v4ip', at(vip, 'spec.v4ip'), 'v4ip'],
    ['Vip v6ip', at(vip, 'spec.v6ip'), 'v6ip'],
    ['Vip macAddress', at(vip, 'spec.macAddress'), 'mac'],
    ['Vip macAddress (not all zeros)', at(vip, 'spec.macAddress').not as Schema, 'macZero'],
    ['IPClaim node', at(claim, 'spec.node'), 'subdomain'],
    ['IPClaim cidr', at(claim, 'spec.cidr'), 'claimCidr'],
    ['IPClaim pod', at(claim, 'spec.pod'), 'claimPod'],
    ['IPClaim address prefix', at((at(claim, 'spec').anyOf as Schema[])[1] as Schema, 'cidr'), 'hostPrefix'],
    ['ProviderNetwork defaultInterface', at(pn, 'spec.defaultInterface'), 'ifName'],
    ['ProviderNetwork customInterfaces[].interface', at(pn, 'spec.customInterfaces[].interface'), 'ifName'],
    ['ProviderNetwork vlanInterfaces[]', at(pn, 'spec.vlanInterfaces[]'), 'vlanIfName'],
  ];
  for (const [desc, node, name] of cases) {
    it(desc, () => {
      // On a mismatch, the message is the YAML scalar to paste into deploy/00-crds.yaml.
      expect(node.pattern, `pattern: ${yamlQuoted(PATTERNS[name])}`).toBe(PATTERNS[name]);
    });
  }
});

describe('ipclaims.ovnode.io', () => {
  const schema = schemaOf('ipclaims.ovnode.io');
  const claim = (spec: Doc, status?: Doc): Doc => ({
    apiVersion: 'ovnode.io/v1', kind: 'IPClaim', metadata: { name: 'c' }, spec, ...(status ? { status } : {}),
  });
  const block = { subnet: 'ovn-default', cidr: '10.16.0.64/26', node: 'node-1.example', kind: 'block' };

  it('spec fields, required fields and kinds', () => {
    const spec = at(schema, 'spec');
    expect(Object.keys(props(spec)).sort()).toEqual(['cidr', 'kind', 'node', 'pod', 'subnet']);
    expect(spec.required).toEqual(['subnet', 'cidr', 'node', 'kind']);
    expect(at(schema, 'spec.kind').enum).toEqual(['block', 'address']);
    expect(at(schema, 'status.phase').enum).toEqual(['Pending', 'Bound', 'Refused']);
    expect(Object.keys(props(at(schema, 'status'))).sort()).toEqual(['phase', 'reason']);
  });

  const good: Array<[string, Doc]> = [
    ['an IPv4 block', block],
    ['an IPv6 block', { ...block, cidr: 'fd00:10:16::40/122' }],
    ['a static IPv4 address for a pod', { ...block, kind: 'address', cidr: '10.16.0.7/32', pod: 'default/web-0' }],
    ['a static IPv6 address', { ...block, kind: 'address', cidr: 'fd00::7/128' }],
    ['a /0 block', { ...block, cidr: '0.0.0.0/0' }],
  ];
  for (const [desc, spec] of good) {
    it(`accepts ${desc}`, () => {
      expect(admit(claim(spec), schema).errors).toEqual([]);
    });
  }

  const bad: Array<[string, Doc, string]> = [
    ['an address claim wider than one address', { ...block, kind: 'address', cidr: '10.16.0.64/26' }, 'anyOf'],
    ['no kind', { subnet: 'a', cidr: '10.0.0.0/24', node: 'n' }, 'spec.kind: Required value'],
    ['an unknown kind', { ...block, kind: 'range' }, 'spec.kind: Unsupported value'],
    ['a CIDR with spaces', { ...block, cidr: ' 10.16.0.64/26' }, 'spec.cidr'],
    ['a CIDR with a zone', { ...block, cidr: 'fe80::%eth0/64' }, 'spec.cidr'],
    ['a prefix with a leading zero', { ...block, cidr: '10.16.0.64/026' }, 'spec.cidr'],
    ['an IPv4 prefix over 32', { ...block, cidr: '10.16.0.0/33' }, 'spec.cidr'],
    ['a bare address', { ...block, cidr: '10.16.0.7' }, 'spec.cidr'],
    ['a node name with capitals', { ...block, node: 'Node-1' }, 'spec.node'],
    ['a pod without its namespace', { ...block, kind: 'address', cidr: '10.16.0.7/32', pod: 'web-0' }, 'spec.pod'],
    ['no subnet', { cidr: '10.0.0.0/24', node: 'n', kind: 'block' }, 'spec.subnet: Required value'],
    ['an empty subnet', { ...block, subnet: '' }, 'spec.subnet'],
  ];
  for (const [desc, spec, message] of bad) {
    it(`refuses ${desc}`, () => {
      expect(admit(claim(spec), schema).errors.join('\n')).toContain(message);
    });
  }

  it('status: the phases, checked on the status subresource', () => {
    expect(admit(claim(block, { phase: 'Bound' }), schema).errors).toEqual([]);
    expect(admit(claim(block, { phase: 'Refused', reason: 'held by node-2' }), schema).errors).toEqual([]);
    expect(admit(claim(block, { phase: 'Lost' }), schema).errors.join()).toContain('status.phase: Unsupported value');
  });
});
