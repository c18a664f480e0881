// RetryQueue: a newer write for a key replaces a waiting one, a key never runs twice at once,
// failures come back with backoff, and idle() resolves when everything is done.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { RetryQueue } from '../../../../daemon/cluster/retry-queue';

const log = pino({ level: 'silent' });

describe('RetryQueue', () => {
  it('runs each key once with its newest write, at most `concurrency` at a time', async () => {
    const q = new RetryQueue('t', log, { concurrency: 2 });
    const ran: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const write = (label: string) => async (): Promise<boolean> => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      ran.push(label);
      inFlight--;
      return true;
    };
    for (let i = 0; i < 6; i++) q.enqueue(`k${i}`, write(`k${i}-old`));
    // k4 and k5 have not started: their newer writes replace the queued ones.
    q.enqueue('k4', write('k4-new'));
    q.enqueue('k5', write('k5-new'));
    await q.idle();
    expect(maxInFlight).toBe(2);
    expect(ran.sort()).toEqual(['k0-old', 'k1-old', 'k2-old', 'k3-old', 'k4-new', 'k5-new']);
  });

  it('a write for a running key runs after it, never concurrently', async () => {
    const q = new RetryQueue('t', log);
    const events: string[] = [];
    let release: () => void = () => undefined;
    q.enqueue('k', async () => { events.push('1-start'); await new Promise<void>((r) => { release = r; }); events.push('1-end'); return true; });
    await new Promise((r) => setImmediate(r));
    q.enqueue('k', async () => { events.push('2'); return true; });
    release();
    await q.idle();
    expect(events).toEqual(['1-start', '1-end', '2']);
  });

  it('retries a failing write with growing delays until it succeeds', async () => {
    const q = new RetryQueue('t', log, { baseDelayMs: 5, maxDelayMs: 40 });
    const at: number[] = [];
    q.enqueue('k', async () => {
      at.push(Date.now());
      if (at.length < 4) throw new Error('apiserver down');
      return true;
    });
    await q.idle();
    expect(at).toHaveLength(4);
    expect(q.size).toBe(0);
  });

  it('close() drops waiting writes and releases idle()', async () => {
    const q = new RetryQueue('t', log, { baseDelayMs: 10_000 });
    q.enqueue('k', async () => false);
    await new Promise((r) => setTimeout(r, 10));
    const idle = q.idle();
    q.close();
    await idle;
    expect(q.size).toBe(0);
  });
});
