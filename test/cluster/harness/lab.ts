// The Kubernetes lab (scripts/lab/up.sh) as seen by cluster tests: what build/lab/lab.json says
// (or OVNODE_LAB_DIR's, a benchmark's own lab), kubectl with the lab's admin kubeconfig and its
// own 1.20 kubectl, commands inside a node's network + mount namespaces, node and apiserver
// restarts, and waits that follow the API's watch stream (`kubectl wait`, `kubectl get -w`)
// instead of polling.
//
// One cluster serves every cluster test file (global-setup.ts brings it up and down), so tests
// name their objects uniquely (uniqueName()) and delete what they create.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** The checkout: found upwards from here, whether this runs from test/ or compiled into dist/test/ (benchmarks). */
function findRepo(from: string): string {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'scripts', 'lab', 'up.sh')) && existsSync(join(dir, 'package.json'))) return dir;
  }
  throw new Error(`no ovnode checkout above ${from}`);
}

export const REPO = findRepo(__dirname);
/**
 * The lab's directory: OVNODE_LAB_DIR when set (a benchmark's own lab beside the tests', as
 * scripts/lab/lib/common.sh reads it), else build/lab. Read at each call, so a benchmark that sets
 * the variable after importing this module still gets its own lab.
 */
export function labDir(): string {
  return resolve(process.env.OVNODE_LAB_DIR || join(REPO, 'build', 'lab'));
}
export function labJsonPath(): string {
  return join(labDir(), 'lab.json');
}
export const LAB_SCRIPTS = join(REPO, 'scripts', 'lab');
export const IMAGES_DIR = join(REPO, 'build', 'images');
/** The lab's images (scripts/lab/images.sh); pods must use imagePullPolicy: Never. */
export const TOOLS_IMAGE = 'lab/tools:1';
export const PAUSE_IMAGE = 'lab/pause:3.2';

export interface LabNode {
  name: string;
  /** Name of the node's network namespace (path: netnsPath). */
  netns: string;
  netnsPath: string;
  /** The node's address on the underlay (its InternalIP). */
  ip: string;
  /** Its IPv6 address on the underlay (the lab's underlay is dual-stack; the API uses IPv4). */
  ip6: string;
  /** The node's address on the overlay network (eth1): where its Geneve tunnels end. */
  overlayIp: string;
  /** The node's state directory; its per-node host paths are under dir/fs/. */
  dir: string;
  /** null while the node is stopped (node.sh stop). */
  wrapperPid: number | null;
  holderPid: number | null;
  kubeletPid: number | null;
  containerdPid: number | null;
  /** /proc/<holderPid>/ns/mnt: the node's mount namespace. */
  mountNs: string | null;
  /** kubelet's cgroupRoot; pods live below it in every cgroup hierarchy. */
  cgroupRoot: string;
  /** With CNI=bridge, the node's pod /24. */
  podCidr: string | null;
}

export interface LabInfo {
  runId: string;
  status: string;
  runDir: string;
  cni: 'none' | 'bridge';
  /** Admin kubeconfig (https://127.0.0.1:<port>, a loopback relay into the control-plane netns). */
  kubeconfig: string;
  binDir: string;
  kubectl: string;
  /** The apiserver as node netns (and hostNetwork pods) reach it. */
  apiserver: { host: string; port: number; url: string; localUrl: string };
  serviceCidr: string;
  nodes: LabNode[];
  controlPlane: {
    netns: string;
    netnsPath: string;
    ip: string;
    pids: Record<'etcd' | 'apiserver' | 'controllerManager' | 'scheduler' | 'relayRoot' | 'relayCp', number | null>;
  };
  underlay: { netns: string; bridge: string; cidr: string; cidr6: string };
  overlay: { netns: string; bridge: string; cidr: string; interface: string };
  /** Top cgroup of the run (in every hierarchy). */
  cgroup: string;
  /** Host sysctls as they were before the first kubelet started (kubelet rewrites them). */
  savedSysctls: Record<string, string>;
}

/** lab.json, read afresh (node and apiserver restarts change the pids). */
export function readLab(): LabInfo {
  const path = labJsonPath();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Error(`${path} not found: the lab is not up (scripts/lab/up.sh, or run through the vitest project "cluster")`);
  }
  return JSON.parse(text) as LabInfo;
}

export function labNode(name: string): LabNode {
  const n = readLab().nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no node ${name} in ${labJsonPath()}`);
  return n;
}

/** A DNS-1123 name unique to this process and call, for objects tests create. */
let seq = 0;
export function uniqueName(prefix: string): string {
  seq += 1;
  return `${prefix}-${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}-${seq}`;
}

// ------------------------------------------------------------------------------------- processes

export interface RunResult { code: number; stdout: string; stderr: string; signal: NodeJS.Signals | null }
export interface RunOptions { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv }

/** Runs argv to completion (SIGKILL after timeoutMs, default 60 s); never rejects for an exit code. */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const [cmd, ...args] = argv;
    if (!cmd) { reject(new Error('run: empty argv')); return; }
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8') + (timedOut ? `\n[timed out after ${opts.timeoutMs ?? 60_000} ms: ${argv.join(' ')}]` : '');
      resolvePromise({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr, signal });
    });
    child.stdin.on('error', () => { /* the command may exit without reading its input */ });
    child.stdin.end(opts.input ?? '');
  });
}

function describeFailure(what: string, r: RunResult): string {
  return `${what} failed (exit ${r.code}${r.signal ? `, ${r.signal}` : ''}): ${r.stderr.trim() || r.stdout.trim()}`;
}

/** kubectl (the lab's v1.20.2 build) with the lab's admin kubeconfig. */
export function kubectl(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const lab = readLab();
  return run([lab.kubectl, '--kubeconfig', lab.kubeconfig, ...args], opts);
}

/** kubectl that must succeed; returns stdout. */
export async function kubectlOk(args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await kubectl(args, opts);
  if (r.code !== 0) throw new Error(describeFailure(`kubectl ${args.join(' ')}`, r));
  return r.stdout;
}

export async function kubectlJson<T = Record<string, unknown>>(args: string[], opts: RunOptions = {}): Promise<T> {
  return JSON.parse(await kubectlOk([...args, '-o', 'json'], opts)) as T;
}

/** kubectl apply -f - with the given YAML/JSON. */
export async function apply(manifest: string | object, timeoutMs = 60_000): Promise<void> {
  const input = typeof manifest === 'string' ? manifest : JSON.stringify(manifest);
  await kubectlOk(['apply', '-f', '-'], { input, timeoutMs });
}

/** Runs argv inside a node's network and mount namespaces (scripts/lab/exec.sh). */
export function nodeExec(node: string, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(['bash', join(LAB_SCRIPTS, 'exec.sh'), node, ...argv], opts);
}

async function script(name: string, args: string[], timeoutMs: number): Promise<void> {
  const r = await run(['bash', join(LAB_SCRIPTS, name), ...args], { timeoutMs });
  if (r.code !== 0) throw new Error(describeFailure(`scripts/lab/${name} ${args.join(' ')}`, r));
}

/**
 * Kills a node's kubelet and containerd. Containers keep running (their shims survive), as when
 * a node's agents crash; allProcesses also kills every pod process and shim of the node.
 */
export function stopNode(node: string, opts: { allProcesses?: boolean } = {}): Promise<void> {
  return script('node.sh', ['stop', ...(opts.allProcesses ? ['--all-processes'] : []), node], 60_000);
}

/** Starts a stopped node's containerd + kubelet again (same netns and mount namespace). Returns
 *  once kubelet has started (and the host sysctls are restored); see waitForNodeHeartbeat(). */
export function startNode(node: string): Promise<void> {
  return script('node.sh', ['start', node], 120_000);
}

/** Stops and starts kube-apiserver; returns when it is ready again. */
export function restartApiserver(): Promise<void> {
  return script('apiserver.sh', ['restart'], 120_000);
}

// ----------------------------------------------------------------------------------------- waits

/** `kubectl wait --for=condition=<cond>` (a watch on the server side of kubectl). */
export async function waitForCondition(resource: string, condition: string, opts: { namespace?: string; timeoutMs?: number } = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const ns = opts.namespace ? ['-n', opts.namespace] : [];
  const r = await kubectl(['wait', ...ns, `--for=condition=${condition}`, `--timeout=${Math.ceil(timeoutMs / 1000)}s`, resource],
    { timeoutMs: timeoutMs + 15_000 });
  if (r.code !== 0) throw new Error(describeFailure(`waiting for ${resource} ${condition}`, r));
}

export function waitForPodReady(namespace: string, name: string, timeoutMs = 120_000): Promise<void> {
  return waitForCondition(`pod/${name}`, 'Ready', { namespace, timeoutMs });
}

export function waitForNodeReady(name: string, timeoutMs = 120_000): Promise<void> {
  return waitForCondition(`node/${name}`, 'Ready', { timeoutMs });
}

/** `kubectl wait --for=delete`; an object that is already gone counts as deleted. */
export async function waitForDeleted(resource: string, opts: { namespace?: string; timeoutMs?: number } = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const ns = opts.namespace ? ['-n', opts.namespace] : [];
  const r = await kubectl(['wait', ...ns, '--for=delete', `--timeout=${Math.ceil(timeoutMs / 1000)}s`, resource], { timeoutMs: timeoutMs + 15_000 });
  if (r.code !== 0 && !/not ?found|no matching resources/i.test(r.stderr)) throw new Error(describeFailure(`waiting for ${resource} to be deleted`, r));
}

export type KubeObject = Record<string, any>;

/** Splits a stream of concatenated JSON documents (kubectl get -w -o json) into documents. */
export class JsonStreamSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;

  push(chunk: string): KubeObject[] {
    const docs: KubeObject[] = [];
    const base = this.buf.length;
    this.buf += chunk;
    for (let i = base; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (c === '"') { this.inString = true; continue; }
      if (c === '{') { if (this.depth === 0) this.start = i; this.depth += 1; continue; }
      if (c === '}') {
        this.depth -= 1;
        if (this.depth === 0 && this.start >= 0) {
          docs.push(JSON.parse(this.buf.slice(this.start, i + 1)) as KubeObject);
          this.buf = this.buf.slice(i + 1);
          i = -1;
          this.start = -1;
        }
      }
    }
    if (this.depth === 0) this.buf = '';
    return docs;
  }
}

export interface WatchOptions {
  namespace?: string;
  /** e.g. metadata.name=foo (works before the object exists, unlike get <kind>/<name> -w). */
  fieldSelector?: string;
  labelSelector?: string;
  timeoutMs?: number;
  /** What is awaited, for the timeout message. */
  description?: string;
}

/**
 * Lists and watches `resource` (kubectl get -w -o json) and resolves with the first object for
 * which `predicate` holds, in the initial list or in a later change.
 */
export function waitForObject(resource: string, predicate: (o: KubeObject) => boolean, opts: WatchOptions = {}): Promise<KubeObject> {
  const lab = readLab();
  const args = ['--kubeconfig', lab.kubeconfig, 'get', resource, '-w', '-o', 'json'];
  if (opts.namespace) args.push('-n', opts.namespace);
  if (opts.fieldSelector) args.push('--field-selector', opts.fieldSelector);
  if (opts.labelSelector) args.push('-l', opts.labelSelector);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(lab.kubectl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const splitter = new JsonStreamSplitter();
    let last: KubeObject | undefined;
    let stderr = '';
    let done = false;
    const finish = (err: Error | undefined, obj?: KubeObject): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      if (err) reject(err); else resolvePromise(obj as KubeObject);
    };
    const timer = setTimeout(() => finish(new Error(
      `timed out after ${timeoutMs} ms waiting for ${opts.description ?? `a matching ${resource}`}; last seen: ${last ? JSON.stringify(summary(last)) : 'nothing'}${stderr ? `; kubectl: ${stderr.trim()}` : ''}`)), timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      let docs: KubeObject[];
      try { docs = splitter.push(chunk); } catch (e) { finish(e as Error); return; }
      for (const d of docs) {
        const items: KubeObject[] = Array.isArray(d.items) ? (d.items as KubeObject[]) : [d];
        for (const o of items) {
          last = o;
          let ok = false;
          try { ok = predicate(o); } catch (e) { finish(e as Error); return; }
          if (ok) { finish(undefined, o); return; }
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => { stderr += s; });
    child.on('error', (e) => finish(e));
    child.on('close', (code) => finish(new Error(`kubectl get ${resource} -w ended (exit ${code}) before ${opts.description ?? 'a match'}: ${stderr.trim()}`)));
  });
}

function summary(o: KubeObject): unknown {
  return { kind: o.kind, name: o.metadata?.name, resourceVersion: o.metadata?.resourceVersion, status: o.status?.phase ?? o.status?.conditions };
}

function condition(o: KubeObject, type: string): KubeObject | undefined {
  return (o.status?.conditions as KubeObject[] | undefined)?.find((c) => c.type === type);
}

/** The node object is there (kubelet registered it). */
export function waitForNodeRegistered(name: string, timeoutMs = 120_000): Promise<KubeObject> {
  return waitForObject('nodes', (o) => o.metadata?.name === name,
    { fieldSelector: `metadata.name=${name}`, timeoutMs, description: `node ${name} to register` });
}

/**
 * A kubelet running since `since` has reported: the node's Ready condition carries a heartbeat at
 * or after it (kubelet posts its full status when it starts, registered before or not).
 */
export function waitForNodeHeartbeat(name: string, since: Date, timeoutMs = 120_000): Promise<KubeObject> {
  const sinceS = Math.floor(since.getTime() / 1000) * 1000;
  return waitForObject('nodes', (o) => {
    const ready = condition(o, 'Ready');
    return o.metadata?.name === name && !!ready && Date.parse(ready.lastHeartbeatTime as string) >= sinceS;
  }, { fieldSelector: `metadata.name=${name}`, timeoutMs, description: `a heartbeat of node ${name} since ${since.toISOString()}` });
}

/** The node's Ready condition is not True (e.g. after stopNode, once the grace period is over). */
export function waitForNodeNotReady(name: string, timeoutMs = 120_000): Promise<KubeObject> {
  return waitForObject('nodes', (o) => o.metadata?.name === name && condition(o, 'Ready')?.status !== 'True',
    { fieldSelector: `metadata.name=${name}`, timeoutMs, description: `node ${name} to be NotReady` });
}

export function waitForPodPhase(namespace: string, name: string, phase: string, timeoutMs = 120_000): Promise<KubeObject> {
  return waitForObject('pods', (o) => o.metadata?.name === name && o.status?.phase === phase,
    { namespace, fieldSelector: `metadata.name=${name}`, timeoutMs, description: `pod ${namespace}/${name} in phase ${phase}` });
}

/** An event with this reason about this object (e.g. a node), created at or after `since`. */
export function waitForEvent(opts: { involvedName: string; reason: string; since?: Date; namespace?: string; timeoutMs?: number }): Promise<KubeObject> {
  const sinceS = opts.since ? Math.floor(opts.since.getTime() / 1000) * 1000 : 0;
  return waitForObject('events', (o) => {
    const t = Date.parse((o.lastTimestamp ?? o.eventTime ?? o.firstTimestamp ?? o.metadata?.creationTimestamp) as string);
    return o.involvedObject?.name === opts.involvedName && o.reason === opts.reason && t >= sinceS;
  }, {
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    fieldSelector: `involvedObject.name=${opts.involvedName},reason=${opts.reason}`,
    timeoutMs: opts.timeoutMs ?? 120_000,
    description: `event ${opts.reason} for ${opts.involvedName}`,
  });
}

/** A hostNetwork pod of the tools image pinned to `node` (no scheduler, no CNI needed). */
export function hostNetworkPod(name: string, node: string, script: string, namespace = 'default'): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { 'ovnode-lab-test': 'true' } },
    spec: {
      nodeName: node,
      hostNetwork: true,
      terminationGracePeriodSeconds: 2,
      tolerations: [{ operator: 'Exists' }],
      containers: [{
        name: 'tools',
        image: TOOLS_IMAGE,
        imagePullPolicy: 'Never',
        // busybox sh as PID 1 ignores TERM unless trapped: without the trap deletes take the full grace period.
        command: ['/bin/sh', '-c', `trap 'exit 0' TERM; ${script}`],
      }],
    },
  };
}

// ----------------------------------------------------------------------------------- host checks

/** Mount point of the cgroup2 hierarchy (hybrid hosts: /sys/fs/cgroup/unified). */
export function cgroup2Mount(): string {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (right?.split(' ')[0] === 'cgroup2') return left?.split(' ')[4] ?? '';
  }
  throw new Error('no cgroup2 hierarchy mounted');
}

/** Every pid in cgroup `rel` and below it (cgroup2 hierarchy; the lab tracks its processes there). */
export function cgroupPids(rel: string): number[] {
  const pids: number[] = [];
  const walk = (dir: string): void => {
    let entries: import('node:fs').Dirent[];
    try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
    try {
      for (const p of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (p) pids.push(Number(p));
    } catch { /* removed meanwhile */ }
    for (const e of entries) if (e.isDirectory()) walk(join(dir, e.name));
  };
  walk(join(cgroup2Mount(), rel));
  return pids;
}

export function pidAlive(pid: number | null | undefined): boolean {
  if (!pid) return false;
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** A host sysctl (kernel.panic -> /proc/sys/kernel/panic). */
export function hostSysctl(key: string): string {
  return readFileSync(join('/proc/sys', ...key.split('.')), 'utf8').trim();
}
