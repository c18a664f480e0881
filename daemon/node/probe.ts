// `ovnoded probe daemon|stack`: the readiness checks kubelet runs in the two DaemonSet pods.
// Each check talks to the real thing (the daemon's socket, each database, ovs-vswitchd) with a
// short deadline and says which part did not answer.

import { request } from 'node:http';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { READY_PATH_HTTP } from '../../common/protocol';
import { stackPaths } from '../embedded/stack';
import { isOurs, readPid } from '../embedded/supervised-process';
import { UnixctlClient } from '../ovs/unixctl';

export interface ProbeOutcome { ok: boolean; detail: string }

/** GET /readyz on the CNI socket: ready only when the daemon would serve an ADD now. */
export function probeDaemon(socketPath: string, timeoutMs = 2_000): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: READY_PATH_HTTP, method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ ok: res.statusCode === 200, detail: `${res.statusCode ?? '?'} ${body}` }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ ok: false, detail: `${socketPath}: ${e.message}` }));
    req.end();
  });
}

/** Every database answers an OVSDB echo, ovs-vswitchd its version, northd and ovn-controller are alive. */
export async function probeStack(stateDir: string, timeoutMs = 2_000): Promise<ProbeOutcome> {
  const paths = stackPaths(stateDir);
  const failures: string[] = [];
  const dbs = await Promise.all([paths.ovsSocket, paths.nbSocket, paths.sbSocket].map(async (s) => ({ s, err: await ovsdbEcho(s, timeoutMs) })));
  for (const { s, err } of dbs) if (err) failures.push(`${s}: ${err}`);
  try {
    await new UnixctlClient(paths.vswitchdCtl, { timeoutMs }).call('version');
  } catch (e) {
    failures.push(`ovs-vswitchd: ${(e as Error).message}`);
  }
  for (const [dir, program, pidFile] of [[paths.ovnDir, 'ovn-northd', 'ovn-northd.pid'], [paths.ovnDir, 'ovn-controller', 'ovn-controller.pid']] as const) {
    const pid = readPid(join(dir, pidFile));
    if (pid === undefined || !isOurs(pid, program, stateDir)) failures.push(`${program}: not running`);
  }
  return failures.length === 0 ? { ok: true, detail: 'stack answers' } : { ok: false, detail: failures.join('; ') };
}

function ovsdbEcho(socketPath: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = createConnection(socketPath);
    let buf = '';
    const done = (err?: string): void => { clearTimeout(timer); sock.destroy(); resolve(err); };
    const timer = setTimeout(() => done(`no echo within ${timeoutMs} ms`), timeoutMs);
    sock.once('connect', () => sock.write(JSON.stringify({ method: 'echo', params: ['probe'], id: 'probe' })));
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => {
      buf += c;
      // The server may send its own echo requests first; the answer carries our id.
      if (buf.includes('"id":"probe"')) done();
    });
    sock.once('error', (e) => done(e.message));
  });
}
