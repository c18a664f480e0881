// The node zone's logical topology in the OVN NB: one router, a pod switch per subnet with a
// router port as its gateway, and the join switch that carries the node's own port.
// Names follow Kube-OVN (ovn-cluster, ovn-default, join) so existing annotations keep working.

import type { OvsdbClient } from '../ovsdb/client';
import type { Operation } from '../ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, uuid, type Row } from '../ovsdb/values';
import { NB } from '../ovs/schema';
import { portTunnelKey } from '../cluster/tunnel-keys';

export const ROUTER = 'ovn-cluster';

export interface SwitchSpec {
  name: string;
  /** CIDRs, one per family. */
  cidrs: string[];
  /** Router-port addresses, one per CIDR (the subnet gateways). */
  gateways: string[];
  routerPortMac: string;
  /** Datapath key shared by every zone (tunnel-keys.ts); unset: northd picks a local one. */
  tunnelKey?: number;
  /** An underlay subnet (Kube-OVN Subnet.spec.vlan): a localnet port instead of the overlay. */
  underlay?: UnderlaySpec;
}

export interface UnderlaySpec {
  /** The ProviderNetwork: the physical network name ovn-bridge-mappings maps to br-<provider>. */
  provider: string;
  /** 802.1Q tag of the localnet port; 0 = untagged. */
  vlanId: number;
  /** Kube-OVN's logicalGateway: the OVN router serves the gateway address (default: the physical router does). */
  logicalGateway: boolean;
}

/** Kube-OVN's name for a subnet's localnet port. */
export const localnetPortName = (subnet: string): string => `localnet.${subnet}`;

/** What an underlay switch's external_ids record, so a change of VLAN or gateway mode is seen. */
export function underlayKey(u: UnderlaySpec | undefined): string {
  return u ? `${u.provider}/${u.vlanId}/${u.logicalGateway ? 'lgw' : 'pgw'}` : '';
}

export interface NodePortSpec {
  switchName: string;
  lspName: string;
  mac: string;
  ips: string[];
  tunnelKey?: number | undefined;
  /**
   * The node forwards for its pods (egress, NodePort): packets through ovn0 carry other
   * addresses than its own, so its port security pins the MAC only.
   */
  forwards?: boolean;
}

function gatewayNetworks(s: SwitchSpec): string[] {
  return s.cidrs.map((c, i) => `${s.gateways[i]}/${c.split('/')[1]}`);
}

/** One NB transaction that creates or updates the router, the switches and the node port. */
export async function ensureTopology(nb: OvsdbClient, switches: SwitchSpec[], nodePort: NodePortSpec): Promise<void> {
  const ops: Operation[] = [];
  const router = [...nb.rows(NB.lr).values()].find((r) => r.name === ROUTER);
  const routerRef = router ? uuid(router._uuid) : namedUuid('lr');
  if (!router) ops.push({ op: 'insert', table: NB.lr, 'uuid-name': 'lr', row: { name: ROUTER } });
  switches.forEach((s, i) => ops.push(...switchOps(nb, s, routerRef, i)));
  ops.push(...nodePortOps(nb, nodePort));
  ops.push({ op: 'comment', comment: 'ovnode: node topology' });
  await nb.transact(ops);
}

/** The router reference for operations in a transaction that does not create the router. */
export function routerRef(nb: OvsdbClient): ReturnType<typeof uuid> | undefined {
  const router = [...nb.rows(NB.lr).values()].find((r) => r.name === ROUTER);
  return router ? uuid(router._uuid) : undefined;
}

/** Removes a subnet switch and its router port (pod-free switches only). */
export function removeSwitchOps(nb: OvsdbClient, name: string): Operation[] {
  const ops: Operation[] = [];
  const lrp = [...nb.rows(NB.lrp).values()].find((r) => r.name === `${ROUTER}-${name}`);
  const router = routerRef(nb);
  if (lrp && router) ops.push({ op: 'mutate', table: NB.lr, where: [['_uuid', '==', router]], mutations: [['ports', 'delete', ovsSet([uuid(lrp._uuid)])]] });
  ops.push({ op: 'delete', table: NB.ls, where: [['name', '==', name]] });
  return ops;
}

export function switchOps(nb: OvsdbClient, s: SwitchSpec, routerRef: ReturnType<typeof uuid>, i: number, extraIds: Record<string, string> = {}): Operation[] {
  const ids = ovsMap({
    'ovnode:owner': 'ovnode', 'ovnode:cidrs': s.cidrs.join(','), 'ovnode:gateways': s.gateways.join(','),
    ...(s.underlay ? { 'ovnode:underlay': underlayKey(s.underlay) } : {}), ...extraIds,
  });
  const ls = [...nb.rows(NB.ls).values()].find((r) => r.name === s.name);
  // An underlay subnet's gateway is the physical router's unless logicalGateway: no router port.
  // The switch goes first: a new localnet port is linked to it by name.
  const switchPart = s.underlay && !s.underlay.logicalGateway ? underlaySwitchOps(nb, s, ls, ids) : routedSwitchOps(nb, s, ls, ids, routerRef, i);
  return [...switchPart, ...localnetOps(nb, s, ls, i)];
}

/** The localnet port an underlay switch has and an overlay one has not, with its provider and tag. */
function localnetOps(nb: OvsdbClient, s: SwitchSpec, ls: Row | undefined, i: number): Operation[] {
  const name = localnetPortName(s.name);
  const port = [...nb.rows(NB.lsp).values()].find((r) => r.name === name);
  if (!s.underlay) {
    if (!port || !ls) return [];
    return [{ op: 'mutate', table: NB.ls, where: [['_uuid', '==', uuid(ls._uuid)]], mutations: [['ports', 'delete', ovsSet([uuid(port._uuid)])]] }];
  }
  const row = {
    type: 'localnet', addresses: ovsSet(['unknown']), options: ovsMap({ network_name: s.underlay.provider }),
    tag: ovsSet(s.underlay.vlanId > 0 ? [s.underlay.vlanId] : []),
  };
  if (port) return [{ op: 'update', table: NB.lsp, where: [['_uuid', '==', uuid(port._uuid)]], row }];
  const ref = `localnet${i}`;
  return [
    { op: 'insert', table: NB.lsp, 'uuid-name': ref, row: { name, ...row, external_ids: ovsMap({ 'ovnode:owner': 'ovnode' }) } },
    ls
      ? { op: 'mutate', table: NB.ls, where: [['_uuid', '==', uuid(ls._uuid)]], mutations: [['ports', 'insert', ovsSet([namedUuid(ref)])]] }
      : { op: 'mutate', table: NB.ls, where: [['name', '==', s.name]], mutations: [['ports', 'insert', ovsSet([namedUuid(ref)])]] },
  ];
}

/** An underlay switch without a router port (one an earlier overlay version had goes). */
function underlaySwitchOps(nb: OvsdbClient, s: SwitchSpec, ls: Row | undefined, ids: ReturnType<typeof ovsMap>): Operation[] {
  const otherConfig = ovsMap(s.tunnelKey === undefined ? {} : { 'requested-tnl-key': String(s.tunnelKey) });
  if (!ls) {
    return [{ op: 'insert', table: NB.ls, row: { name: s.name, external_ids: ids, other_config: otherConfig } }];
  }
  const ops: Operation[] = [
    { op: 'update', table: NB.ls, where: [['_uuid', '==', uuid(ls._uuid)]], row: { external_ids: ids } },
    { op: 'mutate', table: NB.ls, where: [['_uuid', '==', uuid(ls._uuid)]], mutations: [['other_config', 'delete', ovsSet(['requested-tnl-key'])], ['other_config', 'insert', otherConfig]] },
  ];
  const routerPort = asArray<string>(ls.ports).map((p) => nb.rows(NB.lsp).get(p)).find((r) => r?.name === `${s.name}-${ROUTER}`);
  if (routerPort) ops.push({ op: 'mutate', table: NB.ls, where: [['_uuid', '==', uuid(ls._uuid)]], mutations: [['ports', 'delete', ovsSet([uuid(routerPort._uuid)])]] });
  const lrp = [...nb.rows(NB.lrp).values()].find((r) => r.name === `${ROUTER}-${s.name}`);
  const router = routerRef(nb);
  if (lrp && router) ops.push({ op: 'mutate', table: NB.lr, where: [['_uuid', '==', router]], mutations: [['ports', 'delete', ovsSet([uuid(lrp._uuid)])]] });
  return ops;
}

function routedSwitchOps(nb: OvsdbClient, s: SwitchSpec, ls: Row | undefined, ids: ReturnType<typeof ovsMap>, routerRef: ReturnType<typeof uuid>, i: number): Operation[] {
  const lrpName = `${ROUTER}-${s.name}`;
  const networks = ovsSet(gatewayNetworks(s));
  const lrp = [...nb.rows(NB.lrp).values()].find((r) => r.name === lrpName);
  const otherConfig = ovsMap(s.tunnelKey === undefined ? {} : { 'requested-tnl-key': String(s.tunnelKey) });
  // The router port is the gateway's key in every zone: a routed packet from another node names
  // it as its logical inport, and each zone resolves that to its own copy of the router.
  const routerPortKey = portTunnelKey(s.cidrs, s.gateways);
  const routerPortOptions = ovsMap({ 'router-port': lrpName, ...(routerPortKey === undefined ? {} : { 'requested-tnl-key': String(routerPortKey) }) });
  const ops: Operation[] = [];
  if (lrp) {
    ops.push({ op: 'update', table: NB.lrp, where: [['_uuid', '==', uuid(lrp._uuid)]], row: { networks, mac: s.routerPortMac } });
  } else {
    ops.push(
      { op: 'insert', table: NB.lrp, 'uuid-name': `lrp${i}`, row: { name: lrpName, mac: s.routerPortMac, networks } },
      { op: 'mutate', table: NB.lr, where: [['_uuid', '==', routerRef]], mutations: [['ports', 'insert', ovsSet([namedUuid(`lrp${i}`)])]] },
    );
  }
  if (ls) {
    ops.push({ op: 'update', table: NB.ls, where: [['_uuid', '==', uuid(ls._uuid)]], row: { external_ids: ids } });
    // Only the key is ours in other_config: whatever else is there stays.
    ops.push({
      op: 'mutate', table: NB.ls, where: [['_uuid', '==', uuid(ls._uuid)]],
      mutations: [['other_config', 'delete', ovsSet(['requested-tnl-key'])], ['other_config', 'insert', otherConfig]],
    });
    const routerPort = asArray<string>(ls.ports).map((p) => nb.rows(NB.lsp).get(p)).find((r) => r?.name === `${s.name}-${ROUTER}`);
    if (routerPort) {
      ops.push({ op: 'update', table: NB.lsp, where: [['_uuid', '==', uuid(routerPort._uuid)]], row: { options: routerPortOptions } });
      return ops;
    }
  }
  ops.push({
    op: 'insert', table: NB.lsp, 'uuid-name': `rp${i}`,
    row: { name: `${s.name}-${ROUTER}`, type: 'router', addresses: ovsSet(['router']), options: routerPortOptions },
  });
  if (ls) {
    ops.push({ op: 'mutate', table: NB.ls, where: [['_uuid', '==', uuid(ls._uuid)]], mutations: [['ports', 'insert', ovsSet([namedUuid(`rp${i}`)])]] });
  } else {
    ops.push({ op: 'insert', table: NB.ls, row: { name: s.name, ports: namedUuid(`rp${i}`), external_ids: ids, other_config: otherConfig } });
  }
  return ops;
}

function nodePortOps(nb: OvsdbClient, p: NodePortSpec): Operation[] {
  const line = ovsSet([[p.mac, ...p.ips].join(' ')]);
  const security = p.forwards ? ovsSet([p.mac]) : line;
  const options = ovsMap(p.tunnelKey === undefined ? {} : { 'requested-tnl-key': String(p.tunnelKey) });
  const lsp = [...nb.rows(NB.lsp).values()].find((r) => r.name === p.lspName);
  if (lsp) return [{ op: 'update', table: NB.lsp, where: [['_uuid', '==', uuid(lsp._uuid)]], row: { addresses: line, port_security: security, options } }];
  return [
    { op: 'insert', table: NB.lsp, 'uuid-name': 'nodelsp', row: { name: p.lspName, addresses: line, port_security: security, options, external_ids: ovsMap({ 'ovnode:owner': 'ovnode-node' }) } },
    { op: 'mutate', table: NB.ls, where: [['name', '==', p.switchName]], mutations: [['ports', 'insert', ovsSet([namedUuid('nodelsp')])]] },
  ];
}

export const EGRESS_ROUTE_OWNER = 'egress';

/**
 * This zone's way out of the cluster: a default route per family to its own node's join address
 * of that family. Each zone has its own (routes are not shared), so pods leave through the node
 * they run on.
 */
export function egressRouteOps(nb: OvsdbClient, nodeJoinIps: readonly string[]): Operation[] {
  const router = [...nb.rows(NB.lr).values()].find((r) => r.name === ROUTER);
  if (!router) return [];
  const wanted = new Map(nodeJoinIps.map((ip) => [ip.includes(':') ? '::/0' : '0.0.0.0/0', ip]));
  const routes = nb.rows(NB.lrsr);
  const ours = asArray<string>(router.static_routes).map((u) => routes.get(u))
    .filter((r): r is NonNullable<typeof r> => r !== undefined && asMap(r.external_ids)['ovnode:owner'] === EGRESS_ROUTE_OWNER);
  const kept = new Set<string>();
  const ops: Operation[] = [];
  for (const r of ours) {
    const prefix = r.ip_prefix as string;
    if (wanted.get(prefix) === r.nexthop && !kept.has(prefix)) { kept.add(prefix); continue; }
    ops.push({ op: 'mutate', table: NB.lr, where: [['_uuid', '==', uuid(router._uuid)]], mutations: [['static_routes', 'delete', ovsSet([uuid(r._uuid as string)])]] });
  }
  let n = 0;
  for (const [prefix, nexthop] of wanted) {
    if (kept.has(prefix)) continue;
    const name = `egress${n++}`;
    ops.push(
      { op: 'insert', table: NB.lrsr, 'uuid-name': name, row: { ip_prefix: prefix, nexthop, external_ids: ovsMap({ 'ovnode:owner': EGRESS_ROUTE_OWNER }) } },
      { op: 'mutate', table: NB.lr, where: [['_uuid', '==', uuid(router._uuid)]], mutations: [['static_routes', 'insert', ovsSet([namedUuid(name)])]] },
    );
  }
  return ops;
}
