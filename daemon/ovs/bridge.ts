// Node-level OVS configuration: the Open_vSwitch row's chassis settings (what ovn-controller
// reads to join OVN), the integration bridge, and the node's own internal port on it.

import { OvsdbError } from '../../common/errors';
import type { OvsdbClient } from '../ovsdb/client';
import type { Mutation, Operation } from '../ovsdb/types';
import { namedUuid, ovsMap, ovsSet, uuid } from '../ovsdb/values';
import { OVS } from './schema';

export interface ChassisConfig {
  systemId: string;
  hostname: string;
  sbRemote: string;
  encapIp: string;
  bridge: string;
  datapathType: 'netdev' | 'system';
  /**
   * One OVN zone per node (cluster mode): ovn-controller builds tunnels to remote chassis (other
   * zones) only from a chassis marked as an interconnection one.
   */
  interconnect?: boolean;
  /**
   * OVS hardware offload (other_config:hw-offload=true): vswitchd reads it once at start, so a
   * running one applies it after its restart. Left as the operator set it when false.
   */
  hwOffload?: boolean;
}

/** Makes sure the Open_vSwitch root row exists and carries the chassis settings. */
export async function configureChassis(ovs: OvsdbClient, c: ChassisConfig): Promise<void> {
  const root = [...ovs.rows(OVS.root).values()][0];
  const ids = {
    'system-id': c.systemId,
    hostname: c.hostname,
    'ovn-remote': c.sbRemote,
    'ovn-encap-type': 'geneve',
    'ovn-encap-ip': c.encapIp,
    'ovn-bridge': c.bridge,
    'ovn-bridge-datapath-type': c.datapathType,
    'ovn-is-interconn': c.interconnect ? 'true' : 'false',
  };
  const offload = { 'hw-offload': 'true' };
  const ops: Operation[] = root
    ? [{
      op: 'mutate', table: OVS.root, where: [],
      mutations: [
        ['external_ids', 'delete', ovsSet(Object.keys(ids))], ['external_ids', 'insert', ovsMap(ids)],
        ...(c.hwOffload ? [['other_config', 'delete', ovsSet(Object.keys(offload))], ['other_config', 'insert', ovsMap(offload)]] satisfies Mutation[] : []),
      ],
    }]
    : [{ op: 'insert', table: OVS.root, row: { external_ids: ovsMap(ids), ...(c.hwOffload ? { other_config: ovsMap(offload) } : {}) } }];
  await ovs.transact(ops);
}

export interface InternalPortSpec { name: string; mac: string; ifaceId: string }

/** Creates the bridge (with its local port) and the node's internal port when missing. */
export async function ensureBridge(ovs: OvsdbClient, c: ChassisConfig, nodePort: InternalPortSpec, opts: { freshSwitch: boolean }): Promise<void> {
  try {
    await ensureBridgeOnce(ovs, c, nodePort, opts);
  } catch (e) {
    // ovn-controller creates the integration bridge itself once it reads ovn-bridge (written by
    // configureChassis just before): with a stack that runs it already (--stack external), its
    // insert can commit between our cache read and our transaction, whose insert then breaks the
    // name index (seen in CI). Its row reached our cache before this reply (the server sends a
    // commit's monitor updates before it answers a later transaction): one more pass updates it.
    if (!(e instanceof OvsdbError) || ![...ovs.rows(OVS.bridge).values()].some((b) => b.name === c.bridge)) throw e;
    await ensureBridgeOnce(ovs, c, nodePort, opts);
  }
}

async function ensureBridgeOnce(ovs: OvsdbClient, c: ChassisConfig, nodePort: InternalPortSpec, opts: { freshSwitch: boolean }): Promise<void> {
  const bridge = [...ovs.rows(OVS.bridge).values()].find((b) => b.name === c.bridge);
  const ops: Operation[] = [];
  if (!bridge) {
    ops.push(
      { op: 'insert', table: OVS.iface, 'uuid-name': 'brif', row: { name: c.bridge, type: 'internal' } },
      { op: 'insert', table: OVS.port, 'uuid-name': 'brport', row: { name: c.bridge, interfaces: namedUuid('brif') } },
      {
        op: 'insert', table: OVS.bridge, 'uuid-name': 'br',
        row: {
          name: c.bridge, ports: namedUuid('brport'), datapath_type: c.datapathType, fail_mode: 'secure',
          other_config: ovsMap({ 'disable-in-band': 'true' }),
        },
      },
      { op: 'mutate', table: OVS.root, where: [], mutations: [['bridges', 'insert', ovsSet([namedUuid('br')])]] },
    );
  } else if (bridge.datapath_type !== c.datapathType) {
    ops.push({ op: 'update', table: OVS.bridge, where: [['_uuid', '==', uuid(bridge._uuid)]], row: { datapath_type: c.datapathType } });
  }
  const iface = [...ovs.rows(OVS.iface).values()].find((i) => i.name === nodePort.name);
  const ifaceIds = { 'iface-id': nodePort.ifaceId, 'ovnode:owner': 'ovnode-node' };
  if (!iface) {
    ops.push(
      { op: 'insert', table: OVS.iface, 'uuid-name': 'nodeif', row: { name: nodePort.name, type: 'internal', mac: nodePort.mac, external_ids: ovsMap(ifaceIds) } },
      { op: 'insert', table: OVS.port, 'uuid-name': 'nodeport', row: { name: nodePort.name, interfaces: namedUuid('nodeif') } },
      {
        op: 'mutate', table: OVS.bridge, where: [['name', '==', c.bridge]],
        mutations: [['ports', 'insert', ovsSet([namedUuid('nodeport')])]],
      },
    );
  } else if (opts.freshSwitch) {
    // ofport is persisted: the value left by the previous ovs-vswitchd would make "the tap
    // device exists" look true before the new one has created it. Clear it (vswitchd rewrites it
    // when it adds the port). An adopted, running vswitchd keeps its port and its ofport.
    ops.push({
      op: 'update', table: OVS.iface, where: [['_uuid', '==', uuid(iface._uuid)]],
      row: { mac: nodePort.mac, external_ids: ovsMap(ifaceIds), ofport: ovsSet([]) },
    });
  }
  if (ops.length === 0) return;
  const res = await ovs.transact(ops);
  if (res.some((r) => r.error)) throw new OvsdbError('cannot create the integration bridge');
}
