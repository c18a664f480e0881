// "The outside" of the lab cluster: a network namespace of this run on the lab's underlay (where
// the nodes' eth0 are), with an IPv4 and an IPv6 address there, never a real external address. It
// serves TCP on both: each connection is answered with the address it came from (what SNAT made
// of the client), and it can make requests itself (NodePort from outside). Stopped by pid; the namespace (and its veth) deleted, even after a failure.

import { spawn, type ChildProcess } from 'node:child_process';
import { readLab, run, uniqueName, type RunResult } from './lab';

export const OUTSIDE_PORT = 9099;

export class Outside {
  readonly netns = uniqueName('outside');
  ip = '';
  ip6 = '';
  private server: ChildProcess | undefined;

  async start(): Promise<void> {
    const lab = readLab();
    const prefix = lab.underlay.cidr.split('/')[1];
    const host = 200 + Math.floor(Math.random() * 50);
    this.ip = lab.underlay.cidr.replace(/\.0\/\d+$/, `.${host}`);
    this.ip6 = lab.underlay.cidr6.replace(/::\/\d+$/, `::${host}`);
    const veth = `x${this.netns.slice(-8)}`.slice(0, 15);
    for (const argv of [
      ['ip', 'netns', 'add', this.netns],
      ['ip', '-n', lab.underlay.netns, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.netns],
      ['ip', '-n', lab.underlay.netns, 'link', 'set', veth, 'master', lab.underlay.bridge, 'up'],
      ['ip', '-n', this.netns, 'addr', 'add', `${this.ip}/${prefix}`, 'dev', 'eth0'],
      ['ip', '-n', this.netns, 'addr', 'add', `${this.ip6}/${lab.underlay.cidr6.split('/')[1]}`, 'dev', 'eth0', 'nodad'],
      ['ip', '-n', this.netns, 'link', 'set', 'eth0', 'up'],
      ['ip', '-n', this.netns, 'link', 'set', 'lo', 'up'],
    ]) {
      const r = await run(argv);
      if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
    }
    // One socket for both families; an IPv4 client shows as ::ffff:a.b.c.d there, answered as a.b.c.d.
    const server = `require('net').createServer((s) => { s.on('error', () => {}); s.end(String(s.remoteAddress).replace(/^::ffff:/, '') + '\\n'); }).listen(${OUTSIDE_PORT}, '::', () => console.log('listening'));`;
    const child = spawn('ip', ['netns', 'exec', this.netns, process.execPath, '-e', server], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.server = child;
    await new Promise<void>((resolve, reject) => {
      child.stdout?.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the outside server exited (${code})`)));
    });
  }

  /** Runs a command inside the outside namespace. */
  exec(argv: string[], timeoutMs = 20_000): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', this.netns, ...argv], { timeoutMs });
  }

  async stop(): Promise<void> {
    if (this.server?.pid !== undefined && this.server.exitCode === null) this.server.kill('SIGKILL');
    await run(['ip', 'netns', 'del', this.netns]);
  }
}
