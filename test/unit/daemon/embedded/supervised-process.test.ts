// SupervisedProcess with real (harmless) programs and fake timers for its backoff: a program that
// cannot be spawned is neither fatal nor given up on (start() rejects, restarts keep coming with
// backoff, and a binary that comes back is started again); the backoff of a crash loop resets
// once the program has run for the stable period.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SupervisedProcess, type ProcessSpec, type SupervisorOptions, type WatchExit } from '../../../../daemon/embedded/supervised-process';
import { FakeLog } from './fake-log';

const DIED = 'process died; restarting';
const CANNOT_START = 'process could not be started; retrying';
const STARTED = 'started';

/** Only tryAdopt() uses it, and these tests never adopt. */
const fakeWatchExit: WatchExit = () => { throw new Error('fake watchExit: not expected to be called'); };

let dir: string;
let log: FakeLog;
let procs: SupervisedProcess[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ovnode-supervised-'));
  log = new FakeLog();
  procs = [];
  // Only the supervisor's own timers: child processes, their exits and fs events stay real.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});

afterEach(async () => {
  try {
    for (const p of procs) await p.stop();
  } finally {
    vi.useRealTimers();
    rmSync(dir, { recursive: true, force: true });
  }
});

function supervised(spec: Partial<ProcessSpec> & Pick<ProcessSpec, 'command' | 'args'>, opts?: SupervisorOptions): SupervisedProcess {
  const full: ProcessSpec = { name: 'test-program', env: process.env, logFile: join(dir, 'program.log'), pidFile: join(dir, 'program.pid'), ...spec };
  const p = new SupervisedProcess(full, log.logger, fakeWatchExit, opts);
  procs.push(p);
  return p;
}

/** A script that runs until it is killed (`exec` keeps the pid the supervisor knows). */
function longRunningScript(name: string): string {
  const path = join(dir, name);
  writeFileSync(path, '#!/bin/sh\nexec sleep 1000\n');
  chmodSync(path, 0o755);
  return path;
}

function kill(pid: number | undefined): void {
  expect(pid).toBeTypeOf('number');
  process.kill(pid as number, 'SIGKILL');
}

describe('SupervisedProcess: a program that cannot be spawned', () => {
  const missing = join('/nonexistent', 'ovnode-no-such-program');
  const cases: { desc: string; spec: Pick<ProcessSpec, 'command' | 'args'> & { readyPath?: string }; reason: RegExp }[] = [
    { desc: 'a missing binary', spec: { command: missing, args: [] }, reason: /ENOENT/ },
    { desc: 'a missing binary with a ready path', spec: { command: missing, args: [], readyPath: '/nonexistent/ovnode-ready.sock' }, reason: /ENOENT/ },
    // Node throws these from spawn() instead of emitting 'error'.
    { desc: 'arguments spawn() refuses', spec: { command: 'sleep', args: ['1\0'] }, reason: /null bytes/ },
  ];
  for (const c of cases) {
    it(`${c.desc}: start() rejects saying so, and restarts follow with backoff`, async () => {
      const p = supervised(c.spec);
      const started = p.start();
      await expect(started).rejects.toThrow(/test-program: cannot start/);
      await expect(started).rejects.toThrow(c.reason);
      expect(p.running).toBe(false);

      const first = await log.nth(CANNOT_START, 1);
      expect(first.restartInMs).toBe(1000);
      expect(first.err?.stack).toMatch(c.reason); // pino's err serializer: the stack is in the log

      await vi.advanceTimersByTimeAsync(1000);
      const second = await log.nth(CANNOT_START, 2);
      expect(second.restartInMs).toBe(2000);

      await p.stop();
      await vi.advanceTimersByTimeAsync(60_000);
      expect(log.all(CANNOT_START)).toHaveLength(2); // stopped: no retry is left scheduled
    });
  }

  it('a binary missing at restart is retried until it is back, then runs again', async () => {
    const spec = { command: longRunningScript('program'), args: [] };
    const p = supervised(spec);
    await p.start();
    const firstPid = p.pid;

    rmSync(spec.command);
    kill(firstPid);
    expect((await log.nth(DIED, 1)).restartInMs).toBe(1000);
    await vi.advanceTimersByTimeAsync(1000);
    const failed = await log.nth(CANNOT_START, 1);
    expect(failed.err?.message).toMatch(/ENOENT/);
    expect(failed.restartInMs).toBe(2000);
    expect(p.running).toBe(false);

    longRunningScript('program');
    await vi.advanceTimersByTimeAsync(2000);
    await log.nth(STARTED, 2);
    expect(p.running).toBe(true);
    expect(p.pid).not.toBe(firstPid);
  });
});

describe('SupervisedProcess: restart backoff', () => {
  it('grows while the program keeps dying and resets once it has run for the stable period', async () => {
    const p = supervised({ command: longRunningScript('program'), args: [] }, { stableAfterMs: 10_000 });
    await p.start();

    // A crash loop: each death soon after its start doubles the delay.
    const delays: unknown[] = [];
    for (let n = 1; n <= 3; n++) {
      kill(p.pid);
      const died = await log.nth(DIED, n);
      delays.push(died.restartInMs);
      await vi.advanceTimersByTimeAsync(died.restartInMs as number);
      await log.nth(STARTED, n + 1);
    }
    expect(delays).toEqual([1000, 2000, 4000]);

    await vi.advanceTimersByTimeAsync(10_000);
    expect((await log.nth('running stably; restart backoff reset', 1)).restarts).toBe(3);
    kill(p.pid);
    expect((await log.nth(DIED, 4)).restartInMs).toBe(1000);
  });

  it('does not reset before the stable period', async () => {
    const p = supervised({ command: longRunningScript('program'), args: [] }, { stableAfterMs: 10_000 });
    await p.start();
    kill(p.pid);
    await vi.advanceTimersByTimeAsync((await log.nth(DIED, 1)).restartInMs as number);
    await log.nth(STARTED, 2);
    await vi.advanceTimersByTimeAsync(9_999);
    kill(p.pid);
    expect((await log.nth(DIED, 2)).restartInMs).toBe(2000);
    expect(log.all('running stably; restart backoff reset')).toHaveLength(0);
  });
});
