// PodPlumber's pod-side configuration goes through the addon's configurePodInterface (one call
// on a worker thread), exercised here against FakeNative. configurePod is private: create() also
// needs the node's netlink socket and a real netns file, which the integration tests cover.
import { describe, expect, it } from 'vitest';
import { PlumbError } from '../../../common/errors';
import type { Rtnl } from '../../../daemon/kernel/rtnl';
import { PodPlumber, type PodInterfaceSpec } from '../../../daemon/plumb/pod-interface';
import { FakeNative } from '../../../native/fake';

const POD_NS = '/var/run/netns/pod-a';
const SPEC: PodInterfaceSpec = {
  netns: POD_NS,
  netnsIdentity: { dev: 4, ino: 4026532000 },
  hostIfName: 'veth0a1b2c3d',
  podIfName: 'eth0',
  mac: '0a:58:0a:10:00:05',
  mtu: 1400,
  addresses: ['10.16.0.5/16', 'fd00::5/64'],
  gateways: ['10.16.0.1', 'fd00::1'],
  disableTxChecksum: true,
};

function plumber(native: FakeNative): { configurePod(spec: PodInterfaceSpec): Promise<void> } {
  const noRtnl = new Proxy({}, { get: () => { throw new Error('no netlink socket expected'); } }) as Rtnl;
  const p = new PodPlumber({ nodeRtnl: noRtnl, native, openRtnl: () => noRtnl, nodeNetnsPath: '/proc/1/ns/net' });
  return p as unknown as { configurePod(spec: PodInterfaceSpec): Promise<void> };
}

describe('PodPlumber.configurePod', () => {
  it('configures addresses, link, default routes and TX checksums in one configurePodInterface call', async () => {
    const native = new FakeNative().addNetns(POD_NS).addLink('eth0', { netns: POD_NS, up: false });
    await plumber(native).configurePod(SPEC);
    expect(native.podInterfacesConfigured).toEqual([
      { netns: POD_NS, ifName: 'eth0', addresses: SPEC.addresses, gateways: SPEC.gateways, disableTxChecksum: true },
    ]);
    expect(native.podInterfaceOf(POD_NS, 'eth0')).toEqual({
      up: true,
      addresses: SPEC.addresses,
      routes: [{ dst: '0.0.0.0/0', gateway: '10.16.0.1' }, { dst: '::/0', gateway: 'fd00::1' }],
    });
    expect(native.featuresOf(POD_NS, 'eth0')['tx-checksum-ip-generic']).toBe(false);
    // Nothing on the JavaScript thread's netns.
    expect(native.netnsEntered).toEqual([]);
  });

  it('leaves the offloads on unless asked', async () => {
    const native = new FakeNative().addNetns(POD_NS).addLink('eth0', { netns: POD_NS, up: false });
    await plumber(native).configurePod({ ...SPEC, disableTxChecksum: false });
    expect(native.featuresSet).toEqual([]);
  });

  it('reports a pod interface that is not there as a PlumbError, as before', async () => {
    const native = new FakeNative().addNetns(POD_NS);
    const e = await plumber(native).configurePod(SPEC).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PlumbError);
    expect(e).toMatchObject({ message: `eth0 did not appear in ${POD_NS}`, details: 'if_nametoindex(eth0): No such device' });
  });

  it('passes other failures through with the step named', async () => {
    const native = new FakeNative().addNetns(POD_NS).addLink('eth0', { netns: POD_NS, up: false });
    await expect(plumber(native).configurePod({ ...SPEC, gateways: ['10.99.0.1'] })).rejects.toMatchObject({
      message: 'RTM_NEWROUTE(eth0 default via 10.99.0.1): Network is unreachable',
      code: 'ENETUNREACH',
    });
  });
});
