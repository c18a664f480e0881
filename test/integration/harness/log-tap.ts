// Line events for a TestNode's log without touching TestNode: TestNode appends every stdout /
// stderr chunk of the daemon to its public `logs` string; LogTap turns that property into an
// accessor on the instance, so every append is also split into lines, parsed (pino JSON) and
// announced. `node.logs` keeps working exactly as before.

import { EventEmitter } from 'node:events';
import type { TestNode } from './node';

export interface LogLine {
  /** 0, 1, 2, ... in arrival order. */
  seq: number;
  /** When the line arrived here (Date.now()). */
  at: number;
  raw: string;
  /** The parsed pino object, or undefined for a line that is not JSON. */
  json: Record<string, unknown> | undefined;
}

/** Every string value inside a parsed JSON value, depth first. */
export function stringValues(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(stringValues);
  if (v !== null && typeof v === 'object') return Object.values(v as Record<string, unknown>).flatMap(stringValues);
  return [];
}

export class LogTap {
  readonly lines: LogLine[] = [];
  private readonly events = new EventEmitter();
  private partial = '';

  /** Attach before `node.start()` to see every line. */
  constructor(node: TestNode) {
    let text = node.logs;
    this.feed(text);
    Object.defineProperty(node, 'logs', {
      configurable: true,
      enumerable: true,
      get: () => text,
      set: (next: string) => {
        const appended = next.startsWith(text) ? next.slice(text.length) : next;
        text = next;
        this.feed(appended);
      },
    });
    this.events.setMaxListeners(0);
  }

  /** Index the next line will get: a mark to search "after this point". */
  get mark(): number { return this.lines.length; }

  onLine(listener: (l: LogLine) => void): () => void {
    this.events.on('line', listener);
    return () => { this.events.off('line', listener); };
  }

  /** Lines from `from` on that satisfy `pred`. */
  find(pred: (l: LogLine) => boolean, from = 0): LogLine[] {
    return this.lines.slice(from).filter(pred);
  }

  /**
   * Resolves with the first line (index >= `from`) that satisfies `pred`, already there or still to
   * come; rejects after `timeoutMs` with the tail of the log in the message.
   */
  waitFor(pred: (l: LogLine) => boolean, opts: { from?: number; timeoutMs?: number; what?: string } = {}): Promise<LogLine> {
    const from = opts.from ?? 0;
    const timeoutMs = opts.timeoutMs ?? 5_000;
    const seen = this.lines.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const off = this.onLine((l) => {
        if (l.seq >= from && pred(l)) { clearTimeout(timer); off(); resolve(l); }
      });
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no log line ${opts.what ?? 'matching'} within ${timeoutMs} ms; last lines:\n${this.tail(15)}`));
      }, timeoutMs);
    });
  }

  tail(n: number): string {
    return this.lines.slice(-n).map((l) => l.raw).join('\n');
  }

  private feed(chunk: string): void {
    if (chunk === '') return;
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const slice of parts) {
      if (slice.trim() === '') continue;
      // A copy: V8 keeps a split() piece pointing into its whole parent string, so storing the
      // piece would keep a copy of the entire log alive per line.
      const raw = Buffer.from(slice, 'utf8').toString('utf8');
      let json: Record<string, unknown> | undefined;
      try {
        const v = JSON.parse(raw) as unknown;
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) json = v as Record<string, unknown>;
      } catch { json = undefined; }
      const line: LogLine = { seq: this.lines.length, at: Date.now(), raw, json };
      this.lines.push(line);
      this.events.emit('line', line);
    }
  }
}
