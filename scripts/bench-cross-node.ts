// bench:cross-node — pod-to-pod TCP throughput across nodes (Geneve between the nodes' overlay
// interfaces, through OVS's userspace datapath) against the same-node throughput, in one run on
// one cluster: pods a and b on node1, c on node2; a sends to b (same node) and to c (cross-node)
// with iperf3, the runs alternating between the two paths so that a change in the machine's load
// touches both alike. Reports the median of each path and their ratio.
//
//   npm run bench:cross-node [-- --runs 3 --seconds 5 --keep]
//
// Runs on a lab of its own (build/lab-bench, 2 nodes) beside the tests' lab, with ovnode deployed
// from deploy/ and the image build/images/ovnode.tar (scripts/build-image.sh; not rebuilt here).
// The tools image has no iperf3: the host's runs inside each pod's network namespace (nsenter
// --net), so only the lab's namespaces exchange packets. Needs root.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { apply, IMAGES_DIR, kubectl, kubectlJson, LAB_SCRIPTS, labDir, readLab, REPO, run, uniqueName, waitForPodReady, type KubeObject } from '../test/cluster/harness/lab';
import { createNamespace, deployOvnode, podAddress, podNetnsPath, SYSTEM_NS, testPod } from '../test/cluster/harness/pods';

interface Args { runs: number; seconds: number; keep: boolean }

function parseArgs(argv: string[]): Args {
  const args: Args = { runs: 3, seconds: 5, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = (): number => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${a} needs a positive integer`);
      return n;
    };
    if (a === '--runs') args.runs = num();
    else if (a === '--seconds') args.seconds = num();
    else if (a === '--keep') args.keep = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

const LAB_DIR = join(REPO, 'build', 'lab-bench');
const LAB_ENV = { OVNODE_LAB_DIR: LAB_DIR, NODES: '2', CNI: 'none' };
const FIRST_PORT = 5201;

function script(path: string, env: NodeJS.ProcessEnv = {}): void {
  const r = spawnSync('bash', [path], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${path} failed (${r.status ?? r.signal})`);
}

// --- iperf3 in pods' network namespaces ------------------------------------------------------------

interface BenchPod { name: string; node: string; ip: string; netns: string }

/** iperf3 servers still running, killed by pid at the end whatever happened. */
const servers = new Set<ChildProcess>();

/** `iperf3 -s -1` in the pod's netns (nsenter execs it: the pid is iperf3's); resolves once it listens. */
function startServer(pod: BenchPod, port: number): Promise<ChildProcess> {
  // --forceflush: the "Server listening" line arrives through the pipe as soon as it is printed.
  const child = spawn('nsenter', [`--net=${pod.netns}`, '--', 'iperf3', '-s', '-1', '-p', String(port), '--forceflush'], { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.add(child);
  child.on('exit', () => servers.delete(child));
  child.on('error', () => servers.delete(child));
  let stderr = '';
  (child.stderr as NodeJS.ReadableStream).on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`iperf3 server in ${pod.name} not listening on ${port} within 10 s: ${stderr.trim()}`)); }, 10_000);
    child.once('error', (e) => { clearTimeout(timer); reject(new Error(`nsenter iperf3 in ${pod.name}: ${e.message}`)); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`iperf3 server in ${pod.name} exited (${code}) before listening: ${stderr.trim()}`)); });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (line.startsWith('Server listening on')) { clearTimeout(timer); resolve(child); }
    });
  });
}

function stopServer(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => { clearTimeout(kill); resolve(); });
  });
}

interface Sample { bitsPerSecond: number; retransmits: number }

/** One iperf3 run from `client` to `server`: the receiver's rate (end.sum_received). */
async function measure(client: BenchPod, server: BenchPod, port: number, seconds: number): Promise<Sample> {
  const srv = await startServer(server, port);
  try {
    const r = await run(['nsenter', `--net=${client.netns}`, '--', 'iperf3', '-c', server.ip, '-p', String(port), '-t', String(seconds), '-J'],
      { timeoutMs: (seconds + 30) * 1000 });
    let out: { error?: string; end?: { sum_received?: { bits_per_second?: number }; sum_sent?: { retransmits?: number } } };
    try { out = JSON.parse(r.stdout) as typeof out; } catch { throw new Error(`iperf3 ${client.name} -> ${server.name}: exit ${r.code}, no JSON: ${r.stderr.trim() || r.stdout.slice(0, 300)}`); }
    const bps = out.end?.sum_received?.bits_per_second;
    if (out.error || typeof bps !== 'number') throw new Error(`iperf3 ${client.name} -> ${server.name} (${server.ip}:${port}): ${out.error ?? `exit ${r.code}, no sum_received`}`);
    return { bitsPerSecond: bps, retransmits: out.end?.sum_sent?.retransmits ?? 0 };
  } finally {
    // -1: the server ends after its one client; one that did not (the client failed) is killed.
    await stopServer(srv, 5_000);
  }
}

// --- the cluster ---------------------------------------------------------------------------------

async function createPods(namespace: string): Promise<Record<'a' | 'b' | 'c', BenchPod>> {
  const placement = { a: 'node1', b: 'node1', c: 'node2' } as const;
  for (const [name, node] of Object.entries(placement)) await apply(testPod({ name, namespace, node }));
  await Promise.all(Object.keys(placement).map((name) => waitForPodReady(namespace, name, 180_000)));
  const pod = async (name: 'a' | 'b' | 'c'): Promise<BenchPod> => ({
    name, node: placement[name], ip: await podAddress(namespace, name), netns: await podNetnsPath({ namespace, pod: name }),
  });
  return { a: await pod('a'), b: await pod('b'), c: await pod('c') };
}

/** ping from `from` until `to` answers (the first packets set up flows on a busy machine). */
async function waitReachable(namespace: string, from: BenchPod, to: BenchPod): Promise<void> {
  for (let i = 0; i < 10; i++) {
    const r = await kubectl(['exec', '-n', namespace, from.name, '--', 'ping', '-c', '1', '-W', '2', to.ip], { timeoutMs: 20_000 });
    if (r.code === 0) return;
  }
  throw new Error(`${from.name} (${from.node}) does not reach ${to.name} (${to.ip}, ${to.node})`);
}

/** ovs-vswitchd's version in the ovnode-ovs pod on node1, for the printout. */
async function ovsVersion(): Promise<string> {
  const list = await kubectlJson<{ items: KubeObject[] }>(['-n', SYSTEM_NS, 'get', 'pods', '-l', 'app=ovnode-ovs', '--field-selector', 'spec.nodeName=node1']);
  const name = list.items[0]?.metadata?.name as string | undefined;
  if (!name) return 'unknown';
  const r = await kubectl(['exec', '-n', SYSTEM_NS, name, '-c', 'ovs', '--', 'ovs-vswitchd', '--version']);
  return /\d+\.\d+\.\d+/.exec(r.stdout)?.[0] ?? 'unknown';
}

// --- main ------------------------------------------------------------------------------------------

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const gbit = (bps: number): string => (bps / 1e9).toFixed(2);

interface PathResult { label: string; samples: Sample[] }

function printResults(paths: PathResult[], args: Args, ovs: string): void {
  console.log(`\npod-to-pod TCP, iperf3 -t ${args.seconds}, ${args.runs} runs per path alternating, receiver's rate; OVS ${ovs}, userspace datapath\n`);
  const rows = paths.map((p) => ({
    path: p.label,
    med: gbit(median(p.samples.map((s) => s.bitsPerSecond))),
    runs: p.samples.map((s) => `${gbit(s.bitsPerSecond)} (${s.retransmits} retr)`).join(', '),
  }));
  const w = Math.max(4, ...rows.map((r) => r.path.length));
  const wr = Math.max(4, ...rows.map((r) => r.runs.length));
  console.log(`| ${'path'.padEnd(w)} | Gbit/s (median) | ${'runs'.padEnd(wr)} |`);
  console.log(`|${'-'.repeat(w + 2)}|-----------------|${'-'.repeat(wr + 2)}|`);
  for (const r of rows) console.log(`| ${r.path.padEnd(w)} | ${r.med.padStart(15)} | ${r.runs.padEnd(wr)} |`);
  const [same, cross] = paths.map((p) => median(p.samples.map((s) => s.bitsPerSecond))) as [number, number];
  console.log(`\ncross-node / same-node = ${(cross / same).toFixed(2)}`);
  console.log('\nnote: both paths go through OVS\'s userspace datapath (ovs-vswitchd forwards every packet, on the\n' +
    'machine\'s shared cores); the cross-node one also through its Geneve tunnel, where the tx checksum\n' +
    'is done in software and OVS 3.1 has no TSO with tunnels, so every segment is encapsulated and\n' +
    'checksummed on its own: that is what limits cross-node against same-node. The lab (and any other\n' +
    'lab up beside it) shares this machine\'s cores: figures are indicative.');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('bench:cross-node needs root (the lab: namespaces, cgroups, containerd)');
  if (!existsSync(join(IMAGES_DIR, 'ovnode.tar'))) throw new Error(`${join(IMAGES_DIR, 'ovnode.tar')} missing: run scripts/build-image.sh first`);
  // The harness (kubectl, lab.json, exec.sh) reads OVNODE_LAB_DIR: from here on it is this lab's.
  process.env.OVNODE_LAB_DIR = LAB_DIR;
  if (labDir() !== LAB_DIR) throw new Error(`the harness resolves the lab to ${labDir()}, not ${LAB_DIR}`);

  let cleaned = false;
  const cleanup = (): void => {
    if (cleaned) return;
    cleaned = true;
    for (const s of servers) s.kill('SIGKILL');
    if (args.keep) console.error(`bench: lab left up; remove it with OVNODE_LAB_DIR=${LAB_DIR} scripts/lab/down.sh`);
    else script(join(LAB_SCRIPTS, 'down.sh'), LAB_ENV);
  };
  // Interrupted: the same clean-up (the finally below does not run when the process is killed).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { try { cleanup(); } finally { process.exit(130); } });
  }

  try {
    for (const s of ['install-lab-deps.sh', 'build-kubernetes.sh', 'images.sh']) script(join(LAB_SCRIPTS, s));
    script(join(LAB_SCRIPTS, 'up.sh'), { ...LAB_ENV, LAB_FRESH: '1' });
    console.error(`bench: lab ${readLab().runId} up in ${LAB_DIR}; deploying ovnode`);
    await deployOvnode();
    const namespace = uniqueName('bench-xn');
    await createNamespace(namespace);
    const pods = await createPods(namespace);
    await waitReachable(namespace, pods.a, pods.b);
    await waitReachable(namespace, pods.a, pods.c);
    const ovs = await ovsVersion();
    console.error(`bench: a ${pods.a.ip} and b ${pods.b.ip} on node1, c ${pods.c.ip} on node2`);

    const paths: PathResult[] = [
      { label: 'same-node (a -> b, node1)', samples: [] },
      { label: 'cross-node (a -> c, Geneve node1 -> node2)', samples: [] },
    ];
    const targets = [pods.b, pods.c];
    let port = FIRST_PORT;
    for (let i = 0; i < args.runs; i++) {
      for (const [k, path] of paths.entries()) {
        const s = await measure(pods.a, targets[k] as BenchPod, port++, args.seconds);
        path.samples.push(s);
        console.error(`bench: run ${i + 1}/${args.runs} ${path.label}: ${gbit(s.bitsPerSecond)} Gbit/s, ${s.retransmits} retransmits`);
      }
    }
    printResults(paths, args, ovs);
  } finally {
    cleanup();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
