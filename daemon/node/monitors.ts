// What the daemon keeps in its OVSDB caches: every row it reads on the ADD/DEL/CHECK path.

import type { MonitorTables } from '../ovsdb/types';
import { NB, OVS, SB } from '../ovs/schema';

export const OVS_MONITOR: MonitorTables = {
  [OVS.root]: { columns: ['external_ids', 'bridges'] },
  [OVS.bridge]: { columns: ['name', 'ports', 'datapath_type'] },
  [OVS.port]: { columns: ['name', 'interfaces', 'external_ids'] },
  [OVS.iface]: { columns: ['name', 'type', 'mac', 'ofport', 'external_ids', 'error'] },
};

export const NB_MONITOR: MonitorTables = {
  [NB.ls]: { columns: ['name', 'ports', 'acls', 'qos_rules', 'external_ids', 'other_config'] },
  [NB.lsp]: { columns: ['name', 'type', 'addresses', 'port_security', 'options', 'external_ids'] },
  [NB.lr]: { columns: ['name', 'ports', 'static_routes'] },
  [NB.lrsr]: { columns: ['ip_prefix', 'nexthop', 'external_ids'] },
  [NB.lrp]: { columns: ['name', 'mac', 'networks'] },
  ACL: { columns: ['direction', 'priority', 'match', 'action', 'external_ids'] },
  Port_Group: { columns: ['name', 'ports', 'acls', 'external_ids'] },
  Address_Set: { columns: ['name', 'addresses', 'external_ids'] },
  QoS: { columns: ['direction', 'priority', 'match', 'bandwidth', 'external_ids'] },
};

export const SB_MONITOR: MonitorTables = {
  // Remote chassis (other nodes) are written by this daemon: their encaps and markers are read back.
  [SB.chassis]: { columns: ['name', 'hostname', 'encaps', 'other_config', 'external_ids'] },
  Encap: { columns: ['type', 'ip', 'chassis_name'] },
  // Remote pods' bindings: this daemon binds them to their node's chassis (northd does not); a
  // migrating VM's also to its other chassis, and its activation is read from the options.
  [SB.pb]: { columns: ['logical_port', 'type', 'chassis', 'additional_chassis', 'options'] },
};
