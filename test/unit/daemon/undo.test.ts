// UndoStack: inverses run newest first, a failing inverse is logged and the rest still run.
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { UndoStack } from '../../../daemon/undo';

const silent = pino({ level: 'silent' });

describe('UndoStack', () => {
  const cases: { desc: string; steps: { what: string; fails?: 'throw' | 'reject' }[]; ran: string[] }[] = [
    { desc: 'nothing pushed', steps: [], ran: [] },
    { desc: 'one step', steps: [{ what: 'veth' }], ran: ['veth'] },
    { desc: 'several steps in reverse', steps: [{ what: 'ip' }, { what: 'veth' }, { what: 'ovs-port' }, { what: 'lsp' }], ran: ['lsp', 'ovs-port', 'veth', 'ip'] },
    { desc: 'past a step that throws', steps: [{ what: 'ip' }, { what: 'veth', fails: 'throw' }, { what: 'lsp' }], ran: ['lsp', 'veth', 'ip'] },
    { desc: 'past a step that rejects', steps: [{ what: 'ip' }, { what: 'veth', fails: 'reject' }, { what: 'lsp' }], ran: ['lsp', 'veth', 'ip'] },
    { desc: 'past every step failing', steps: [{ what: 'a', fails: 'throw' }, { what: 'b', fails: 'reject' }], ran: ['b', 'a'] },
  ];
  for (const c of cases) {
    it(`unwinds ${c.desc}`, async () => {
      const ran: string[] = [];
      const undo = new UndoStack(silent);
      for (const s of c.steps) {
        undo.push(s.what, s.fails === 'reject'
          ? async () => { ran.push(s.what); throw new Error(`${s.what} failed`); }
          : () => { ran.push(s.what); if (s.fails === 'throw') throw new Error(`${s.what} failed`); });
      }
      await expect(undo.unwind()).resolves.toBeUndefined();
      expect(ran).toEqual(c.ran);
    });
  }

  it('awaits each async step before starting the next', async () => {
    const log: string[] = [];
    const undo = new UndoStack(silent);
    undo.push('first', async () => { log.push('first'); });
    undo.push('second', async () => {
      log.push('second start');
      await new Promise((r) => setTimeout(r, 10));
      log.push('second end');
    });
    await undo.unwind();
    expect(log).toEqual(['second start', 'second end', 'first']);
  });

  it('runs each step once: a second unwind does nothing', async () => {
    let n = 0;
    const undo = new UndoStack(silent);
    undo.push('x', () => { n++; });
    await undo.unwind();
    await undo.unwind();
    expect(n).toBe(1);
  });

  it('logs the failing step by name and the others as rolled back', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) { lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>); cb(); },
    });
    const undo = new UndoStack(pino({ level: 'info' }, sink));
    undo.push('veth', () => undefined);
    undo.push('ovs-port', () => { throw new Error('ovsdb gone'); });
    await undo.unwind();
    expect(lines.map((l) => [l.level, l.undone, l.msg])).toEqual([
      [50, 'ovs-port', 'rollback step failed'],
      [30, 'veth', 'rolled back'],
    ]);
    expect(lines[0]?.err).toContain('ovsdb gone');
    expect(lines.every((l) => l.step === 'rollback')).toBe(true);
  });
});
