// Writes to the API that must eventually happen but never hold up a CNI request: keyed, so a
// newer write for the same key replaces one still waiting; a few in flight at once; a failed write
// comes back after an exponential, jittered delay. The state each write carries is derived from
// OVSDB, so a daemon that dies with writes queued redoes them from there at its next start.

import type { Logger } from 'pino';

export interface RetryQueueOptions {
  concurrency?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** A write: resolves true when done (or no longer needed), false or throws to be retried. */
export type Write = () => Promise<boolean>;

interface Entry { write: Write; attempts: number; timer?: NodeJS.Timeout }

export class RetryQueue {
  private readonly waiting = new Map<string, Entry>();
  private readonly ready: string[] = [];
  private readonly running = new Set<string>();
  /** A write for a key that was running when a newer one arrived: runs after it. */
  private readonly rerun = new Map<string, Entry>();
  private readonly idleWaiters: Array<() => void> = [];
  private closed = false;
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(private readonly name: string, private readonly log: Logger, opts: RetryQueueOptions = {}) {
    this.concurrency = opts.concurrency ?? 4;
    this.baseDelayMs = opts.baseDelayMs ?? 200;
    this.maxDelayMs = opts.maxDelayMs ?? 30_000;
  }

  get size(): number { return this.waiting.size + this.running.size + this.rerun.size; }

  enqueue(key: string, write: Write): void {
    if (this.closed) return;
    const entry: Entry = { write, attempts: 0 };
    if (this.running.has(key)) { this.rerun.set(key, entry); return; }
    const old = this.waiting.get(key);
    if (old?.timer) clearTimeout(old.timer);
    this.waiting.set(key, entry);
    if (!old || old.timer) this.ready.push(key);
    this.pump();
  }

  /** Resolves once nothing is queued, running or waiting to be retried (tests, shutdown). */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    for (const e of this.waiting.values()) if (e.timer) clearTimeout(e.timer);
    this.waiting.clear();
    this.rerun.clear();
    this.ready.length = 0;
    this.notifyIdle();
  }

  private pump(): void {
    while (!this.closed && this.running.size < this.concurrency && this.ready.length > 0) {
      const key = this.ready.shift() as string;
      const entry = this.waiting.get(key);
      if (!entry || entry.timer) continue;
      this.waiting.delete(key);
      this.running.add(key);
      void this.run(key, entry);
    }
    this.notifyIdle();
  }

  private async run(key: string, entry: Entry): Promise<void> {
    let done = false;
    try {
      done = await entry.write();
    } catch (e) {
      this.log.warn({ step: this.name, key, attempt: entry.attempts + 1, err: e }, 'write failed; will retry');
    }
    this.running.delete(key);
    const newer = this.rerun.get(key);
    if (newer) {
      this.rerun.delete(key);
      this.waiting.set(key, newer);
      this.ready.push(key);
    } else if (!done && !this.closed) {
      entry.attempts++;
      const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(entry.attempts, 10));
      entry.timer = setTimeout(() => {
        delete entry.timer;
        this.ready.push(key);
        this.pump();
      }, delay * (0.5 + Math.random() / 2));
      entry.timer.unref();
      this.waiting.set(key, entry);
    }
    this.pump();
  }

  private notifyIdle(): void {
    if (this.size !== 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
