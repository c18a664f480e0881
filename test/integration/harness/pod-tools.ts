// Helpers for the security-group, VIP / port-security, QoS and live-update suites, on top of
// TestCluster (which they do not change): long-running programs inside pods (TCP listeners that
// answer their name, tcpdump captures, a TCP stream that timestamps every byte, iperf3), Pod
// manifest edits, read-only ovn-nbctl queries, and a daemon restart on the same netns, state dir
// and manifests directory.
//
// Every program is started with `ip netns exec` (which execs it: the pid is the program's own) and
// ended by that pid, in stop() or in PodProcs.killAll(); nothing is ever killed by name. Only pods
// (network namespaces) the test created exchange packets.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import YAML from 'yaml';
import type { ClusterPod, TestCluster } from './cluster';
import { TestNode } from './node';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- processes

/** Programs started inside pods, tracked so that they are always ended (by pid). */
export class PodProcs {
  private readonly children = new Set<ChildProcess>();

  /** Starts `cmd` inside netns `ns`; stdout/stderr are collected by the caller through the returned child. */
  spawn(ns: string, cmd: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    child.once('close', () => this.children.delete(child));
    child.on('error', () => undefined);
    return child;
  }

  /** SIGKILLs one child (if still running) and waits for its exit. */
  async kill(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((r) => child.once('close', () => r()));
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
    await Promise.race([exited, sleep(2_000)]);
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.children].map((c) => this.kill(c)));
  }
}

/** Resolves when `child` prints `marker` on stdout or stderr; rejects if it exits first or after `timeoutMs`. */
function waitOutput(child: ChildProcess, marker: string | RegExp, what: string, timeoutMs = 10_000): Promise<void> {
  let seen = '';
  return new Promise((resolve, reject) => {
    const test = (): boolean => (typeof marker === 'string' ? seen.includes(marker) : marker.test(seen));
    const timer = setTimeout(() => reject(new Error(`${what}: no "${String(marker)}" within ${timeoutMs} ms: ${seen}`)), timeoutMs);
    const onData = (b: Buffer): void => {
      seen += b.toString();
      if (test()) { clearTimeout(timer); resolve(); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('close', (code) => { clearTimeout(timer); if (!test()) reject(new Error(`${what} exited (${code}): ${seen}`)); });
  });
}

// ---------------------------------------------------------------- TCP listeners and probes

export interface Listener { port: number; stop: () => Promise<void> }

/** A TCP listener in `pod` on `port` that answers `reply` and closes, any number of clients. */
export async function listenReply(procs: PodProcs, pod: ClusterPod, port: number, reply = 'ok'): Promise<Listener> {
  const script = `
    const net = require('node:net');
    const srv = net.createServer((s) => { s.on('error', () => undefined); s.end(process.argv[2] + '\\n'); });
    srv.on('error', (e) => { process.stderr.write(String(e)); process.exit(1); });
    srv.listen({ port: Number(process.argv[1]), host: '0.0.0.0', backlog: 511 }, () => process.stdout.write('listening\\n'));`;
  const child = procs.spawn(pod.ns, [process.execPath, '-e', script, String(port), reply]);
  await waitOutput(child, 'listening', `listener in ${pod.alias} on ${port}`);
  return { port, stop: () => procs.kill(child) };
}

/**
 * One TCP connection attempt (`nc -n -w 1`): the listener's reply (trimmed) when the connection
 * was established and answered, undefined otherwise.
 */
export async function tcpAnswer(cluster: TestCluster, from: ClusterPod, ip: string, port: number, extra: string[] = []): Promise<string | undefined> {
  const r = await cluster.exec(from.ns, ['nc', '-n', '-w', '1', ...extra, ip, String(port)], 5_000);
  const out = r.stdout.trim();
  return r.status === 0 && out !== '' ? out : undefined;
}

/** True when one of `tries` connections is answered with `want` (default: any answer). */
export async function tcpWorks(cluster: TestCluster, from: ClusterPod, ip: string, port: number, tries = 2, want?: string): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    const a = await tcpAnswer(cluster, from, ip, port);
    if (a !== undefined && (want === undefined || a === want)) return true;
  }
  return false;
}

// ---------------------------------------------------------------- captures

export interface Capture {
  /**
   * Ends the capture and returns the packet lines (one per packet, `-n -l`). With `marker`, first
   * waits (bounded) until a line matching it has been captured: a marker packet sent after the
   * packets under test, along the same path, proves that any of those that were going to arrive
   * have arrived, so absence is shown by an event rather than by a pause.
   */
  stop: (marker?: RegExp) => Promise<string[]>;
}

export async function capture(procs: PodProcs, pod: ClusterPod, filter: string): Promise<Capture> {
  const child = procs.spawn(pod.ns, ['tcpdump', '-l', '-n', '-i', 'eth0', filter]);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
  await waitOutput(child, 'listening on', `tcpdump in ${pod.alias} (${filter})`);
  const lines = (): string[] => out.split('\n').filter((l) => l.trim() !== '');
  return {
    stop: async (marker?: RegExp) => {
      if (marker) {
        for (const end = Date.now() + 5_000; !lines().some((l) => marker.test(l));) {
          if (Date.now() > end) throw new Error(`capture in ${pod.alias}: the marker ${String(marker)} never arrived; got:\n${out}`);
          await sleep(20);
        }
      } else {
        await sleep(200); // no marker: let the last packets be printed
      }
      await procs.kill(child);
      return lines();
    },
  };
}

// ---------------------------------------------------------------- a long-lived TCP stream

export interface StreamEvent { t: number; kind: 'connected' | 'data' | 'error' | 'close'; n?: number; err?: string }

export interface Stream {
  /** Events seen by the client (connected, data = echoes, error, close). */
  client: StreamEvent[];
  /** Events seen by the server (data = bytes from the client, error, close). */
  server: StreamEvent[];
  /** The longest time without data on either side in [from, to] (edges count as data). */
  maxGap(from: number, to: number): { client: number; server: number };
  /** Errors and closes seen so far, on either side. */
  failures(): StreamEvent[];
  stop(): Promise<void>;
}

/**
 * A TCP connection from `client` to `server` (`ip`:`port`) on which the client sends one byte every
 * `everyMs` and the server echoes it; both sides timestamp every chunk, every error and close.
 */
export async function startStream(procs: PodProcs, client: ClusterPod, server: ClusterPod, ip: string, port: number, everyMs = 50): Promise<Stream> {
  const out = (): string => `const out = (o) => process.stdout.write(JSON.stringify({ t: Date.now(), ...o }) + '\\n');`;
  const serverScript = `
    const net = require('node:net'); ${out()}
    const srv = net.createServer((s) => {
      s.setNoDelay(true);
      s.on('data', (d) => { out({ kind: 'data', n: d.length }); s.write(d); });
      s.on('error', (e) => out({ kind: 'error', err: String(e) }));
      s.on('close', () => out({ kind: 'close' }));
    });
    srv.on('error', (e) => { process.stderr.write(String(e)); process.exit(1); });
    srv.listen({ port: Number(process.argv[1]), host: '0.0.0.0' }, () => process.stderr.write('listening\\n'));`;
  const clientScript = `
    const net = require('node:net'); ${out()}
    const s = net.connect({ host: process.argv[1], port: Number(process.argv[2]) });
    s.setNoDelay(true);
    let i = 0;
    s.on('connect', () => { out({ kind: 'connected' }); setInterval(() => s.write(String(i++ % 10)), Number(process.argv[3])); });
    s.on('data', (d) => out({ kind: 'data', n: d.length }));
    s.on('error', (e) => out({ kind: 'error', err: String(e) }));
    s.on('close', () => { out({ kind: 'close' }); process.exit(0); });`;
  const parse = (into: StreamEvent[]) => {
    let partial = '';
    return (b: Buffer): void => {
      const parts = (partial + b.toString()).split('\n');
      partial = parts.pop() ?? '';
      for (const p of parts) { try { into.push(JSON.parse(p) as StreamEvent); } catch { /* not ours */ } }
    };
  };
  const serverEvents: StreamEvent[] = [];
  const clientEvents: StreamEvent[] = [];
  const srv = procs.spawn(server.ns, [process.execPath, '-e', serverScript, String(port)]);
  srv.stdout?.on('data', parse(serverEvents));
  await waitOutput(srv, 'listening', `stream server in ${server.alias}:${port}`);
  const cli = procs.spawn(client.ns, [process.execPath, '-e', clientScript, ip, String(port), String(everyMs)]);
  cli.stdout?.on('data', parse(clientEvents));
  for (const end = Date.now() + 5_000; !clientEvents.some((e) => e.kind === 'connected'); await sleep(20)) {
    if (Date.now() > end || clientEvents.some((e) => e.kind !== 'connected')) {
      await procs.kill(cli);
      await procs.kill(srv);
      throw new Error(`stream ${client.alias} -> ${ip}:${port} did not connect: ${JSON.stringify(clientEvents)}`);
    }
  }
  const gap = (events: StreamEvent[], from: number, to: number): number => {
    const ts = [from, ...events.filter((e) => e.kind === 'data' && e.t >= from && e.t <= to).map((e) => e.t), to];
    let max = 0;
    for (let i = 1; i < ts.length; i++) max = Math.max(max, (ts[i] as number) - (ts[i - 1] as number));
    return max;
  };
  return {
    client: clientEvents,
    server: serverEvents,
    maxGap: (from, to) => ({ client: gap(clientEvents, from, to), server: gap(serverEvents, from, to) }),
    failures: () => [...clientEvents, ...serverEvents].filter((e) => e.kind === 'error' || e.kind === 'close'),
    stop: async () => { await procs.kill(cli); await procs.kill(srv); },
  };
}

// ---------------------------------------------------------------- a fast pinger

export interface Pinger {
  /** Reply timestamps (ms since the epoch, from `ping -D`). */
  replies: number[];
  /** The longest time without a reply in [from, to] (edges count as replies). */
  maxGap(from: number, to: number): number;
  stop(): Promise<void>;
}

/** `ping -D -i 0.02` from `from` to `ip` in the background, timestamps of every reply. */
export async function startPinger(procs: PodProcs, from: ClusterPod, ip: string, intervalS = 0.02): Promise<Pinger> {
  const child = procs.spawn(from.ns, ['ping', '-n', '-D', '-i', String(intervalS), '-W', '1', ip]);
  const replies: number[] = [];
  let partial = '';
  child.stdout?.on('data', (b: Buffer) => {
    const parts = (partial + b.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) {
      const m = /^\[(\d+\.\d+)\].*bytes from/.exec(l);
      if (m) replies.push(Math.round(Number(m[1]) * 1000));
    }
  });
  const first = Date.now() + 3_000;
  while (replies.length === 0 && Date.now() < first) await sleep(20);
  return {
    replies,
    maxGap: (a, b) => {
      const ts = [a, ...replies.filter((t) => t >= a && t <= b), b];
      let max = 0;
      for (let i = 1; i < ts.length; i++) max = Math.max(max, (ts[i] as number) - (ts[i - 1] as number));
      return max;
    },
    stop: () => procs.kill(child),
  };
}

// ---------------------------------------------------------------- iperf3

export interface IperfResult { sentMbps: number; receivedMbps: number; seconds: number; json: unknown }

/**
 * iperf3 from `client` to `server` (`ip`): a one-off server (`-s -1`) started by pid in the
 * server pod and killed afterwards, the client run for `seconds`; figures in Mbit/s.
 */
export async function iperf(procs: PodProcs, client: ClusterPod, server: ClusterPod, ip: string, port: number, seconds = 4, extra: string[] = []): Promise<IperfResult> {
  const srv = procs.spawn(server.ns, ['iperf3', '-s', '-1', '-p', String(port)]);
  try {
    // iperf3 buffers its banner when stdout is a pipe: wait for the socket instead.
    const listening = await waitUntil(() => srv.exitCode === null
      && spawnSync('ip', ['netns', 'exec', server.ns, 'ss', '-ltnH', `sport = :${port}`], { encoding: 'utf8' }).stdout.trim() !== '', 10_000, 25);
    if (listening === Infinity) throw new Error(`iperf3 server in ${server.alias} not listening on ${port} (exit ${srv.exitCode})`);
    const cli = procs.spawn(client.ns, ['iperf3', '-c', ip, '-p', String(port), '-t', String(seconds), '-J', ...extra]);
    let stdout = '';
    let stderr = '';
    cli.stdout?.on('data', (b: Buffer) => { stdout += b.toString(); });
    cli.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
    const timer = setTimeout(() => void procs.kill(cli), (seconds + 15) * 1000);
    const code = await new Promise<number | null>((r) => cli.once('close', (c) => r(c)));
    clearTimeout(timer);
    let json: { end?: { sum_sent?: { bits_per_second: number; seconds: number }; sum_received?: { bits_per_second: number } }; error?: string };
    try { json = JSON.parse(stdout) as typeof json; } catch { throw new Error(`iperf3 client in ${client.alias} (exit ${code}): ${stdout.slice(0, 500)} ${stderr}`); }
    if (json.error || !json.end?.sum_received) throw new Error(`iperf3 ${client.alias} -> ${ip}: ${json.error ?? 'no summary'} ${stderr}`);
    return {
      sentMbps: (json.end.sum_sent?.bits_per_second ?? 0) / 1e6,
      receivedMbps: json.end.sum_received.bits_per_second / 1e6,
      seconds: json.end.sum_sent?.seconds ?? seconds,
      json,
    };
  } finally {
    await procs.kill(srv);
  }
}

// ---------------------------------------------------------------- manifests

/** Rewrites a pod's manifest (same shape as TestCluster.addPods writes) with new labels/annotations. */
export function writePod(cluster: TestCluster, pod: ClusterPod, meta: { labels?: Record<string, string>; annotations?: Record<string, string> }): void {
  const metadata: Record<string, unknown> = { name: pod.name, namespace: pod.namespace };
  if (meta.labels && Object.keys(meta.labels).length > 0) metadata.labels = meta.labels;
  if (meta.annotations && Object.keys(meta.annotations).length > 0) metadata.annotations = meta.annotations;
  cluster.writeManifest(pod.file, YAML.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata,
    spec: { containers: [{ name: 'main', image: 'pause:3.9' }] },
  }));
}

// ---------------------------------------------------------------- OVN NB (read-only, tests only)

/** ovn-nbctl against the node's NB; throws on failure. */
export function nbctl(node: TestNode, args: string[]): string {
  const r = spawnSync('ovn-nbctl', [`--db=unix:${join(node.stateDir, 'ovn', 'nb.sock')}`, '--timeout=5', ...args], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ovn-nbctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The LSP's port_security entries (`ovn-nbctl lsp-get-port-security`). */
export function portSecurityOf(node: TestNode, lsp: string): string[] {
  return nbctl(node, ['lsp-get-port-security', lsp]).split('\n').map((l) => l.trim()).filter(Boolean);
}

/** Kube-OVN's port name of a pod: `<name>.<namespace>`. */
export const lspOf = (pod: ClusterPod): string => `${pod.name}.${pod.namespace}`;

/** Polls `probe` every `everyMs` until it returns true; the ms it took, or Infinity after `timeoutMs`. */
export async function waitUntil(probe: () => boolean | Promise<boolean>, timeoutMs = 3_000, everyMs = 25): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) return Infinity;
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------- daemon restart

export interface RestartInfo { exitCode: number | null; stopMs: number; startMs: number; stoppedAt: number; readyAt: number }

/**
 * Stops the cluster's daemon (SIGTERM, clean exit expected) and starts a new one on the same
 * netns, state dir and manifests directory (as daemon-lifecycle.test.ts does for bare nodes).
 * The new daemon's output is appended to the old node's `logs`, so the cluster's LogTap (and
 * waitApplied) keep working, and the cluster's `node` is switched to the new process so that
 * destroy() DELs through it and stops it. `name` must be the name the cluster was started with.
 */
/**
 * How the daemon goes away: `handover` (SIGUSR2, an upgrade: OVS/OVN keep forwarding and are
 * adopted), `crash` (SIGKILL: the same programs are adopted), `stop` (SIGTERM: full stop).
 */
export type RestartMode = 'handover' | 'crash' | 'stop';

export async function restartDaemon(cluster: TestCluster, name: string, extraArgs: string[] = [], mode: RestartMode = 'handover'): Promise<RestartInfo> {
  const old = cluster.node;
  const t0 = Date.now();
  const exitCode = mode === 'stop' ? await old.stop() : mode === 'handover' ? await old.handOver() : (await old.kill9(), null);
  const stoppedAt = Date.now();
  const fresh = new TestNode({ netns: cluster.netns, name, stateDir: old.stateDir, extraArgs: ['--manifests', cluster.manifestsDir, ...extraArgs] }, old.ns);
  let own = '';
  Object.defineProperty(fresh, 'logs', {
    configurable: true,
    enumerable: true,
    get: () => own,
    set: (next: string) => {
      const appended = next.startsWith(own) ? next.slice(own.length) : next;
      own = next;
      old.logs += appended; // the cluster's LogTap sits on the old node's `logs`
    },
  });
  // From here on the cluster talks to (and destroy() stops) the new daemon, even if start fails.
  (cluster as unknown as { node: TestNode }).node = fresh;
  await fresh.start();
  const readyAt = Date.now();
  return { exitCode, stopMs: stoppedAt - t0, startMs: readyAt - stoppedAt, stoppedAt, readyAt };
}
