// deploy/01-rbac.yaml: the exact rights of ovnoded. Any new verb, resource or group fails here,
// so privilege creep is a reviewed change of this list, not a side effect.
import { describe, expect, it } from 'vitest';
import { find, loadAll, type Doc } from './manifests';

/** `group/resource: verbs`, "" being the core group. */
const EXPECTED: Record<string, string[]> = {
  '/pods': ['get', 'list', 'watch', 'patch'],
  '/namespaces': ['get', 'list', 'watch'],
  '/nodes': ['get', 'list', 'watch', 'patch'],
  '/nodes/status': ['patch'],
  'networking.k8s.io/networkpolicies': ['get', 'list', 'watch'],
  '/services': ['get', 'list', 'watch'],
  'discovery.k8s.io/endpointslices': ['get', 'list', 'watch'],
  'kubeovn.io/subnets': ['get', 'list', 'watch'],
  'kubeovn.io/security-groups': ['get', 'list', 'watch'],
  'kubeovn.io/vips': ['get', 'list', 'watch'],
  'kubeovn.io/ips': ['get', 'list', 'watch'],
  'kubeovn.io/provider-networks': ['get', 'list', 'watch'],
  'kubeovn.io/vlans': ['get', 'list', 'watch'],
  'ovnode.io/ipclaims': ['get', 'list', 'watch', 'create', 'delete'],
  'ovnode.io/ipclaims/status': ['patch', 'update'],
  '/events': ['create', 'patch'],
  'events.k8s.io/events': ['create', 'patch'],
};

const RBAC_KINDS = ['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding'];

/** The rights a role grants, one entry per group/resource (rules may repeat a pair). */
function grants(role: Doc): Record<string, string[]> {
  const out: Record<string, Set<string>> = {};
  for (const rule of role.rules as Doc[]) {
    expect(Object.keys(rule).sort(), 'rule fields (no resourceNames, no nonResourceURLs)').toEqual(['apiGroups', 'resources', 'verbs']);
    for (const g of rule.apiGroups as string[]) {
      for (const r of rule.resources as string[]) {
        const set = (out[`${g}/${r}`] ??= new Set());
        for (const v of rule.verbs as string[]) set.add(v);
      }
    }
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, [...v].sort()]));
}

describe('deploy/01-rbac.yaml', () => {
  const role = find('ClusterRole', 'ovnode');

  it('grants exactly the expected verbs on exactly the expected resources', () => {
    const sorted = Object.fromEntries(Object.entries(EXPECTED).map(([k, v]) => [k, [...v].sort()]));
    expect(grants(role)).toEqual(sorted);
  });

  it('has no wildcards and no aggregation', () => {
    const text = JSON.stringify(role.rules);
    expect(text).not.toContain('*');
    expect(role.aggregationRule).toBeUndefined();
  });

  it('is bound to the ovnode ServiceAccount of kube-system only', () => {
    const binding = find('ClusterRoleBinding', 'ovnode');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'ovnode' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'ovnode', namespace: 'kube-system' }]);
  });

  it('deploy/ holds no other role or binding', () => {
    const rbac = loadAll().filter((d) => RBAC_KINDS.includes(d.doc.kind));
    expect(rbac.map((d) => `${d.doc.kind}/${d.doc.metadata.name}`).sort()).toEqual(['ClusterRole/ovnode', 'ClusterRoleBinding/ovnode']);
  });

  it('the ServiceAccounts: ovnode, and ovnode-ovs without a token or any binding', () => {
    const sas = loadAll().filter((d) => d.doc.kind === 'ServiceAccount').map((d) => d.doc);
    expect(sas.map((s) => `${s.metadata.namespace}/${s.metadata.name}`).sort()).toEqual(['kube-system/ovnode', 'kube-system/ovnode-ovs']);
    expect(find('ServiceAccount', 'ovnode-ovs').automountServiceAccountToken).toBe(false);
    const bound = loadAll()
      .filter((d) => d.doc.kind.endsWith('Binding'))
      .flatMap((d) => (d.doc.subjects as Doc[]).map((s) => s.name));
    expect(bound).not.toContain('ovnode-ovs');
  });
});
