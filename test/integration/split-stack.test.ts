// The cluster layout on one node, on the real userspace datapath: `ovnoded stack` owns OVS/OVN
// (the ovnode-ovs pod) and `ovnoded run --stack external` (the daemon pod) only adopts it. The
// daemon's SIGTERM is then a hand-over: a pod keeps its datapath while the daemon is away, a new
// daemon serves it, and only the stack's own SIGTERM stops OVS/OVN. The probes kubelet runs
// answer for what they claim.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NetnsSet } from './harness/netns';
import { killStatePrograms, TestNode } from './harness/node';
import { linkNames, programsOfStateDir } from './harness/node-probe';
import { DAEMON, requireArtefacts } from './harness/paths';
import { cniEnv, netconf, resultIps, runShimAsync } from './harness/shim-calls';

beforeAll(() => requireArtefacts());

let netns: NetnsSet | undefined;
let stack: ChildProcess | undefined;
let stateDir = '';
const daemons: TestNode[] = [];

afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop().catch(() => undefined);
  if (stack && stack.exitCode === null && stack.signalCode === null) {
    const gone = new Promise((r) => stack?.once('exit', r));
    stack.kill('SIGKILL');
    await gone;
  }
  stack = undefined;
  if (stateDir) { killStatePrograms(join(stateDir, 'state')); rmSync(stateDir, { recursive: true, force: true }); }
  netns?.removeAll();
  netns = undefined;
});

/** Starts `ovnoded stack` in the node netns and resolves at its "stack ready" line. */
function startStack(ns: string, dir: string): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, DAEMON, 'stack', '--state-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stack not ready in 60 s:\n${out}`)), 60_000);
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (out.includes('"msg":"stack ready"')) { clearTimeout(timer); resolve(child); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`stack exited (${code}):\n${out}`)); });
  });
}

function probe(ns: string, args: string[]): { status: number; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, DAEMON, 'probe', ...args], { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

describe('split stack: ovnoded stack + ovnoded run --stack external (real OVS/OVN userspace datapath)', () => {
  it('the daemon adopts the stack, hands over on SIGTERM without touching the datapath, and only the stack stops OVS/OVN', async () => {
    netns = new NetnsSet();
    const nodeNs = netns.create('node');
    const podNs = netns.create('pod');
    stateDir = mkdtempSync(join(tmpdir(), `${netns.prefix}-split-`));

    // Before anything runs, both probes say no, and say why.
    const early = probe(nodeNs, ['stack', '--state-dir', stateDir]);
    expect(early.status).not.toBe(0);
    expect(early.out).toMatch(/db\.sock/);

    // The daemon's pod may start before the stack's, on a state dir that does not exist yet: it
    // waits for the stack's sockets and then adopts it.
    const first = new TestNode({ netns, name: 'node', stateDir: join(stateDir, 'state'), externalStack: true }, nodeNs);
    daemons.push(first);
    const firstReady = first.start();
    stack = await startStack(nodeNs, first.stateDir);
    const ready = probe(nodeNs, ['stack', '--state-dir', first.stateDir]);
    expect(ready.status, ready.out).toBe(0);
    const programs = programsOfStateDir(first.stateDir).map((p) => p.comm).sort();
    expect(programs).toEqual(['ovn-controller', 'ovn-northd', 'ovs-vswitchd', 'ovsdb-server', 'ovsdb-server', 'ovsdb-server']);
    const pidsBefore = programsOfStateDir(first.stateDir).map((p) => p.pid).sort();
    await firstReady;
    expect(probe(nodeNs, ['daemon', '--socket', first.socket])).toMatchObject({ status: 0 });
    // The daemon started (or replaced) no program of its own.
    expect(programsOfStateDir(first.stateDir).map((p) => p.pid).sort()).toEqual(pidsBefore);

    const add = await runShimAsync(cniEnv({ command: 'ADD', containerId: 'split-1', netns: netns.path(podNs) }), netconf(first.socket));
    expect(add.status, add.stderr).toBe(0);
    const [podIp] = resultIps(add.json);
    expect(podIp).toBeDefined();
    expect(netns.ping(nodeNs, podIp as string)).toBe(true);

    // SIGTERM of the daemon in this mode: a hand-over. Exit 0, the stack's programs are the same
    // processes, the node's taps are still there, and the pod is still reachable.
    expect(await first.stop()).toBe(0);
    expect(programsOfStateDir(first.stateDir).map((p) => p.pid).sort()).toEqual(pidsBefore);
    expect(linkNames(nodeNs)).toEqual(expect.arrayContaining(['ovn0', 'br-int']));
    expect(netns.ping(nodeNs, podIp as string)).toBe(true);
    const down = probe(nodeNs, ['daemon', '--socket', first.socket]);
    expect(down.status).not.toBe(0);

    // The next daemon serves the same pod: DEL removes it.
    const second = new TestNode({ netns, name: 'node', stateDir: first.stateDir, externalStack: true }, nodeNs);
    daemons.push(second);
    await second.start();
    const del = await runShimAsync(cniEnv({ command: 'DEL', containerId: 'split-1', netns: netns.path(podNs) }), netconf(second.socket));
    expect(del.status, del.stderr).toBe(0);
    expect(netns.ping(nodeNs, podIp as string, 1)).toBe(false);
    expect(await second.stop()).toBe(0);
    expect(programsOfStateDir(first.stateDir).map((p) => p.pid).sort()).toEqual(pidsBefore);

    // The stack's own SIGTERM stops every program and removes its tap devices.
    const exited = new Promise<number | null>((r) => stack?.once('exit', (code) => r(code)));
    stack.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(programsOfStateDir(first.stateDir)).toEqual([]);
    expect(linkNames(nodeNs)).not.toContain('br-int');
    expect(probe(nodeNs, ['stack', '--state-dir', first.stateDir]).status).not.toBe(0);
  });
});
