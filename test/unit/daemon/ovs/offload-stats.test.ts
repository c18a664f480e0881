// Offload parsers on every recorded output of test/fixtures/ovs-offload (captured from a real
// ovs-vswitchd 3.1 on the userspace datapath, or reconstructed from OVS's printing code for the
// kernel/TC and DPDK cases, see its README.md), on garbage, and the collector against a fake
// unixctl transport: batching, labels, values, and a scrape that never throws.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  classifyCounter, countFlows, parseDumpDps, parseOffloadStats, registerOffloadMetrics, type UnixctlCallAll,
} from '../../../../daemon/ovs/offload-stats';
import { UnixctlCommandError, UnixctlTimeoutError, UnixctlUnavailableError, type UnixctlCall, type UnixctlOutcome } from '../../../../daemon/ovs/unixctl';

const DIR = join(__dirname, '..', '..', '..', 'fixtures', 'ovs-offload');
const fixture = (name: string): string => readFileSync(join(DIR, name), 'utf8');
const log = pino({ level: 'silent' });

describe('fixtures', () => {
  it('every fixture file is covered by a test below', () => {
    const covered = new Set([...Object.keys(FLOW_EXPECTATIONS), ...Object.keys(STATS_EXPECTATIONS), ...Object.keys(DPS_EXPECTATIONS)]);
    const files = readdirSync(DIR).filter((f) => f.endsWith('.txt'));
    expect(files.length).toBeGreaterThanOrEqual(20);
    expect(files.filter((f) => !covered.has(f))).toEqual([]);
  });
});

interface FlowExpectation {
  total: number; offloaded: number; partial: number; non: number; unclassified?: number; sections: number; unparsed?: number;
  layers: Record<string, number>;
}

const FLOW_EXPECTATIONS: Record<string, FlowExpectation> = {
  // Captured: the userspace datapath offloads nothing; every flow is dp:ovs.
  'netdev-dump-flows-m.txt': { total: 5, offloaded: 0, partial: 0, non: 5, sections: 1, layers: { ovs: 5 } },
  'netdev-dump-flows-m-type-ovs.txt': { total: 6, offloaded: 0, partial: 0, non: 6, sections: 1, layers: { ovs: 6 } },
  'netdev-dump-flows-m-type-offloaded.txt': { total: 0, offloaded: 0, partial: 0, non: 0, sections: 0, layers: {} },
  'netdev-hwol-dump-flows-m.txt': { total: 2, offloaded: 0, partial: 0, non: 2, sections: 1, layers: { ovs: 2 } },
  // Without -m OVS prints neither dp: nor offloaded:, so the flows are counted but unclassified.
  'netdev-dump-flows.txt': { total: 5, offloaded: 0, partial: 0, non: 0, unclassified: 5, sections: 1, layers: {} },
  // Reconstructed.
  'system-tc-dump-flows-m.txt': { total: 6, offloaded: 3, partial: 0, non: 3, sections: 0, layers: { tc: 4, ovs: 2 } },
  'dpdk-dump-flows-m.txt': { total: 6, offloaded: 1, partial: 2, non: 3, sections: 3, layers: { dpdk: 1, ovs: 5 } },
  // Error texts: nothing is a flow.
  'netdev-dump-flows-bad-dp.txt': { total: 0, offloaded: 0, partial: 0, non: 0, sections: 0, unparsed: 1, layers: {} },
  'no-bridge-dump-flows-m.txt': { total: 0, offloaded: 0, partial: 0, non: 0, sections: 0, unparsed: 2, layers: {} },
};

describe('countFlows', () => {
  for (const [file, want] of Object.entries(FLOW_EXPECTATIONS)) {
    it(file, () => {
      const c = countFlows(fixture(file));
      expect(c.total).toBe(want.total);
      expect(c.byType).toEqual({ offloaded: want.offloaded, partially_offloaded: want.partial, non_offloaded: want.non });
      expect(c.byLayer).toEqual(want.layers);
      expect(c.unclassified).toBe(want.unclassified ?? 0);
      expect(c.sections).toBe(want.sections);
      expect(c.unparsed).toBe(want.unparsed ?? 0);
      // Every classified flow is in exactly one type and one layer.
      const classified = c.total - c.unclassified;
      expect(want.offloaded + want.partial + want.non).toBe(classified);
      expect(Object.values(c.byLayer).reduce((a, b) => a + b, 0)).toBe(classified);
    });
  }

  it('agrees with the line count of the captured dump (one header, the rest flows)', () => {
    const text = fixture('netdev-dump-flows-m.txt');
    const lines = text.split('\n').filter(Boolean);
    expect(lines[0]).toBe('flow-dump from the main thread:');
    expect(countFlows(text).total).toBe(lines.length - 1);
  });

  it('keeps actions with commas and parentheses out of the offload fields', () => {
    const line = 'ufid:0-1, in_port(2),eth_type(0x0800), packets:1, bytes:2, used:0.1s, offloaded:yes, dp:tc, actions:set(tunnel(dst=1.2.3.4,flags(csum|key))),dp:ovs,offloaded:no';
    expect(countFlows(line)).toMatchObject({ total: 1, byType: { offloaded: 1, partially_offloaded: 0, non_offloaded: 0 }, byLayer: { tc: 1 } });
  });

  it('counts a flow with tcp flags and no offload as non-offloaded', () => {
    const c = countFlows('in_port(1), packets:3, bytes:180, used:0.5s, flags:SFP., dp:ovs, actions:2\n');
    expect(c.byType.non_offloaded).toBe(1);
    expect(c.byLayer).toEqual({ ovs: 1 });
  });

  it('never throws on garbage and counts what it did not understand', () => {
    const junk = [
      '', '\n\n', 'garbage', 'packets:1, bytes:2, used:never, actions:drop', // no key before the stats
      'in_port(1), packets:x, bytes:2, used:never, dp:ovs, actions:1', // non-numeric counter
      '\u0000\u0001\u00ff', 'flow-dump from somewhere else:', '{"id":1}', 'x'.repeat(200_000),
    ];
    for (const j of junk) expect(() => countFlows(j)).not.toThrow();
    const c = countFlows(junk.join('\n'));
    expect(c.total).toBe(0);
    expect(c.unparsed).toBe(7);
    expect(countFlows(undefined as unknown as string)).toMatchObject({ total: 0, unparsed: 0 });
    expect(countFlows(42 as unknown as string)).toMatchObject({ total: 0, unparsed: 0 });
  });

  it('keeps the flows it understood around lines it did not', () => {
    const text = `${fixture('system-tc-dump-flows-m.txt')}\nsome new line format\n${fixture('dpdk-dump-flows-m.txt')}`;
    const c = countFlows(text);
    expect(c.total).toBe(12);
    expect(c.byType).toEqual({ offloaded: 4, partially_offloaded: 2, non_offloaded: 6 });
    expect(c.unparsed).toBe(1);
  });
});

interface StatsExpectation {
  present: boolean; counters: number; threads: number; unparsed: number;
  total?: Record<string, number>;
  thread?: Record<number, Record<string, number>>;
}

const STATS_EXPECTATIONS: Record<string, StatsExpectation> = {
  // Captured: hw-offload=true, two threads, nothing inserted (no flow API on AF_PACKET ports).
  'netdev-hwol-offload-stats.txt': {
    present: true, counters: 18, threads: 2, unparsed: 0,
    total: { 'Enqueued offloads': 0, 'Inserted offloads': 0, 'Cumulative Average latency (us)': 9591, 'Exponential Latency stddev (us)': 862 },
    thread: { 0: { 'Cumulative Average latency (us)': 9624 }, 1: { 'Exponential Average latency (us)': 9065 } },
  },
  'netdev-hwol-offload-stats-explicit-dp.txt': { present: true, counters: 18, threads: 2, unparsed: 0, total: { 'Inserted offloads': 0 } },
  // Error replies: no table.
  'netdev-offload-stats-disabled.txt': { present: false, counters: 0, threads: 0, unparsed: 1 },
  'no-bridge-offload-stats.txt': { present: false, counters: 0, threads: 0, unparsed: 2 },
  'system-offload-stats.txt': { present: false, counters: 0, threads: 0, unparsed: 1 },
  // Reconstructed.
  'dpdk-offload-stats.txt': {
    present: true, counters: 18, threads: 2, unparsed: 0,
    total: { 'Enqueued offloads': 1, 'Inserted offloads': 5 },
    thread: { 0: { 'Inserted offloads': 3 }, 1: { 'Inserted offloads': 2, 'Enqueued offloads': 0 } },
  },
  'vendor-offload-stats.txt': {
    present: true, counters: 10, threads: 0, unparsed: 0,
    total: { 'CT bi-dir Connections': 4031, 'CT uni-dir Connections': 12, 'Cumulative Latency max (us)': 30412, 'Inserted offloads': 8120 },
  },
};

describe('parseOffloadStats', () => {
  for (const [file, want] of Object.entries(STATS_EXPECTATIONS)) {
    it(file, () => {
      const s = parseOffloadStats(fixture(file));
      expect(s.present).toBe(want.present);
      expect(s.counters).toHaveLength(want.counters);
      expect(s.threads).toBe(want.threads);
      expect(s.unparsed).toBe(want.unparsed);
      for (const [name, value] of Object.entries(want.total ?? {})) {
        expect(s.counters.filter((c) => c.thread === 'total' && c.name === name).map((c) => c.value)).toEqual([value]);
      }
      for (const [thread, byName] of Object.entries(want.thread ?? {})) {
        for (const [name, value] of Object.entries(byName)) {
          expect(s.counters.filter((c) => c.thread === Number(thread) && c.name === name).map((c) => c.value)).toEqual([value]);
        }
      }
    });
  }

  it('per-thread flow counters add up to the total line (as dpif-netdev computes it)', () => {
    for (const file of ['netdev-hwol-offload-stats.txt', 'dpdk-offload-stats.txt']) {
      const s = parseOffloadStats(fixture(file));
      for (const name of ['Enqueued offloads', 'Inserted offloads']) {
        const total = s.counters.find((c) => c.thread === 'total' && c.name === name)?.value;
        const sum = s.counters.filter((c) => c.thread !== 'total' && c.name === name).reduce((a, c) => a + c.value, 0);
        expect(total, `${file} ${name}`).toBe(sum);
      }
    }
  });

  it('never throws on garbage; keeps what it understood', () => {
    const text = [
      'HW Offload stats:', '     Total   Enqueued offloads:   abc', '     [ x]   Inserted offloads: 3',
      '     Total                 Inserted offloads:      7', '\u0000junk', 'Total: 5', '   Total  : 5',
    ].join('\n');
    expect(() => parseOffloadStats(text)).not.toThrow();
    const s = parseOffloadStats(text);
    expect(s.present).toBe(true);
    expect(s.counters).toEqual([{ thread: 'total', name: 'Inserted offloads', value: 7 }]);
    expect(s.unparsed).toBe(5);
    expect(parseOffloadStats(null as unknown as string)).toEqual({ present: false, counters: [], threads: 0, unparsed: 0 });
    expect(parseOffloadStats('x'.repeat(100_000)).unparsed).toBe(1);
  });
});

const DPS_EXPECTATIONS: Record<string, { names: string[]; unparsed: number }> = {
  'netdev-dump-dps.txt': { names: ['netdev@ovs-netdev'], unparsed: 0 },
  'no-bridge-dump-dps.txt': { names: [], unparsed: 0 },
  'system-dump-dps.txt': { names: ['system@ovs-system'], unparsed: 0 },
  'multi-dump-dps.txt': { names: ['netdev@ovs-netdev', 'system@ovs-system'], unparsed: 0 },
};

describe('parseDumpDps', () => {
  for (const [file, want] of Object.entries(DPS_EXPECTATIONS)) {
    it(file, () => {
      const d = parseDumpDps(fixture(file));
      expect(d.datapaths.map((x) => x.full)).toEqual(want.names);
      expect(d.unparsed).toBe(want.unparsed);
    });
  }

  it('splits type and name; error lines are unparsed', () => {
    const d = parseDumpDps('netdev@ovs-netdev\novs-vswitchd: opening datapath ovs-system failed (No such device)\n@x\n');
    expect(d.datapaths).toEqual([{ full: 'netdev@ovs-netdev', type: 'netdev', name: 'ovs-netdev' }]);
    expect(d.unparsed).toBe(2);
  });
});

describe('classifyCounter', () => {
  it('maps the OVS counters and keeps unknown ones under a slug', () => {
    expect(classifyCounter('Enqueued offloads')).toEqual({ kind: 'queued' });
    expect(classifyCounter('Inserted offloads')).toEqual({ kind: 'inserted' });
    expect(classifyCounter('Cumulative Average latency (us)')).toEqual({ kind: 'latency', stat: 'cma_mean' });
    expect(classifyCounter('Cumulative Latency stddev (us)')).toEqual({ kind: 'latency', stat: 'cma_stddev' });
    expect(classifyCounter('Exponential Average latency (us)')).toEqual({ kind: 'latency', stat: 'ema_mean' });
    expect(classifyCounter('Exponential Latency stddev (us)')).toEqual({ kind: 'latency', stat: 'ema_stddev' });
    expect(classifyCounter('Cumulative Latency max (us)')).toEqual({ kind: 'latency', stat: 'cma_max' });
    expect(classifyCounter('CT bi-dir Connections')).toEqual({ kind: 'other', counter: 'ct_bi_dir_connections' });
    expect(classifyCounter('!!!')).toEqual({ kind: 'other', counter: 'unnamed' });
  });
});

// ---------------------------------------------------------------------------------------------
// Collector against a fake transport.

type Answer = string | { error: string };

/** A fake vswitchd: answers by method and params; records every batch. */
function fakeVswitchd(answers: Record<string, Answer>): { callAll: UnixctlCallAll; batches: UnixctlCall[][]; down: boolean } {
  const state = {
    batches: [] as UnixctlCall[][],
    down: false,
    callAll: async (calls: readonly UnixctlCall[]): Promise<UnixctlOutcome[]> => {
      state.batches.push([...calls]);
      if (state.down) throw new UnixctlUnavailableError('/fake.ctl', Object.assign(new Error('connect ENOENT'), { code: 'ENOENT' }));
      return calls.map((c) => {
        const key = [c.method, ...(c.params ?? [])].join(' ');
        const a = answers[key];
        if (a === undefined) return { ok: false, error: new UnixctlCommandError('/fake.ctl', c.method, c.params ?? [], `"${key}" is not a valid command`) };
        if (typeof a === 'string') return { ok: true, result: a };
        return { ok: false, error: new UnixctlCommandError('/fake.ctl', c.method, c.params ?? [], a.error) };
      });
    },
  };
  return state;
}

/** The value of one sample of a Prometheus text, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ? m[2].split(',') : [];
    if (want.length === have.length && want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return undefined;
}

const NETDEV: Record<string, Answer> = {
  'dpctl/dump-dps': fixture('netdev-dump-dps.txt'),
  'dpctl/dump-flows -m netdev@ovs-netdev': fixture('netdev-dump-flows-m.txt'),
  'dpctl/offload-stats-show netdev@ovs-netdev': { error: fixture('netdev-offload-stats-disabled.txt') },
};

describe('registerOffloadMetrics', () => {
  it('first scrape learns the datapaths (two batches), later scrapes use one batch with -m first', async () => {
    const vs = fakeVswitchd(NETDEV);
    const registry = new Registry();
    registerOffloadMetrics({ registry, unixctl: vs.callAll, log });
    await registry.metrics();
    expect(vs.batches).toEqual([
      [{ method: 'dpctl/dump-dps' }],
      [{ method: 'dpctl/dump-flows', params: ['-m', 'netdev@ovs-netdev'] }, { method: 'dpctl/offload-stats-show', params: ['netdev@ovs-netdev'] }],
    ]);
    await registry.metrics();
    expect(vs.batches).toHaveLength(3);
    expect(vs.batches[2]).toEqual([{ method: 'dpctl/dump-dps' }, ...(vs.batches[1] as UnixctlCall[])]);
  });

  it('exports the flow counts of the userspace datapath: 0 offloaded, all non-offloaded, stats unavailable', async () => {
    const vs = fakeVswitchd(NETDEV);
    const registry = new Registry();
    registerOffloadMetrics({ registry, unixctl: vs.callAll, log });
    const text = await registry.metrics();
    expect(sample(text, 'ovnode_ovs_offload_flows', { datapath: 'ovs-netdev', type: 'offloaded' })).toBe(0);
    expect(sample(text, 'ovnode_ovs_offload_flows', { datapath: 'ovs-netdev', type: 'partially_offloaded' })).toBe(0);
    expect(sample(text, 'ovnode_ovs_offload_flows', { datapath: 'ovs-netdev', type: 'non_offloaded' })).toBe(5);
    expect(sample(text, 'ovnode_ovs_offload_flows_by_layer', { datapath: 'ovs-netdev', layer: 'ovs' })).toBe(5);
    expect(sample(text, 'ovnode_ovs_offload_stats_available', { datapath: 'ovs-netdev' })).toBe(0);
    expect(sample(text, 'ovnode_ovs_offload_unparsed_lines', { datapath: 'ovs-netdev', command: 'dump-flows' })).toBe(0);
    expect(sample(text, 'ovnode_ovs_offload_up')).toBe(1);
    expect(text).not.toMatch(/^ovnode_ovs_offload_inserted_flows\{/m);
    // The stats error is the normal answer without hw-offload: not a scrape error.
    for (const reason of ['unavailable', 'timeout', 'protocol', 'command', 'internal']) {
      expect(sample(text, 'ovnode_ovs_offload_scrape_errors_total', { reason }), reason).toBe(0);
    }
  });

  it('exports TC and rte_flow offload by datapath, and the offload threads table', async () => {
    const vs = fakeVswitchd({
      'dpctl/dump-dps': fixture('multi-dump-dps.txt'),
      'dpctl/dump-flows -m netdev@ovs-netdev': fixture('dpdk-dump-flows-m.txt'),
      'dpctl/offload-stats-show netdev@ovs-netdev': fixture('dpdk-offload-stats.txt'),
      'dpctl/dump-flows -m system@ovs-system': fixture('system-tc-dump-flows-m.txt'),
      'dpctl/offload-stats-show system@ovs-system': { error: fixture('system-offload-stats.txt') },
    });
    const registry = new Registry();
    registerOffloadMetrics({ registry, unixctl: vs.callAll, log });
    const text = await registry.metrics();
    const flows = (datapath: string, type: string): number | undefined => sample(text, 'ovnode_ovs_offload_flows', { datapath, type });
    expect([flows('ovs-system', 'offloaded'), flows('ovs-system', 'partially_offloaded'), flows('ovs-system', 'non_offloaded')]).toEqual([3, 0, 3]);
    expect([flows('ovs-netdev', 'offloaded'), flows('ovs-netdev', 'partially_offloaded'), flows('ovs-netdev', 'non_offloaded')]).toEqual([1, 2, 3]);
    expect(sample(text, 'ovnode_ovs_offload_flows_by_layer', { datapath: 'ovs-system', layer: 'tc' })).toBe(4);
    expect(sample(text, 'ovnode_ovs_offload_flows_by_layer', { datapath: 'ovs-netdev', layer: 'dpdk' })).toBe(1);
    expect(sample(text, 'ovnode_ovs_offload_stats_available', { datapath: 'ovs-system' })).toBe(0);
    expect(sample(text, 'ovnode_ovs_offload_stats_available', { datapath: 'ovs-netdev' })).toBe(1);
    expect(sample(text, 'ovnode_ovs_offload_inserted_flows', { datapath: 'ovs-netdev', thread: 'total' })).toBe(5);
    expect(sample(text, 'ovnode_ovs_offload_inserted_flows', { datapath: 'ovs-netdev', thread: '1' })).toBe(2);
    expect(sample(text, 'ovnode_ovs_offload_queued', { datapath: 'ovs-netdev', thread: 'total' })).toBe(1);
    expect(sample(text, 'ovnode_ovs_offload_latency_seconds', { datapath: 'ovs-netdev', thread: 'total', stat: 'cma_mean' })).toBeCloseTo(143e-6, 12);
    expect(sample(text, 'ovnode_ovs_offload_latency_seconds', { datapath: 'ovs-netdev', thread: '0', stat: 'ema_stddev' })).toBeCloseTo(44e-6, 12);
    expect(sample(text, 'ovnode_ovs_offload_scrape_errors_total', { reason: 'command' })).toBe(0);
  });

  it('exports vendor counters under ovnode_ovs_offload_stat', async () => {
    const vs = fakeVswitchd({ ...NETDEV, 'dpctl/offload-stats-show netdev@ovs-netdev': fixture('vendor-offload-stats.txt') });
    const registry = new Registry();
    registerOffloadMetrics({ registry, unixctl: vs.callAll, log });
    const text = await registry.metrics();
    expect(sample(text, 'ovnode_ovs_offload_stat', { datapath: 'ovs-netdev', thread: 'total', counter: 'ct_bi_dir_connections' })).toBe(4031);
    expect(sample(text, 'ovnode_ovs_offload_latency_seconds', { datapath: 'ovs-netdev', thread: 'total', stat: 'cma_max' })).toBeCloseTo(0.030412, 9);
  });

  it('no bridge (dump-dps answers an empty error): no datapath series, not an error', async () => {
    const vs = fakeVswitchd({ 'dpctl/dump-dps': { error: fixture('no-bridge-dump-dps.txt') } });
    const registry = new Registry();
    registerOffloadMetrics({ registry, unixctl: vs.callAll, log });
    const text = await registry.metrics();
    expect(text).not.toMatch(/^ovnode_ovs_offload_flows\{/m);
    expect(sample(text, 'ovnode_ovs_offload_up')).toBe(1);
    expect(sample(text, 'ovnode_ovs_offload_scrape_errors_total', { reason: 'command' })).toBe(0);
    expect(vs.batches).toHaveLength(1);
  });

  it('a failing dump-flows counts a command error and leaves that datapath\'s flow gauges unset', async () => {
    const vs = fakeVswitchd({ ...NETDEV, 'dpctl/dump-flows -m netdev@ovs-netdev': { error: fixture('netdev-dump-flows-bad-dp.txt') } });
    const registry = new Registry();
    registerOffloadMetrics({ registry, unixctl: vs.callAll, log });
    const text = await registry.metrics();
    expect(text).not.toMatch(/^ovnode_ovs_offload_flows\{/m);
    expect(sample(text, 'ovnode_ovs_offload_scrape_errors_total', { reason: 'command' })).toBe(1);
    expect(sample(text, 'ovnode_ovs_offload_up')).toBe(1);
  });

  it('vswitchd unreachable: the scrape resolves, gauges lose their samples, the error counter counts', async () => {
    const vs = fakeVswitchd(NETDEV);
    const registry = new Registry();
    registerOffloadMetrics({ registry, unixctl: vs.callAll, log });
    expect(sample(await registry.metrics(), 'ovnode_ovs_offload_flows', { datapath: 'ovs-netdev', type: 'non_offloaded' })).toBe(5);
    vs.down = true;
    const text = await registry.metrics();
    expect(text).not.toMatch(/^ovnode_ovs_offload_flows\{/m);
    expect(text).not.toMatch(/^ovnode_ovs_offload_stats_available\{/m);
    expect(sample(text, 'ovnode_ovs_offload_up')).toBe(0);
    expect(sample(text, 'ovnode_ovs_offload_scrape_errors_total', { reason: 'unavailable' })).toBe(1);
    expect(sample(await registry.metrics(), 'ovnode_ovs_offload_scrape_errors_total', { reason: 'unavailable' })).toBe(2);
    vs.down = false;
    const back = await registry.metrics();
    expect(sample(back, 'ovnode_ovs_offload_flows', { datapath: 'ovs-netdev', type: 'non_offloaded' })).toBe(5);
    expect(sample(back, 'ovnode_ovs_offload_up')).toBe(1);
  });

  it('classifies transport failures by reason, and survives a transport that throws anything', async () => {
    const registry = new Registry();
    let failure: unknown = new UnixctlTimeoutError('/fake.ctl', 1000, 0, 1);
    registerOffloadMetrics({ registry, unixctl: () => Promise.reject(failure), log });
    expect(sample(await registry.metrics(), 'ovnode_ovs_offload_scrape_errors_total', { reason: 'timeout' })).toBe(1);
    failure = 'not even an Error';
    expect(sample(await registry.metrics(), 'ovnode_ovs_offload_scrape_errors_total', { reason: 'internal' })).toBe(1);
  });

  it('one scrape per registry.metrics(), shared by every metric, also for concurrent scrapes', async () => {
    const vs = fakeVswitchd(NETDEV);
    const registry = new Registry();
    registerOffloadMetrics({ registry, unixctl: vs.callAll, log });
    await registry.metrics(); // learns the datapath: 2 batches
    await Promise.all([registry.metrics(), registry.metrics(), registry.getMetricsAsJSON()]);
    expect(vs.batches).toHaveLength(3);
    await registry.metrics();
    expect(vs.batches).toHaveLength(4);
  });

  it('follows a datapath change with a second batch in the same scrape', async () => {
    const answers: Record<string, Answer> = { ...NETDEV };
    const vs = fakeVswitchd(answers);
    const registry = new Registry();
    registerOffloadMetrics({ registry, unixctl: vs.callAll, log });
    await registry.metrics();
    answers['dpctl/dump-dps'] = fixture('system-dump-dps.txt');
    answers['dpctl/dump-flows -m system@ovs-system'] = fixture('system-tc-dump-flows-m.txt');
    answers['dpctl/offload-stats-show system@ovs-system'] = { error: fixture('system-offload-stats.txt') };
    const text = await registry.metrics();
    expect(vs.batches.slice(2).map((b) => b.length)).toEqual([3, 2]);
    expect(sample(text, 'ovnode_ovs_offload_flows', { datapath: 'ovs-system', type: 'offloaded' })).toBe(3);
    expect(text).not.toMatch(/datapath="ovs-netdev"/);
  });

  it('needs a socket path or a transport; unregister removes the metrics', () => {
    const registry = new Registry();
    expect(() => registerOffloadMetrics({ registry, log })).toThrow(/socketPath or unixctl/);
    const h = registerOffloadMetrics({ registry, socketPath: '/nonexistent/ovs-vswitchd.ctl', log });
    expect(h.metricNames).toContain('ovnode_ovs_offload_scrape_errors_total');
    expect(registry.getSingleMetric('ovnode_ovs_offload_flows')).toBeDefined();
    h.unregister();
    expect(registry.getMetricsAsArray()).toHaveLength(0);
  });

  it('with a real UnixctlClient on a missing socket: resolves and counts "unavailable"', async () => {
    const registry = new Registry();
    registerOffloadMetrics({ registry, socketPath: '/nonexistent/ovs-vswitchd.ctl', log, timeoutMs: 200 });
    const text = await registry.metrics();
    expect(sample(text, 'ovnode_ovs_offload_scrape_errors_total', { reason: 'unavailable' })).toBe(1);
    expect(sample(text, 'ovnode_ovs_offload_up')).toBe(0);
  });
});
