// One long-running OVS/OVN program owned by the embedded daemon: started in the foreground as
// our child (so we hold its pid and hear when it dies), restarted with backoff when it dies
// unexpectedly, and stopped by pid. `setpriv --pdeathsig` makes the kernel stop it if ovnoded
// itself is killed, so a SIGKILLed daemon leaves no orphans behind.

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
  /** A path (unix socket) whose appearance means the program is ready. */
  readyPath?: string;
}

const STOP_GRACE_MS = 5_000;

export class SupervisedProcess {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarts = 0;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(private readonly spec: ProcessSpec, private readonly log: Logger) {}

  get pid(): number | undefined { return this.child?.pid; }
  get running(): boolean { return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null; }

  /** Starts the program and resolves once it is ready; rejects with its log tail if it dies first. */
  async start(timeoutMs = 20_000): Promise<void> {
    this.stopping = false;
    const child = this.spawnChild();
    if (!this.spec.readyPath) return;
    await waitForPath(this.spec.readyPath, timeoutMs, child, () => this.logTail());
  }

  private spawnChild(): ChildProcess {
    const { command, args, env, name } = this.spec;
    const child = spawn('setpriv', ['--pdeathsig', 'TERM', '--', command, ...args], { env, stdio: 'ignore' });
    this.child = child;
    this.log.info({ step: 'embedded', process: name, pid: child.pid }, 'started');
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      if (this.stopping) return;
      this.restarts++;
      const delay = Math.min(30_000, 500 * 2 ** Math.min(this.restarts, 6));
      this.log.error({ step: 'embedded', process: name, code, signal, restartInMs: delay, log: this.logTail() }, 'process died; restarting');
      this.restartTimer = setTimeout(() => { if (!this.stopping) this.spawnChild(); }, delay);
    });
    return child;
  }

  /** Stops it: SIGTERM, then SIGKILL after a grace period; resolves once it has exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
    this.log.info({ step: 'embedded', process: this.spec.name }, 'stopped');
  }

  logTail(lines = 15): string {
    try {
      return readFileSync(this.spec.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/** Resolves when `path` exists, watching its directory (no polling); rejects on child exit or timeout. */
export function waitForPath(path: string, timeoutMs: number, child?: ChildProcess, tail?: () => string): Promise<void> {
  if (existsSync(path)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const watcher = watch(dirname(path), (_event, file) => {
      if ((file === null || file === basename(path)) && existsSync(path)) finish();
    });
    const onExit = (code: number | null, signal: string | null): void =>
      finish(new Error(`${path}: its program exited (code ${code}, signal ${signal}) before it was ready:\n${tail?.() ?? ''}`));
    const timer = setTimeout(() => finish(new Error(`${path} did not appear within ${timeoutMs} ms:\n${tail?.() ?? ''}`)), timeoutMs);
    child?.once('exit', onExit);
    // The file may have appeared between the first check and the watch being armed.
    if (existsSync(path)) setImmediate(() => finish());
    function finish(err?: Error): void {
      watcher.close();
      clearTimeout(timer);
      child?.off('exit', onExit);
      if (err) reject(err); else resolve();
    }
  });
}
