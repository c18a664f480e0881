// What the services controller reads from the NB cache: its Load_Balancer rows, and the
// load_balancer sets of the switches and the router (plus their names and external_ids, which
// the daemon's monitor has already). The daemon's NB monitor names its columns, so these must be
// added to it; the Load_Balancer table the controller can monitor itself.

import { OvsdbError } from '../../common/errors';
import type { OvsdbClient } from '../ovsdb/client';
import type { MonitorTables } from '../ovsdb/types';
import { NB } from '../ovs/schema';
import { LB_COLUMN, LB_TABLE } from './nb-plan';

export const LB_MONITOR: MonitorTables = {
  [LB_TABLE]: { columns: ['name', 'protocol', 'vips', 'options', 'external_ids'] },
};

const NEEDED: Record<string, readonly string[]> = {
  [NB.ls]: ['name', 'external_ids', LB_COLUMN],
  [NB.lr]: ['name', LB_COLUMN],
};

/** `base` (the daemon's NB monitor) with the columns and table the services controller reads. */
export function servicesNbMonitor(base: MonitorTables): MonitorTables {
  const out: MonitorTables = { ...base };
  for (const [table, columns] of Object.entries(NEEDED)) {
    const spec = base[table];
    // A spec without columns monitors them all already.
    if (spec && spec.columns === undefined) continue;
    out[table] = { ...spec, columns: [...new Set([...(spec?.columns ?? []), ...columns])] };
  }
  out[LB_TABLE] ??= LB_MONITOR[LB_TABLE] as NonNullable<MonitorTables[string]>;
  return out;
}

/** Monitors Load_Balancer unless the daemon's monitor (servicesNbMonitor) has it already. */
export async function monitorLoadBalancers(nb: Pick<OvsdbClient, 'monitor'>): Promise<void> {
  try {
    await nb.monitor(LB_MONITOR);
  } catch (e) {
    // MonitorSet.register: one monitor per table, so the cache has one owner.
    if (e instanceof OvsdbError && e.message.startsWith('tables already monitored')) return;
    throw e;
  }
}
