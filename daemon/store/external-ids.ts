// The checkpoint of an attachment, written where the data lives (OVS Interface and OVN
// Logical_Switch_Port external_ids) and read back at start. Keys iface-id, attached-mac,
// ip_addresses, sandbox and iface-id-ver are the ones ovn-controller and the other OVN CNIs use;
// ours are prefixed "ovnode:".

import type { Attachment } from './attachment';
import { decodeVfCheckpoint, encodeVfCheckpoint, VF_CHECKPOINT_KEY } from '../sriov/vf-checkpoint';

export const EXT = {
  ifaceId: 'iface-id',
  attachedMac: 'attached-mac',
  ipAddresses: 'ip_addresses',
  sandbox: 'sandbox',
  ifaceIdVer: 'iface-id-ver',
  podName: 'pod_name',
  podNamespace: 'pod_namespace',
  ovnInstalled: 'ovn-installed',
  owner: 'ovnode:owner',
  ifName: 'ovnode:ifname',
  netns: 'ovnode:netns',
  logicalSwitch: 'ovnode:logical_switch',
  network: 'ovnode:network',
  provider: 'ovnode:provider',
} as const;

export const OWNER = 'ovnode';

/**
 * Marks the rows a zone holds for another node (its pods' ports, its node port, its Chassis):
 * the value is that node's name. Such ports are not this node's pods, whatever their type.
 */
export const REMOTE_NODE = 'ovnode:remote-node';

/** Marks a pod's port written before its ADD (cluster/prepared-ports.ts): no sandbox yet. */
export const PREPARED = 'ovnode:prepared';

export function isRemoteNodeRow(externalIds: Record<string, unknown>): boolean {
  return externalIds[REMOTE_NODE] !== undefined;
}

type Ids = Record<string, string>;

/** external_ids for the OVS Interface row. */
export function toInterfaceExternalIds(a: Attachment): Ids {
  const ids: Ids = {
    [EXT.owner]: OWNER,
    [EXT.ifaceId]: a.lspName,
    [EXT.attachedMac]: a.mac,
    [EXT.ipAddresses]: a.ips.join(','),
    [EXT.sandbox]: a.sandbox,
    [EXT.ifName]: a.ifName,
    [EXT.netns]: a.netns,
    [EXT.logicalSwitch]: a.logicalSwitch,
    [EXT.network]: a.network,
  };
  if (a.podUid) ids[EXT.ifaceIdVer] = a.podUid;
  if (a.podName) ids[EXT.podName] = a.podName;
  if (a.podNamespace) ids[EXT.podNamespace] = a.podNamespace;
  if (a.provider) ids[EXT.provider] = a.provider;
  if (a.vf) ids[VF_CHECKPOINT_KEY] = encodeVfCheckpoint(a.vf);
  return ids;
}

/** external_ids for the Logical_Switch_Port: the same checkpoint, so either side can rebuild. */
export function toLspExternalIds(a: Attachment, hostIfName = a.hostIfName): Ids {
  const ids = toInterfaceExternalIds(a);
  delete ids[EXT.ifaceId];
  // The VF's checkpoint lives with its representor's port: the node's own database.
  delete ids[VF_CHECKPOINT_KEY];
  ids['ovnode:host_ifname'] = hostIfName;
  return ids;
}

/** Reads an attachment back from an Interface row's name + external_ids; undefined if not ours. */
export function fromInterfaceExternalIds(name: string, ids: Ids): Attachment | undefined {
  if (ids[EXT.owner] !== OWNER || !ids[EXT.sandbox] || !ids[EXT.ifaceId]) return undefined;
  return build(ids, ids[EXT.ifaceId] as string, name);
}

/** Reads an attachment back from an LSP row's name + external_ids; undefined if not ours. */
export function fromLspExternalIds(lspName: string, ids: Ids): Attachment | undefined {
  if (ids[EXT.owner] !== OWNER || !ids[EXT.sandbox]) return undefined;
  return build(ids, lspName, ids['ovnode:host_ifname'] ?? '');
}

function build(ids: Ids, lspName: string, hostIfName: string): Attachment {
  const a: Attachment = {
    sandbox: ids[EXT.sandbox] as string,
    ifName: ids[EXT.ifName] ?? 'eth0',
    netns: ids[EXT.netns] ?? '',
    network: ids[EXT.network] ?? '',
    lspName,
    logicalSwitch: ids[EXT.logicalSwitch] ?? '',
    hostIfName,
    mac: ids[EXT.attachedMac] ?? '',
    ips: (ids[EXT.ipAddresses] ?? '').split(',').filter(Boolean),
  };
  if (ids[EXT.podName]) a.podName = ids[EXT.podName];
  if (ids[EXT.podNamespace]) a.podNamespace = ids[EXT.podNamespace];
  if (ids[EXT.ifaceIdVer]) a.podUid = ids[EXT.ifaceIdVer];
  if (ids[EXT.provider]) a.provider = ids[EXT.provider];
  const vf = decodeVfCheckpoint(ids[VF_CHECKPOINT_KEY]);
  if (vf) a.vf = vf;
  return a;
}
