// A deleted pod's conntrack state must not reach the next pod that gets its address, on the real
// OVS userspace datapath (conntrack lives in ovs-vswitchd).
//
// Pods of one node: B (role=b) is isolated for ingress by a NetworkPolicy that admits nothing, so
// only replies to B's own traffic reach it (OVN lets ct.est+ct.rpl through); A and M answer UDP
// (echo). B talks to A from port R to A:Q, which leaves an established UDP entry
// (B:R -> X:Q, reply X:Q -> B:R) in B's conntrack zone. Controls, before the DEL: A's echo reaches
// B (replies pass), A's unsolicited datagram from another port does not (the policy drops new
// flows), and the table has entries for X. Then A is deleted, and the table must hold no entry
// for X. Then C is added with the same address X (static, ovn.kubernetes.io/ip_address) and sends
// exactly the stale reply tuple X:Q -> B:R: had the entry survived, it would pass as a "reply";
// it must be dropped. Finally B -> C echo shows C itself is connected (so the drop is the
// policy's, not a dead port).
//
// Absence of a datagram is shown without waiting a fixed time: after the datagram that must not
// arrive has been sent, B exchanges a marker with M; B's socket sees datagrams in the order the
// datapath delivered them, and the marker's round trip starts after the datagram was queued to
// the datapath, so its echo arriving first means the datagram was dropped, not late.
//
// A second case fills the table with thousands of flows of one pod before its DEL: OVS 3.1's
// partial flush skips entries when many go at once (the table shrinks under its iteration), so
// this checks that the flush repeats until every entry of the address is gone.
//
// IPv6: OVS 3.1.0 aborts ovs-vswitchd when a tuple flush reaches an ICMPv6 entry, so IPv6 flushes
// name their protocols; a dual-stack case checks that a DEL after ping6 and TCP over IPv6 flushes
// the TCP entries and leaves ovs-vswitchd running (same pid).
//
// Only namespaces this test created exchange packets; every program is ended by pid; everything
// is removed in afterAll, even on failure.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type ClusterPod } from './harness/cluster';
import { scrapeMetrics } from './harness/node-probe';
import { requireArtefacts } from './harness/paths';

const NS = 'ct';
const Q = 7100;  // echo port of A, M and C
const Q2 = 7101; // A's second socket (unsolicited traffic)
const R = 7200;  // B's socket

/** A UDP socket inside a pod, driven over stdin ("<ip> <port> <text>"); prints what it receives. */
const AGENT = `
const dgram = require('node:dgram');
const port = Number(process.argv[1]);
const echo = process.argv[2] === 'echo';
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => {
  const t = m.toString();
  process.stdout.write('recv ' + r.address + ':' + r.port + ' ' + t + '\\n');
  if (echo && !t.startsWith('echo:')) s.send('echo:' + t, r.port, r.address);
});
s.on('error', (e) => { process.stdout.write('error ' + e.message + '\\n'); process.exit(1); });
s.bind(port, '0.0.0.0', () => process.stdout.write('bound\\n'));
require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => {
  const [ip, p, ...rest] = l.split(' ');
  const text = rest.join(' ');
  s.send(text, Number(p), ip, (e) => process.stdout.write(e ? 'senderr ' + e.message + '\\n' : 'sent ' + text + '\\n'));
});`;

class Agent {
  readonly lines: string[] = [];
  private waiters: Array<{ pred: (l: string) => boolean; resolve: (l: string) => void }> = [];

  constructor(readonly name: string, readonly child: ChildProcess) {
    let partial = '';
    child.stdout?.on('data', (b: Buffer) => {
      const parts = (partial + b.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => { if (!w.pred(line)) return true; w.resolve(line); return false; });
      }
    });
  }

  /** Resolves with the first line (already seen or to come) that satisfies pred. */
  waitFor(pred: (l: string) => boolean, what: string, timeoutMs = 5_000): Promise<string> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; lines: ${this.lines.join(' | ')}`)), timeoutMs);
      this.waiters.push({ pred, resolve: (l) => { clearTimeout(timer); resolve(l); } });
    });
  }

  /** Sends one datagram and resolves once the kernel accepted it. */
  async send(ip: string, port: number, text: string): Promise<void> {
    const sent = this.waitFor((l) => l === `sent ${text}` || l.startsWith('senderr'), `send of ${text}`);
    this.child.stdin?.write(`${ip} ${port} ${text}\n`);
    const line = await sent;
    if (line.startsWith('senderr')) throw new Error(`${this.name}: ${line}`);
  }

  received(text: string): string[] { return this.lines.filter((l) => l.startsWith('recv ') && l.endsWith(` ${text}`)); }
}

let cluster: TestCluster | undefined;
let dualStack: TestCluster | undefined;
const agents: Agent[] = [];
let seq = 0;

function theCluster(): TestCluster {
  if (!cluster) throw new Error('cluster not started');
  return cluster;
}

async function startAgent(pod: ClusterPod, port: number, mode: 'echo' | 'plain'): Promise<Agent> {
  const child = spawn('ip', ['netns', 'exec', pod.ns, process.execPath, '-e', AGENT, String(port), mode], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.on('error', () => undefined);
  const agent = new Agent(`${pod.name}:${port}`, child);
  agents.push(agent);
  await agent.waitFor((l) => l === 'bound', 'bind');
  return agent;
}

async function stopAgents(which: Agent[] = [...agents]): Promise<void> {
  for (const a of which) agents.splice(agents.indexOf(a), 1);
  await Promise.all(which.map(async (a) => {
    const c = a.child;
    if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('close', () => r()));
    try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
    await exited;
  }));
}

/** Sends one datagram from each of `n` source ports to ip:9 (a pod's closed port), then exits. */
const FLOWS = `
const dgram = require('node:dgram');
const [n, ip] = [Number(process.argv[1]), process.argv[2]];
let done = 0;
for (let p = 30000; p < 30000 + n; p++) {
  const s = dgram.createSocket('udp4');
  s.bind(p, () => s.send('x', 9, ip, () => { s.close(); if (++done === n) process.exit(0); }));
}`;

function vswitchdPid(c: TestCluster): number {
  return Number(readFileSync(join(c.node.stateDir, 'ovs', 'ovs-vswitchd.pid'), 'utf8').trim());
}

function nconns(): number {
  const r = spawnSync('ovs-appctl', ['-t', join(theCluster().node.stateDir, 'ovs', 'ovs-vswitchd.ctl'), 'dpctl/ct-get-nconns'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

/** The node's conntrack table (all zones), one entry per line. */
function conntrack(c: TestCluster = theCluster()): string[] {
  const r = spawnSync('ovs-appctl', ['-t', join(c.node.stateDir, 'ovs', 'ovs-vswitchd.ctl'), 'dpctl/dump-conntrack'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`dpctl/dump-conntrack: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

const mentions = (ip: string) => (entry: string): boolean => new RegExp(`(src|dst)=${ip.replace(/[.]/g, '\\.')}[,)]`).test(entry);

function metric(name: string, labels: string, c: TestCluster = theCluster()): number {
  const text = scrapeMetrics(c.node.ns);
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/**
 * DEL answers before its conntrack flush is done (the address stays held until then), so wait
 * for the flush itself: the "ok" counter reaching `count` (bounded; an event, not a fixed sleep).
 */
async function flushesDone(count: number, c: TestCluster = theCluster()): Promise<void> {
  for (const end = Date.now() + 10_000; metric('ovnode_conntrack_flushes_total', '{outcome="ok"}', c) < count;) {
    if (Date.now() > end) throw new Error(`conntrack flushes did not reach ${count} within 10 s`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/**
 * True when a datagram with `text` reached B by the time a marker exchanged afterwards with M
 * came back (see the header for why that is not a race).
 */
async function deliveredToB(b: Agent, m: ClusterPod, text: string): Promise<boolean> {
  const marker = `marker-${++seq}`;
  await b.send(m.ip, Q, marker);
  await b.waitFor((l) => l.startsWith('recv ') && l.endsWith(` echo:${marker}`), `echo of ${marker} from M`);
  return b.received(text).length > 0;
}

beforeAll(async () => {
  requireArtefacts();
  cluster = await TestCluster.start({ name: 'ct' });
});

afterAll(async () => {
  await stopAgents();
  await cluster?.destroy();
  await dualStack?.destroy();
});

describe('conntrack of a deleted pod does not reach the next pod with its address', () => {
  it('stale established UDP entry: flushed at DEL, and the new pod\'s packet on that tuple is dropped by the policy', async () => {
    const c = theCluster();
    const [a, b, m] = await c.addPods([
      { name: 'a', namespace: NS, labels: { role: 'a' } },
      { name: 'b', namespace: NS, labels: { role: 'b' } },
      { name: 'm', namespace: NS, labels: { role: 'm' } },
    ]) as [ClusterPod, ClusterPod, ClusterPod];
    c.writeManifest('networkpolicy-isolate-b.yaml', YAML.stringify({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'isolate-b', namespace: NS },
      spec: { podSelector: { matchLabels: { role: 'b' } }, policyTypes: ['Ingress'], ingress: [] },
    }));
    await c.waitApplied();
    const x = a.ip;

    const agentA = await startAgent(a, Q, 'echo');
    const agentA2 = await startAgent(a, Q2, 'plain');
    const agentB = await startAgent(b, R, 'plain');
    await startAgent(m, Q, 'echo');

    // B -> A: A's echo is a reply and passes B's isolation; this leaves B:R <-> X:Q established.
    await agentB.send(x, Q, 'hello-a');
    await agentB.waitFor((l) => l === `recv ${x}:${Q} echo:hello-a`, 'echo from A');
    // Control: a new flow from A into B is dropped by the policy.
    await agentA2.send(b.ip, R, 'unsolicited-a');
    expect(await deliveredToB(agentB, m, 'unsolicited-a'), 'a new flow into isolated B must be dropped').toBe(false);
    // Control: the entry that would let the stale "reply" through exists.
    const before = conntrack().filter(mentions(x));
    console.log(`conntrack entries for ${x} before DEL:\n  ${before.join('\n  ')}`);
    expect(before.some((e) => e.startsWith('udp,') && e.includes(`dst=${x},sport=${R},dport=${Q}`)), 'B -> A UDP entry').toBe(true);

    await stopAgents([agentA, agentA2]);
    const okBefore = metric('ovnode_conntrack_flushes_total', '{outcome="ok"}');
    const t0 = Date.now();
    await c.removePod(a);
    const delMs = Date.now() - t0;
    await flushesDone(okBefore + 1);
    const after = conntrack();
    console.log(`DEL of A (${x}) took ${delMs} ms (shim included); conntrack entries left for ${x}: ${after.filter(mentions(x)).length}; whole table: ${after.length}`);
    expect(after.filter(mentions(x)), `no entry for ${x} after DEL`).toEqual([]);
    expect(metric('ovnode_conntrack_flushes_total', '{outcome="ok"}') - okBefore).toBeGreaterThanOrEqual(1);
    const sum = metric('ovnode_conntrack_flush_duration_seconds_sum', '{outcome="ok"}');
    const count = metric('ovnode_conntrack_flush_duration_seconds_count', '{outcome="ok"}');
    console.log(`conntrack flush through unixctl: ${count} batches, mean ${((sum / count) * 1000).toFixed(2)} ms (4 flush-conntrack calls per IPv4 address)`);
    expect(metric('ovnode_conntrack_flush_pending', '')).toBe(0);

    // C gets X and sends exactly the stale reply tuple X:Q -> B:R.
    const [cPod] = await c.addPods([{ name: 'c', namespace: NS, labels: { role: 'c' }, annotations: { 'ovn.kubernetes.io/ip_address': x } }]) as [ClusterPod];
    expect(cPod.ip, 'C got the deleted pod\'s address').toBe(x);
    const agentC = await startAgent(cPod, Q, 'echo');
    await agentC.send(b.ip, R, 'probe-from-c');
    expect(await deliveredToB(agentB, m, 'probe-from-c'), 'the stale entry must not let C\'s packet through as a reply').toBe(false);
    // C itself is connected: B -> C works and C's echo (a real reply) reaches B.
    await agentB.send(x, Q, 'hello-c');
    await agentB.waitFor((l) => l === `recv ${x}:${Q} echo:hello-c`, 'echo from C');
  });

  it('a pod with thousands of flows: every entry of its address is flushed at DEL', async () => {
    const c = theCluster();
    const [busy, sink] = await c.addPods([{ name: 'busy', namespace: NS }, { name: 'sink', namespace: NS }]) as [ClusterPod, ClusterPod];
    const N = 5_000;
    const r = spawnSync('ip', ['netns', 'exec', busy.ns, process.execPath, '-e', FLOWS, String(N), sink.ip], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    // The datagrams are sent; wait (bounded) until the datapath has tracked thousands of them. Not
    // all: on a loaded 2-core machine the userspace datapath drops part of a burst at upcall (CI
    // once tracked 3332 of 5000), and what this test checks is the flush, not the burst.
    const want = 2_000;
    for (const end = Date.now() + 15_000; conntrack().filter(mentions(busy.ip)).length < want;) {
      if (Date.now() > end) throw new Error(`fewer than ${want} conntrack entries for ${busy.ip} after 15 s (${nconns()} in the table)`);
      await new Promise((res) => setTimeout(res, 200));
    }
    const before = conntrack().filter(mentions(busy.ip)).length;
    const okBefore = metric('ovnode_conntrack_flushes_total', '{outcome="ok"}');
    const t0 = Date.now();
    await c.removePod(busy);
    await flushesDone(okBefore + 1);
    const left = conntrack().filter(mentions(busy.ip));
    console.log(`busy pod: ${before} conntrack entries for ${busy.ip} before DEL; ${left.length} after (DEL ${Date.now() - t0} ms, shim included; table now ${nconns()})`);
    expect(left.slice(0, 5), `entries of ${busy.ip} left after DEL (${left.length})`).toEqual([]);
  });
});

describe('conntrack flush on a dual-stack node', () => {
  it('IPv6: TCP entries of the deleted pod are flushed; ICMPv6 entries are not touched and ovs-vswitchd stays up', async () => {
    dualStack = await TestCluster.start({ name: 'ct6', subnet: '10.16.0.0/16,fd00:10:16::/64' });
    const c = dualStack;
    const [v, w] = await c.addPods([{ name: 'v', namespace: NS }, { name: 'w', namespace: NS }]) as [ClusterPod, ClusterPod];
    const v6 = v.ips.find((ip) => ip.includes(':')) as string;
    const w6 = w.ips.find((ip) => ip.includes(':')) as string;
    const pid = vswitchdPid(c);
    expect(c.netns.exec(v.ns, ['ping', '-6', '-c', '1', '-W', '2', w6]).status, 'ping6 v -> w').toBe(0);
    const listener = spawn('ip', ['netns', 'exec', w.ns, 'nc', '-6', '-l', '7300'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      for (const end = Date.now() + 5_000; c.netns.exec(w.ns, ['ss', '-ltnH', 'sport = :7300']).stdout.trim() === '';) {
        if (Date.now() > end) throw new Error('nc did not listen on [w]:7300');
        await new Promise((res) => setTimeout(res, 50));
      }
      expect(c.netns.exec(v.ns, ['sh', '-c', `echo hi | nc -6 -N -w 2 ${w6} 7300`]).status, 'TCP over IPv6 v -> w').toBe(0);
    } finally {
      if (listener.pid !== undefined && listener.exitCode === null) try { process.kill(listener.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    const before = conntrack(c).filter(mentions(v6));
    expect(before.some((e) => e.startsWith('tcp,')), `a TCP entry for ${v6}: ${before.join(' | ')}`).toBe(true);
    expect(before.some((e) => e.startsWith('icmpv6,')), `an ICMPv6 entry for ${v6}`).toBe(true);
    const okBefore = metric('ovnode_conntrack_flushes_total', '{outcome="ok"}', c);
    await c.removePod(v);
    await flushesDone(okBefore + 2, c); // both of v's addresses
    const after = conntrack(c).filter(mentions(v6));
    console.log(`dual stack: entries for ${v6} before DEL ${before.length}, after ${after.length}: ${after.join(' | ')}`);
    expect(after.filter((e) => !e.startsWith('icmpv6,')), 'only ICMPv6 entries may remain').toEqual([]);
    expect(vswitchdPid(c), 'ovs-vswitchd was not restarted').toBe(pid);
    expect(c.netns.ping(w.ns, '10.16.0.1'), 'the datapath still forwards').toBe(true);
  });
});
