// A pino logger whose JSON lines are kept in memory, so a test can wait for a log record (the
// supervisor's restarts are only visible there) instead of sleeping and looking.

import pino, { type Logger } from 'pino';

export interface LogRecord {
  level: number;
  msg: string;
  err?: { type?: string; message?: string; stack?: string; code?: string };
  [field: string]: unknown;
}

export class FakeLog {
  readonly records: LogRecord[] = [];
  readonly logger: Logger;
  private waiters: Array<{ msg: string; n: number; resolve: (r: LogRecord) => void }> = [];

  constructor() {
    // pino writes synchronously to a destination that is a plain object with write().
    this.logger = pino({ level: 'debug' }, { write: (line: string) => this.add(JSON.parse(line) as LogRecord) });
  }

  /** The records with this message, in order. */
  all(msg: string): LogRecord[] {
    return this.records.filter((r) => r.msg === msg);
  }

  /** Resolves with the n-th (1-based) record with this message, once it has been logged. */
  nth(msg: string, n: number): Promise<LogRecord> {
    const seen = this.all(msg);
    if (seen.length >= n) return Promise.resolve(seen[n - 1]);
    return new Promise((resolve) => this.waiters.push({ msg, n, resolve }));
  }

  private add(r: LogRecord): void {
    this.records.push(r);
    const count = this.all(r.msg).length;
    this.waiters = this.waiters.filter((w) => {
      if (w.msg !== r.msg || w.n !== count) return true;
      w.resolve(r);
      return false;
    });
  }
}
