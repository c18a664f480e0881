// Which ProviderNetworks a node joins and with which uplink (desiredProviderBridges): its custom
// interface, else the default; excludeNodes leaves it out; a nodeSelector decides alone against
// the node's labels (Kube-OVN ignores excludeNodes once it is set); trunks are the Vlans' ids and 0.

import { describe, expect, it } from 'vitest';
import { desiredProviderBridges } from '../../../../daemon/node/provider-networks';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import { validateObject } from '../../../../daemon/objects/validate';
import { parseManifest } from '../../../../daemon/objects/parse';
import YAML from 'yaml';
import type { KubeObject } from '../../../../daemon/objects/types';

function store(...docs: Array<Record<string, unknown>>): MemoryStore {
  const s = new MemoryStore();
  const parsed = parseManifest(docs.map((d) => YAML.stringify(d)).join('---\n'), 'test.yaml');
  expect(parsed.rejected).toEqual([]);
  for (const raw of parsed.objects) {
    const v = validateObject(raw);
    if (!v.ok) throw new Error(`test object refused: ${v.rejected.message}`);
    s.apply(v.object as KubeObject);
  }
  return s;
}

const pn = (name: string, spec: Record<string, unknown>): Record<string, unknown> => ({ apiVersion: 'kubeovn.io/v1', kind: 'ProviderNetwork', metadata: { name }, spec });
const vlan = (name: string, id: number, provider: string): Record<string, unknown> => ({ apiVersion: 'kubeovn.io/v1', kind: 'Vlan', metadata: { name }, spec: { id, provider } });

describe('desiredProviderBridges', () => {
  it('gives each node its custom interface, else the default, trunking the Vlans\' ids and 0', () => {
    const s = store(pn('phys', { defaultInterface: 'eth1', customInterfaces: [{ interface: 'ens5', nodes: ['node2'] }] }), vlan('v100', 100, 'phys'), vlan('v7', 7, 'phys'), vlan('o', 9, 'other'));
    expect(desiredProviderBridges(s, 'node1')).toEqual([{ provider: 'phys', interface: 'eth1', vlanIds: [0, 7, 100] }]);
    expect(desiredProviderBridges(s, 'node2')).toEqual([{ provider: 'phys', interface: 'ens5', vlanIds: [0, 7, 100] }]);
  });

  it('leaves out excluded nodes', () => {
    const s = store(pn('phys', { defaultInterface: 'eth1', excludeNodes: ['node3'] }));
    expect(desiredProviderBridges(s, 'node3')).toEqual([]);
    expect(desiredProviderBridges(s, 'node1')).toHaveLength(1);
  });

  it('with a nodeSelector, joins exactly the nodes whose labels it selects, excludeNodes ignored', () => {
    const s = store(pn('phys', { defaultInterface: 'eth1', excludeNodes: ['node1'], nodeSelector: { matchLabels: { 'net/underlay': 'yes' } } }));
    expect(desiredProviderBridges(s, 'node1', { 'net/underlay': 'yes' })).toEqual([{ provider: 'phys', interface: 'eth1', vlanIds: [0] }]);
    expect(desiredProviderBridges(s, 'node2', { 'net/underlay': 'no' })).toEqual([]);
    expect(desiredProviderBridges(s, 'node2')).toEqual([]);
  });

  it('matchExpressions select too', () => {
    const s = store(pn('phys', { defaultInterface: 'eth1', nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] } }));
    expect(desiredProviderBridges(s, 'n', { zone: 'b' })).toHaveLength(1);
    expect(desiredProviderBridges(s, 'n', { zone: 'c' })).toEqual([]);
  });
});
