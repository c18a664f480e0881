// Shared by the policy tests: builders for validated objects and pod ports, and an NB-like
// FakeOvsdbServer (schema, router, built-in switches, pod ports with ovnode external_ids) with an
// OvsdbClient monitoring it the way the daemon does.

import { OvsdbClient } from '../../../../daemon/ovsdb/client';
import type { Operation } from '../../../../daemon/ovsdb/types';
import { asArray, namedUuid, ovsMap, ovsSet, uuid, type Row } from '../../../../daemon/ovsdb/values';
import { NB_MONITOR } from '../../../../daemon/node/monitors';
import type {
  ContainerPort, LabelSelector, NamespaceObj, NetworkPolicyObj, NetworkPolicyRule, ObjectMeta, PodObj,
  SecurityGroupObj, SecurityGroupRule, SubnetAcl, SubnetObj, VipObj,
} from '../../../../daemon/objects/types';
import type { DesiredSwitch } from '../../../../daemon/policy/model';
import type { PodPort } from '../../../../daemon/policy/pods';
import type { SwitchPlanner } from '../../../../daemon/policy/reconcile';
import type { Attachment } from '../../../../daemon/store/attachment';
import { toLspExternalIds } from '../../../../daemon/store/external-ids';
import { FakeOvsdbServer, schemaOf } from '../../../fakes/fake-ovsdb-server';

// ---- objects (validated, defaulted forms) ----

export const meta = (name: string, namespace = '', labels: Record<string, string> = {}, annotations: Record<string, string> = {}): ObjectMeta =>
  ({ name, namespace, labels, annotations });

export const sel = (matchLabels: Record<string, string> = {}, matchExpressions: LabelSelector['matchExpressions'] = []): LabelSelector =>
  ({ matchLabels, matchExpressions });

export const namespace = (name: string, labels: Record<string, string> = {}): NamespaceObj => ({ kind: 'Namespace', metadata: meta(name, '', labels) });

export function pod(name: string, ns: string, opts: { labels?: Record<string, string>; annotations?: Record<string, string>; ports?: ContainerPort[] } = {}): PodObj {
  return { kind: 'Pod', metadata: meta(name, ns, opts.labels ?? {}, opts.annotations ?? {}), spec: { containers: [{ name: 'c', ports: opts.ports ?? [] }] } };
}

export function netpol(name: string, ns: string, spec: Partial<NetworkPolicyObj['spec']> & { podSelector?: LabelSelector }): NetworkPolicyObj {
  const ingress: NetworkPolicyRule[] = spec.ingress ?? [];
  const egress: NetworkPolicyRule[] = spec.egress ?? [];
  return {
    kind: 'NetworkPolicy',
    metadata: meta(name, ns),
    spec: { podSelector: spec.podSelector ?? sel(), policyTypes: spec.policyTypes ?? ['Ingress'], ingress, egress },
  };
}

export function secgroup(name: string, spec: Partial<SecurityGroupObj['spec']> = {}): SecurityGroupObj {
  return { kind: 'SecurityGroup', metadata: meta(name), spec: { ingressRules: [], egressRules: [], allowSameGroupTraffic: false, ...spec } };
}

export function sgRule(r: Partial<SecurityGroupRule> = {}): SecurityGroupRule {
  return { ipVersion: 'ipv4', protocol: 'all', priority: 1, remoteType: 'address', policy: 'allow', ...r };
}

export function subnet(name: string, spec: Partial<SubnetObj['spec']> & { cidrBlock: string }): SubnetObj {
  return {
    kind: 'Subnet',
    metadata: meta(name),
    spec: { gateway: '', excludeIps: [], acls: [] as SubnetAcl[], namespaces: [], provider: 'ovn', private: false, allowSubnets: [], logicalGateway: false, ...spec },
  };
}

export const vip = (name: string, spec: VipObj['spec']): VipObj => ({ kind: 'Vip', metadata: meta(name), spec });

/** A pod port as podPorts() would build it (namespace labels: just the automatic one). */
export function podPort(p: PodObj, ips: string[], opts: { lsp?: string; ls?: string; mac?: string; namespaceLabels?: Record<string, string> } = {}): PodPort {
  const ns = p.metadata.namespace;
  return {
    lspName: opts.lsp ?? `${p.metadata.name}.${ns}`,
    name: p.metadata.name,
    namespace: ns,
    logicalSwitch: opts.ls ?? 'ovn-default',
    mac: opts.mac ?? '0a:58:0a:10:00:99',
    ips,
    labels: p.metadata.labels,
    namespaceLabels: { ...(opts.namespaceLabels ?? {}), 'kubernetes.io/metadata.name': ns },
    pod: p,
  };
}

// ---- NB fake ----

/** The NB tables and columns the daemon monitors and writes (ovn-nb(5) names and shapes). */
export const NB_SCHEMA = schemaOf('OVN_Northbound', {
  Logical_Switch: { name: 'string', ports: 'set:uuid', acls: 'set:uuid', qos_rules: 'set:uuid', external_ids: 'map', other_config: 'map' },
  Logical_Switch_Port: { name: 'string', type: 'string', addresses: 'set:string', port_security: 'set:string', options: 'map', external_ids: 'map', tag: 'optional:integer' },
  Logical_Router: { name: 'string', ports: 'set:uuid', static_routes: 'set:uuid', external_ids: 'map' },
  Logical_Router_Static_Route: { ip_prefix: 'string', nexthop: 'string', external_ids: 'map' },
  Logical_Router_Port: { name: 'string', mac: 'string', networks: 'set:string', external_ids: 'map' },
  ACL: { direction: 'string', priority: 'integer', match: 'string', action: 'string', external_ids: 'map' },
  Port_Group: { name: 'string', ports: 'set:uuid', acls: 'set:uuid', external_ids: 'map' },
  Address_Set: { name: 'string', addresses: 'set:string', external_ids: 'map' },
  QoS: { direction: 'string', priority: 'integer', match: 'string', bandwidth: 'map', external_ids: 'map' },
});

export const BUILTIN = [
  { name: 'ovn-default', cidrs: ['10.16.0.0/16'], gateways: ['10.16.0.1'] },
  { name: 'join', cidrs: ['100.64.0.0/16'], gateways: ['100.64.0.1'] },
];
export const JOIN_CIDR = '100.64.0.0/16';
export const NODE_IPS = ['100.64.0.2'];

export interface NbPod { name: string; namespace: string; ips: string[]; mac?: string; ls?: string }

export const lspNameOf = (p: { name: string; namespace: string }): string => `${p.name}.${p.namespace}`;

export function attachmentOf(p: NbPod): Attachment {
  return {
    sandbox: `sb-${p.name}`, ifName: 'eth0', netns: `/var/run/netns/${p.name}`, network: 'ovn',
    lspName: lspNameOf(p), logicalSwitch: p.ls ?? 'ovn-default', hostIfName: `${p.name}_h`,
    mac: p.mac ?? '0a:58:0a:10:00:01', ips: p.ips, podName: p.name, podNamespace: p.namespace,
  };
}

/** Insert of a pod's LSP as the ADD path writes it, plus its switch's `ports` mutation. */
export function lspInsertOps(p: NbPod, uuidName: string): Operation[] {
  const a = attachmentOf(p);
  const line = [a.mac, ...a.ips].join(' ');
  return [
    { op: 'insert', table: 'Logical_Switch_Port', 'uuid-name': uuidName, row: { name: a.lspName, addresses: ovsSet([line]), port_security: ovsSet([line]), external_ids: ovsMap(toLspExternalIds(a)) } },
    { op: 'mutate', table: 'Logical_Switch', where: [['name', '==', a.logicalSwitch]], mutations: [['ports', 'insert', ovsSet([namedUuid(uuidName)])]] },
  ];
}

/** The node's topology as ensureTopology leaves it: router, built-in switches with their ids. */
export function topologyOps(): Operation[] {
  const ops: Operation[] = [{ op: 'insert', table: 'Logical_Router', row: { name: 'ovn-cluster' } }];
  for (const b of BUILTIN) {
    ops.push({
      op: 'insert', table: 'Logical_Switch',
      row: { name: b.name, external_ids: ovsMap({ 'ovnode:owner': 'ovnode', 'ovnode:cidrs': b.cidrs.join(','), 'ovnode:gateways': b.gateways.join(',') }) },
    });
  }
  return ops;
}

export interface Nb { fake: FakeOvsdbServer; nb: OvsdbClient; close(): Promise<void> }

/** A fake NB holding the topology and these pods, and a connected client monitoring NB_MONITOR. */
export async function startNb(pods: NbPod[] = []): Promise<Nb> {
  const fake = await FakeOvsdbServer.start({ database: 'OVN_Northbound', schema: NB_SCHEMA });
  fake.apply([...topologyOps(), ...pods.flatMap((p, i) => lspInsertOps(p, `lsp${i}`))]);
  const nb = new OvsdbClient({ socketPath: fake.socketPath, database: 'OVN_Northbound', reconnectDelayMs: 5 });
  await nb.connect();
  await nb.monitor(NB_MONITOR);
  return { fake, nb, close: async () => { await nb.close(); await fake.close(); } };
}

/** The client's cached rows of a table. */
export const rowsOf = (nb: OvsdbClient, table: string): Row[] => [...nb.rows(table).values()];

export const byName = (nb: OvsdbClient, table: string, name: string): Row | undefined => rowsOf(nb, table).find((r) => r.name === name);

/** Names of the LSPs a port group holds, sorted. */
export function portNames(nb: OvsdbClient, pgName: string): string[] {
  const pg = byName(nb, 'Port_Group', pgName);
  const lsps = nb.rows('Logical_Switch_Port');
  return asArray<string>(pg?.ports).map((u) => lsps.get(u)?.name as string).sort();
}

/** The ACL rows a port group or switch refers to. */
export function aclsOf(nb: OvsdbClient, table: 'Port_Group' | 'Logical_Switch', name: string): Row[] {
  const row = byName(nb, table, name);
  return asArray<string>(row?.acls).map((u) => nb.rows('ACL').get(u)).filter((r): r is Row => r !== undefined);
}

export const addressesOf = (nb: OvsdbClient, asName: string): string[] => asArray<string>(byName(nb, 'Address_Set', asName)?.addresses).slice().sort();

/** A SwitchPlanner that records its calls and inserts a bare switch row (no router port). */
export class RecordingSwitchPlanner implements SwitchPlanner {
  readonly created: Array<{ name: string; index: number; cidrs: string[]; gateways: string[] }> = [];
  readonly removed: string[] = [];

  constructor(private readonly nb: OvsdbClient) {}

  switchOps(s: DesiredSwitch, index: number): Operation[] {
    this.created.push({ name: s.name, index, cidrs: s.cidrs, gateways: s.gateways });
    const ids = ovsMap({ 'ovnode:owner': 'ovnode', 'ovnode:cidrs': s.cidrs.join(','), 'ovnode:gateways': s.gateways.join(','), 'ovnode:subnet': 'true' });
    const ls = byName(this.nb, 'Logical_Switch', s.name);
    if (ls) return [{ op: 'update', table: 'Logical_Switch', where: [['_uuid', '==', uuid(ls._uuid)]], row: { external_ids: ids } }];
    return [{ op: 'insert', table: 'Logical_Switch', row: { name: s.name, external_ids: ids } }];
  }

  removeSwitchOps(name: string): Operation[] {
    this.removed.push(name);
    return [{ op: 'delete', table: 'Logical_Switch', where: [['name', '==', name]] }];
  }
}
