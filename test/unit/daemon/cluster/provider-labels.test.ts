// The Node labels of the provider networks a node joined (Kube-OVN's), as a merge patch against
// the labels the Node has: added, corrected, removed for networks left, nothing else touched.

import { describe, expect, it } from 'vitest';
import { providerLabelPatch, providerLabels } from '../../../../daemon/cluster/provider-labels';

const phys = { provider: 'phys', interface: 'eth1', mtu: 1500 };

describe('provider network Node labels', () => {
  it('labels a joined network ready, with its uplink and MTU', () => {
    expect(providerLabels([phys])).toEqual({
      'phys.provider-network.kubernetes.io/ready': 'true',
      'phys.provider-network.kubernetes.io/interface': 'eth1',
      'phys.provider-network.kubernetes.io/mtu': '1500',
    });
  });

  it('patches only what differs, removes the labels of networks left, keeps every other label', () => {
    const current = {
      'kubernetes.io/hostname': 'node1',
      'phys.provider-network.kubernetes.io/ready': 'true',
      'phys.provider-network.kubernetes.io/interface': 'eth0',
      'phys.provider-network.kubernetes.io/mtu': '1500',
      'old.provider-network.kubernetes.io/ready': 'true',
      'old.provider-network.kubernetes.io/mtu': '9000',
      'old.provider-network.kubernetes.io/other': 'kept',
    };
    expect(providerLabelPatch(current, [phys])).toEqual({
      'phys.provider-network.kubernetes.io/interface': 'eth1',
      'old.provider-network.kubernetes.io/ready': null,
      'old.provider-network.kubernetes.io/mtu': null,
    });
  });

  it('has nothing to patch when the labels are right, or when nothing was ever joined', () => {
    expect(providerLabelPatch(providerLabels([phys]), [phys])).toBeUndefined();
    expect(providerLabelPatch({ 'kubernetes.io/hostname': 'n' }, [])).toBeUndefined();
  });
});
