// Subnet objects -> logical switches on the node's router with their ACLs. Every subnet gets a
// lowest-priority allow-related so the switch is stateful: a drop ACL then stops new
// connections, never the replies of connections it did not forbid (Kube-OVN's subnet ACL
// examples rely on that: "VM1 may talk to others, but nobody may talk to VM1").

import { formatIp, parseCidr } from '../ipam/cidr';
import type { ObjectStore, SubnetObj } from '../objects/types';
import type { UnderlaySpec } from '../ovn/topology';
import type { DesiredAcl, DesiredQos, DesiredSwitch } from './model';
import { PRIORITY } from './priorities';

export interface SubnetShape { name: string; cidrs: string[]; gateways: string[]; excludeIps: string[] }

export function subnetShape(s: SubnetObj): SubnetShape {
  const cidrs = s.spec.cidrBlock.split(',').map((c) => parseCidr(c.trim()).text);
  const given = s.spec.gateway ? s.spec.gateway.split(',').map((g) => g.trim()) : [];
  const gateways = cidrs.map((c, i) => given[i] ?? (() => { const p = parseCidr(c); return formatIp(p.family, p.network + 1n); })());
  return { name: s.metadata.name, cidrs, gateways, excludeIps: s.spec.excludeIps };
}

export interface SubnetContext {
  store: ObjectStore;
  /** The node's built-in switches (default pod subnet, join), always stateful too. */
  builtin: Array<{ name: string; cidrs: string[]; gateways: string[] }>;
  /** The join network's CIDRs (the node's own traffic comes from there). */
  joinCidrs: readonly string[];
  qosBySwitch: Map<string, DesiredQos[]>;
}

export function translateSubnets(ctx: SubnetContext): DesiredSwitch[] {
  const out: DesiredSwitch[] = [];
  for (const b of ctx.builtin) {
    out.push({ ...b, acls: [stateful(`switch/${b.name}`)], qos: ctx.qosBySwitch.get(b.name) ?? [] });
  }
  for (const s of ctx.store.list('Subnet')) {
    if (ctx.builtin.some((b) => b.name === s.metadata.name)) continue;
    const shape = subnetShape(s);
    const owner = `subnet/${s.metadata.name}`;
    const acls: DesiredAcl[] = [stateful(owner), ...s.spec.acls.map((a) => ({ ...a, owner }))];
    if (s.spec.private) acls.push(...privateAcls(shape, s.spec.allowSubnets, ctx.joinCidrs, owner));
    const underlay = underlayOf(ctx.store, s);
    out.push({ name: shape.name, cidrs: shape.cidrs, gateways: shape.gateways, ...(underlay ? { underlay } : {}), acls, qos: ctx.qosBySwitch.get(shape.name) ?? [] });
  }
  return out;
}

function stateful(owner: string): DesiredAcl {
  return { direction: 'to-lport', priority: PRIORITY.subnetStateful, match: 'ip', action: 'allow-related', owner };
}

/** Kube-OVN private subnets: only the subnet itself, allowSubnets and the node may reach it. */
function privateAcls(s: SubnetShape, allow: string[], joinCidrs: readonly string[], owner: string): DesiredAcl[] {
  const acls: DesiredAcl[] = [];
  for (const cidr of s.cidrs) {
    const fam = cidr.includes(':') ? 'ip6' : 'ip4';
    const sameFamily = (c: string): boolean => c.includes(':') === cidr.includes(':');
    const allowed = [cidr, ...allow.filter(sameFamily), ...joinCidrs.filter(sameFamily)];
    acls.push(
      { direction: 'to-lport', priority: PRIORITY.privateSubnetDrop, match: `${fam}.dst == ${cidr}`, action: 'drop', owner },
      { direction: 'to-lport', priority: PRIORITY.privateSubnetAllow, match: `${fam}.dst == ${cidr} && ${fam}.src == {${allowed.join(', ')}}`, action: 'allow-related', owner },
    );
  }
  return acls;
}

/**
 * An underlay subnet's localnet settings, from its Vlan (Kube-OVN: Subnet.spec.vlan names a Vlan,
 * whose provider is the ProviderNetwork). A Vlan not (yet) there: still underlay, with no uplink
 * (provider '' gives no localnet traffic anywhere) rather than an overlay switch the subnet's
 * pods were never meant to be on.
 */
export function underlayOf(store: ObjectStore, s: SubnetObj): UnderlaySpec | undefined {
  if (!s.spec.vlan) return undefined;
  const vlan = store.get('Vlan', s.spec.vlan);
  return { provider: vlan?.spec.provider ?? '', vlanId: vlan?.spec.id ?? 0, logicalGateway: s.spec.logicalGateway };
}
