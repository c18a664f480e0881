// A real ovsdb-server with its own database, socket, pidfile and log in a directory of the
// test's: for tests of OVSDB clients and of code that writes a database (NB, SB, Open_vSwitch).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One ovsdb-server with its database, socket, pidfile and log in `dir`. */
export class RealOvsdbServer {
  pid: number | undefined;
  constructor(readonly dir: string, private readonly schema: string) {}
  get socketPath(): string { return join(this.dir, 'db.sock'); }
  private get db(): string { return join(this.dir, 'conf.db'); }
  private get env(): NodeJS.ProcessEnv {
    const d = this.dir;
    return { ...process.env, OVS_RUNDIR: d, OVS_DBDIR: d, OVS_LOGDIR: d, OVN_RUNDIR: d, OVN_DBDIR: d, OVN_LOGDIR: d };
  }

  async create(): Promise<void> {
    await run('ovsdb-tool', ['create', this.db, this.schema], { env: this.env });
  }

  async start(): Promise<void> {
    const args = [this.db, `--remote=punix:${this.socketPath}`, `--pidfile=${join(this.dir, 'x.pid')}`,
      `--log-file=${join(this.dir, 'x.log')}`, `--unixctl=${join(this.dir, 'x.ctl')}`, '--detach', '--no-chdir'];
    try {
      await run('ovsdb-server', args, { env: this.env });
    } catch (e) {
      throw new Error(`ovsdb-server failed to start: ${(e as Error).message}\n${this.logTail()}`);
    }
    this.pid = Number(readFileSync(join(this.dir, 'x.pid'), 'utf8').trim());
    // --detach returns once the daemon is ready; a missing socket means it died (see its log).
    if (!existsSync(this.socketPath)) throw new Error(`ovsdb-server has no socket\n${this.logTail()}`);
  }

  /** Offline transaction on the database file (server stopped). */
  async transactOffline(ops: unknown[]): Promise<void> {
    const db = (JSON.parse(readFileSync(this.schema, 'utf8')) as { name: string }).name;
    await run('ovsdb-tool', ['transact', this.db, JSON.stringify([db, ...ops])], { env: this.env });
  }

  /** SIGTERM, then wait until the process is gone or a zombie (which takes a while here). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    this.pid = undefined;
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    for (let i = 0; i < 200; i++) {
      const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
      if (stat === '' || / Z /.test(stat.slice(stat.lastIndexOf(')')))) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    process.kill(pid, 'SIGKILL');
  }

  private logTail(): string {
    const log = join(this.dir, 'x.log');
    return existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-20).join('\n') : '(no log)';
  }
}

