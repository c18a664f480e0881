// An ovnoded "node" for tests: the daemon in its own network namespace with its own embedded
// OVS/OVN under a temporary state directory. Stopped (or killed) by pid, always.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DAEMON } from './paths';
import type { NetnsSet } from './netns';

export interface TestNodeOptions {
  netns: NetnsSet;
  name: string;
  subnet?: string;
  extraArgs?: string[];
  /** Reuse a state directory (restart after a crash). */
  stateDir?: string;
  /** Adopt the stack `ovnoded stack` runs on the state dir (--stack external) instead of starting one. */
  externalStack?: boolean;
}

export class TestNode {
  readonly stateDir: string;
  readonly socket: string;
  readonly ns: string;
  private child: ChildProcess | undefined;
  logs = '';

  constructor(private readonly opts: TestNodeOptions, ns?: string) {
    this.ns = ns ?? opts.netns.create(opts.name);
    this.stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), `${opts.netns.prefix}-${opts.name}-`));
    this.socket = join(this.stateDir, 'run', 'ovnoded.sock');
  }

  get pid(): number | undefined { return this.child?.pid; }

  /** Starts the daemon and resolves when it logs "ovnoded ready". */
  async start(timeoutMs = 60_000): Promise<void> {
    const stackArgs = this.opts.externalStack ? ['--stack', 'external'] : ['--embedded'];
    const args = ['netns', 'exec', this.ns, process.execPath, DAEMON, 'run', ...stackArgs, '--state-dir', this.stateDir,
      '--socket', this.socket, '--node-name', this.opts.name, ...(this.opts.subnet ? ['--subnet', this.opts.subnet] : []), ...(this.opts.extraArgs ?? [])];
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`daemon did not become ready in ${timeoutMs} ms:\n${this.logs}`)), timeoutMs);
      const onData = (b: Buffer): void => {
        this.logs += b.toString();
        if (this.logs.includes('"msg":"ovnoded ready"')) { clearTimeout(timer); resolve(); }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`daemon exited (${code}) before ready:\n${this.logs}`)); });
    });
  }

  /** SIGTERM and wait for a clean exit; returns the exit code. */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /** SIGUSR2: the daemon exits and leaves OVS/OVN running for the next one (hand-over). */
  async handOver(): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGUSR2');
    return exited;
  }

  /** SIGKILL, as a crash would; waits until the process is gone. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Stops the daemon, kills any program of its state dir still alive, removes the netns and dir. */
  async destroy(): Promise<void> {
    await this.stop().catch(() => undefined);
    killStatePrograms(this.stateDir);
    this.opts.netns.remove(this.ns);
    rmSync(this.stateDir, { recursive: true, force: true });
  }

  log(file: string): string {
    const p = join(this.stateDir, file);
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  }
}

/** Kills OVS/OVN programs whose pid files live in the state dir (after a SIGKILLed daemon). */
export function killStatePrograms(stateDir: string): void {
  for (const sub of ['ovs', 'ovn']) {
    for (const base of ['ovsdb-ovs', 'ovsdb-nb', 'ovsdb-sb', 'ovn-northd', 'ovs-vswitchd', 'ovn-controller']) {
      const file = join(stateDir, sub, `${base}.pid`);
      if (!existsSync(file)) continue;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (!Number.isInteger(pid) || pid <= 1) continue;
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        if (cmdline.includes(stateDir)) process.kill(pid, 'SIGKILL');
      } catch { /* gone */ }
    }
  }
}
