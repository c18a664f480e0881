// What the benches that run one real node's ovnoded against a real kube-apiserver share
// (bench-kube-node.ts, bench-cluster.ts): their own lab (build/lab-bench, 1 node, no CNI, the
// controller-manager stopped), the daemon and the OVS/OVN stack started from the image's launcher
// inside node1's namespaces, its log lines, its memory, and bulk object creation.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadKubeConnection } from '../daemon/sources/kube/config';
import { HttpKubeApi } from '../daemon/sources/kube/http-api';
import { LAB_SCRIPTS, REPO, type LabInfo } from '../test/cluster/harness/lab';

export const BENCH_LAB_DIR = join(REPO, 'build', 'lab-bench');
const LAB_ENV = { OVNODE_LAB_DIR: BENCH_LAB_DIR, NODES: '1', CNI: 'none' };
/** The lab's one node: the node whose daemon is measured. */
export const BENCH_NODE = 'node1';

export function script(path: string, env: NodeJS.ProcessEnv = {}): void {
  const r = spawnSync('bash', [path], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${path} failed (${r.status ?? r.signal})`);
}

function kubectl(lab: LabInfo, args: string[]): void {
  const r = spawnSync(lab.kubectl, ['--kubeconfig', lab.kubeconfig, ...args], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.status ?? r.signal})`);
}

export interface BenchLab {
  lab: LabInfo;
  /** Admin access from the host. */
  api: HttpKubeApi;
  /** For the daemon in node1's netns: the apiserver at its underlay address. */
  kubeconfig: string;
  logDir: string;
}

/**
 * A fresh lab of the benches' own, with the CRDs the daemon watches. Its controller-manager is
 * stopped: its pod garbage collector deletes pods bound to nodes that do not exist, and its node
 * lifecycle controller would taint and evict nodes whose kubelet never reports.
 */
export async function upBenchLab(): Promise<BenchLab> {
  for (const s of ['install-lab-deps.sh', 'build-kubernetes.sh', 'images.sh']) script(join(LAB_SCRIPTS, s));
  script(join(LAB_SCRIPTS, 'up.sh'), { ...LAB_ENV, LAB_FRESH: '1' });
  const lab = JSON.parse(readFileSync(join(BENCH_LAB_DIR, 'lab.json'), 'utf8')) as LabInfo & { controlPlane: { pids: { controllerManager: number | null } } };
  const cm = lab.controlPlane.pids.controllerManager;
  if (cm) process.kill(cm, 'SIGKILL');
  const logDir = join(BENCH_LAB_DIR, 'bench');
  mkdirSync(logDir, { recursive: true });
  const kubeconfig = join(logDir, 'daemon.kubeconfig');
  writeFileSync(kubeconfig, readFileSync(lab.kubeconfig, 'utf8').replace(/server: .*/, `server: ${lab.apiserver.url}`));
  const api = new HttpKubeApi(await loadKubeConnection({ kubeconfig: lab.kubeconfig }));
  // The CRDs the daemon watches (Subnet, SecurityGroup, Vip, IPClaim), as deploy/ installs them.
  kubectl(lab, ['apply', '-f', join(REPO, 'deploy', '00-crds.yaml')]);
  kubectl(lab, ['wait', '--for', 'condition=established', '--timeout', '60s', 'crd', '--all']);
  return { lab, api, kubeconfig, logDir };
}

export function downBenchLab(): void {
  script(join(LAB_SCRIPTS, 'down.sh'), LAB_ENV);
}

// --- objects ----------------------------------------------------------------------------------------

export async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++] as T);
  }));
}

/** POST, an existing object being fine (a --keep lab reused). */
export async function create(api: HttpKubeApi, path: string, body: object): Promise<void> {
  const res = await api.request<{ message?: string }>({ method: 'POST', path, body });
  if (res.status !== 201 && res.status !== 409) throw new Error(`POST ${path}: HTTP ${res.status} ${res.body.message ?? ''}`);
}

/** Namespaces and their default ServiceAccount (the stopped controller-manager would create it; pod admission needs it). */
export async function createNamespaces(api: HttpKubeApi, names: string[], labels: (name: string) => Record<string, string> = () => ({})): Promise<void> {
  await pool(names, 8, (n) => create(api, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: n, labels: labels(n) } }));
  await pool(names, 8, (n) => create(api, `/api/v1/namespaces/${n}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } }));
}

/** The annotations a pod's node writes back once it gave the pod an address on ovn-default. */
export function allocatedPodAnnotations(offset: number): Record<string, string> {
  const [b, c] = [(offset >> 8) & 255, offset & 255];
  const hex = (n: number): string => n.toString(16).padStart(2, '0');
  return {
    'ovn.kubernetes.io/allocated': 'true',
    'ovn.kubernetes.io/ip_address': `10.16.${b}.${c}`,
    'ovn.kubernetes.io/mac_address': `0a:58:0a:10:${hex(b)}:${hex(c)}`,
    'ovn.kubernetes.io/cidr': '10.16.0.0/16',
    'ovn.kubernetes.io/gateway': '10.16.0.1',
    'ovn.kubernetes.io/logical_switch': 'ovn-default',
  };
}

// --- the daemon -----------------------------------------------------------------------------------

export interface LogLine { msg: string; time: string | number; [k: string]: unknown }

export interface NodeProcess { child: ChildProcess; lines: (fn: (l: LogLine) => void) => void }

/** A process in the node's network and mount namespaces (nsenter execs it: the pid is the program's); its output goes to logFile when it exits. */
export function nodeProcess(lab: LabInfo, argv: string[], logFile: string, nodeName = BENCH_NODE): NodeProcess {
  const node = lab.nodes.find((n) => n.name === nodeName);
  if (!node?.mountNs) throw new Error(`lab has no ${nodeName} with a mount namespace`);
  // The launcher the image runs, with its V8 settings (scripts/build.sh). BENCH_CPU_PROF=<dir>:
  // the same settings through node itself, with a CPU profile per process written there on exit.
  const prof = process.env.BENCH_CPU_PROF;
  const program = prof
    ? ['node', '--max-semi-space-size=4', '--heap-growing-percent=25', '--cpu-prof', `--cpu-prof-dir=${prof}`, join(REPO, 'dist', 'daemon', 'main.js')]
    : [join(REPO, 'dist', 'bin', 'ovnoded')];
  const child = spawn('nsenter', [`--net=${node.netnsPath}`, `--mount=${node.mountNs}`, '--', ...program, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  const listeners: Array<(l: LogLine) => void> = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    out.push(line);
    if (!line.startsWith('{')) return;
    try { const l = JSON.parse(line) as LogLine; for (const fn of listeners) fn(l); } catch { /* not a log line */ }
  });
  (child.stderr as NodeJS.ReadableStream).on('data', (d: Buffer) => out.push(d.toString()));
  child.on('exit', () => writeFileSync(logFile, out.join('\n')));
  return { child, lines: (fn) => listeners.push(fn) };
}

/** ovnoded in Kubernetes mode for the bench node, with the stack already running (as in the DaemonSet). */
export function daemonArgs(kubeconfig: string): string[] {
  return ['run', '--kubernetes', '--kubeconfig', kubeconfig, '--stack', 'external', '--node-name', BENCH_NODE,
    '--state-dir', '/var/lib/ovnode', '--socket', '/run/ovnode/ovnoded.sock', '--reconcile-interval', '600'];
}

export function waitLine(p: NodeProcess, msg: string, timeoutMs: number): Promise<LogLine> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${msg}" within ${timeoutMs} ms`)), timeoutMs);
    p.child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited (${code}) before "${msg}"`)); });
    p.lines((l) => { if (l.msg === msg) { clearTimeout(timer); resolve(l); } });
  });
}

/** The stack (ovsdb-servers, northd, ovs-vswitchd, ovn-controller) of the bench node, until stopped. */
export async function startStack(b: BenchLab): Promise<NodeProcess> {
  const p = nodeProcess(b.lab, ['stack', '--state-dir', '/var/lib/ovnode'], join(b.logDir, 'stack.log'));
  await waitLine(p, 'stack ready', 60_000);
  return p;
}

/** The node's OVN database sockets, as the host reaches them. */
export function ovnSocket(lab: LabInfo, db: 'nb' | 'sb'): string {
  const node = lab.nodes.find((n) => n.name === BENCH_NODE) as LabInfo['nodes'][number];
  return join(node.dir, 'fs', 'var-lib-ovnode', 'ovn', `${db}.sock`);
}

export function memoryMiB(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

export function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', () => { clearTimeout(kill); resolve(); });
    child.kill(signal);
  });
}

// --- figures ----------------------------------------------------------------------------------------

export const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

export const fmt = (n: number | undefined, d = 0): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));

/** Reads `--name <positive integer>` options into defaults; `--keep` keeps the lab. */
export function parseArgs<T extends Record<string, number>>(argv: string[], defaults: T): T & { keep: boolean } {
  const args = { ...defaults, keep: false } as T & { keep: boolean };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--keep') { args.keep = true; continue; }
    const key = a.replace(/^--/, '');
    if (!a.startsWith('--') || !(key in defaults)) throw new Error(`unknown argument ${a}`);
    const n = Number(argv[++i]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${a} needs a positive integer`);
    (args as Record<string, number>)[key] = n;
  }
  return args;
}
