// A one-node "cluster" for the security-model tests: an ovnoded node started with
// `--manifests DIR`, Kubernetes-shaped YAML written into DIR (Namespace, Pod, Subnet,
// NetworkPolicy, ...), pods = network namespaces created here and ADDed through the real shim with
// K8S_POD_NAMESPACE / K8S_POD_NAME, and reachability measured with real packets (ping, nc).
//
// The daemon announces every reconcile of the manifests with a pino line
// `"msg":"policy applied"` (with a `version`); waitApplied() waits for the one that follows the
// last change made here. Only namespaces created here exchange packets; every process started
// here is ended by pid; destroy() removes pods, namespaces, the node and the directories even
// after a failure.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import YAML from 'yaml';
import { LogTap, stringValues, type LogLine } from './log-tap';
import type { Reach } from './matrix';
import { NetnsSet } from './netns';
import { TestNode } from './node';
import { REPO } from './paths';
import { cniEnv, netconf, resultIps, runShimAsync, type ShimResult } from './shim-calls';

/** test/fixtures/seeds/<file>, as text. */
export function seedFixture(file: string): string {
  return readFileSync(join(REPO, 'test', 'fixtures', 'seeds', file), 'utf8');
}

export interface PodSpec {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Name in matrices and messages (default "<namespace>/<name>"). */
  alias?: string;
}

export interface ClusterPod {
  name: string;
  namespace: string;
  alias: string;
  /** The pod's network namespace (name; its path is /var/run/netns/<ns>). */
  ns: string;
  netnsPath: string;
  /** First address of the ADD result (no prefix). */
  ip: string;
  ips: string[];
  containerId: string;
  /** CNI_ARGS used for ADD (and DEL). */
  args: string;
  /** Manifest file of the Pod object. */
  file: string;
  result: Record<string, unknown> | undefined;
}

/** An address pinged in matrices besides the pods (ICMP only), e.g. a subnet gateway. */
export interface Target { alias: string; ip: string }

export interface ReachabilityOptions {
  icmp?: boolean;
  /** Measure TCP (on a fresh port unless `tcpPort` is given). Implied by tcpPort / tcpSrcPort. */
  tcp?: boolean;
  tcpPort?: number;
  /** Bind the client to this source port (`nc -p`); the pairs of one source then run one after another. */
  tcpSrcPort?: number;
  /** ICMP-only extra destinations (columns), e.g. the gateway. */
  extraTargets?: Target[];
  /** Extra attempts for a pair that failed (default 1): a "no" is two failures in a row. */
  retries?: number;
}

export interface AppliedInfo {
  /** `version` of the "policy applied" line, when it has one. */
  version: number | undefined;
  /** From the change made here to the arrival of the line. */
  ms: number;
  line: LogLine | undefined;
}

export interface TestClusterOptions {
  /** Node (and chassis) name, default "n1". */
  name?: string;
  /** The node's default pod subnet (the daemon's --subnet). */
  subnet?: string;
  extraArgs?: string[];
  netns?: NetnsSet;
  /**
   * Start the daemon WITHOUT `--manifests` (a daemon that predates the manifests feature): pods and
   * namespaces still work, manifests are written but nobody reads them, waitApplied() resolves at
   * once. Only for checking the harness itself.
   */
  withoutManifests?: boolean;
  /** Runs once the node's netns exists, before its daemon starts; returns more daemon arguments. */
  beforeStart?: (node: TestNode) => Promise<string[]>;
}

const APPLIED = '"msg":"policy applied"';
const isApplied = (l: LogLine): boolean => l.json?.msg === 'policy applied' || l.raw.includes(APPLIED);
const versionOf = (l: LogLine | undefined): number | undefined => {
  const v = l?.json?.version;
  return typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RunResult { status: number; stdout: string; stderr: string; ms: number }

export class TestCluster {
  readonly pods: ClusterPod[] = [];
  private readonly namespaces = new Set<string>();
  private readonly children = new Set<ChildProcess>();
  private podSeq = 0;
  private portSeq = 0;
  /** Listener ports: a fresh one per matrix, so no TIME_WAIT of an earlier matrix is in the way. */
  private readonly portBase = 20_000 + Math.floor(Math.random() * 20_000);
  /** The last change made through this object that the daemon has not been seen to apply yet. */
  private pending: { mark: number; at: number; version: number | undefined; what: string } | undefined;
  private destroyed = false;

  private constructor(
    readonly netns: NetnsSet,
    readonly node: TestNode,
    readonly log: LogTap,
    readonly manifestsDir: string,
    private readonly stagingDir: string,
    private readonly opts: TestClusterOptions,
  ) {}

  /** Creates the manifests directory and starts the node; cleans up after itself if that fails. */
  static async start(opts: TestClusterOptions = {}): Promise<TestCluster> {
    const netns = opts.netns ?? new NetnsSet();
    const manifestsDir = mkdtempSync(join(tmpdir(), `${netns.prefix}-manifests-`));
    // Files are written here first and renamed into the manifests directory: the daemon never
    // sees a half-written file, nor a temporary file of ours.
    const stagingDir = mkdtempSync(join(tmpdir(), `${netns.prefix}-staging-`));
    let node: TestNode | undefined;
    try {
      const extraArgs = [...(opts.withoutManifests ? [] : ['--manifests', manifestsDir]), ...(opts.extraArgs ?? [])];
      node = new TestNode({ netns, name: opts.name ?? 'n1', subnet: opts.subnet, extraArgs });
      if (opts.beforeStart) extraArgs.push(...(await opts.beforeStart(node)));
      const log = new LogTap(node);
      const cluster = new TestCluster(netns, node, log, manifestsDir, stagingDir, opts);
      await node.start();
      if (!opts.withoutManifests) {
        // The reconcile of the (empty) directory at start-up, if the daemon logs one, must not be
        // mistaken for the reconcile of the first write.
        await log.waitFor(isApplied, { timeoutMs: 1_500 }).catch(() => undefined);
        await cluster.quiesce();
      }
      return cluster;
    } catch (e) {
      await node?.destroy().catch(() => undefined);
      netns.removeAll();
      rmSync(manifestsDir, { recursive: true, force: true });
      rmSync(stagingDir, { recursive: true, force: true });
      throw e;
    }
  }

  // ---------------------------------------------------------------- manifests

  /** Writes (or replaces, atomically) `DIR/<file>`. */
  writeManifest(file: string, yamlText: string): void {
    this.checkFileName(file);
    const staged = join(this.stagingDir, file);
    writeFileSync(staged, yamlText);
    this.noteChange(`write ${file}`);
    renameSync(staged, join(this.manifestsDir, file));
  }

  removeManifest(file: string): void {
    this.checkFileName(file);
    this.noteChange(`remove ${file}`);
    rmSync(join(this.manifestsDir, file), { force: true });
  }

  /** Writes `namespace-<name>.yaml` (labels: kubernetes.io/metadata.name, as Kubernetes sets it, plus `labels`). */
  writeNamespace(name: string, labels: Record<string, string> = {}): string {
    const file = `namespace-${name}.yaml`;
    this.writeManifest(file, YAML.stringify({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } },
    }));
    this.namespaces.add(name);
    return file;
  }

  /**
   * Resolves once the daemon has applied everything written here so far: the first
   * "policy applied" line after the last change (with a higher `version` than the last one seen
   * before it, when lines carry one), then no further such line for `settleMs` (a reconcile that
   * was already running when the change was made is followed by the one that includes it).
   */
  async waitApplied(opts: { timeoutMs?: number; settleMs?: number } = {}): Promise<AppliedInfo> {
    const p = this.pending;
    if (this.opts.withoutManifests || !p) return { version: versionOf(this.lastApplied()), ms: 0, line: this.lastApplied() };
    const timeoutMs = opts.timeoutMs ?? 5_000;
    const settleMs = opts.settleMs ?? 200;
    let line = await this.log.waitFor(
      (l) => isApplied(l) && (p.version === undefined || (versionOf(l) ?? Infinity) > p.version),
      { from: p.mark, timeoutMs, what: `${APPLIED} after "${p.what}"` },
    );
    for (;;) {
      const next = await this.log.waitFor(isApplied, { from: line.seq + 1, timeoutMs: settleMs }).catch(() => undefined);
      if (!next) break;
      line = next;
    }
    if (this.pending === p) this.pending = undefined;
    return { version: versionOf(line), ms: line.at - p.at, line };
  }

  /** Resolves once no "policy applied" line has arrived for `quietMs` (reconciles nobody waits for, e.g. after ADDs). */
  async quiesce(quietMs = 300): Promise<void> {
    if (this.opts.withoutManifests) return;
    for (;;) {
      const next = await this.log.waitFor(isApplied, { from: this.log.mark, timeoutMs: quietMs }).catch(() => undefined);
      if (!next) return;
    }
  }

  /**
   * Resolves with the log line that reports the rejection of an object, written after the last
   * change: a line containing "rejected" and, in one of its strings, `message`.
   */
  waitRejected(message: string, timeoutMs = 5_000): Promise<LogLine> {
    return this.log.waitFor(
      (l) => l.raw.toLowerCase().includes('rejected') && (l.json ? stringValues(l.json) : [l.raw]).some((s) => s.includes(message)),
      { from: this.pending?.mark ?? 0, timeoutMs, what: `with "rejected" and ${JSON.stringify(message)}` },
    );
  }

  private lastApplied(): LogLine | undefined {
    for (let i = this.log.lines.length - 1; i >= 0; i--) if (isApplied(this.log.lines[i] as LogLine)) return this.log.lines[i];
    return undefined;
  }

  private noteChange(what: string): void {
    // The mark of the LAST change: the "policy applied" line waited for must come after it (a
    // reconcile that was already running then is followed by another within the settle period).
    this.pending = { mark: this.log.mark, at: Date.now(), version: versionOf(this.lastApplied()), what };
  }

  private checkFileName(file: string): void {
    if (basename(file) !== file || file.startsWith('.')) throw new Error(`manifest file name must be a plain name: ${file}`);
  }

  // ---------------------------------------------------------------- pods

  /** One pod: see addPods(). */
  async addPod(spec: PodSpec): Promise<ClusterPod> {
    const [pod] = await this.addPods([spec]);
    return pod as ClusterPod;
  }

  /**
   * Writes the Pod manifests (and a Namespace manifest for any namespace not written yet), waits
   * until the daemon applied them, then creates the pod netns and ADDs them all at once through
   * the shim with K8S_POD_NAMESPACE / K8S_POD_NAME. Throws on any failed ADD.
   */
  async addPods(specs: PodSpec[]): Promise<ClusterPod[]> {
    const pods: ClusterPod[] = [];
    for (const spec of specs) {
      if (!this.namespaces.has(spec.namespace)) this.writeNamespace(spec.namespace);
      const file = `pod-${spec.namespace}-${spec.name}.yaml`;
      const metadata: Record<string, unknown> = { name: spec.name, namespace: spec.namespace };
      if (spec.labels && Object.keys(spec.labels).length > 0) metadata.labels = spec.labels;
      if (spec.annotations && Object.keys(spec.annotations).length > 0) metadata.annotations = spec.annotations;
      this.writeManifest(file, YAML.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata,
        spec: { containers: [{ name: 'main', image: 'pause:3.9' }] },
      }));
      const seq = ++this.podSeq;
      const ns = this.netns.create(`p${seq}-${spec.name.replace(/[^a-z0-9]/gi, '').slice(0, 8)}`);
      const containerId = `${this.netns.prefix}-${createHash('sha256').update(`${ns}/${spec.namespace}/${spec.name}`).digest('hex').slice(0, 24)}`;
      pods.push({
        name: spec.name,
        namespace: spec.namespace,
        alias: spec.alias ?? `${spec.namespace}/${spec.name}`,
        ns,
        netnsPath: this.netns.path(ns),
        ip: '',
        ips: [],
        containerId,
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${spec.namespace};K8S_POD_NAME=${spec.name}`,
        file,
        result: undefined,
      });
    }
    await this.waitApplied();
    const results = await Promise.all(pods.map((p) => runShimAsync(
      cniEnv({ command: 'ADD', containerId: p.containerId, netns: p.netnsPath, args: p.args }),
      netconf(this.node.socket),
    )));
    const failed: string[] = [];
    results.forEach((r, i) => {
      const p = pods[i] as ClusterPod;
      if (r.status === 0 && r.json) {
        p.result = r.json;
        p.ips = resultIps(r.json);
        p.ip = p.ips.find((a) => !a.includes(':')) ?? p.ips[0] ?? '';
        this.pods.push(p);
      } else {
        failed.push(`${p.alias}: ${describeShim(r)}`);
        this.pods.push(p); // DEL in destroy() (a failed ADD must leave nothing, but be sure)
      }
    });
    if (failed.length > 0) throw new Error(`ADD failed:\n${failed.join('\n')}`);
    // If ADDs make the daemon reconcile, let that finish before the test's next change.
    await this.quiesce();
    return pods;
  }

  /** DEL through the shim (must succeed), then removes the pod netns and its Pod manifest. */
  async removePod(pod: ClusterPod): Promise<void> {
    const r = await this.del(pod);
    if (r.status !== 0) throw new Error(`DEL ${pod.alias}: ${describeShim(r)}`);
    this.netns.remove(pod.ns);
    this.removeManifest(pod.file);
    const i = this.pods.indexOf(pod);
    if (i >= 0) this.pods.splice(i, 1);
  }

  private del(pod: ClusterPod): Promise<ShimResult> {
    return runShimAsync(cniEnv({ command: 'DEL', containerId: pod.containerId, netns: pod.netnsPath, args: pod.args }),
      netconf(this.node.socket), 30_000);
  }

  // ---------------------------------------------------------------- traffic

  /** Runs a command inside a netns without blocking the event loop; killed after `timeoutMs`. */
  exec(ns: string, cmd: string[], timeoutMs = 5_000): Promise<RunResult> {
    const started = Date.now();
    return new Promise((resolve) => {
      const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
      this.children.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (b: Buffer) => { stdout += b.toString(); });
      child.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
      const timer = setTimeout(() => { if (child.pid !== undefined) try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
      child.on('error', (e) => { stderr += String(e); });
      child.on('close', (code) => {
        clearTimeout(timer);
        this.children.delete(child);
        resolve({ status: code ?? -1, stdout, stderr, ms: Date.now() - started });
      });
    });
  }

  /** One `ping -c1 -W1`: true on a reply. */
  async pingOnce(from: ClusterPod, ip: string): Promise<boolean> {
    return (await this.exec(from.ns, ['ping', '-n', '-c', '1', '-W', '1', ip])).status === 0;
  }

  /** True when one of `tries` pings gets a reply. */
  async ping(from: ClusterPod, ip: string, tries = 3): Promise<boolean> {
    for (let i = 0; i < tries; i++) if (await this.pingOnce(from, ip)) return true;
    return false;
  }

  /**
   * The reachability matrix between `pods` (every ordered pair, both directions), with real
   * packets: one `ping -c1 -W1` per pair, and for TCP a listener in every destination pod and one
   * `nc -w1` per pair (the connection counts when the client receives the listener's "ok").
   * Pairs run in parallel, except that with `tcpSrcPort` the connections of one source run one
   * after another (one socket can hold the port at a time). Failed pairs are tried again
   * (`retries`), so a "no" is never a single lost packet.
   */
  async reachability(pods: ClusterPod[], opts: ReachabilityOptions = {}): Promise<Reach[]> {
    const retries = opts.retries ?? 1;
    const out: Reach[] = [];
    const pairs = pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => ({ from, to })));

    if (opts.icmp) {
      const targets = [...pairs.map((p) => ({ from: p.from, alias: p.to.alias, ip: p.to.ip })),
        ...pods.flatMap((from) => (opts.extraTargets ?? []).map((t) => ({ from, alias: t.alias, ip: t.ip })))];
      const probe = async (t: (typeof targets)[number]): Promise<Reach> => {
        const r = await this.exec(t.from.ns, ['ping', '-n', '-c', '1', '-W', '1', t.ip]);
        return { from: t.from.alias, to: t.alias, proto: 'icmp', ok: r.status === 0, detail: r.status === 0 ? undefined : `ping ${t.ip}: exit ${r.status}` };
      };
      let results = await Promise.all(targets.map(probe));
      for (let a = 0; a < retries; a++) {
        const again = await Promise.all(results.map((r, i) => (r.ok ? r : probe(targets[i] as (typeof targets)[number]))));
        results = again;
      }
      out.push(...results);
    }

    if (opts.tcp || opts.tcpPort !== undefined || opts.tcpSrcPort !== undefined) {
      const port = opts.tcpPort ?? this.freshPort();
      const listeners = await Promise.all(pods.map((p) => this.listen(p, port)));
      try {
        const probe = async (p: (typeof pairs)[number]): Promise<Reach> => {
          const cmd = ['nc', '-n', '-w', '1', ...(opts.tcpSrcPort !== undefined ? ['-p', String(opts.tcpSrcPort)] : []), p.to.ip, String(port)];
          const r = await this.exec(p.from.ns, cmd);
          const ok = r.status === 0 && r.stdout.includes('ok');
          const src = opts.tcpSrcPort !== undefined ? ` from port ${opts.tcpSrcPort}` : '';
          return { from: p.from.alias, to: p.to.alias, proto: 'tcp', ok, detail: ok ? undefined : `tcp ${p.to.ip}:${port}${src}: exit ${r.status} ${r.stderr.trim()}` };
        };
        const runAll = async (list: Array<(typeof pairs)[number]>): Promise<Reach[]> => {
          if (opts.tcpSrcPort === undefined) return Promise.all(list.map(probe));
          const bySource = new Map<ClusterPod, Array<(typeof pairs)[number]>>();
          for (const p of list) bySource.set(p.from, [...(bySource.get(p.from) ?? []), p]);
          const res = new Map<(typeof pairs)[number], Reach>();
          await Promise.all([...bySource.values()].map(async (l) => { for (const p of l) res.set(p, await probe(p)); }));
          return list.map((p) => res.get(p) as Reach);
        };
        let results = await runAll(pairs);
        for (let a = 0; a < retries; a++) {
          const failed = pairs.filter((_, i) => !(results[i] as Reach).ok);
          if (failed.length === 0) break;
          const again = await runAll(failed);
          results = results.map((r) => (r.ok ? r : (again[failed.findIndex((f) => f.from.alias === r.from && f.to.alias === r.to)] as Reach)));
        }
        out.push(...results);
      } finally {
        for (const l of listeners) l.stop();
      }
    }
    return out;
  }

  /**
   * Measures how long after `change()` (e.g. a manifest write) pings from `from` to `ip` start to
   * get replies (`want` true) or stop getting them (`want` false): a `ping -c1 -W1` is started every
   * `intervalMs`; the answer is the start time of the first ping of the final run of outcomes
   * (for `want` false: `stable` failed pings in a row), relative to the call of change(). Gives
   * Infinity when no transition is seen within `timeoutMs`.
   */
  async timeUntilPing(from: ClusterPod, ip: string, want: boolean, change: () => void | Promise<void>,
    opts: { intervalMs?: number; timeoutMs?: number; stable?: number } = {}): Promise<{ ms: number; pings: number }> {
    const intervalMs = opts.intervalMs ?? 50;
    const timeoutMs = opts.timeoutMs ?? 3_000;
    const stable = opts.stable ?? 5;
    const probes: Array<{ start: number; ok: boolean | undefined }> = [];
    const inFlight: Array<Promise<void>> = [];
    const decide = (): number | undefined => {
      // Outcomes in start order, up to the first probe still running.
      const done: boolean[] = [];
      for (const p of probes) { if (p.ok === undefined) break; done.push(p.ok); }
      if (want) {
        const i = done.indexOf(true);
        return i >= 0 ? (probes[i] as { start: number }).start : undefined;
      }
      let run = 0;
      for (let i = 0; i < done.length; i++) {
        run = done[i] ? 0 : run + 1;
        if (run >= stable) return (probes[i - stable + 1] as { start: number }).start;
      }
      return undefined;
    };
    const t0 = Date.now();
    await change();
    let answer: number | undefined;
    while (answer === undefined && Date.now() - t0 < timeoutMs) {
      const probe = { start: Date.now() - t0, ok: undefined as boolean | undefined };
      probes.push(probe);
      inFlight.push(this.pingOnce(from, ip).then((ok) => { probe.ok = ok; }));
      await sleep(intervalMs);
      answer = decide();
    }
    await Promise.all(inFlight);
    answer = decide();
    return { ms: answer ?? Infinity, pings: probes.length };
  }

  private freshPort(): number {
    this.portSeq += 1;
    return this.portBase + (this.portSeq % 10_000);
  }

  /** A TCP listener in the pod (a small node program): answers "ok" and closes, any number of clients. */
  private async listen(pod: ClusterPod, port: number): Promise<{ stop: () => void }> {
    const script = `
      const net = require('node:net');
      const srv = net.createServer((s) => { s.on('error', () => undefined); s.end('ok\\n'); });
      srv.on('error', (e) => { process.stderr.write(String(e)); process.exit(1); });
      srv.listen({ port: Number(process.argv[1]), host: '0.0.0.0', backlog: 511 }, () => process.stdout.write('listening\\n'));`;
    const child = spawn('ip', ['netns', 'exec', pod.ns, process.execPath, '-e', script, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    child.once('close', () => this.children.delete(child));
    const stop = (): void => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    };
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => { stderr += b.toString(); });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { stop(); reject(new Error(`listener in ${pod.alias} on ${port}: not listening after 10 s ${stderr}`)); }, 10_000);
      child.stdout?.on('data', (b: Buffer) => { if (b.toString().includes('listening')) { clearTimeout(timer); resolve(); } });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`listener in ${pod.alias} on ${port} exited (${code}): ${stderr}`)); });
    });
    return { stop };
  }

  // ---------------------------------------------------------------- cleanup

  /** Ends our processes, DELs every pod, removes pod netns, the node and both directories. Never throws. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const errors: unknown[] = [];
    const attempt = async (f: () => unknown): Promise<void> => { try { await f(); } catch (e) { errors.push(e); } };
    for (const c of [...this.children]) {
      await attempt(() => { if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL'); });
    }
    await Promise.all(this.pods.map((p) => attempt(async () => {
      const r = await this.del(p);
      if (r.status !== 0) throw new Error(`DEL ${p.alias} in cleanup: ${describeShim(r)}`);
    })));
    for (const p of this.pods) await attempt(() => this.netns.remove(p.ns));
    this.pods.length = 0;
    await attempt(() => this.node.destroy());
    await attempt(() => this.netns.removeAll());
    await attempt(() => rmSync(this.manifestsDir, { recursive: true, force: true }));
    await attempt(() => rmSync(this.stagingDir, { recursive: true, force: true }));
    if (errors.length > 0) console.error('TestCluster cleanup errors:', errors);
  }
}

function describeShim(r: ShimResult): string {
  return `status ${r.status} stdout ${r.stdout.trim()} stderr ${r.stderr.trim()}`;
}
