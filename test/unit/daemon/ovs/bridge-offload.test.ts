// ensureBridge losing the insert race to ovn-controller; configureChassis and OVS hardware offload: other_config:hw-offload=true when asked (in the same
// transaction as the chassis settings, on a fresh database and on an existing root row), left as
// it is otherwise. Against the fake OVSDB server with the real Open_vSwitch schema.

import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { configureChassis, ensureBridge, type ChassisConfig } from '../../../../daemon/ovs/bridge';
import { OVS } from '../../../../daemon/ovs/schema';
import { OvsdbClient } from '../../../../daemon/ovsdb/client';
import { ovsMap } from '../../../../daemon/ovsdb/values';
import { OVS_MONITOR } from '../../../../daemon/node/monitors';
import { FakeOvsdbServer, loadSchema, OVS_SCHEMA_PATH } from '../../../fakes/fake-ovsdb-server';

const chassis: ChassisConfig = { systemId: 'n1', hostname: 'n1', sbRemote: 'unix:/nonexistent', encapIp: '127.0.0.1', bridge: 'br-int', datapathType: 'system' };
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

async function client(): Promise<OvsdbClient> {
  const server = await FakeOvsdbServer.start({ database: 'Open_vSwitch', schema: loadSchema(OVS_SCHEMA_PATH) });
  cleanups.push(() => server.stop());
  const ovs = new OvsdbClient({ socketPath: server.socketPath, database: 'Open_vSwitch', reconnectDelayMs: 5, logger: pino({ level: 'silent' }) });
  cleanups.push(() => ovs.close());
  await ovs.connect();
  await ovs.monitor(OVS_MONITOR);
  return ovs;
}

/** Read back from the server (the daemon's monitor does not carry other_config). */
async function otherConfig(ovs: OvsdbClient): Promise<Record<string, unknown>> {
  const [r] = await ovs.transact([{ op: 'select', table: OVS.root, where: [], columns: ['other_config'] }]);
  // Wire form: ["map", [[key, value], ...]].
  const wire = (r?.rows as Array<Record<string, unknown>> | undefined)?.[0]?.other_config as ['map', Array<[string, string]>] | undefined;
  return Object.fromEntries(wire?.[1] ?? []);
}

describe('configureChassis: hw-offload', () => {
  it('sets other_config:hw-offload=true on a fresh database and on an existing root row, keeping other keys', async () => {
    const fresh = await client();
    await configureChassis(fresh, { ...chassis, hwOffload: true });
    expect((await otherConfig(fresh))['hw-offload']).toBe('true');

    const existing = await client();
    await existing.transact([{ op: 'insert', table: OVS.root, row: { other_config: ovsMap({ 'hw-offload': 'false', 'max-idle': '10000' }) } }]);
    await configureChassis(existing, { ...chassis, hwOffload: true });
    expect(await otherConfig(existing)).toMatchObject({ 'hw-offload': 'true', 'max-idle': '10000' });
  });

  it('leaves other_config as the operator set it when offload is not asked for', async () => {
    const ovs = await client();
    await ovs.transact([{ op: 'insert', table: OVS.root, row: { other_config: ovsMap({ 'hw-offload': 'true' }) } }]);
    await configureChassis(ovs, chassis);
    expect((await otherConfig(ovs))['hw-offload']).toBe('true');
    const bare = await client();
    await configureChassis(bare, chassis);
    expect((await otherConfig(bare))['hw-offload']).toBeUndefined();
  });
});

describe('ensureBridge', () => {
  it('survives ovn-controller creating the integration bridge between its read and its write', async () => {
    const ovs = await client();
    await configureChassis(ovs, chassis);
    // ovn-controller's insert, committed after the daemon looked at its cache: the daemon's
    // first look (stubbed) still sees no bridge, so its insert breaks the Interface name index.
    await ovs.transact([
      { op: 'insert', table: OVS.iface, 'uuid-name': 'i', row: { name: 'br-int', type: 'internal' } },
      { op: 'insert', table: OVS.port, 'uuid-name': 'p', row: { name: 'br-int', interfaces: ['named-uuid', 'i'] } },
      { op: 'insert', table: OVS.bridge, 'uuid-name': 'b', row: { name: 'br-int', ports: ['named-uuid', 'p'], fail_mode: 'secure' } },
      { op: 'mutate', table: OVS.root, where: [], mutations: [['bridges', 'insert', ['set', [['named-uuid', 'b']]]]] },
    ]);
    const rows = ovs.rows.bind(ovs);
    let stale = true;
    (ovs as unknown as { rows: typeof ovs.rows }).rows = (table: string) => (stale && table === OVS.bridge ? (stale = false, new Map()) : rows(table));
    await ensureBridge(ovs, chassis, { name: 'ovn0', mac: '0a:58:64:40:00:02', ifaceId: 'node-n1' }, { freshSwitch: true });
    const [r] = await ovs.transact([{ op: 'select', table: OVS.bridge, where: [['name', '==', 'br-int']], columns: ['name', 'datapath_type'] }]);
    expect((r?.rows as unknown[]).length).toBe(1);
    expect((r?.rows as Array<{ datapath_type: string }>)[0]?.datapath_type).toBe('system');
    const [p] = await ovs.transact([{ op: 'select', table: OVS.port, where: [['name', '==', 'ovn0']], columns: ['name'] }]);
    expect((p?.rows as unknown[]).length).toBe(1);
  });
});
