// OVS hardware-offload state as Prometheus metrics, read from ovs-vswitchd over its unixctl
// socket (what ovs-appctl speaks; no process is spawned).
//
// Sources (OVS 3.1; formats in test/fixtures/ovs-offload/README.md):
// - `dpctl/dump-dps`: the datapaths, one `type@name` per line (netdev@ovs-netdev, system@ovs-system).
// - `dpctl/dump-flows -m <dp>`: every datapath flow. With -m each flow line says where it lives:
//   `dp:ovs` (the OVS datapath itself: userspace, or the kernel module), `dp:tc` (kernel TC flower),
//   `dp:dpdk` (rte_flow), and `offloaded:yes` (in hardware) or `offloaded:partial` (userspace flow
//   with a hardware mark). That is the only per-flow offload information OVS gives; it is counted
//   here rather than asking for `type=offloaded` and `type=non-offloaded` separately, which would
//   make vswitchd walk the flow tables twice.
// - `dpctl/offload-stats-show <dp>`: the "HW Offload stats" table of the userspace datapath's
//   offload threads (queue depth, flows in hardware, insertion latency). It answers with an error
//   when hw-offload is off, and on the kernel datapath, which has no such statistics.
// Whether other_config:hw-offload is set lives in OVSDB, not here; on the userspace datapath the
// stats table answering at all tells the same.
//
// A scrape makes one unixctl connection carrying all commands (UnixctlClient.callAll pipelines
// them). The datapath names come from the previous scrape; only when dump-dps shows that they
// changed (first scrape, bridge added) does a second batch follow. A scrape never throws: when
// vswitchd cannot be asked, the gauges are left without samples and
// ovnode_ovs_offload_scrape_errors_total counts why.

import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { UnixctlClient, UnixctlError, type UnixctlCall, type UnixctlCallOptions, type UnixctlOutcome } from './unixctl';

// ---------------------------------------------------------------------------------------------
// Parsers: pure, never throw; what they do not recognise is counted in `unparsed`.

/** One counter of the "HW Offload stats" table. */
export interface OffloadCounter {
  /** 'total', or the offload thread index. */
  thread: 'total' | number;
  /** The counter's name as printed, trimmed: "Enqueued offloads", "Cumulative Average latency (us)". */
  name: string;
  value: number;
}

export interface OffloadStats {
  /** The reply carried the "HW Offload stats:" table. */
  present: boolean;
  counters: OffloadCounter[];
  /** Number of distinct offload threads with counters. */
  threads: number;
  unparsed: number;
}

const STATS_HEADER = /^HW Offload stats:\s*$/;
// dpctl prints "   %s: %6"PRIu64 with names built as "  Total %33s" / "  [%3u] %33s".
const STATS_LINE = /^\s*(?:Total|\[\s*(\d+)\s*\])\s+(\S(?:.*\S)?)\s*:\s+(\d+)\s*$/;

/** Parses the output of `dpctl/offload-stats-show`. */
export function parseOffloadStats(text: string): OffloadStats {
  const out: OffloadStats = { present: false, counters: [], threads: 0, unparsed: 0 };
  const threads = new Set<number>();
  for (const line of lines(text)) {
    if (STATS_HEADER.test(line)) { out.present = true; continue; }
    const m = STATS_LINE.exec(line);
    const value = m ? Number(m[3]) : Number.NaN;
    if (!m || !Number.isFinite(value)) { out.unparsed++; continue; }
    const thread = m[1] === undefined ? 'total' : Number(m[1]);
    if (thread !== 'total') threads.add(thread);
    out.counters.push({ thread, name: (m[2] as string).replace(/\s+/g, ' '), value });
  }
  out.threads = threads.size;
  return out;
}

export type FlowOffloadType = 'offloaded' | 'partially_offloaded' | 'non_offloaded';
export const FLOW_OFFLOAD_TYPES: readonly FlowOffloadType[] = ['offloaded', 'partially_offloaded', 'non_offloaded'];

export interface FlowCounts {
  /** Flow lines recognised. */
  total: number;
  /** Flows by offload state; only flows whose line says where they live (dump-flows -m). */
  byType: Record<FlowOffloadType, number>;
  /** Flows by the `dp:` layer that holds them (ovs, tc, dpdk, ...). */
  byLayer: Record<string, number>;
  /** Flow lines without `dp:` (a dump without -m): their offload state is unknown. */
  unclassified: number;
  /** "flow-dump from ..." section headers (one per PMD thread, userspace datapath). */
  sections: number;
  unparsed: number;
}

// dpctl_dump_flows prints "flow-dump from the main thread:" but "flow-dump from pmd on cpu core: N".
const SECTION_HEADER = /^flow-dump from (?:the main thread:|pmd on cpu core: -?\d+)\s*$/;
// format_dpif_flow: [ufid:U, ]KEY, packets:N, bytes:N, used:T[, flags:F][, offloaded:X][, dp:L], actions:A[, dp-extra-info:E]
const FLOW_HEAD = /^(?:ufid:[0-9a-f-]+, )?\S.*?, packets:\d+, bytes:\d+, used:[^,]+((?:, [\w-]+:[^,]*)*?), actions:/;

/** Counts the flows of a `dpctl/dump-flows` (preferably -m) output by where they live. */
export function countFlows(dumpFlowsText: string): FlowCounts {
  const out: FlowCounts = {
    total: 0, byType: { offloaded: 0, partially_offloaded: 0, non_offloaded: 0 }, byLayer: {}, unclassified: 0, sections: 0, unparsed: 0,
  };
  for (const line of lines(dumpFlowsText)) {
    if (SECTION_HEADER.test(line)) { out.sections++; continue; }
    const m = FLOW_HEAD.exec(line);
    if (!m) { out.unparsed++; continue; }
    out.total++;
    const fields = new Map<string, string>();
    for (const part of (m[1] as string).split(', ')) {
      const i = part.indexOf(':');
      if (i > 0) fields.set(part.slice(0, i), part.slice(i + 1));
    }
    const layer = fields.get('dp');
    if (layer === undefined || layer === '') { out.unclassified++; continue; }
    out.byLayer[layer] = (out.byLayer[layer] ?? 0) + 1;
    const offloaded = fields.get('offloaded');
    // dpctl prints "partial" for a flow offloaded by a layer named "ovs" (rte_flow mark only),
    // "yes" otherwise; any other value of a newer OVS still means "in hardware in some way".
    const type: FlowOffloadType = offloaded === undefined ? 'non_offloaded' : offloaded === 'partial' ? 'partially_offloaded' : 'offloaded';
    out.byType[type]++;
  }
  return out;
}

export interface Datapath {
  /** "netdev@ovs-netdev" as dpctl commands take it. */
  full: string;
  type: string;
  /** "ovs-netdev", the metrics' `datapath` label. */
  name: string;
}

export interface DumpDps { datapaths: Datapath[]; unparsed: number }

const DP_LINE = /^([A-Za-z0-9_-]+)@(\S+)$/;

/** Parses `dpctl/dump-dps` (also the text of its error reply, which lists what it could). */
export function parseDumpDps(text: string): DumpDps {
  const out: DumpDps = { datapaths: [], unparsed: 0 };
  for (const line of lines(text)) {
    const m = DP_LINE.exec(line.trim());
    if (m) out.datapaths.push({ full: m[0], type: m[1] as string, name: m[2] as string });
    else out.unparsed++;
  }
  return out;
}

/** Non-blank lines; anything that is not a string yields none. */
function lines(text: unknown): string[] {
  return typeof text === 'string' ? text.split(/\r?\n/).filter((l) => l.trim() !== '') : [];
}

/**
 * Where a counter of the stats table goes: the two flow counters have metrics of their own, the
 * latency figures (microseconds) become seconds, anything else (vendor builds add e.g. "CT bi-dir
 * Connections") is exported as it is under a slug of its name.
 */
export type CounterKind =
  | { kind: 'queued' }
  | { kind: 'inserted' }
  | { kind: 'latency'; stat: string }
  | { kind: 'other'; counter: string };

export function classifyCounter(name: string): CounterKind {
  const n = name.trim().replace(/\s+/g, ' ');
  if (/^enqueued offloads$/i.test(n)) return { kind: 'queued' };
  if (/^inserted offloads$/i.test(n)) return { kind: 'inserted' };
  const lat = /^(cumulative|exponential) (?:average latency|latency (\w+)) \(us\)$/i.exec(n);
  if (lat) return { kind: 'latency', stat: `${(lat[1] as string).toLowerCase() === 'cumulative' ? 'cma' : 'ema'}_${(lat[2] ?? 'mean').toLowerCase()}` };
  return { kind: 'other', counter: n.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'unnamed' };
}

// ---------------------------------------------------------------------------------------------
// Collector.

export type UnixctlCallAll = (calls: readonly UnixctlCall[], opts?: UnixctlCallOptions) => Promise<UnixctlOutcome[]>;

export interface OffloadMetricsOptions {
  registry: Registry;
  /** ovs-vswitchd's control socket: a path, or a function evaluated per scrape. */
  socketPath?: string | (() => string);
  /** Or the transport itself (a shared UnixctlClient's callAll, a fake in tests). */
  unixctl?: UnixctlCallAll;
  log: Pick<Logger, 'debug' | 'info' | 'warn'>;
  /** Deadline of a whole scrape (every unixctl batch of it); default 1000 ms. */
  timeoutMs?: number;
}

export interface OffloadMetricsHandle {
  readonly metricNames: readonly string[];
  /** Removes the metrics from the registry. */
  unregister(): void;
}

export type ScrapeErrorReason = 'unavailable' | 'timeout' | 'protocol' | 'aborted' | 'command' | 'internal';
const REASONS: readonly ScrapeErrorReason[] = ['unavailable', 'timeout', 'protocol', 'aborted', 'command', 'internal'];
const DEFAULT_TIMEOUT_MS = 1_000;

/** What one scrape learnt about one datapath. */
interface DatapathResult {
  dp: Datapath;
  flows?: FlowCounts;
  stats?: OffloadStats;
}

const perDatapath = (dp: Datapath): UnixctlCall[] => [
  { method: 'dpctl/dump-flows', params: ['-m', dp.full] },
  { method: 'dpctl/offload-stats-show', params: [dp.full] },
];

function reasonOf(e: unknown): ScrapeErrorReason {
  if (!(e instanceof UnixctlError)) return 'internal';
  switch (e.code) {
    case 'UNIXCTL_UNAVAILABLE': return 'unavailable';
    case 'UNIXCTL_TIMEOUT': return 'timeout';
    case 'UNIXCTL_ABORTED': return 'aborted';
    case 'UNIXCTL_COMMAND': return 'command';
    default: return 'protocol';
  }
}

/**
 * Registers the ovnode_ovs_offload_* metrics on `registry`; they ask ovs-vswitchd when scraped.
 * Give either `socketPath` or `unixctl`.
 */
export function registerOffloadMetrics(opts: OffloadMetricsOptions): OffloadMetricsHandle {
  const { registry, log } = opts;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let callAll: UnixctlCallAll;
  if (opts.unixctl) callAll = opts.unixctl;
  else if (opts.socketPath !== undefined) {
    const client = new UnixctlClient(opts.socketPath, { timeoutMs });
    callAll = (calls, o) => client.callAll(calls, o);
  } else throw new TypeError('registerOffloadMetrics: give socketPath or unixctl');

  // Every metric's collect() awaits the same scrape: prom-client calls all of them in one
  // synchronous loop, so the first starts it and the others join it while it is in flight.
  let inFlight: Promise<void> | undefined;
  const collect = (): Promise<void> => {
    inFlight ??= scrape().finally(() => { inFlight = undefined; });
    return inFlight;
  };
  const registers = [registry];

  const flows = new Gauge({
    name: 'ovnode_ovs_offload_flows',
    help: 'Datapath flows by offload state (dpctl/dump-flows -m): offloaded (in hardware: tc or rte_flow), partially_offloaded (userspace flow with a hardware mark), non_offloaded',
    labelNames: ['datapath', 'type'] as const, registers, collect,
  });
  const flowsByLayer = new Gauge({
    name: 'ovnode_ovs_offload_flows_by_layer',
    help: 'Datapath flows by the layer that holds them (dp: field of dpctl/dump-flows -m: ovs, tc, dpdk)',
    labelNames: ['datapath', 'layer'] as const, registers, collect,
  });
  const statsAvailable = new Gauge({
    name: 'ovnode_ovs_offload_stats_available',
    help: 'Whether dpctl/offload-stats-show answered with its table (userspace datapath with other_config:hw-offload=true); 0 otherwise',
    labelNames: ['datapath'] as const, registers, collect,
  });
  const queued = new Gauge({
    name: 'ovnode_ovs_offload_queued',
    help: 'Flow offload requests waiting in the offload thread queue ("Enqueued offloads"), by thread ("total" for the sum)',
    labelNames: ['datapath', 'thread'] as const, registers, collect,
  });
  const inserted = new Gauge({
    name: 'ovnode_ovs_offload_inserted_flows',
    help: 'Flows currently offloaded by the offload threads ("Inserted offloads"), by thread ("total" for the sum)',
    labelNames: ['datapath', 'thread'] as const, registers, collect,
  });
  const latency = new Gauge({
    name: 'ovnode_ovs_offload_latency_seconds',
    help: 'Flow offload insertion latency of the offload threads: cumulative (cma_*) and exponential (ema_*) moving mean and stddev',
    labelNames: ['datapath', 'thread', 'stat'] as const, registers, collect,
  });
  const otherStat = new Gauge({
    name: 'ovnode_ovs_offload_stat',
    help: 'Other counters of dpctl/offload-stats-show (vendor builds), raw values, by a slug of their name',
    labelNames: ['datapath', 'thread', 'counter'] as const, registers, collect,
  });
  const unparsed = new Gauge({
    name: 'ovnode_ovs_offload_unparsed_lines',
    help: 'Lines of the last reply that the parser did not recognise (a changed OVS output format), by command',
    labelNames: ['datapath', 'command'] as const, registers, collect,
  });
  const up = new Gauge({
    name: 'ovnode_ovs_offload_up',
    help: '1 when the last scrape got answers from ovs-vswitchd over its control socket, else 0',
    registers, collect,
  });
  const errors = new Counter({
    name: 'ovnode_ovs_offload_scrape_errors_total',
    help: 'Offload scrapes that could not ask ovs-vswitchd (unavailable, timeout, protocol, aborted) or got an error answer (command), by reason',
    labelNames: ['reason'] as const, registers, collect,
  });
  for (const reason of REASONS) errors.inc({ reason }, 0);
  const gauges = [flows, flowsByLayer, statsAvailable, queued, inserted, latency, otherStat, unparsed];

  /** Datapaths of the previous scrape: their commands go into the same batch as dump-dps. */
  let known: Datapath[] = [];
  let healthy = true;

  async function scrape(): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const remaining = (): number => Math.max(1, deadline - Date.now());
    let results: DatapathResult[];
    let commandErrors: string[];
    try {
      ({ results, commandErrors } = await ask(remaining));
    } catch (e) {
      for (const g of gauges) g.reset();
      up.set(0);
      const reason = reasonOf(e);
      errors.inc({ reason });
      if (healthy) log.warn({ step: 'offload-metrics', reason, err: e }, 'cannot read offload state from ovs-vswitchd');
      else log.debug({ step: 'offload-metrics', reason, err: e }, 'cannot read offload state from ovs-vswitchd');
      healthy = false;
      return;
    }
    try {
      apply(results);
    } catch (e) {
      // Not expected (the parsers do not throw); a scrape must not fail because of it.
      for (const g of gauges) g.reset();
      errors.inc({ reason: 'internal' });
      log.warn({ step: 'offload-metrics', err: e }, 'offload metrics: internal error');
      return;
    }
    up.set(1);
    if (commandErrors.length > 0) {
      errors.inc({ reason: 'command' }, commandErrors.length);
      log.debug({ step: 'offload-metrics', errors: commandErrors }, 'ovs-vswitchd answered offload queries with errors');
    }
    if (!healthy) log.info({ step: 'offload-metrics' }, 'offload state readable from ovs-vswitchd again');
    healthy = true;
  }

  /** The unixctl exchange: one batch, or two when the datapaths changed since the last scrape. */
  async function ask(remaining: () => number): Promise<{ results: DatapathResult[]; commandErrors: string[] }> {
    const commandErrors: string[] = [];
    const queried = known;
    const batch: UnixctlCall[] = [{ method: 'dpctl/dump-dps' }, ...queried.flatMap(perDatapath)];
    const outcomes = await callAll(batch, { timeoutMs: remaining() });
    const dps = readDumpDps(outcomes[0], commandErrors);
    known = dps;
    let answers = outcomes.slice(1);
    let asked = queried;
    if (!sameDatapaths(dps, queried)) {
      asked = dps;
      answers = dps.length === 0 ? [] : await callAll(dps.flatMap(perDatapath), { timeoutMs: remaining() });
    }
    const results: DatapathResult[] = [];
    asked.forEach((dp, i) => {
      const flowsOutcome = answers[2 * i];
      const statsOutcome = answers[2 * i + 1];
      const r: DatapathResult = { dp };
      if (flowsOutcome?.ok) r.flows = countFlows(flowsOutcome.result);
      else commandErrors.push(flowsOutcome ? flowsOutcome.error.reply.trim() : `no answer to dump-flows ${dp.full}`);
      // An error here is the normal answer without hw-offload (EINVAL) or on the kernel
      // datapath (EOPNOTSUPP): no stats, not a failure.
      if (statsOutcome?.ok) r.stats = parseOffloadStats(statsOutcome.result);
      results.push(r);
    });
    return { results, commandErrors };
  }

  function apply(results: DatapathResult[]): void {
    for (const g of gauges) g.reset();
    for (const { dp, flows: f, stats: s } of results) {
      const datapath = dp.name;
      if (f) {
        for (const type of FLOW_OFFLOAD_TYPES) flows.set({ datapath, type }, f.byType[type]);
        for (const [layer, n] of Object.entries(f.byLayer)) flowsByLayer.set({ datapath, layer }, n);
        unparsed.set({ datapath, command: 'dump-flows' }, f.unparsed);
      }
      const table = s?.present === true;
      statsAvailable.set({ datapath }, table ? 1 : 0);
      if (s) unparsed.set({ datapath, command: 'offload-stats-show' }, s.unparsed);
      if (!s || !table) continue;
      for (const c of s.counters) {
        const thread = String(c.thread);
        const k = classifyCounter(c.name);
        if (k.kind === 'queued') queued.set({ datapath, thread }, c.value);
        else if (k.kind === 'inserted') inserted.set({ datapath, thread }, c.value);
        else if (k.kind === 'latency') latency.set({ datapath, thread, stat: k.stat }, c.value / 1e6);
        else otherStat.set({ datapath, thread, counter: k.counter }, c.value);
      }
    }
  }

  const all = [...gauges, up, errors];
  return {
    metricNames: all.map((m) => (m as unknown as { name: string }).name),
    unregister: () => { for (const m of all) registry.removeSingleMetric((m as unknown as { name: string }).name); },
  };
}

/**
 * The datapaths of a dump-dps answer. Without any datapath, OVS 3.1 answers with an error whose
 * text is empty (the kernel enumeration failed and nothing else exists): that is "none", not a
 * failure. An error with text is recorded, and the datapaths it still lists are used.
 */
function readDumpDps(o: UnixctlOutcome | undefined, commandErrors: string[]): Datapath[] {
  if (!o) { commandErrors.push('no answer to dump-dps'); return []; }
  if (o.ok) return parseDumpDps(o.result).datapaths;
  const parsed = parseDumpDps(o.error.reply);
  if (parsed.unparsed > 0) commandErrors.push(o.error.reply.trim());
  return parsed.datapaths;
}

function sameDatapaths(a: readonly Datapath[], b: readonly Datapath[]): boolean {
  return a.length === b.length && a.every((d, i) => d.full === b[i]?.full);
}
