// The published examples (test/fixtures/seeds/): seed 004's four Subnet ACL manifests and four
// NetworkPolicies (example 3 keeps its `policyTypes: [egress]` and is refused with the API
// server's message), and seed 003's two OVN-Kubernetes policies.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../../../daemon/objects/parse';
import { validateObject, type ValidationResult } from '../../../../daemon/objects/validate';
import type { NetworkPolicyObj, SubnetObj } from '../../../../daemon/objects/types';

const SEEDS = join(__dirname, '..', '..', '..', 'fixtures', 'seeds');

function load(file: string): ValidationResult {
  const parsed = parseManifest(readFileSync(join(SEEDS, file), 'utf8'), file);
  expect(parsed.rejected).toEqual([]);
  expect(parsed.objects).toHaveLength(1);
  return validateObject(parsed.objects[0] as (typeof parsed.objects)[0]);
}

function accepted<T>(file: string): T {
  const r = load(file);
  if (!r.ok) throw new Error(`${file} refused: ${r.rejected.message}`);
  return r.object as T;
}

const block = (cidr: string) => ({ peers: [{ ipBlock: { cidr, except: [] } }], ports: [] });
const ALL = { matchLabels: {}, matchExpressions: [] };

describe('seed 004 Subnet ACL examples', () => {
  const cases: { desc: string; file: string; acls: Array<[string, string, string, number]> }[] = [
    {
      desc: 'example 1: drop 172.20.10.0/30 both ways',
      file: 'subnet-acl-1.yaml',
      acls: [
        ['drop', 'to-lport', 'ip4.dst == 172.20.10.0/30', 1005],
        ['drop', 'from-lport', 'ip4.src == 172.20.10.0/30', 1005],
      ],
    },
    {
      desc: 'example 2: allow 172.20.10.2 at 1006 over the /30 drops',
      file: 'subnet-acl-2.yaml',
      acls: [
        ['allow', 'to-lport', 'ip4.dst == 172.20.10.2', 1006],
        ['allow', 'from-lport', 'ip4.src == 172.20.10.2', 1006],
        ['drop', 'to-lport', 'ip4.dst == 172.20.10.0/30', 1005],
        ['drop', 'from-lport', 'ip4.src == 172.20.10.0/30', 1005],
      ],
    },
    { desc: 'example 3: nothing to 172.20.10.2', file: 'subnet-acl-3.yaml', acls: [['drop', 'to-lport', 'ip4.dst == 172.20.10.2', 1005]] },
    {
      desc: 'example 4: TCP from 172.20.10.6 port 9501',
      file: 'subnet-acl-4.yaml',
      acls: [['drop', 'from-lport', 'ip4.src == 172.20.10.6 && tcp.src == 9501', 1005]],
    },
  ];
  for (const c of cases) {
    it(c.desc, () => {
      const s = accepted<SubnetObj>(c.file);
      expect(s.metadata).toEqual({ name: 'vswitch1', namespace: '', labels: {}, annotations: {} });
      expect(s.spec).toEqual({
        cidrBlock: '172.20.10.0/24',
        gateway: '172.20.10.1',
        excludeIps: ['172.20.10.1'],
        acls: c.acls.map(([action, direction, match, priority]) => ({ action, direction, match, priority })),
        namespaces: [],
        provider: 'vswitch1.default.ovn',
        private: false,
        allowSubnets: [],
        protocol: 'IPv4',
        vpc: 'vpc1',
        logicalGateway: false,
      });
    });
  }
});

describe('seed 004 NetworkPolicy examples', () => {
  it('example 1: ingress and egress limited to 172.20.10.0/30, every pod of default', () => {
    const np = accepted<NetworkPolicyObj>('np-1.yaml');
    expect(np.metadata).toEqual({ name: 'ip-block', namespace: 'default', labels: {}, annotations: {} });
    expect(np.spec).toEqual({ podSelector: ALL, policyTypes: ['Ingress', 'Egress'], ingress: [block('172.20.10.0/30')], egress: [block('172.20.10.0/30')] });
  });

  it('example 2: ingress only', () => {
    const np = accepted<NetworkPolicyObj>('np-2.yaml');
    expect(np.spec).toEqual({ podSelector: ALL, policyTypes: ['Ingress'], ingress: [block('172.20.10.0/30')], egress: [] });
  });

  it('example 3 as published is refused whole, with the API server\'s message', () => {
    const r = load('np-3.yaml');
    expect(r).toEqual({
      ok: false,
      rejected: {
        source: 'np-3.yaml',
        kind: 'NetworkPolicy',
        name: 'ip-block',
        namespace: 'default',
        message: 'NetworkPolicy default/ip-block: spec.policyTypes[0]: Unsupported value: "egress": supported values: "Ingress", "Egress"',
      },
    });
  });

  it('example 4: VM2 only, both directions', () => {
    const np = accepted<NetworkPolicyObj>('np-4.yaml');
    expect(np.spec).toEqual({
      podSelector: { matchLabels: { 'vm.kubevirt.io/name': 'VM2' }, matchExpressions: [] },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [block('172.20.10.0/30')],
      egress: [block('172.20.10.0/30')],
    });
  });
});

describe('seed 003 OVN-Kubernetes policies', () => {
  const fromAlpine = { peers: [{ namespaceSelector: { matchLabels: { namespace: 'alpine-worker' }, matchExpressions: [] } }], ports: [] };

  it('namespace-isolation.yaml: every pod of my-namespace, ingress from alpine-worker only', () => {
    const np = accepted<NetworkPolicyObj>('namespace-isolation.yaml');
    expect(np.metadata.namespace).toBe('my-namespace');
    expect(np.spec).toEqual({ podSelector: ALL, policyTypes: ['Ingress'], ingress: [fromAlpine], egress: [] });
  });

  it('ns-svc-isolation.yaml: app=nginx pods, ingress from alpine-worker only', () => {
    const np = accepted<NetworkPolicyObj>('ns-svc-isolation.yaml');
    expect(np.metadata).toMatchObject({ name: 'deny-specific-ip-blocks', namespace: 'nginx-namespace' });
    expect(np.spec).toEqual({ podSelector: { matchLabels: { app: 'nginx' }, matchExpressions: [] }, policyTypes: ['Ingress'], ingress: [fromAlpine], egress: [] });
  });
});
