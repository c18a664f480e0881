// A private Open vSwitch for tests: its own ovsdb-server (database created from the installed
// schema) and ovs-vswitchd, whose database, sockets, pid files and logs all live in a temp
// directory of the test's, so that it never meets the host's OVS or another test's. vswitchd runs
// in a network namespace the caller gives (and owns): bridges with datapath_type=netdev create
// their tap devices there. Processes are stopped by pid; destroy() removes everything this
// object made even when a start failed half-way.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RealOvsdbServer } from './ovsdb-server';
import { stopPid } from './pids';

const run = promisify(execFile);
export const VSWITCH_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

export interface PrivateVswitchdOptions {
  /** The network namespace ovs-vswitchd runs in; it must exist by the time start() is called. */
  netns: string;
  /** Prefix of the temp directory's name (mkdtemp adds a unique suffix). */
  dirPrefix?: string;
}

export class PrivateVswitchd {
  readonly dir: string;
  readonly db: RealOvsdbServer;
  readonly netns: string;
  private vswitchdPid: number | undefined;

  constructor(opts: PrivateVswitchdOptions) {
    this.netns = opts.netns;
    this.dir = mkdtempSync(join(tmpdir(), opts.dirPrefix ?? 'ovt-vswitchd-'));
    this.db = new RealOvsdbServer(this.dir, VSWITCH_SCHEMA);
  }

  /** ovsdb-server's socket (unix:<this> for clients). */
  get dbSocket(): string { return this.db.socketPath; }
  /** ovs-vswitchd's unixctl (ovs-appctl -t) socket. */
  get ctlSocket(): string { return join(this.dir, 'vswitchd.ctl'); }
  get logFile(): string { return join(this.dir, 'vswitchd.log'); }
  /** ovs-vswitchd's pid while it runs (as far as this object knows). */
  get pid(): number | undefined { return this.vswitchdPid; }

  /** Every OVS default path points into the directory: nothing falls back to the host's. */
  private get env(): NodeJS.ProcessEnv {
    const d = this.dir;
    return { ...process.env, OVS_RUNDIR: d, OVS_DBDIR: d, OVS_LOGDIR: d, OVS_SYSCONFDIR: d };
  }

  /** ovs-vsctl against this database; resolves to its stdout, rejects when it fails. */
  async vsctl(...args: string[]): Promise<string> {
    return (await run('ovs-vsctl', [`--db=unix:${this.dbSocket}`, '--timeout=10', ...args], { env: this.env })).stdout;
  }

  /** ovs-appctl against this ovs-vswitchd; resolves to its stdout, rejects when it fails. */
  async appctl(...args: string[]): Promise<string> {
    return (await run('ovs-appctl', ['-t', this.ctlSocket, '--timeout=10', ...args], { env: this.env })).stdout;
  }

  /**
   * Creates the database, starts ovsdb-server, initialises the Open_vSwitch row (with
   * `otherConfig` as other_config, for settings vswitchd reads at start, e.g. hw-offload), then
   * starts ovs-vswitchd in the namespace and returns once it answers on its control socket.
   */
  async start(otherConfig: Record<string, string> = {}): Promise<void> {
    await this.db.create();
    await this.db.start();
    await this.vsctl('--no-wait', 'init');
    const settings = Object.entries(otherConfig).map(([k, v]) => `other_config:${k}=${v}`);
    if (settings.length > 0) await this.vsctl('--no-wait', 'set', 'Open_vSwitch', '.', ...settings);
    const pidfile = join(this.dir, 'vswitchd.pid');
    try {
      await run('ip', ['netns', 'exec', this.netns, 'ovs-vswitchd', `unix:${this.dbSocket}`, `--pidfile=${pidfile}`,
        `--unixctl=${this.ctlSocket}`, `--log-file=${this.logFile}`, '--detach', '--no-chdir'], { env: this.env });
    } catch (e) {
      throw new Error(`ovs-vswitchd did not start in ${this.netns}: ${(e as Error).message}\n${this.logTail()}`, { cause: e });
    } finally {
      // Also after a failure: a daemon that wrote its pid file may still be running.
      if (existsSync(pidfile)) this.vswitchdPid = Number(readFileSync(pidfile, 'utf8').trim());
    }
    // --detach returns once vswitchd has read the database; its control socket answering is
    // what the tests rely on next (ovs-vsctl waits, the metrics code talks to it).
    try {
      await this.appctl('version');
    } catch (e) {
      throw new Error(`ovs-vswitchd in ${this.netns} does not answer on ${this.ctlSocket}: ${(e as Error).message}\n${this.logTail()}`, { cause: e });
    }
  }

  /**
   * Stops ovs-vswitchd by pid (`signal`, SIGKILL if it lingers) and waits until it has exited;
   * ovsdb-server keeps running. The pid is only signalled while its command line names this
   * directory, so a recycled pid is never hit.
   */
  async stopVswitchd(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const pid = this.vswitchdPid;
    this.vswitchdPid = undefined;
    if (pid !== undefined && this.runsHere(pid)) await stopPid(pid, signal);
  }

  /** The last `lines` lines of vswitchd's log, for failure messages. */
  logTail(lines = 30): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n') : '(no log)';
  }

  /** Stops both daemons and removes the directory; each step runs even when one before failed. */
  async destroy(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.stopVswitchd(signal).catch(() => undefined);
    await this.db.stop(signal).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private runsHere(pid: number): boolean {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.dir);
    } catch {
      return false;
    }
  }
}
