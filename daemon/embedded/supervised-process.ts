// One long-running OVS/OVN program owned by the embedded daemon. It is either started by us
// (in its own session, so it outlives a daemon that crashes or hands over) or adopted: a program
// a previous daemon of the same state directory started, found alive through its pid file. Either
// way its exit is an event (child 'exit', or a pidfd for adopted ones), it is restarted with
// backoff when it dies unexpectedly, and it is stopped by pid.

import { spawn } from 'node:child_process';
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

const STOP_GRACE_MS = 5_000;

export class SupervisedProcess {
  private current: { pid: number; exited: Promise<void>; done: boolean } | undefined;
  private stopping = false;
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  adopted = false;

  constructor(private readonly spec: ProcessSpec, private readonly log: Logger, private readonly watchExit: WatchExit) {}

  get name(): string { return this.spec.name; }
  get command(): string { return this.spec.command; }
  get pidFile(): string { return this.spec.pidFile; }
  get pid(): number | undefined { return this.current?.pid; }
  get running(): boolean { return this.current !== undefined && !this.current.done; }

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
    const exited = watch.exited.catch(() => undefined); // gone already (ESRCH): an exit
    if (!isOurs(pid, this.spec.command, stateDir) || (this.spec.readyPath && !existsSync(this.spec.readyPath))) {
      watch.cancel();
      return false;
    }
    this.track(pid, exited);
    this.adopted = true;
    this.log.info({ step: 'embedded', process: this.spec.name, pid }, 'adopted running program');
    return true;
  }

  /** Starts the program and resolves once it is ready; rejects with its log tail if it dies first. */
  async start(timeoutMs = 20_000): Promise<void> {
    this.stopping = false;
    const exited = this.spawnProgram();
    if (!this.spec.readyPath) return;
    await waitForPath(this.spec.readyPath, timeoutMs, exited, () => this.logTail());
  }

  private spawnProgram(): Promise<void> {
    const { command, args, env, name } = this.spec;
    // detached: its own session, so it survives this daemon (a crash or a hand-over to the next
    // daemon keeps pods connected); SIGTERM of the daemon stops it explicitly.
    const child = spawn(command, args, { env, stdio: 'ignore', detached: true });
    child.unref();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const pid = child.pid;
    if (pid === undefined) return Promise.resolve(); // spawn failed: 'exit' follows the error
    this.track(pid, exited);
    this.log.info({ step: 'embedded', process: name, pid }, 'started');
    return exited;
  }

  private track(pid: number, exited: Promise<void>): void {
    const entry = { pid, exited, done: false };
    this.current = entry;
    void exited.then(() => {
      entry.done = true;
      if (this.current !== entry || this.stopping) return;
      this.restarts++;
      const delay = Math.min(30_000, 500 * 2 ** Math.min(this.restarts, 6));
      this.log.error({ step: 'embedded', process: this.spec.name, pid, restartInMs: delay, log: this.logTail() }, 'process died; restarting');
      this.restartTimer = setTimeout(() => { if (!this.stopping) void this.spawnProgram(); }, delay);
    });
  }

  /** Stops it: SIGTERM, then SIGKILL after a grace period; resolves once it has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const cur = this.current;
    if (!cur || cur.done) return;
    signal(cur.pid, 'SIGTERM');
    const timer = setTimeout(() => signal(cur.pid, 'SIGKILL'), STOP_GRACE_MS);
    await cur.exited;
    clearTimeout(timer);
    this.log.info({ step: 'embedded', process: this.spec.name }, 'stopped');
  }

  /** Leaves it running for the next daemon (hand-over): only our bookkeeping ends. */
  release(): void {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
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
export function waitForPath(path: string, timeoutMs: number, exited?: Promise<void>, tail?: () => string): Promise<void> {
  if (existsSync(path)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let settled = false;
    const watcher = watch(dirname(path), (_event, file) => {
      if ((file === null || file === basename(path)) && existsSync(path)) finish();
    });
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
