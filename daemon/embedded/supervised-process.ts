// One long-running OVS/OVN program owned by the embedded daemon. It is either started by us
// (in its own session, so it outlives a daemon that crashes or hands over) or adopted: a program
// a previous daemon of the same state directory started, found alive through its pid file. Either
// way its exit is an event (child 'exit', or a pidfd for adopted ones), it is restarted with
// backoff when it dies unexpectedly, and it is stopped by pid. A spawn that fails (missing binary,
// EAGAIN, EMFILE) counts as an exit: it is retried with the same backoff, never fatal to the daemon.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  /** Pid file the program writes (--pidfile): how a later daemon finds it. */
  pidFile: string;
  /** A path (unix socket) whose appearance means the program is ready. */
  readyPath?: string;
}

/** How the supervisor learns that a pid has exited (a pidfd, in the daemon). */
export type WatchExit = (pid: number) => { exited: Promise<void>; cancel(): void };

export interface SupervisorOptions {
  /**
   * A program that has run this long is stable again: its next death restarts it after the
   * shortest delay instead of continuing the backoff of crashes long past.
   */
  stableAfterMs?: number;
}

const STOP_GRACE_MS = 5_000;
const STABLE_AFTER_MS = 30_000;
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;

/** Why a run ended: the error of a spawn that failed, or undefined for an exit. */
type RunEnd = Error | undefined;

/** One run of the program; `pid` is undefined when it could not be spawned at all. */
interface Run { pid: number | undefined; ended: Promise<RunEnd>; done: boolean; stableTimer?: NodeJS.Timeout }

export class SupervisedProcess {
  private current: Run | undefined;
  private stopping = false;
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly stableAfterMs: number;
  adopted = false;

  constructor(private readonly spec: ProcessSpec, private readonly log: Logger, private readonly watchExit: WatchExit, opts: SupervisorOptions = {}) {
    this.stableAfterMs = opts.stableAfterMs ?? STABLE_AFTER_MS;
  }

  get name(): string { return this.spec.name; }
  get command(): string { return this.spec.command; }
  get pidFile(): string { return this.spec.pidFile; }
  get pid(): number | undefined { return this.current?.pid; }
  get running(): boolean { return this.current?.pid !== undefined && !this.current.done; }

  /**
   * Adopts the program a previous daemon left running for this state dir, if its pid file names
   * a live process of ours (same program, command line naming this state dir) that is ready.
   */
  tryAdopt(stateDir: string): boolean {
    const pid = readPid(this.spec.pidFile);
    if (pid === undefined) return false;
    // Watch first, then check who it is: a pid reused after the check could not fool the watch.
    let watch: ReturnType<WatchExit>;
    try { watch = this.watchExit(pid); } catch { return false; }
    const exited = watch.exited.then(() => undefined, () => undefined); // gone already (ESRCH): an exit
    if (!isOurs(pid, this.spec.command, stateDir) || (this.spec.readyPath && !existsSync(this.spec.readyPath))) {
      watch.cancel();
      return false;
    }
    this.track(pid, exited);
    this.adopted = true;
    this.log.info({ step: 'embedded', process: this.spec.name, pid }, 'adopted running program');
    return true;
  }

  /**
   * Starts the program and resolves once it is ready; rejects if it cannot be spawned, or with
   * its log tail if it dies first. Either way a restart is scheduled, as for any other death.
   */
  async start(timeoutMs = 20_000): Promise<void> {
    this.stopping = false;
    const run = this.spawnProgram();
    if (run.pid === undefined) {
      const err = await run.ended;
      throw new Error(`${this.spec.name}: cannot start ${this.spec.command}: ${err?.message ?? 'spawn failed'}`, { cause: err });
    }
    if (!this.spec.readyPath) return;
    await waitForPath(this.spec.readyPath, timeoutMs, run.ended, () => this.logTail());
  }

  private spawnProgram(): Run {
    const { command, args, env, name } = this.spec;
    let child: ChildProcess;
    try {
      // detached: its own session, so it survives this daemon (a crash or a hand-over to the next
      // daemon keeps pods connected); SIGTERM of the daemon stops it explicitly.
      child = spawn(command, args, { env, stdio: 'ignore', detached: true });
    } catch (e) {
      // Most spawn failures are reported by 'error', but some (EINVAL, ...) are thrown.
      return this.track(undefined, Promise.resolve(e instanceof Error ? e : new Error(String(e))));
    }
    child.unref();
    const pid = child.pid;
    const ended = new Promise<RunEnd>((resolve) => {
      child.once('exit', () => resolve(undefined));
      // Without a pid the spawn failed: 'error' follows on the next tick and no 'exit' ever does.
      // After a successful spawn there is nothing left to fail here (stdio is ignored and we
      // signal by pid), but an unhandled 'error' would take the daemon down: it is only logged.
      child.on('error', (err) => {
        if (pid === undefined) resolve(err);
        else this.log.error({ step: 'embedded', process: name, pid, err }, 'child process error');
      });
    });
    const run = this.track(pid, ended);
    if (pid !== undefined) this.log.info({ step: 'embedded', process: name, pid }, 'started');
    return run;
  }

  private track(pid: number | undefined, ended: Promise<RunEnd>): Run {
    const run: Run = { pid, ended, done: false };
    this.current = run;
    if (pid !== undefined) {
      run.stableTimer = setTimeout(() => {
        if (this.restarts > 0) this.log.info({ step: 'embedded', process: this.spec.name, pid, restarts: this.restarts }, 'running stably; restart backoff reset');
        this.restarts = 0;
      }, this.stableAfterMs);
      run.stableTimer.unref();
    }
    void ended.then((err) => {
      run.done = true;
      clearTimeout(run.stableTimer);
      if (this.current !== run || this.stopping) return;
      this.restarts++;
      const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** Math.min(this.restarts, 6));
      const fields = { step: 'embedded', process: this.spec.name, restartInMs: delay, restarts: this.restarts };
      if (err) this.log.error({ ...fields, command: this.spec.command, err }, 'process could not be started; retrying');
      else this.log.error({ ...fields, pid, log: this.logTail() }, 'process died; restarting');
      this.restartTimer = setTimeout(() => { if (!this.stopping) this.spawnProgram(); }, delay);
    });
    return run;
  }

  /** Stops it: SIGTERM, then SIGKILL after a grace period; resolves once it has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const cur = this.current;
    if (!cur || cur.done) return;
    clearTimeout(cur.stableTimer);
    const pid = cur.pid;
    if (pid === undefined) { await cur.ended; return; } // a failed spawn: nothing to signal
    signal(pid, 'SIGTERM');
    const timer = setTimeout(() => signal(pid, 'SIGKILL'), STOP_GRACE_MS);
    await cur.ended;
    clearTimeout(timer);
    this.log.info({ step: 'embedded', process: this.spec.name }, 'stopped');
  }

  /** Leaves it running for the next daemon (hand-over): only our bookkeeping ends. */
  release(): void {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    clearTimeout(this.current?.stableTimer);
  }

  logTail(lines = 15): string {
    try {
      return readFileSync(this.spec.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig); } catch { /* already gone */ }
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A live, non-zombie process running `command` whose command line names `stateDir`. */
export function isOurs(pid: number, command: string, stateDir: string): boolean {
  try {
    if (/ Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return false;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return basename(argv[0] ?? '') === command && argv.some((a) => a.includes(stateDir));
  } catch {
    return false;
  }
}

/** Resolves when `path` exists, watching its directory (no polling); rejects on child exit or timeout. */
export function waitForPath(path: string, timeoutMs: number, exited?: Promise<unknown>, tail?: () => string): Promise<void> {
  if (existsSync(path)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let settled = false;
    const watcher = watch(dirname(path), (_event, file) => {
      if ((file === null || file === basename(path)) && existsSync(path)) finish();
    });
    // An FSWatcher without an 'error' listener would throw it (the directory removed, ...).
    watcher.on('error', (err) => finish(new Error(`${path}: watching ${dirname(path)} failed: ${err.message}`, { cause: err })));
    void exited?.then(() => finish(new Error(`${path}: its program exited before it was ready:\n${tail?.() ?? ''}`)));
    const timer = setTimeout(() => finish(new Error(`${path} did not appear within ${timeoutMs} ms:\n${tail?.() ?? ''}`)), timeoutMs);
    // The file may have appeared between the first check and the watch being armed.
    if (existsSync(path)) setImmediate(() => finish());
    function finish(err?: Error): void {
      if (settled) return;
      settled = true;
      watcher.close();
      clearTimeout(timer);
      if (err) reject(err); else resolve();
    }
  });
}
