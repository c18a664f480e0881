// The periodic reconcile while serving: every interval (and on demand) it looks for leaks
// (reconcile.ts) and removes them, so whatever left them behind, they are gone within two
// intervals and counted. ADDs and DELs in flight pass through leak-like states (an LSP whose
// port is not written yet, a veth before its port), so a leak is removed only when
//  - it was seen, unchanged (same rows, same ifindex), by the previous run too and is at least
//    graceMs old, or it is conclusive on its own (the pod's netns is gone) and the sandbox lock
//    is available; and
//  - it is still there when looked at again under its sandbox's lock, the lock CNI requests of
//    that sandbox take, so no request of that sandbox runs meanwhile.

import type { Logger } from 'pino';
import { InvalidConfigError } from '../../common/errors';
import type { Metrics } from '../metrics';
import { LEAK_KINDS, type Leak, type LeakKind, type LeakSource } from './reconcile';

/** Runs fn while holding the lock CNI requests of `sandbox` take (CniServer.withSandboxLock). */
export type SandboxLock = <T>(sandbox: string, fn: () => Promise<T>) => Promise<T>;

export interface Chore { name: string; run: () => Promise<unknown> }

export interface ReconcileLoopOptions {
  source: LeakSource;
  log: Logger;
  metrics: Metrics;
  /** Between the end of a run and the next periodic one. Default 30 s. */
  intervalMs?: number;
  /** Minimum age of a leak before it may be removed, across two runs. Default: intervalMs. */
  graceMs?: number;
  /**
   * The CNI server's per-sandbox lock. Without it no leak is conclusive: every leak waits for
   * a second run (a DEL in flight cannot be told apart from a netns that is gone).
   */
  withSandboxLock?: SandboxLock;
  /** Work done on every run after the leaks, e.g. retrying failed conntrack flushes. */
  chores?: Chore[];
  /** Called after a run that removed attachments (address sets and port groups follow). */
  onRemoved?: (kinds: LeakKind[]) => void;
  now?: () => number;
}

export interface RunReport {
  seq: number;
  trigger: string;
  found: number;
  removed: Partial<Record<LeakKind, number>>;
  /** Seen for the first time (or too young): left for a later run. */
  suspected: number;
  /** No longer a leak when looked at again under the lock. */
  vanished: number;
  failed: number;
  ms: number;
  outcome: 'ok' | 'error' | 'stopped';
}

export const DEFAULT_INTERVAL_MS = 30_000;

/** Loop settings from the environment (OVNODE_RECONCILE_INTERVAL_MS, OVNODE_RECONCILE_GRACE_MS). */
export function loopSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): { intervalMs: number; graceMs?: number } {
  const read = (name: string): number | undefined => {
    const text = env[name];
    if (text === undefined || text === '') return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0) throw new InvalidConfigError(`${name} must be a whole number of milliseconds, got ${JSON.stringify(text)}`);
    return n;
  };
  const intervalMs = read('OVNODE_RECONCILE_INTERVAL_MS') ?? DEFAULT_INTERVAL_MS;
  if (intervalMs < 100) throw new InvalidConfigError('OVNODE_RECONCILE_INTERVAL_MS must be at least 100');
  const graceMs = read('OVNODE_RECONCILE_GRACE_MS');
  return graceMs === undefined ? { intervalMs } : { intervalMs, graceMs };
}

export class ReconcileLoop {
  private readonly intervalMs: number;
  private readonly graceMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<RunReport> | undefined;
  private next: Promise<RunReport> | undefined;
  private stopped = false;
  /** Runs whose scan succeeded; "the previous run" is the one with seq - 1. */
  private seq = 0;
  /** Leaks seen by the last successful scan: when first seen, and by which run last. */
  private readonly seen = new Map<string, { firstSeen: number; lastSeq: number }>();

  constructor(private readonly opts: ReconcileLoopOptions) {
    this.intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.graceMs = opts.graceMs ?? this.intervalMs;
    this.now = opts.now ?? Date.now;
  }

  /** Schedules the first periodic run one interval from now. */
  start(): void {
    if (!this.stopped) this.schedule();
  }

  /**
   * A run now, or, when one is going on (it may have scanned before the caller's reason to ask),
   * one right after it; callers asking meanwhile share that one. Resolves with its report.
   */
  trigger(trigger = 'manual'): Promise<RunReport> {
    if (this.stopped) return Promise.resolve(this.stoppedReport(trigger));
    if (!this.current) return this.launch(trigger);
    this.next ??= this.current.then(() => {
      this.next = undefined;
      return this.stopped ? this.stoppedReport(trigger) : this.launch(trigger);
    });
    return this.next;
  }

  /** No further runs; resolves once a run in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.next;
    await this.current;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    // unref: the daemon's lifetime is its servers', not this timer's.
    this.timer = setTimeout(() => void this.trigger('timer'), this.intervalMs).unref();
  }

  private launch(trigger: string): Promise<RunReport> {
    clearTimeout(this.timer);
    const run = this.run(trigger).finally(() => {
      this.current = undefined;
      if (!this.stopped) this.schedule();
    });
    this.current = run;
    return run;
  }

  /** Never rejects: a failure is logged, counted and reported. */
  private async run(trigger: string): Promise<RunReport> {
    const { source, log, metrics } = this.opts;
    const started = process.hrtime.bigint();
    const now = this.now();
    const report: RunReport = { seq: this.seq, trigger, found: 0, removed: {}, suspected: 0, vanished: 0, failed: 0, ms: 0, outcome: 'ok' };
    const finish = (): RunReport => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      report.ms = seconds * 1000;
      metrics.reconcileRunDuration.observe({ trigger, outcome: report.outcome }, seconds);
      const quiet = trigger === 'timer' && report.found === 0 && report.outcome === 'ok';
      log[quiet ? 'debug' : 'info']({ step: 'reconcile', ...report }, 'reconcile run');
      return report;
    };

    let leaks: Leak[];
    try {
      leaks = await source.scan();
    } catch (e) {
      metrics.reconcileErrors.inc({ kind: 'scan' });
      log.error({ step: 'reconcile', trigger, err: e }, 'reconcile scan failed');
      report.outcome = 'error';
      return finish();
    }
    const seq = ++this.seq;
    report.seq = seq;
    report.found = leaks.length;
    metrics.reconcileLastRun.set(Math.floor(this.now() / 1000));

    const suspected = new Map<LeakKind, number>(LEAK_KINDS.map((k) => [k, 0]));
    const removedKinds: LeakKind[] = [];
    for (const leak of leaks) {
      const prev = this.seen.get(leak.id);
      const continued = prev !== undefined && prev.lastSeq === seq - 1;
      const firstSeen = continued ? prev.firstSeen : now;
      const conclusive = leak.kind === 'netns_gone' && this.opts.withSandboxLock !== undefined;
      if (!conclusive && !(continued && now - firstSeen >= this.graceMs)) {
        this.seen.set(leak.id, { firstSeen, lastSeq: seq });
        suspected.set(leak.kind, (suspected.get(leak.kind) ?? 0) + 1);
        report.suspected++;
        continue;
      }
      if (this.stopped) break;
      try {
        const outcome = await this.removeLocked(leak);
        this.seen.delete(leak.id);
        if (outcome === 'vanished') {
          report.vanished++;
          log.debug({ step: 'reconcile', kind: leak.kind, ...leak.detail }, 'leak gone before removal');
          continue;
        }
        metrics.reconcileRemoved.inc({ kind: leak.kind });
        report.removed[leak.kind] = (report.removed[leak.kind] ?? 0) + 1;
        removedKinds.push(leak.kind);
        log.info({ step: 'reconcile', kind: leak.kind, ...leak.detail, ...outcome }, 'removed leak');
      } catch (e) {
        // Kept as seen by this run: the next run retries it at once.
        this.seen.set(leak.id, { firstSeen, lastSeq: seq });
        metrics.reconcileErrors.inc({ kind: leak.kind });
        log.error({ step: 'reconcile', kind: leak.kind, ...leak.detail, err: e }, 'leak removal failed');
        report.failed++;
        report.outcome = 'error';
      }
    }
    for (const [id, s] of this.seen) if (s.lastSeq !== seq) this.seen.delete(id);
    for (const [kind, n] of suspected) metrics.reconcileSuspected.set({ kind }, n);
    if (removedKinds.some((k) => k !== 'orphan_veth')) this.opts.onRemoved?.(removedKinds);

    for (const chore of this.opts.chores ?? []) {
      try {
        await chore.run();
      } catch (e) {
        log.error({ step: 'reconcile', chore: chore.name, err: e }, 'reconcile chore failed');
        report.outcome = 'error';
      }
    }
    return finish();
  }

  private async removeLocked(leak: Leak): Promise<'vanished' | Record<string, unknown>> {
    const { source, withSandboxLock } = this.opts;
    const act = async (): Promise<'vanished' | Record<string, unknown>> =>
      ((await source.stillLeaking(leak)) ? source.remove(leak) : 'vanished');
    return leak.sandbox !== undefined && withSandboxLock ? withSandboxLock(leak.sandbox, act) : act();
  }

  private stoppedReport(trigger: string): RunReport {
    return { seq: this.seq, trigger, found: 0, removed: {}, suspected: 0, vanished: 0, failed: 0, ms: 0, outcome: 'stopped' };
  }
}
