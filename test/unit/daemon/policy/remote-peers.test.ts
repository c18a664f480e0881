// Pods of other nodes as NetworkPolicy peers: a selector that picks a pod admits its address
// wherever the pod runs (from the annotations its node wrote back), while only this node's pods
// join port groups. Pods without a written-back address, host-network pods and this node's own
// pods are not remote peers.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { PodObj } from '../../../../daemon/objects/types';
import { translateNetworkPolicies } from '../../../../daemon/policy/network-policy';
import { remotePodPorts, type PodPort } from '../../../../daemon/policy/pods';

function pod(name: string, node: string, labels: Record<string, string>, annotations: Record<string, string> = {}, hostNetwork = false): PodObj {
  const p: PodObj = { kind: 'Pod', metadata: { name, namespace: 'ns1', labels, annotations }, spec: { containers: [{ name: 'c', ports: [] }], nodeName: node } };
  if (hostNetwork) p.spec.hostNetwork = true;
  return p;
}
const record = (ip: string): Record<string, string> => ({
  'ovn.kubernetes.io/ip_address': ip, 'ovn.kubernetes.io/allocated': 'true', 'ovn.kubernetes.io/mac_address': '0a:00:00:00:00:01', 'ovn.kubernetes.io/logical_switch': 'ovn-default',
});

describe('remote pods as NetworkPolicy peers', () => {
  it('admits the addresses of selected pods on other nodes and never puts them in NetworkPolicy port groups', () => {
    const store = new MemoryStore();
    store.apply({ kind: 'Namespace', metadata: { name: 'ns1', namespace: '', labels: {}, annotations: {} } });
    store.apply(pod('web', 'n1', { app: 'web' }));
    store.apply(pod('client-far', 'n2', { app: 'client' }, record('10.16.1.7')));
    store.apply(pod('client-dual', 'n3', { app: 'client' }, record('10.16.2.9,fd00::9')));
    store.apply(pod('client-new', 'n2', { app: 'client' }, { 'ovn.kubernetes.io/ip_address': '10.16.1.8' })); // a user's request, not yet allocated
    store.apply(pod('client-host', 'n2', { app: 'client' }, record('10.250.0.12'), true));
    store.apply(pod('client-here', 'n1', { app: 'client' }, record('10.16.0.5'))); // this node's: comes from the NB, not from here
    store.apply({
      kind: 'NetworkPolicy', metadata: { name: 'from-clients', namespace: 'ns1', labels: {}, annotations: {} },
      spec: {
        podSelector: { matchLabels: { app: 'web' }, matchExpressions: [] }, policyTypes: ['Ingress'],
        ingress: [{ peers: [{ podSelector: { matchLabels: { app: 'client' }, matchExpressions: [] } }], ports: [] }], egress: [],
      },
    });
    const remote = remotePodPorts(store, 'n1');
    expect(remote.map((p) => p.name).sort()).toEqual(['client-dual', 'client-far']);
    // Named as the remote ports this zone holds for them (cluster/remote-ports.ts).
    expect(remote.map((p) => p.lspName).sort()).toEqual(['client-dual.ns1', 'client-far.ns1']);
    const local: PodPort[] = [{ lspName: 'web.ns1', name: 'web', namespace: 'ns1', logicalSwitch: 'ovn-default', mac: '0a:00:00:00:00:02', ips: ['10.16.0.2'], labels: { app: 'web' }, namespaceLabels: {} }];
    const out = translateNetworkPolicies({ store, pods: local, peers: [...local, ...remote], nodeIps: ['100.64.0.2'], families: [4, 6] });
    const sets = Object.fromEntries(out.addressSets.map((s) => [s.name.endsWith('6') ? 'v6' : 'v4', s.addresses]));
    expect(sets.v4).toEqual(['10.16.1.7', '10.16.2.9']);
    expect(sets.v6).toEqual(['fd00::9']);
    // A policy's port groups are the pods it selects here: remote pods are enforced on their own node.
    expect(new Set(out.portGroups.flatMap((g) => g.ports))).toEqual(new Set(['web.ns1']));
    // Without the peers list (embedded mode) the same policy admits no remote address.
    const embedded = translateNetworkPolicies({ store, pods: local, nodeIps: ['100.64.0.2'], families: [4] });
    expect(embedded.addressSets.flatMap((s) => s.addresses)).toEqual([]);
  });
});
