// The node's own path to its pods (kubelet probes, node-local clients): an OVS internal port
// on br-int bound to an LSP on the join switch, its address in the node netns, and a route for
// each pod subnet via the router's join address.

import type { NativeOps } from '../../native/index';
import type { Rtnl } from '../kernel/rtnl';
import type { OvsdbClient } from '../ovsdb/client';
import { OVS } from '../ovs/schema';

export interface NodePortConfig {
  name: string;
  /** The node's addresses on the join network with their prefix, e.g. 100.64.0.2/16 (and its IPv6 twin). */
  addresses: string[];
  /** The router's addresses there, one per family. */
  joinGateways: string[];
  podCidrs: string[];
  mtu: number;
  disableTxChecksum: boolean;
}

export async function configureNodePort(deps: { ovs: OvsdbClient; rtnl: Rtnl; native: NativeOps }, c: NodePortConfig, signal: AbortSignal): Promise<void> {
  // vswitchd creates the tap device when it adds the port; ofport is set once it has.
  await deps.ovs.waitFor(OVS.iface, (r) => r.name === c.name && typeof r.ofport === 'number' && r.ofport > 0, signal);
  const link = await deps.rtnl.getLink(c.name);
  if (!link) throw new Error(`node port ${c.name} has an ofport but no kernel device`);
  for (const address of c.addresses) await deps.rtnl.addAddress(link.index, address);
  await deps.rtnl.setUp(link.index);
  for (const dst of c.podCidrs) {
    const gateway = c.joinGateways.find((g) => g.includes(':') === dst.includes(':'));
    if (gateway) await deps.rtnl.addRoute({ dst, gateway, oif: link.index });
  }
  if (c.disableTxChecksum) deps.native.disableTxChecksum(c.name);
}
