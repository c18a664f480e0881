// The embedded OVS + OVN stack of one node under one state directory: OVN NB and SB
// ovsdb-servers, ovn-northd, the Open_vSwitch ovsdb-server, ovs-vswitchd and ovn-controller.
// Every program is pointed at the directory (OVS_*/OVN_* variables and explicit paths) so that
// several nodes, one per network namespace, never share sockets, pid files or logs.

import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { isOurs, readPid, SupervisedProcess, type ProcessSpec, type SupervisorOptions, type WatchExit } from './supervised-process';

const execFileAsync = promisify(execFile);

export interface StackPaths {
  dir: string;
  ovsDir: string;
  ovnDir: string;
  ovsSocket: string;
  nbSocket: string;
  sbSocket: string;
  vswitchdCtl: string;
}

export function stackPaths(stateDir: string): StackPaths {
  const ovsDir = join(stateDir, 'ovs');
  const ovnDir = join(stateDir, 'ovn');
  return {
    dir: stateDir, ovsDir, ovnDir,
    ovsSocket: join(ovsDir, 'db.sock'),
    nbSocket: join(ovnDir, 'nb.sock'),
    sbSocket: join(ovnDir, 'sb.sock'),
    vswitchdCtl: join(ovsDir, 'ovs-vswitchd.ctl'),
  };
}

const SCHEMAS = {
  ovs: '/usr/share/openvswitch/vswitch.ovsschema',
  nb: '/usr/share/ovn/ovn-nb.ovsschema',
  sb: '/usr/share/ovn/ovn-sb.ovsschema',
};

export interface StackOptions {
  /** How long ovs-vswitchd may take to clean up on exit before it is terminated instead. */
  cleanupTimeoutMs?: number;
  supervisor?: SupervisorOptions;
}

/** What start-up needs of a stack, whoever runs it. */
export interface NodeStack {
  readonly paths: StackPaths;
  /** Whether the daemon owns the programs (embedded) or only uses them (external). */
  readonly owned: boolean;
  startDatabases(): Promise<void>;
  /** Whether ovs-vswitchd is already running, so its tap devices are live, not leftovers. */
  switchAlive(): boolean;
  startSwitch(): Promise<void>;
  healthy(): boolean;
  release(): void;
  stop(): Promise<void>;
}

export class EmbeddedStack implements NodeStack {
  readonly owned = true;
  readonly paths: StackPaths;
  private readonly env: NodeJS.ProcessEnv;
  private readonly dbs: SupervisedProcess[] = [];
  private readonly switchProcs: SupervisedProcess[] = [];

  constructor(stateDir: string, private readonly log: Logger, private readonly watchExit: WatchExit, private readonly opts: StackOptions = {}) {
    this.paths = stackPaths(stateDir);
    const { ovsDir, ovnDir } = this.paths;
    this.env = {
      ...process.env,
      OVS_RUNDIR: ovsDir, OVS_DBDIR: ovsDir, OVS_LOGDIR: ovsDir, OVS_SYSCONFDIR: ovsDir, OVS_PKGDATADIR: '/usr/share/openvswitch',
      OVN_RUNDIR: ovnDir, OVN_DBDIR: ovnDir, OVN_LOGDIR: ovnDir, OVN_SYSCONFDIR: ovnDir,
    };
  }

  /** Starts the three databases and northd; the caller then configures OVS before startSwitch(). */
  async startDatabases(): Promise<void> {
    const { ovsDir, ovnDir } = this.paths;
    mkdirSync(ovsDir, { recursive: true, mode: 0o700 });
    mkdirSync(ovnDir, { recursive: true, mode: 0o700 });
    this.createDb(join(ovsDir, 'conf.db'), SCHEMAS.ovs);
    this.createDb(join(ovnDir, 'nb.db'), SCHEMAS.nb);
    this.createDb(join(ovnDir, 'sb.db'), SCHEMAS.sb);
    const ovsdb = this.proc('ovsdb-server-ovs', 'ovsdb-server', ovsDir, this.paths.ovsSocket, [
      join(ovsDir, 'conf.db'), `--remote=punix:${this.paths.ovsSocket}`, '--remote=db:Open_vSwitch,Open_vSwitch,manager_options',
    ]);
    const nb = this.proc('ovsdb-server-nb', 'ovsdb-server', ovnDir, this.paths.nbSocket, [
      join(ovnDir, 'nb.db'), `--remote=punix:${this.paths.nbSocket}`, '--remote=db:OVN_Northbound,NB_Global,connections',
    ]);
    const sb = this.proc('ovsdb-server-sb', 'ovsdb-server', ovnDir, this.paths.sbSocket, [
      join(ovnDir, 'sb.db'), `--remote=punix:${this.paths.sbSocket}`, '--remote=db:OVN_Southbound,SB_Global,connections',
    ]);
    this.dbs.push(ovsdb, nb, sb);
    await Promise.all(this.dbs.map((p) => this.adoptOrStart(p)));
    const northd = this.proc('ovn-northd', 'ovn-northd', ovnDir, undefined, [
      `--ovnnb-db=unix:${this.paths.nbSocket}`, `--ovnsb-db=unix:${this.paths.sbSocket}`,
    ]);
    this.dbs.push(northd);
    await this.adoptOrStart(northd);
  }

  /**
   * A program a previous daemon of this state dir left running (crash, or hand-over) is adopted:
   * pods keep their datapath across a daemon restart. One that is alive but not usable is
   * replaced.
   */
  private async adoptOrStart(p: SupervisedProcess): Promise<void> {
    if (p.tryAdopt(this.paths.dir)) return;
    await this.killStale(p);
    await p.start();
  }

  /** True when ovs-vswitchd was adopted (its tap devices are live, not leftovers). */
  get switchAdopted(): boolean { return this.switchProcs[0]?.adopted ?? false; }

  /** Whether the switch programs would be adopted, before startSwitch() (tap clean-up decision). */
  switchAlive(): boolean {
    const pid = readPid(join(this.paths.ovsDir, 'ovs-vswitchd.pid'));
    return pid !== undefined && isOurs(pid, 'ovs-vswitchd', this.paths.dir);
  }

  /** Starts ovs-vswitchd and ovn-controller (after the Open_vSwitch row is configured). */
  async startSwitch(): Promise<void> {
    const { ovsDir, ovnDir, ovsSocket } = this.paths;
    const vswitchd = this.proc('ovs-vswitchd', 'ovs-vswitchd', ovsDir, this.paths.vswitchdCtl, [`unix:${ovsSocket}`]);
    const controller = this.proc('ovn-controller', 'ovn-controller', ovnDir, undefined, [`unix:${ovsSocket}`], false);
    this.switchProcs.push(vswitchd, controller);
    await this.adoptOrStart(vswitchd);
    await this.adoptOrStart(controller);
  }

  /** True when every program is running (for STATUS). */
  healthy(): boolean {
    return [...this.dbs, ...this.switchProcs].every((p) => p.running);
  }

  /** Hand-over: leaves every program running for the next daemon of this state dir. */
  release(): void {
    for (const p of [...this.switchProcs, ...this.dbs]) p.release();
  }

  /** Stops everything in reverse order; vswitchd first removes its datapath and tap devices. */
  async stop(): Promise<void> {
    const [vswitchd, controller] = this.switchProcs;
    await controller?.stop();
    if (vswitchd?.running) {
      // Asynchronous: the rest of shutdown (and signal handling) keeps running while vswitchd
      // cleans up; the timeout bounds it, SIGKILL because a stuck ovs-appctl must not hold us.
      try {
        await execFileAsync('ovs-appctl', ['-t', this.paths.vswitchdCtl, 'exit', '--cleanup'], {
          env: this.env, timeout: this.opts.cleanupTimeoutMs ?? 5000, killSignal: 'SIGKILL',
        });
      } catch (e) {
        this.log.warn({ step: 'embedded', err: e }, 'ovs-vswitchd exit --cleanup failed; terminating it');
      }
      await vswitchd.stop();
    }
    for (const p of [...this.dbs].reverse()) await p.stop();
  }

  private proc(name: string, command: string, dir: string, readyPath: string | undefined, args: string[], unixctl = true): SupervisedProcess {
    const base = name.replace(/^ovsdb-server-/, 'ovsdb-');
    const logFile = join(dir, `${base}.log`);
    const common = [`--pidfile=${join(dir, `${base}.pid`)}`, `--log-file=${logFile}`, '--no-chdir'];
    // ovn-controller 23.03 has no --unixctl; it puts its control socket under OVN_RUNDIR.
    if (unixctl) common.push(`--unixctl=${join(dir, `${base === 'ovs-vswitchd' ? 'ovs-vswitchd' : base}.ctl`)}`);
    const spec: ProcessSpec = { name, command, args: [...args, ...common], env: this.env, logFile, pidFile: join(dir, `${base}.pid`) };
    // Programs without a socket of their own are up once their pid file exists (probes read it).
    spec.readyPath = readyPath ?? spec.pidFile;
    return new SupervisedProcess(spec, this.log, this.watchExit, this.opts.supervisor);
  }

  private createDb(file: string, schema: string): void {
    if (existsSync(file)) return;
    execFileSync('ovsdb-tool', ['create', file, schema], { stdio: 'pipe' });
  }

  /** A program of an earlier daemon of this state dir that is alive but was not adopted. */
  private async killStale(p: SupervisedProcess): Promise<void> {
    const pid = readPid(p.pidFile);
    if (pid === undefined || !isOurs(pid, p.command, this.paths.dir)) return;
    this.log.warn({ step: 'embedded', pid, program: p.command }, 'stopping a leftover program of this state dir');
    let exited: Promise<void>;
    try { exited = this.watchExit(pid).exited.catch(() => undefined); } catch { return; }
    try { process.kill(pid, 'SIGKILL'); } catch { return; }
    await exited; // its database locks are released only when it is gone
  }
}

