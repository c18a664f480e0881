// ReconcileLoop with a scripted leak source, a fake clock and the CNI server's real KeyedLock:
// a leak is removed only when the previous run saw it unchanged and it is old enough (or its
// netns is gone and the lock is there), never while a request of its sandbox holds the lock, and
// not at all when it vanished by then. Runs coalesce, scans that fail do not break the
// two-run rule, the timer runs it, and metrics count what happened.
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { Metrics } from '../../../../daemon/metrics';
import type { Leak, LeakKind, LeakSource } from '../../../../daemon/node/reconcile';
import { loopSettingsFromEnv, ReconcileLoop, type ReconcileLoopOptions } from '../../../../daemon/node/reconcile-loop';
import { KeyedLock } from '../../../../daemon/server/keyed-lock';

const log = pino({ level: 'silent' });
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

function leak(kind: LeakKind, name: string, incarnation = 1): Leak {
  if (kind === 'orphan_veth') return { kind, id: `${kind}|${name}|${incarnation}`, veth: name, detail: { veth: name } };
  return { kind, id: `${kind}|${name}/eth0|${incarnation}`, sandbox: name, ifName: 'eth0', detail: { sandbox: name } };
}

/** Leaks to report per scan (`present`), what the re-check says, and what was removed. */
class ScriptedSource implements LeakSource {
  present: Leak[] = [];
  /** Ids the re-check under the lock no longer finds. */
  gone = new Set<string>();
  failScan: Error | undefined;
  failRemove = new Set<string>();
  readonly removed: string[] = [];
  readonly events: string[] = [];
  scans = 0;
  onScan: (() => void) | undefined;
  scanGate: Promise<void> | undefined;

  async scan(): Promise<Leak[]> {
    this.scans++;
    this.onScan?.();
    await this.scanGate;
    if (this.failScan) throw this.failScan;
    return [...this.present];
  }

  async stillLeaking(l: Leak): Promise<boolean> {
    this.events.push(`check ${l.id}`);
    return !this.gone.has(l.id) && this.present.some((p) => p.id === l.id);
  }

  async remove(l: Leak): Promise<Record<string, unknown>> {
    if (this.failRemove.has(l.id)) throw new Error(`cannot remove ${l.id}`);
    this.events.push(`remove ${l.id}`);
    this.removed.push(l.id);
    this.present = this.present.filter((p) => p.id !== l.id);
    return {};
  }
}

function setup(opts: Partial<ReconcileLoopOptions> = {}) {
  const source = new ScriptedSource();
  const metrics = new Metrics();
  const clock = { t: 1_000_000 };
  const lock = new KeyedLock();
  const loop = new ReconcileLoop({
    source, log, metrics, intervalMs: 30_000, graceMs: 10_000, now: () => clock.t,
    withSandboxLock: (k, fn) => lock.run(k, fn), ...opts,
  });
  return { source, metrics, clock, lock, loop };
}

async function values(m: Metrics, name: string, label = 'kind'): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await m.registry.getSingleMetric(name)?.get())?.values ?? []) {
    if (v.value !== 0) out[String(v.labels[label] ?? '')] = v.value;
  }
  return out;
}

describe('ReconcileLoop: when a leak is removed', () => {
  it('an LSP without port: not on first sight; on the next run once older than the grace period', async () => {
    const { source, clock, loop, metrics } = setup();
    const l = leak('lsp_without_port', 'sb1');
    source.present = [l];
    const first = await loop.trigger();
    expect(first).toMatchObject({ found: 1, suspected: 1, removed: {} });
    expect(await values(metrics, 'ovnode_reconcile_suspected')).toEqual({ lsp_without_port: 1 });
    clock.t += 5_000;
    expect(await loop.trigger()).toMatchObject({ suspected: 1, removed: {} }); // seen twice, but 5 s old
    clock.t += 5_000;
    expect(await loop.trigger()).toMatchObject({ suspected: 0, removed: { lsp_without_port: 1 } });
    expect(source.removed).toEqual([l.id]);
    expect(await values(metrics, 'ovnode_reconcile_removed_total')).toEqual({ lsp_without_port: 1 });
    expect(await values(metrics, 'ovnode_reconcile_suspected')).toEqual({});
  });

  it('a leak missing from one run starts over', async () => {
    const { source, clock, loop } = setup();
    const l = leak('port_without_lsp', 'sb1');
    source.present = [l];
    await loop.trigger();
    source.present = [];
    clock.t += 20_000;
    await loop.trigger();
    source.present = [l];
    clock.t += 20_000;
    expect(await loop.trigger()).toMatchObject({ suspected: 1, removed: {} });
    clock.t += 20_000;
    expect(await loop.trigger()).toMatchObject({ removed: { port_without_lsp: 1 } });
  });

  it('a new incarnation (row rewritten, veth recreated: new id) starts over', async () => {
    const { source, clock, loop } = setup();
    source.present = [leak('orphan_veth', 'aaaaaaaaaaaa_h', 1)];
    await loop.trigger();
    source.present = [leak('orphan_veth', 'aaaaaaaaaaaa_h', 2)];
    clock.t += 60_000;
    expect(await loop.trigger()).toMatchObject({ suspected: 1, removed: {} });
    clock.t += 60_000;
    expect(await loop.trigger()).toMatchObject({ removed: { orphan_veth: 1 } });
    expect(source.removed).toEqual(['orphan_veth|aaaaaaaaaaaa_h|2']);
  });

  it('a gone netns is conclusive with the sandbox lock: removed on first sight; without the lock it waits a run', async () => {
    const withLock = setup();
    withLock.source.present = [leak('netns_gone', 'sb1')];
    expect(await withLock.loop.trigger()).toMatchObject({ removed: { netns_gone: 1 } });

    const noLock = setup({ withSandboxLock: undefined });
    noLock.source.present = [leak('netns_gone', 'sb1')];
    expect(await noLock.loop.trigger()).toMatchObject({ suspected: 1, removed: {} });
    noLock.clock.t += 10_000;
    expect(await noLock.loop.trigger()).toMatchObject({ removed: { netns_gone: 1 } });
  });
});

describe('ReconcileLoop: never racing a request of the same sandbox', () => {
  it('waits for a request holding the sandbox lock, then re-checks: a leak the request resolved is left alone', async () => {
    const { source, lock, loop } = setup();
    const l = leak('netns_gone', 'sb1');
    source.present = [l];
    let finishRequest!: () => void;
    // A DEL of sb1 is in flight: it holds the lock and will remove the attachment itself.
    const request = lock.run('sb1', async () => {
      source.events.push('request start');
      await new Promise<void>((r) => { finishRequest = r; });
      source.present = [];
      source.events.push('request end');
    });
    const run = loop.trigger();
    await settle();
    expect(source.events).toEqual(['request start']);
    finishRequest();
    await request;
    expect(await run).toMatchObject({ vanished: 1, removed: {} });
    expect(source.events).toEqual(['request start', 'request end', `check ${l.id}`]);
    expect(source.removed).toEqual([]);
  });

  it('a request of the sandbox queued behind the removal starts only after it', async () => {
    const { source, lock, loop } = setup();
    const l = leak('netns_gone', 'sb1');
    source.present = [l];
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    // Slow removal: an ADD of the same sandbox arriving meanwhile must wait for the lock.
    const remove = source.remove.bind(source);
    source.remove = async (x) => { source.events.push('remove start'); await gate; return remove(x); };
    const run = loop.trigger();
    await settle();
    const add = lock.run('sb1', async () => { source.events.push('ADD'); });
    await settle();
    expect(source.events).toEqual([`check ${l.id}`, 'remove start']);
    release();
    await Promise.all([run, add]);
    expect(source.events).toEqual([`check ${l.id}`, 'remove start', `remove ${l.id}`, 'ADD']);
  });

  it('other sandboxes are not blocked by the loop', async () => {
    const { source, lock, loop } = setup();
    source.present = [leak('netns_gone', 'sb1')];
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const remove = source.remove.bind(source);
    source.remove = async (x) => { await gate; return remove(x); };
    const run = loop.trigger();
    await settle();
    await expect(lock.run('sb2', async () => 'served')).resolves.toBe('served');
    release();
    await run;
  });

  it('an orphan veth (no sandbox to lock) is re-checked just before removal', async () => {
    const { source, clock, loop } = setup();
    const l = leak('orphan_veth', 'bbbbbbbbbbbb_h');
    source.present = [l];
    await loop.trigger();
    clock.t += 10_000;
    source.gone.add(l.id);
    expect(await loop.trigger()).toMatchObject({ vanished: 1, removed: {} });
  });
});

describe('ReconcileLoop: runs', () => {
  it('triggers during a run share one follow-up run', async () => {
    const { source, loop } = setup();
    let open!: () => void;
    source.scanGate = new Promise((r) => { open = r; });
    const a = loop.trigger('a');
    await settle();
    const b = loop.trigger('b');
    const c = loop.trigger('c');
    expect(b).toBe(c);
    source.scanGate = undefined;
    open();
    const [ra, rb, rc] = await Promise.all([a, b, c]);
    expect(source.scans).toBe(2);
    expect([ra.trigger, rb.trigger, rc.trigger]).toEqual(['a', 'b', 'b']);
    expect(rb.seq).toBe(ra.seq + 1);
  });

  it('a failed scan is counted and does not break a leak\'s continuity', async () => {
    const { source, clock, loop, metrics } = setup();
    source.present = [leak('lsp_without_port', 'sb1')];
    await loop.trigger();
    source.failScan = new Error('view not ready');
    clock.t += 10_000;
    expect(await loop.trigger()).toMatchObject({ outcome: 'error', found: 0 });
    source.failScan = undefined;
    expect(await loop.trigger()).toMatchObject({ removed: { lsp_without_port: 1 } });
    expect(await values(metrics, 'ovnode_reconcile_errors_total')).toEqual({ scan: 1 });
  });

  it('a removal that fails is counted and retried by the next run', async () => {
    const { source, clock, loop, metrics } = setup();
    const l = leak('netns_gone', 'sb1');
    source.present = [l];
    source.failRemove.add(l.id);
    expect(await loop.trigger()).toMatchObject({ failed: 1, outcome: 'error' });
    source.failRemove.clear();
    clock.t += 1;
    expect(await loop.trigger()).toMatchObject({ removed: { netns_gone: 1 } });
    expect(await values(metrics, 'ovnode_reconcile_errors_total')).toEqual({ netns_gone: 1 });
  });

  it('chores run on every run; a failing chore is logged, the run still completes', async () => {
    let ran = 0;
    const { loop } = setup({ chores: [{ name: 'bad', run: async () => { throw new Error('boom'); } }, { name: 'good', run: async () => { ran++; } }] });
    expect(await loop.trigger()).toMatchObject({ outcome: 'error' });
    expect(ran).toBe(1);
  });

  it('onRemoved hears of attachment removals (not of veth-only runs)', async () => {
    const heard: LeakKind[][] = [];
    const { source, clock, loop } = setup({ onRemoved: (k) => heard.push(k) });
    source.present = [leak('orphan_veth', 'cccccccccccc_h')];
    await loop.trigger();
    clock.t += 10_000;
    await loop.trigger();
    source.present = [leak('netns_gone', 'sb1')];
    await loop.trigger();
    expect(heard).toEqual([['netns_gone']]);
  });

  it('the timer runs it every interval after the previous run; stop() leaves no timer behind', async () => {
    vi.useFakeTimers();
    try {
      const { source, loop } = setup({ intervalMs: 1_000 });
      loop.start();
      await vi.advanceTimersByTimeAsync(999);
      expect(source.scans).toBe(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(source.scans).toBe(1);
      // A triggered run restarts the interval.
      await vi.advanceTimersByTimeAsync(500);
      await loop.trigger('SIGHUP');
      expect(source.scans).toBe(2);
      await vi.advanceTimersByTimeAsync(999);
      expect(source.scans).toBe(2);
      await vi.advanceTimersByTimeAsync(1);
      expect(source.scans).toBe(3);
      await loop.stop();
      expect(vi.getTimerCount()).toBe(0);
      expect((await loop.trigger()).outcome).toBe('stopped');
    } finally {
      vi.useRealTimers();
    }
  });

  it('stop() waits for the run in progress', async () => {
    const { source, loop } = setup();
    let open!: () => void;
    source.scanGate = new Promise((r) => { open = r; });
    const run = loop.trigger();
    await settle();
    let stopped = false;
    const stopping = loop.stop().then(() => { stopped = true; });
    await settle();
    expect(stopped).toBe(false);
    open();
    await stopping;
    expect((await run).outcome).toBe('ok');
  });

  it('settings from the environment: defaults, overrides, refusal of nonsense', () => {
    expect(loopSettingsFromEnv({})).toEqual({ intervalMs: 30_000 });
    expect(loopSettingsFromEnv({ OVNODE_RECONCILE_INTERVAL_MS: '500', OVNODE_RECONCILE_GRACE_MS: '0' })).toEqual({ intervalMs: 500, graceMs: 0 });
    expect(() => loopSettingsFromEnv({ OVNODE_RECONCILE_INTERVAL_MS: '30s' })).toThrow(/whole number/);
    expect(() => loopSettingsFromEnv({ OVNODE_RECONCILE_INTERVAL_MS: '5' })).toThrow(/at least 100/);
  });
});
