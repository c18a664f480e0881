// syncProviderBridges against the fake OVSDB server with the real Open_vSwitch schema (garbage
// collection, indexes and referential integrity as ovsdb-server does them): every sync that
// changes something writes exactly one transaction, one that finds everything right writes none,
// foreign bridges, ports and mappings are left alone, and refusals write nothing.

import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidConfigError } from '../../../../common/errors';
import { OVS_MONITOR } from '../../../../daemon/node/monitors';
import {
  BRIDGE_MAPPINGS_KEY, parseBridgeMappings, PROVIDER_KEYS, syncProviderBridges, type ProviderBridgeDeps, type ProviderBridgeSpec,
} from '../../../../daemon/node/provider-bridges';
import { OVS } from '../../../../daemon/ovs/schema';
import { OvsdbClient } from '../../../../daemon/ovsdb/client';
import type { Operation } from '../../../../daemon/ovsdb/types';
import { asArray, asMap, namedUuid, ovsMap, ovsSet, type Row } from '../../../../daemon/ovsdb/values';
import { FakeOvsdbServer, loadSchema, OVS_SCHEMA_PATH } from '../../../fakes/fake-ovsdb-server';

const SCHEMA = loadSchema(OVS_SCHEMA_PATH);
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

interface World { server: FakeOvsdbServer; deps: ProviderBridgeDeps }

async function world(opts: { root?: boolean; datapathType?: 'netdev' | 'system' } = {}): Promise<World> {
  const server = await FakeOvsdbServer.start({ database: 'Open_vSwitch', schema: SCHEMA });
  cleanups.push(() => server.close());
  const ovs = new OvsdbClient({ socketPath: server.socketPath, database: 'Open_vSwitch', reconnectDelayMs: 5, logger: pino({ level: 'silent' }) });
  cleanups.push(() => ovs.close());
  await ovs.connect();
  // As in the daemon, though the module reads with selects and does not need it.
  await ovs.monitor(OVS_MONITOR);
  if (opts.root !== false) server.apply([{ op: 'insert', table: OVS.root, row: { external_ids: ovsMap({ 'system-id': 'n1' }) } }]);
  return { server, deps: { ovs, log: pino({ level: 'silent' }), datapathType: opts.datapathType ?? 'netdev' } };
}

/** Transactions the client sent that write (select-only ones are the module's reads). */
const writes = (w: World): Operation[][] => w.server.requests
  .filter((r) => r.method === 'transact')
  .map((r) => (r.params as unknown[]).slice(1) as Operation[])
  .filter((ops) => ops.some((o) => o.op !== 'select'));

const sync = (w: World, desired: ProviderBridgeSpec[]) => syncProviderBridges(w.deps, desired);
const rows = (w: World, table: string): Row[] => w.server.rows(table);
const bridge = (w: World, name: string): Row | undefined => rows(w, OVS.bridge).find((b) => b.name === name);
const port = (w: World, name: string): Row | undefined => rows(w, OVS.port).find((p) => p.name === name);
const iface = (w: World, name: string): Row | undefined => rows(w, OVS.iface).find((i) => i.name === name);
const portNames = (w: World, name: string): string[] =>
  asArray<string>(bridge(w, name)?.ports).map((u) => rows(w, OVS.port).find((p) => p._uuid === u)?.name as string).sort();
const mappings = (w: World): string | undefined => asMap(rows(w, OVS.root)[0]?.external_ids)[BRIDGE_MAPPINGS_KEY] as string | undefined;
const trunks = (w: World, name: string): number[] => asArray<number>(port(w, name)?.trunks).sort((a, b) => a - b);
/** Everything the module could have written, for before/after comparisons. */
const state = (w: World): unknown => [OVS.root, OVS.bridge, OVS.port, OVS.iface].map((t) => rows(w, t).sort((a, b) => a._uuid.localeCompare(b._uuid)));

/** A bridge ovnode does not own (no markers), with one port per name, as an operator would add it. */
function foreignBridge(w: World, name: string, ports: string[]): void {
  const ops: unknown[] = [];
  ports.forEach((p, i) => ops.push(
    { op: 'insert', table: OVS.iface, 'uuid-name': `i${i}`, row: { name: p } },
    { op: 'insert', table: OVS.port, 'uuid-name': `p${i}`, row: { name: p, interfaces: namedUuid(`i${i}`) } },
  ));
  ops.push(
    { op: 'insert', table: OVS.bridge, 'uuid-name': 'br', row: { name, ports: ovsSet(ports.map((_, i) => namedUuid(`p${i}`))) } },
    { op: 'mutate', table: OVS.root, where: [], mutations: [['bridges', 'insert', ovsSet([namedUuid('br')])]] },
  );
  expect(JSON.stringify(w.server.apply(ops))).not.toContain('error');
}

/** What ovn-controller adds for a localnet port: a patch port on the provider bridge (no ovnode marker). */
function patchPort(w: World, onBridge: string, name: string): void {
  const res = w.server.apply([
    { op: 'insert', table: OVS.iface, 'uuid-name': 'i', row: { name, type: 'patch', options: ovsMap({ peer: `${name}-peer` }) } },
    { op: 'insert', table: OVS.port, 'uuid-name': 'p', row: { name, interfaces: namedUuid('i'), external_ids: ovsMap({ 'ovn-localnet-port': 'localnet.u1' }) } },
    { op: 'mutate', table: OVS.bridge, where: [['name', '==', onBridge]], mutations: [['ports', 'insert', ovsSet([namedUuid('p')])]] },
  ]);
  expect(JSON.stringify(res)).not.toContain('error');
}

const P1: ProviderBridgeSpec = { provider: 'prov1', interface: 'eth1', vlanIds: [100, 0] };
const P2: ProviderBridgeSpec = { provider: 'prov2', interface: 'eth2', vlanIds: [] };

describe('syncProviderBridges', () => {
  it('creates br-<provider> with its local port and the uplink trunk, and maps it, in one transaction', async () => {
    const w = await world();
    await expect(sync(w, [P1])).resolves.toEqual({ created: ['br-prov1'], removed: [], updated: [] });
    expect(writes(w)).toHaveLength(1);
    const br = bridge(w, 'br-prov1');
    expect(br?.datapath_type).toBe('netdev');
    expect(asArray(br?.fail_mode)).toEqual([]);
    expect(asMap(br?.external_ids)).toEqual({ [PROVIDER_KEYS.owner]: 'ovnode', [PROVIDER_KEYS.provider]: 'prov1' });
    expect(asMap(br?.other_config)).toEqual({ 'disable-in-band': 'true' });
    expect(asArray(rows(w, OVS.root)[0]?.bridges)).toContain(br?._uuid);
    expect(portNames(w, 'br-prov1')).toEqual(['br-prov1', 'eth1']);
    expect(iface(w, 'br-prov1')?.type).toBe('internal');
    expect(iface(w, 'eth1')?.type).toBe('');
    expect(trunks(w, 'eth1')).toEqual([0, 100]);
    expect(asArray(port(w, 'eth1')?.tag)).toEqual([]);
    expect(asMap(port(w, 'eth1')?.external_ids)).toEqual({ [PROVIDER_KEYS.uplink]: 'prov1' });
    expect(mappings(w)).toBe('prov1:br-prov1');
    expect(asMap(rows(w, OVS.root)[0]?.external_ids)['system-id']).toBe('n1');
  });

  it('uses the datapath type it is given', async () => {
    const w = await world({ datapathType: 'system' });
    await sync(w, [P1]);
    expect(bridge(w, 'br-prov1')?.datapath_type).toBe('system');
    w.deps.datapathType = 'netdev';
    await expect(sync(w, [P1])).resolves.toEqual({ created: [], removed: [], updated: ['br-prov1'] });
    expect(bridge(w, 'br-prov1')?.datapath_type).toBe('netdev');
  });

  it('writes nothing when everything matches (re-sync, the patch ports of ovn-controller present)', async () => {
    const w = await world();
    await sync(w, [P1, P2]);
    patchPort(w, 'br-prov1', 'patch-localnet.u1-to-br-int');
    const before = state(w);
    const n = writes(w).length;
    await expect(sync(w, [P2, { ...P1, vlanIds: [0, 100, 100] }])).resolves.toEqual({ created: [], removed: [], updated: [] });
    await expect(sync(w, [P1, P2])).resolves.toEqual({ created: [], removed: [], updated: [] });
    expect(writes(w)).toHaveLength(n);
    expect(state(w)).toEqual(before);
  });

  it('adds a second provider next to the first, in one transaction', async () => {
    const w = await world();
    await sync(w, [P1]);
    const first = bridge(w, 'br-prov1');
    await expect(sync(w, [P1, P2])).resolves.toEqual({ created: ['br-prov2'], removed: [], updated: [] });
    expect(writes(w)).toHaveLength(2);
    expect(bridge(w, 'br-prov1')).toEqual(first);
    expect(portNames(w, 'br-prov2')).toEqual(['br-prov2', 'eth2']);
    expect(trunks(w, 'eth2')).toEqual([]); // empty: every VLAN
    expect(mappings(w)).toBe('prov1:br-prov1,prov2:br-prov2');
  });

  it('changes the uplink interface: the old port goes, the new one comes, ovn-controller\'s patch port stays', async () => {
    const w = await world();
    await sync(w, [P1]);
    patchPort(w, 'br-prov1', 'patch-localnet.u1-to-br-int');
    await expect(sync(w, [{ ...P1, interface: 'eth3' }])).resolves.toEqual({ created: [], removed: [], updated: ['br-prov1'] });
    expect(writes(w)).toHaveLength(2);
    expect(portNames(w, 'br-prov1')).toEqual(['br-prov1', 'eth3', 'patch-localnet.u1-to-br-int']);
    expect(port(w, 'eth1')).toBeUndefined();
    expect(iface(w, 'eth1')).toBeUndefined();
    expect(trunks(w, 'eth3')).toEqual([0, 100]);
    expect(mappings(w)).toBe('prov1:br-prov1');
  });

  it('changes the trunks in place', async () => {
    const w = await world();
    await sync(w, [P1]);
    const before = port(w, 'eth1');
    await expect(sync(w, [{ ...P1, vlanIds: [200] }])).resolves.toEqual({ created: [], removed: [], updated: ['br-prov1'] });
    expect(writes(w)).toHaveLength(2);
    expect(port(w, 'eth1')?._uuid).toBe(before?._uuid);
    expect(trunks(w, 'eth1')).toEqual([200]);
    await sync(w, [{ ...P1, vlanIds: [] }]);
    expect(trunks(w, 'eth1')).toEqual([]);
  });

  it('removes a provider no longer desired: its bridge, ports, interfaces and mapping, in one transaction', async () => {
    const w = await world();
    await sync(w, [P1, P2]);
    patchPort(w, 'br-prov1', 'patch-localnet.u1-to-br-int');
    await expect(sync(w, [P2])).resolves.toEqual({ created: [], removed: ['br-prov1'], updated: [] });
    expect(writes(w)).toHaveLength(2);
    expect(bridge(w, 'br-prov1')).toBeUndefined();
    for (const n of ['br-prov1', 'eth1', 'patch-localnet.u1-to-br-int']) {
      expect(port(w, n)).toBeUndefined();
      expect(iface(w, n)).toBeUndefined();
    }
    expect(mappings(w)).toBe('prov2:br-prov2');
    await expect(sync(w, [])).resolves.toEqual({ created: [], removed: ['br-prov2'], updated: [] });
    expect(rows(w, OVS.bridge)).toEqual([]);
    expect(asMap(rows(w, OVS.root)[0]?.external_ids)).toEqual({ 'system-id': 'n1' });
  });

  it('keeps mappings ovnode does not own, in their place, through creation, change and removal', async () => {
    const w = await world();
    foreignBridge(w, 'br-ex', ['eth0']);
    w.server.apply([{ op: 'mutate', table: OVS.root, where: [], mutations: [['external_ids', 'insert', ovsMap({ [BRIDGE_MAPPINGS_KEY]: 'physnet0:br-ex,gone:br-gone' })]] }]);
    await sync(w, [P1]);
    expect(mappings(w)).toBe('physnet0:br-ex,gone:br-gone,prov1:br-prov1');
    await sync(w, [P1, P2]);
    expect(mappings(w)).toBe('physnet0:br-ex,gone:br-gone,prov1:br-prov1,prov2:br-prov2');
    await sync(w, []);
    expect(mappings(w)).toBe('physnet0:br-ex,gone:br-gone');
    expect(portNames(w, 'br-ex')).toEqual(['eth0']);
    // An entry naming one of ovnode's bridges is ovnode's: a stray one is dropped, and the sync says so.
    await sync(w, [P1]);
    w.server.apply([{ op: 'update', table: OVS.root, where: [], row: { external_ids: ovsMap({ 'system-id': 'n1', [BRIDGE_MAPPINGS_KEY]: 'stray:br-prov1,physnet0:br-ex' }) } }]);
    await expect(sync(w, [P1])).resolves.toEqual({ created: [], removed: [], updated: ['br-prov1'] });
    expect(mappings(w)).toBe('physnet0:br-ex,prov1:br-prov1');
  });

  it('refuses a provider that a foreign mapping already maps, writing nothing', async () => {
    const w = await world();
    w.server.apply([{ op: 'mutate', table: OVS.root, where: [], mutations: [['external_ids', 'insert', ovsMap({ [BRIDGE_MAPPINGS_KEY]: 'prov1:br-ex' })]] }]);
    await expect(sync(w, [P1])).rejects.toThrow(/prov1.*already maps it to br-ex/);
    expect(writes(w)).toEqual([]);
  });

  it('refuses an interface held by a bridge ovnode does not own, naming that bridge, and writes nothing', async () => {
    const w = await world();
    foreignBridge(w, 'br-phy', ['eth1']);
    const before = state(w);
    const err = await sync(w, [P2, P1]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect(String((err as Error).message)).toMatch(/interface eth1 is a port of bridge br-phy, which ovnode does not own/);
    expect(writes(w)).toEqual([]);
    expect(state(w)).toEqual(before);
  });

  it('refuses a br-<provider> that exists and is not ovnode\'s', async () => {
    const w = await world();
    foreignBridge(w, 'br-prov1', ['eth7']);
    await expect(sync(w, [P1])).rejects.toThrow(/bridge br-prov1 exists and is not ovnode's/);
    expect(writes(w)).toEqual([]);
  });

  it('moves an interface off a bridge ovnode owns, deleting the old port in the same transaction', async () => {
    const w = await world();
    await sync(w, [P1]);
    // eth1 goes to prov2, prov1 gets eth2.
    await expect(sync(w, [{ ...P1, interface: 'eth2' }, { ...P2, interface: 'eth1' }]))
      .resolves.toEqual({ created: ['br-prov2'], removed: [], updated: ['br-prov1'] });
    expect(writes(w)).toHaveLength(2);
    expect(portNames(w, 'br-prov1')).toEqual(['br-prov1', 'eth2']);
    expect(portNames(w, 'br-prov2')).toEqual(['br-prov2', 'eth1']);
    expect(rows(w, OVS.port).filter((p) => p.name === 'eth1')).toHaveLength(1);
    expect(asMap(port(w, 'eth1')?.external_ids)[PROVIDER_KEYS.uplink]).toBe('prov2');
    // And off a bridge being removed in the same sync: prov2 goes, prov3 takes eth1.
    await expect(sync(w, [{ ...P1, interface: 'eth2' }, { provider: 'prov3', interface: 'eth1', vlanIds: [300] }]))
      .resolves.toEqual({ created: ['br-prov3'], removed: ['br-prov2'], updated: [] });
    expect(writes(w)).toHaveLength(3);
    expect(portNames(w, 'br-prov3')).toEqual(['br-prov3', 'eth1']);
    expect(trunks(w, 'eth1')).toEqual([300]);
    expect(mappings(w)).toBe('prov1:br-prov1,prov3:br-prov3');
  });

  it('refuses names that are too long or malformed, and bad VLAN ids, before reading anything', async () => {
    const w = await world();
    const transacts = (): number => w.server.requests.filter((r) => r.method === 'transact').length;
    const n = transacts();
    await expect(sync(w, [{ ...P1, provider: 'abcdefghijklm' }])).rejects.toThrow(/longer than 12 characters.*15-character/);
    await expect(sync(w, [{ ...P1, provider: 'a:b' }])).rejects.toThrow(InvalidConfigError);
    await expect(sync(w, [{ ...P1, interface: 'a-very-long-nic0' }])).rejects.toThrow(/not a valid interface name/);
    await expect(sync(w, [{ ...P1, vlanIds: [4096] }])).rejects.toThrow(/VLAN id 4096/);
    await expect(sync(w, [P1, { ...P2, interface: 'eth1' }])).rejects.toThrow(/interface also used by provider prov1/);
    await expect(sync(w, [P1, { ...P1, interface: 'eth9' }])).rejects.toThrow(/provider also used/);
    expect(transacts()).toBe(n);
    // Twelve characters is Kube-OVN's limit, and fine.
    await expect(sync(w, [{ ...P1, provider: 'abcdefghijkl' }])).resolves.toMatchObject({ created: ['br-abcdefghijkl'] });
  });

  it('repairs drift on its own bridge in one transaction: secure fail_mode, lost markers, a tag, a lost mapping', async () => {
    const w = await world();
    await sync(w, [P1]);
    const br = bridge(w, 'br-prov1') as Row;
    w.server.apply([
      { op: 'update', table: OVS.bridge, where: [['name', '==', 'br-prov1']], row: { fail_mode: 'secure', other_config: ovsMap({}) } },
      { op: 'update', table: OVS.port, where: [['name', '==', 'eth1']], row: { tag: 5 } },
      { op: 'update', table: OVS.root, where: [], row: { external_ids: ovsMap({ 'system-id': 'n1' }) } },
    ]);
    await expect(sync(w, [P1])).resolves.toEqual({ created: [], removed: [], updated: ['br-prov1'] });
    expect(writes(w)).toHaveLength(2);
    const fixed = bridge(w, 'br-prov1');
    expect(fixed?._uuid).toBe(br._uuid);
    expect(asArray(fixed?.fail_mode)).toEqual([]);
    expect(asMap(fixed?.other_config)).toEqual({ 'disable-in-band': 'true' });
    expect(asArray(port(w, 'eth1')?.tag)).toEqual([]);
    expect(mappings(w)).toBe('prov1:br-prov1');
    await sync(w, [P1]);
    expect(writes(w)).toHaveLength(2);
  });

  it('does not lose a mapping written between its read and its write: the write fails, the next sync keeps it', async () => {
    const w = await world();
    let armed = true;
    w.server.afterReply = (method) => {
      if (method !== 'transact' || !armed) return;
      armed = false; // right after the read
      w.server.apply([{ op: 'mutate', table: OVS.root, where: [], mutations: [['external_ids', 'insert', ovsMap({ [BRIDGE_MAPPINGS_KEY]: 'late:br-late' })]] }]);
    };
    await expect(sync(w, [P1])).rejects.toThrow(/wait.*timed out/);
    expect(bridge(w, 'br-prov1')).toBeUndefined(); // all or nothing
    await sync(w, [P1]);
    expect(mappings(w)).toBe('late:br-late,prov1:br-prov1');
  });

  it('needs the Open_vSwitch row', async () => {
    const w = await world({ root: false });
    await expect(sync(w, [P1])).rejects.toThrow(/no row/);
    expect(writes(w)).toEqual([]);
  });
});

describe('parseBridgeMappings', () => {
  it('splits entries, tolerating spaces, empty and malformed ones', () => {
    expect(parseBridgeMappings(' a:br-a, ,b:br-b,junk')).toEqual([
      { text: 'a:br-a', physnet: 'a', bridge: 'br-a' }, { text: 'b:br-b', physnet: 'b', bridge: 'br-b' }, { text: 'junk' },
    ]);
    expect(parseBridgeMappings(undefined)).toEqual([]);
  });
});
