// KeyedLock: one sandbox at a time, different sandboxes in parallel, nothing left behind.
import { describe, expect, it } from 'vitest';
import { KeyedLock } from '../../../../daemon/server/keyed-lock';

interface Gate { promise: Promise<void>; open: () => void; fail: (e: Error) => void }

function gate(): Gate {
  let open!: () => void;
  let fail!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => { open = res; fail = rej; });
  return { promise, open, fail };
}

/** Lets every pending promise callback run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A task that logs its start, waits for its gate, logs its end. */
function task(log: string[], name: string, g: Gate): () => Promise<string> {
  return async () => {
    log.push(`${name} start`);
    try { await g.promise; } finally { log.push(`${name} end`); }
    return name;
  };
}

describe('KeyedLock', () => {
  const outcomes: { desc: string; firstFails: boolean }[] = [
    { desc: 'after the first resolves', firstFails: false },
    { desc: 'after the first rejects', firstFails: true },
  ];
  for (const c of outcomes) {
    it(`same key: the second starts only ${c.desc}`, async () => {
      const lock = new KeyedLock();
      const log: string[] = [];
      const [ga, gb] = [gate(), gate()];
      const a = lock.run('sandbox-1', task(log, 'A', ga));
      const b = lock.run('sandbox-1', task(log, 'B', gb));
      await settle();
      expect(log).toEqual(['A start']);
      if (c.firstFails) ga.fail(new Error('A failed')); else ga.open();
      if (c.firstFails) await expect(a).rejects.toThrow('A failed'); else await expect(a).resolves.toBe('A');
      await settle();
      expect(log).toEqual(['A start', 'A end', 'B start']);
      gb.open();
      await expect(b).resolves.toBe('B');
      expect(log).toEqual(['A start', 'A end', 'B start', 'B end']);
      expect(lock.size).toBe(0);
    });
  }

  it('same key: queued work runs in arrival order', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const gates = Array.from({ length: 5 }, gate);
    const runs = gates.map((g, i) => lock.run('k', task(log, `T${i}`, g)));
    // Open them in reverse: order must still follow arrival.
    for (const g of [...gates].reverse()) g.open();
    await Promise.all(runs);
    expect(log).toEqual(gates.flatMap((_, i) => [`T${i} start`, `T${i} end`]));
  });

  it('same key: a synchronous throw releases the key too', async () => {
    const lock = new KeyedLock();
    const a = lock.run('k', () => { throw new Error('sync'); });
    const b = lock.run('k', async () => 'after');
    await expect(a).rejects.toThrow('sync');
    await expect(b).resolves.toBe('after');
    expect(lock.size).toBe(0);
  });

  it('different keys run concurrently', async () => {
    const lock = new KeyedLock();
    const log: string[] = [];
    const [ga, gb] = [gate(), gate()];
    const a = lock.run('sandbox-1', task(log, 'A', ga));
    const b = lock.run('sandbox-2', task(log, 'B', gb));
    await settle();
    expect(log).toEqual(['A start', 'B start']);
    expect(lock.size).toBe(2);
    gb.open();
    await b;
    expect(log).toContain('B end');
    expect(log).not.toContain('A end');
    expect(lock.size).toBe(1);
    ga.open();
    await a;
    expect(lock.size).toBe(0);
  });

  it('drains to size 0 after a mix of keys, successes and failures', async () => {
    const lock = new KeyedLock();
    const runs: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      const key = `k${i % 4}`;
      runs.push(lock.run(key, async () => {
        await settle();
        if (i % 5 === 0) throw new Error(`fail ${i}`);
        return i;
      }));
    }
    expect(lock.size).toBe(4);
    const results = await Promise.allSettled(runs);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(6);
    expect(lock.size).toBe(0);
  });

  it('a key used again after draining starts at once', async () => {
    const lock = new KeyedLock();
    await lock.run('k', async () => 1);
    expect(lock.size).toBe(0);
    const log: string[] = [];
    const g = gate();
    const p = lock.run('k', task(log, 'again', g));
    await settle();
    expect(log).toEqual(['again start']);
    g.open();
    await p;
  });
});
