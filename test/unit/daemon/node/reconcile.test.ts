// NodeLeaks over in-memory OVSDB views: which state is which leak (netns gone, LSP without port,
// port without LSP, orphan veth), what is healthy, that ids change with the rows / ifindex, that
// the re-check sees changes, and what removal calls. removeAttachment is replaced by a recorder:
// its own behaviour is DEL's.
import pino from 'pino';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Deps } from '../../../../daemon/context';
import { hostIfName } from '../../../../daemon/intent/intent';
import { Metrics } from '../../../../daemon/metrics';
import { NodeLeaks, reconcile } from '../../../../daemon/node/reconcile';
import { portHolder, SubnetPool } from '../../../../daemon/ipam/pool';
import { NB, OVS } from '../../../../daemon/ovs/schema';
import type { Attachment } from '../../../../daemon/store/attachment';
import { toInterfaceExternalIds, toLspExternalIds } from '../../../../daemon/store/external-ids';

const removed = vi.hoisted(() => [] as Array<{ sandbox: string; ifName: string }>);
vi.mock('../../../../daemon/cmd/del', () => ({
  removeAttachment: async (_deps: unknown, sandbox: string, ifName: string) => {
    removed.push({ sandbox, ifName });
    return { ports: [], lsps: [], ips: [], veth: false };
  },
}));

type Row = Record<string, unknown> & { _uuid: string };

class Views {
  readonly tables = new Map<string, Map<string, Row>>();
  private n = 0;
  rows(table: string): ReadonlyMap<string, Row> { return this.tables.get(table) ?? new Map(); }
  insert(table: string, row: Omit<Row, '_uuid'>): string {
    const uuid = `u${++this.n}`;
    if (!this.tables.has(table)) this.tables.set(table, new Map());
    this.tables.get(table)?.set(uuid, { ...row, _uuid: uuid } as Row);
    return uuid;
  }
  delete(table: string, uuid: string): void { this.tables.get(table)?.delete(uuid); }
}

function attachment(sandbox: string, netns: string): Attachment {
  return {
    sandbox, ifName: 'eth0', netns, network: 'net1', lspName: `${sandbox}.ns`, logicalSwitch: 'ovn-default',
    hostIfName: hostIfName(sandbox, 'eth0'), mac: '0a:58:0a:10:00:05', ips: ['10.16.0.5'],
  };
}

let ovs: Views;
let nb: Views;
let netnsAlive: Set<string>;
let veths: Map<string, number>;
let destroyed: string[];
let deps: Deps;

beforeEach(() => {
  removed.length = 0;
  ovs = new Views();
  nb = new Views();
  netnsAlive = new Set();
  veths = new Map();
  destroyed = [];
  deps = {
    log: pino({ level: 'silent' }),
    ovs, nb,
    native: { inspectNetns: (p: string) => Promise.resolve(netnsAlive.has(p) ? { kind: 'netns' as const, dev: 1, ino: 1, own: false } : { kind: 'missing' as const, reason: 'No such file or directory' }) },
    plumber: {
      hostVethNames: async () => [...veths.keys()],
      destroy: async (name: string) => { destroyed.push(name); return veths.delete(name); },
    },
    metrics: new Metrics(),
  } as unknown as Deps;
});

const links = { index: async (name: string) => veths.get(name) };

function addPort(a: Attachment): string {
  ovs.insert(OVS.port, { name: a.hostIfName, external_ids: {} });
  veths.set(a.hostIfName, 100 + veths.size);
  return ovs.insert(OVS.iface, { name: a.hostIfName, external_ids: toInterfaceExternalIds(a) });
}

function addLsp(a: Attachment): string {
  return nb.insert(NB.lsp, { name: a.lspName, external_ids: toLspExternalIds(a) });
}

describe('NodeLeaks.scan', () => {
  it('a complete attachment with a live netns is no leak; neither are foreign rows and foreign veths', async () => {
    const a = attachment('sb1', '/var/run/netns/p1');
    netnsAlive.add(a.netns);
    addPort(a);
    addLsp(a);
    nb.insert(NB.lsp, { name: 'node-n1', external_ids: {} });
    ovs.insert(OVS.iface, { name: 'ovn0', external_ids: { 'iface-id': 'node-n1' } });
    veths.set('eth9', 5);
    expect(await new NodeLeaks(deps, links).scan()).toEqual([]);
  });

  it('classifies: netns gone (either side), LSP without port, port without LSP', async () => {
    const gone = attachment('sb-gone', '/var/run/netns/gone');
    addPort(gone);
    addLsp(gone);
    const nbOnly = attachment('sb-nb', '/var/run/netns/p2');
    const ovsOnly = attachment('sb-ovs', '/var/run/netns/p3');
    netnsAlive.add(nbOnly.netns).add(ovsOnly.netns);
    addLsp(nbOnly);
    addPort(ovsOnly);
    const leaks = await new NodeLeaks(deps, links).scan();
    expect(leaks.map((l) => [l.kind, l.sandbox, l.ifName])).toEqual([
      ['netns_gone', 'sb-gone', 'eth0'], ['port_without_lsp', 'sb-ovs', 'eth0'], ['lsp_without_port', 'sb-nb', 'eth0'],
    ]);
    expect(leaks[2]?.detail).toMatchObject({ sandbox: 'sb-nb', lsp: 'sb-nb.ns', netns: '/var/run/netns/p2' });
  });

  it('an orphan veth is ours by name, referenced by no port and by no attachment; its id carries the ifindex', async () => {
    const a = attachment('sb1', '/var/run/netns/p1');
    netnsAlive.add(a.netns);
    addLsp(a); // ADD in flight: LSP written, veth plumbed, port not yet
    veths.set(a.hostIfName, 7);
    veths.set('0123456789ab_h', 8);
    const leaks = await new NodeLeaks(deps, links).scan();
    expect(leaks.map((l) => l.id)).toEqual(['lsp_without_port|sb1/eth0|nb:u1', 'orphan_veth|0123456789ab_h|8']);
  });

  it('ids change when a row is rewritten: a retried ADD is a new leak', async () => {
    const a = attachment('sb1', '/var/run/netns/p1');
    netnsAlive.add(a.netns);
    const first = addLsp(a);
    const [before] = await new NodeLeaks(deps, links).scan();
    nb.delete(NB.lsp, first);
    addLsp(a);
    const [after] = await new NodeLeaks(deps, links).scan();
    expect(before?.kind).toBe('lsp_without_port');
    expect(after?.id).not.toBe(before?.id);
  });
});

describe('NodeLeaks.stillLeaking and remove', () => {
  it('the re-check follows the views: the port written meanwhile ends the leak', async () => {
    const a = attachment('sb1', '/var/run/netns/p1');
    netnsAlive.add(a.netns);
    addLsp(a);
    const source = new NodeLeaks(deps, links);
    const [l] = await source.scan();
    expect(await source.stillLeaking(l!)).toBe(true);
    addPort(a);
    expect(await source.stillLeaking(l!)).toBe(false);
  });

  it('an orphan veth recreated under its name (new ifindex), or taken by a port, is no longer the same leak', async () => {
    veths.set('0123456789ab_h', 8);
    const source = new NodeLeaks(deps, links);
    const [l] = await source.scan();
    veths.set('0123456789ab_h', 9);
    expect(await source.stillLeaking(l!)).toBe(false);
    veths.set('0123456789ab_h', 8);
    ovs.insert(OVS.port, { name: '0123456789ab_h', external_ids: {} });
    expect(await source.stillLeaking(l!)).toBe(false);
  });

  it('removal: an attachment as DEL removes it, a veth by name', async () => {
    const gone = attachment('sb-gone', '/var/run/netns/gone');
    addPort(gone);
    veths.set('0123456789ab_h', 8);
    const source = new NodeLeaks(deps, links);
    for (const l of await source.scan()) await source.remove(l);
    expect(removed).toEqual([{ sandbox: 'sb-gone', ifName: 'eth0' }]);
    expect(destroyed).toEqual(['0123456789ab_h']);
  });
});

describe('reconcile (start-up)', () => {
  it('removes every leak at once and counts each by kind', async () => {
    addPort(attachment('sb-gone', '/var/run/netns/gone'));
    const nbOnly = attachment('sb-nb', '/var/run/netns/p2');
    netnsAlive.add(nbOnly.netns);
    addLsp(nbOnly);
    veths.set('0123456789ab_h', 8);
    expect(await reconcile(deps)).toBe(3);
    expect(removed.map((r) => r.sandbox)).toEqual(['sb-gone', 'sb-nb']);
    expect(destroyed).toEqual(['0123456789ab_h']);
    const counted = (await deps.metrics.registry.getSingleMetric('ovnode_reconcile_removed_total')?.get())?.values ?? [];
    expect(Object.fromEntries(counted.map((v) => [v.labels.kind, v.value]))).toEqual({ netns_gone: 1, lsp_without_port: 1, orphan_veth: 1 });
  });
});

describe('addresses held for a port that has no LSP (an ADD whose rollback could not confirm its write)', () => {
  function withPool(connected: boolean): SubnetPool {
    const pool = new SubnetPool({ name: 'ovn-default', cidrs: ['10.16.0.0/16'] });
    (nb as unknown as { connected: boolean }).connected = connected;
    (deps as unknown as { subnets: { all: () => SubnetPool[] } }).subnets = { all: () => [pool] };
    return pool;
  }

  it('is a leak when no LSP of that sandbox exists; held addresses of live ports, nodes and VIPs are not', async () => {
    const pool = withPool(true);
    const live = attachment('sb-live', '/var/run/netns/p1');
    netnsAlive.add(live.netns);
    addPort(live);
    addLsp(live);
    pool.reserve('10.16.0.5', portHolder(live.lspName, 'sb-live'));
    pool.reserve('10.16.0.9', portHolder('web.ns', 'sb-lost'));
    pool.reserve('10.16.0.10', 'node-n1');
    pool.reserve('10.16.0.11', 'vip:v1');
    const leaks = await new NodeLeaks(deps, links).scan();
    expect(leaks.map((l) => [l.kind, l.sandbox, l.holder])).toEqual([['address_without_lsp', 'sb-lost', 'web.ns|sb-lost']]);
    const source = new NodeLeaks(deps, links);
    expect(await source.stillLeaking(leaks[0] as never)).toBe(true);
    expect(await source.remove(leaks[0] as never)).toEqual({ released: ['10.16.0.9'] });
    expect(pool.ownerOf('10.16.0.9')).toBeUndefined();
    expect(pool.ownerOf('10.16.0.5')).toBe(portHolder(live.lspName, 'sb-live'));
  });

  it('is no longer a leak once the LSP commits (the ADD was only in flight)', async () => {
    const pool = withPool(true);
    const a = attachment('sb-late', '/var/run/netns/p9');
    netnsAlive.add(a.netns);
    pool.reserve('10.16.0.5', portHolder(a.lspName, 'sb-late'));
    const [leak] = await new NodeLeaks(deps, links).scan();
    expect(leak?.kind).toBe('address_without_lsp');
    addLsp(a);
    addPort(a);
    expect(await new NodeLeaks(deps, links).stillLeaking(leak as never)).toBe(false);
  });

  it('is never concluded from a disconnected (stale) view', async () => {
    const pool = withPool(false);
    pool.reserve('10.16.0.9', portHolder('web.ns', 'sb-lost'));
    expect(await new NodeLeaks(deps, links).scan()).toEqual([]);
  });
});
