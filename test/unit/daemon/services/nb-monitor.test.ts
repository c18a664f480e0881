// The NB columns the services controller reads: added to the daemon's monitor without changing
// it, and the Load_Balancer monitor registered by the controller unless the daemon has it.
import { afterEach, describe, expect, it } from 'vitest';
import { NB_MONITOR } from '../../../../daemon/node/monitors';
import { OvsdbClient } from '../../../../daemon/ovsdb/client';
import { LB_MONITOR, monitorLoadBalancers, servicesNbMonitor } from '../../../../daemon/services/nb-monitor';
import { FakeOvsdbServer, loadSchema, NB_SCHEMA_PATH } from '../../../fakes/fake-ovsdb-server';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('servicesNbMonitor', () => {
  it('adds load_balancer to switches and the router and the Load_Balancer table, leaving the rest and its input as they were', () => {
    const before = JSON.stringify(NB_MONITOR);
    const m = servicesNbMonitor(NB_MONITOR);
    expect(JSON.stringify(NB_MONITOR)).toBe(before);
    expect(m.Logical_Switch?.columns).toEqual([...(NB_MONITOR.Logical_Switch?.columns ?? []), 'load_balancer']);
    expect(m.Logical_Router?.columns).toEqual(expect.arrayContaining(['name', 'ports', 'load_balancer']));
    expect(m.Load_Balancer).toEqual(LB_MONITOR.Load_Balancer);
    expect(m.Logical_Switch_Port).toBe(NB_MONITOR.Logical_Switch_Port);
    // Applied twice, nothing is added twice.
    expect(servicesNbMonitor(m)).toEqual(m);
  });

  it('keeps a table monitored with all its columns as it is', () => {
    expect(servicesNbMonitor({ Logical_Switch: {} }).Logical_Switch).toEqual({});
  });
});

describe('monitorLoadBalancers', () => {
  async function client(): Promise<OvsdbClient> {
    const fake = await FakeOvsdbServer.start({ database: 'OVN_Northbound', schema: loadSchema(NB_SCHEMA_PATH) });
    const nb = new OvsdbClient({ socketPath: fake.socketPath, database: 'OVN_Northbound', reconnectDelayMs: 5 });
    cleanups.push(() => fake.close(), () => nb.close());
    await nb.connect();
    return nb;
  }

  it('registers the Load_Balancer monitor, and is content when one exists already', async () => {
    const nb = await client();
    await monitorLoadBalancers(nb);
    await monitorLoadBalancers(nb);
    const other = await client();
    await other.monitor(servicesNbMonitor(NB_MONITOR));
    await expect(monitorLoadBalancers(other)).resolves.toBeUndefined();
  });
});
