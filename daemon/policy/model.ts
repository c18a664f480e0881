// The desired OVN NB state of the security model, as plain data: what the translation modules
// produce and what reconcile.ts diffs against the NB. Every row carries a stable key so that an
// unchanged object is recognised and left alone (no delete-and-recreate churn).

import type { UnderlaySpec } from '../ovn/topology';
export type AclAction = 'allow' | 'allow-related' | 'allow-stateless' | 'drop' | 'reject';

export interface DesiredAcl {
  direction: 'from-lport' | 'to-lport';
  priority: number;
  match: string;
  action: AclAction;
  /** Who asked for it, e.g. "subnet/vswitch1", "np/default/ip-block", "sg/sg1". */
  owner: string;
}

/** ACLs hang off a logical switch (subnet ACLs) or a port group (SG, NetworkPolicy). */
export interface DesiredPortGroup {
  name: string;
  /** LSP names; resolved to UUIDs against the NB. */
  ports: string[];
  acls: DesiredAcl[];
  owner: string;
}

export interface DesiredAddressSet { name: string; addresses: readonly string[]; owner: string }

export interface DesiredQos {
  direction: 'from-lport' | 'to-lport';
  priority: number;
  match: string;
  /** kbit/s and kbit, as OVN's QoS bandwidth column. */
  rate: number;
  burst: number;
  owner: string;
}

export interface DesiredSwitch {
  name: string;
  cidrs: string[];
  gateways: string[];
  /** Datapath key shared by every zone (cluster/tunnel-keys.ts). */
  tunnelKey?: number;
  /** Underlay (Subnet.spec.vlan): the localnet port's provider and tag, and who is the gateway. */
  underlay?: UnderlaySpec;
  acls: DesiredAcl[];
  qos: DesiredQos[];
}

/** Per pod port: the LSP's port_security (null = leave as ADD wrote it). */
export interface DesiredPort { lspName: string; portSecurity: string[] }

export interface DesiredState {
  switches: DesiredSwitch[];
  portGroups: DesiredPortGroup[];
  addressSets: DesiredAddressSet[];
  ports: DesiredPort[];
}

/** Stable identity of an ACL or QoS rule: its content. */
export function aclKey(a: DesiredAcl): string {
  return `${a.owner}|${a.direction}|${a.priority}|${a.action}|${a.match}`;
}
export function qosKey(q: DesiredQos): string {
  return `${q.owner}|${q.direction}|${q.priority}|${q.match}|${q.rate}|${q.burst}`;
}
