// Providers (Kube-OVN's secondary-network identity): the netconf's provider, the interface's name
// for it when one NAD is attached twice, the Subnet a provider is bound to (or a clear refusal),
// and an ADD of a secondary interface on a fake node (real cmdAdd, real NB schema): the port
// carries the provider, the interface goes into the provider's Subnet, reads only its own
// provider's annotations (not ovn.kubernetes.io/*, which are eth0's), and a provider bound to no
// Subnet is refused with nothing changed.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cmdAdd } from '../../../../daemon/cmd/add';
import { interfaceProvider, providerSubnet, selectedNetworks } from '../../../../daemon/intent/provider';
import { parseNetConf } from '../../../../daemon/intent/netconf';
import type { PodObj } from '../../../../daemon/objects/types';
import { NB } from '../../../../daemon/ovs/schema';
import { asMap, ovsMap } from '../../../../daemon/ovsdb/values';
import { subnet } from '../policy/helpers';
import { FakeNode } from '../cmd/fake-node';

const PROVIDER = 'attnet.ns1.ovn';

function pod(annotations: Record<string, string> = {}, name = 'web'): PodObj {
  return { kind: 'Pod', metadata: { name, namespace: 'ns1', labels: {}, annotations }, spec: { containers: [{ name: 'c', ports: [] }], nodeName: 'n1' } };
}

describe('provider of an interface', () => {
  it('reads Multus selections in both forms, defaulting the namespace to the pod\'s', () => {
    expect(selectedNetworks(pod({ 'k8s.v1.cni.cncf.io/networks': 'attnet, other/x@net5 ,attnet@net2' }))).toEqual(['ns1/attnet', 'other/x', 'ns1/attnet']);
    expect(selectedNetworks(pod({ 'k8s.v1.cni.cncf.io/networks': '[{"name":"attnet","interface":"net1"},{"name":"y","namespace":"z"}]' }))).toEqual(['ns1/attnet', 'z/y']);
    expect(selectedNetworks(pod({ 'k8s.v1.cni.cncf.io/networks': '[not json' }))).toEqual([]);
    expect(selectedNetworks(pod())).toEqual([]);
  });

  it('is the netconf\'s provider, with ".<ifname>" when the pod attaches that NAD twice', () => {
    expect(interfaceProvider(pod({ 'k8s.v1.cni.cncf.io/networks': 'attnet' }), PROVIDER, 'net1')).toBe(PROVIDER);
    const twice = pod({ 'k8s.v1.cni.cncf.io/networks': 'attnet@net1, attnet@net2' });
    expect(interfaceProvider(twice, PROVIDER, 'net1')).toBe(`${PROVIDER}.net1`);
    expect(interfaceProvider(twice, PROVIDER, 'net2')).toBe(`${PROVIDER}.net2`);
    // Not of the <nad>.<ns>.ovn form: taken as it is.
    expect(interfaceProvider(twice, 'custom', 'net2')).toBe('custom');
  });

  it('binds to the Subnet with that spec.provider, unless the interface\'s own annotation names one; none is refused', () => {
    const store = { list: () => [subnet('zz', { cidrBlock: '10.31.0.0/24', provider: PROVIDER }), subnet('blue', { cidrBlock: '10.30.0.0/24', provider: PROVIDER }), subnet('x', { cidrBlock: '10.32.0.0/24' })] } as never;
    expect(providerSubnet(store, pod(), PROVIDER, PROVIDER)).toBe('blue');
    expect(providerSubnet(store, pod({ [`${PROVIDER}.net2.kubernetes.io/logical_switch`]: 'zz' }), PROVIDER, `${PROVIDER}.net2`)).toBe('zz');
    expect(() => providerSubnet(store, pod(), 'nothing.ns1.ovn', 'nothing.ns1.ovn')).toThrow(/provider nothing\.ns1\.ovn is not bound to any subnet/);
  });

  it('is read from the netconf, top-level or under ipam; a bad one is a config error on ADD and ignored on DEL', () => {
    const conf = (extra: Record<string, unknown>): string => JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'ovnode', ...extra });
    expect(parseNetConf(conf({ provider: PROVIDER })).provider).toBe(PROVIDER);
    expect(parseNetConf(conf({ type: 'macvlan', ipam: { type: 'kube-ovn', provider: 'attnet.ns1' } })).provider).toBe('attnet.ns1');
    expect(() => parseNetConf(conf({ provider: 'Bad Provider!' }))).toThrow(/"provider" must be a lower-case name/);
    expect(parseNetConf(conf({ provider: 'Bad Provider!' }), { teardown: true }).provider).toBeUndefined();
    expect(parseNetConf(conf({ provider: PROVIDER }), { teardown: true }).provider).toBe(PROVIDER);
  });
});

describe('ADD of a secondary interface (fake node, real cmdAdd)', () => {
  let node: FakeNode;
  beforeEach(async () => {
    node = await FakeNode.start();
    // The Subnet bound to the provider, its switch and pool as the policy engine and registry make them.
    node.store.apply(subnet('blue', { cidrBlock: '10.30.0.0/24', provider: PROVIDER }));
    await node.nb.transact([{ op: 'insert', table: NB.ls, row: { name: 'blue', external_ids: ovsMap({ 'ovnode:owner': 'ovnode', 'ovnode:cidrs': '10.30.0.0/24' }) } }]);
    node.subnets.add({ name: 'blue', cidrs: ['10.30.0.0/24'], gateways: ['10.30.0.1'] });
    await node.settle();
  });
  afterEach(async () => { await node.close(); });

  const addNet1 = (provider: string) => {
    const call = { sandbox: 'sb-web', pod: 'web', namespace: 'ns1', ifName: 'net1' };
    node.native.addNetns(node.netnsOf(call));
    const req = node.request('ADD', call);
    req.conf.provider = provider;
    return cmdAdd(node.ctx(req));
  };

  it('goes into the provider\'s Subnet as <pod>.<ns>.<provider>, ignoring eth0\'s ovn.kubernetes.io/ip_address', async () => {
    // eth0's static address: net1 must neither take it nor fail on it (it is outside blue).
    node.store.apply(pod({ 'ovn.kubernetes.io/ip_address': '10.16.0.77' }));
    const result = await addNet1(PROVIDER);
    expect(result.ips?.map((i) => i.address)).toEqual(['10.30.0.2/24']);
    expect(result.interfaces?.find((i) => i.sandbox)?.name).toBe('net1');
    // Its subnet's route only: the default route stays eth0's (in the result and in the netns).
    expect(result.routes).toEqual([]);
    expect(node.plumber.creates.at(-1)).toMatchObject({ podIfName: 'net1', gateways: [] });
    const lsp = node.nbServer.rows(NB.lsp).find((r) => r.name === `web.ns1.${PROVIDER}`);
    expect(lsp, 'the port carries the provider').toBeTruthy();
    expect(asMap(lsp?.external_ids)).toMatchObject({ 'ovnode:provider': PROVIDER, 'ovnode:logical_switch': 'blue', 'ovnode:ifname': 'net1' });
  });

  it('takes its own provider\'s static address', async () => {
    node.store.apply(pod({ [`${PROVIDER}.kubernetes.io/ip_address`]: '10.30.0.40' }));
    const result = await addNet1(PROVIDER);
    expect(result.ips?.map((i) => i.address)).toEqual(['10.30.0.40/24']);
  });

  it('is refused for a provider bound to no Subnet, and changes nothing', async () => {
    node.store.apply(pod());
    const before = node.state();
    await expect(addNet1('nowhere.ns1.ovn')).rejects.toThrow(/provider nowhere\.ns1\.ovn is not bound to any subnet/);
    await node.settle();
    expect(node.state()).toEqual(before);
  });
});
