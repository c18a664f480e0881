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
  [NB.ls]: { columns: ['name', 'ports', 'external_ids'] },
  [NB.lsp]: { columns: ['name', 'type', 'addresses', 'port_security', 'external_ids'] },
  [NB.lr]: { columns: ['name', 'ports'] },
  [NB.lrp]: { columns: ['name', 'mac', 'networks'] },
};

export const SB_MONITOR: MonitorTables = { [SB.chassis]: { columns: ['name', 'hostname'] } };
