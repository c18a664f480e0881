// The periodic reconcile on a real node: leaks made behind the daemon's back are removed by the
// next runs and counted in ovnode_reconcile_removed_total, a healthy pod is left alone.
//
// Leaks: a pod whose netns is deleted without DEL (netns_gone: conclusive, removed by the first
// run under the sandbox lock, its address flushed and freed); an ovnode-marked LSP with no OVS port
// (lsp_without_port), an ovnode-marked OVS port with no LSP (port_without_lsp) and a veth named
// like ours that nothing references (orphan_veth): these look like an ADD in flight, so the
// first run only suspects them and the second removes them. Runs are triggered with SIGHUP
// (interval 10 min, grace 0 through OVNODE_RECONCILE_*), and each is awaited through its
// "reconcile run" log line, never a sleep. A second node shows the timer alone does it.
//
// Only namespaces this test created are touched; everything is removed in afterAll.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type ClusterPod } from './harness/cluster';
import { hostVeths, lsps, podOvsPorts } from './harness/inspect';
import type { LogLine } from './harness/log-tap';
import { LogTap } from './harness/log-tap';
import { NetnsSet } from './harness/netns';
import { TestNode } from './harness/node';
import { scrapeMetrics } from './harness/node-probe';
import { requireArtefacts } from './harness/paths';

const ENV_KEYS = ['OVNODE_RECONCILE_INTERVAL_MS', 'OVNODE_RECONCILE_GRACE_MS'] as const;
const savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));

let cluster: TestCluster | undefined;
let timerNode: TestNode | undefined;
let timerNetns: NetnsSet | undefined;

/** Starts a daemon with the reconcile settings in its environment (TestNode passes ours on). */
async function withEnv<T>(env: Record<(typeof ENV_KEYS)[number], string>, start: () => Promise<T>): Promise<T> {
  Object.assign(process.env, env);
  try {
    return await start();
  } finally {
    for (const k of ENV_KEYS) { if (savedEnv[k] === undefined) delete process.env[k]; else process.env[k] = savedEnv[k]; }
  }
}

function theCluster(): TestCluster {
  if (!cluster) throw new Error('cluster not started');
  return cluster;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15_000, env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const nbctl = (node: TestNode, args: string[]): string => run('ovn-nbctl', [`--db=unix:${join(node.stateDir, 'ovn', 'nb.sock')}`, '--timeout=5', ...args]);
const vsctl = (node: TestNode, args: string[]): string => run('ovs-vsctl', [`--db=unix:${join(node.stateDir, 'ovs', 'db.sock')}`, '--timeout=5', ...args]);

const isRun = (trigger: string) => (l: LogLine): boolean => l.json?.msg === 'reconcile run' && l.json.trigger === trigger;

/** Sends SIGHUP to the daemon and resolves with the report of the run it caused. */
async function reconcileNow(c: TestCluster): Promise<Record<string, unknown>> {
  const mark = c.log.mark;
  const pid = c.node.pid;
  if (pid === undefined) throw new Error('daemon not running');
  process.kill(pid, 'SIGHUP');
  const line = await c.log.waitFor(isRun('SIGHUP'), { from: mark, timeoutMs: 15_000, what: 'reconcile run (SIGHUP)' });
  return line.json as Record<string, unknown>;
}

function counters(ns: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of scrapeMetrics(ns).split('\n')) {
    const m = new RegExp(`^${name}\\{(?:kind|outcome)="([^"]+)"\\} (\\S+)$`).exec(line);
    if (m) out[m[1] as string] = Number(m[2]);
  }
  return out;
}

beforeAll(async () => {
  requireArtefacts();
  cluster = await withEnv({ OVNODE_RECONCILE_INTERVAL_MS: '600000', OVNODE_RECONCILE_GRACE_MS: '0' }, () => TestCluster.start({ name: 'rc' }));
});

afterAll(async () => {
  await cluster?.destroy();
  await timerNode?.destroy().catch((e: unknown) => console.error(`destroy timer node: ${String(e)}`));
  timerNetns?.removeAll();
});

describe('periodic reconcile: leaks made behind the daemon\'s back', () => {
  it('netns deleted without DEL, marked LSP without port, marked port without LSP, orphan veth: removed and counted; a healthy pod stays', async () => {
    const c = theCluster();
    const node = c.node;
    const [healthy, doomed] = await c.addPods([{ name: 'healthy', namespace: 'rc' }, { name: 'doomed', namespace: 'rc' }]) as [ClusterPod, ClusterPod];
    const before = { ports: podOvsPorts(node).length, lsps: lsps(node).length };
    expect(before).toEqual({ ports: 2, lsps: 2 });

    // 1. The pod's netns goes without a DEL (a runtime that lost it).
    c.netns.remove(doomed.ns);
    // 2. and 3. Rows marked as ours whose other half never came, pointing at a live netns.
    const live = c.netns.create('live');
    const livePath = c.netns.path(live);
    nbctl(node, ['lsp-add', 'ovn-default', 'leak-lsp.rc', '--', 'lsp-set-addresses', 'leak-lsp.rc', '0a:58:0a:10:ff:01 10.16.255.1',
      '--', 'set', 'Logical_Switch_Port', 'leak-lsp.rc', 'external_ids:ovnode\\:owner=ovnode', 'external_ids:sandbox=leak-sb-nb',
      `external_ids:ovnode\\:netns=${livePath}`]);
    vsctl(node, ['add-port', 'br-int', 'aaaaaaaaaaaa_h', '--', 'set', 'Interface', 'aaaaaaaaaaaa_h',
      'external_ids:ovnode\\:owner=ovnode', 'external_ids:sandbox=leak-sb-ovs', 'external_ids:iface-id=leak-port.rc', `external_ids:ovnode\\:netns=${livePath}`]);
    // 4. A veth named like ours that no port and no attachment accounts for.
    run('ip', ['-n', node.ns, 'link', 'add', 'bbbbbbbbbbbb_h', 'type', 'veth', 'peer', 'name', 'bbbbbbbbbbbb_p']);
    expect(hostVeths(node)).toContain('bbbbbbbbbbbb_h');

    const first = await reconcileNow(c);
    console.log('first run:', JSON.stringify(first));
    // The gone netns is conclusive under the sandbox lock; the rest looks like an ADD in flight.
    expect(first.removed).toEqual({ netns_gone: 1 });
    expect(first.suspected).toBe(3);
    expect(lsps(node).map((l) => l.name).sort()).toEqual(['healthy.rc', 'leak-lsp.rc']);
    expect(counters(node.ns, 'ovnode_reconcile_suspected')).toMatchObject({ lsp_without_port: 1, port_without_lsp: 1, orphan_veth: 1 });

    const second = await reconcileNow(c);
    console.log('second run:', JSON.stringify(second));
    expect(second.removed).toEqual({ lsp_without_port: 1, port_without_lsp: 1, orphan_veth: 1 });

    expect(lsps(node).map((l) => l.name)).toEqual(['healthy.rc']);
    expect(vsctl(node, ['list-ports', 'br-int']).split('\n').filter(Boolean).sort()).toEqual([...podOvsPorts(node), 'ovn0'].sort());
    expect(podOvsPorts(node)).toHaveLength(1);
    expect(hostVeths(node)).toHaveLength(1);
    expect(nbctl(node, ['--bare', '--columns=name', 'find', 'Logical_Switch_Port', 'external_ids:sandbox=leak-sb-nb']).trim()).toBe('');
    expect(counters(node.ns, 'ovnode_reconcile_removed_total')).toEqual({ netns_gone: 1, lsp_without_port: 1, port_without_lsp: 1, orphan_veth: 1 });
    expect(counters(node.ns, 'ovnode_reconcile_suspected')).toEqual({ netns_gone: 0, lsp_without_port: 0, port_without_lsp: 0, orphan_veth: 0, address_without_lsp: 0 });
    // The gone pod's address went through the conntrack flush like a DEL's.
    expect(counters(node.ns, 'ovnode_conntrack_flushes_total').ok).toBeGreaterThanOrEqual(1);
    expect(scrapeMetrics(node.ns)).toMatch(/^ovnode_reconcile_run_duration_seconds_count\{trigger="SIGHUP",outcome="ok"\} 2$/m);

    // Nothing left to find, and the healthy pod still works (its gateway answers).
    const third = await reconcileNow(c);
    expect(third).toMatchObject({ found: 0, suspected: 0 });
    expect(c.netns.ping(healthy.ns, '10.16.0.1'), 'healthy pod reaches its gateway').toBe(true);
    // The freed address can be taken again, as a static IP.
    const [again] = await c.addPods([{ name: 'again', namespace: 'rc', annotations: { 'ovn.kubernetes.io/ip_address': doomed.ip } }]) as [ClusterPod];
    expect(again.ip).toBe(doomed.ip);
  });
});

describe('periodic reconcile: the timer alone', () => {
  it('an orphan veth is removed by the timer-driven runs (interval 300 ms, grace 0)', async () => {
    timerNetns = new NetnsSet();
    const n = new TestNode({ netns: timerNetns, name: 't1' });
    timerNode = n;
    const tap = new LogTap(n);
    await withEnv({ OVNODE_RECONCILE_INTERVAL_MS: '300', OVNODE_RECONCILE_GRACE_MS: '0' }, () => n.start());
    const mark = tap.mark;
    const t0 = Date.now();
    run('ip', ['-n', n.ns, 'link', 'add', 'cccccccccccc_h', 'type', 'veth', 'peer', 'name', 'cccccccccccc_p']);
    const removed = await tap.waitFor((l) => l.json?.msg === 'removed leak' && l.json.veth === 'cccccccccccc_h', { from: mark, timeoutMs: 10_000, what: 'removed leak cccccccccccc_h' });
    console.log(`timer: orphan veth removed ${removed.at - t0} ms after it was created`);
    expect(removed.json?.kind).toBe('orphan_veth');
    expect(hostVeths(n)).not.toContain('cccccccccccc_h');
    expect(counters(n.ns, 'ovnode_reconcile_removed_total')).toEqual({ orphan_veth: 1 });
    expect(scrapeMetrics(n.ns)).toMatch(/^ovnode_reconcile_run_duration_seconds_count\{trigger="timer",outcome="ok"\} [1-9]\d*$/m);
  });
});
