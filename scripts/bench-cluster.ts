// bench:cluster — one node's ovnoded in a cluster of simulated peers: N Node objects carrying
// ovnode's contract annotations as a joined peer publishes them (chassis, encap IP, zone, transit
// address) and pods bound to them with the annotations their node writes back (address, MAC,
// switch on ovn-default). No kubelet or daemon runs for them: the API alone says they exist, which
// is all a node reads of its peers. The measured node makes them remote chassis in its SB and
// remote Logical_Switch_Ports in its NB. Measures, in one invocation:
//   - start to ready (spawn -> "ovnoded ready") on a first start (no remote rows yet) and on a
//     restart (all there), with the NB operations of the start (policy + remote ports, up to
//     ready and in the 2 s after it) and the SB ones (remote chassis, and the remote ports'
//     bindings, seen on an SB monitor); then spawn -> every remote port bound to its chassis in
//     the SB (northd creates the bindings, the daemon sets their chassis), waited for before the
//     next run so that the restart starts from a finished first start;
//   - RSS when ready and after the samples (VmRSS; VmHWM for the peak);
//   - a new pod on a peer reflected here: POST of the pod (bound, annotated) -> its remote LSP in
//     the local NB, and -> its binding bound to the peer's chassis in the SB (OVSDB monitors, no
//     polling), each sample alone (the next starts once the previous one has settled);
//   - a Service's endpoints reaching this node, and ADDs on this node through the real kubelet
//     and containerd (ovnode installed as the node's CNI, as the DaemonSet does): see
//     bench-cluster-probes.ts; M Services with two endpoints each are part of the load;
//   - the rows this costs: Logical_Switch_Ports (remote, local), SB Chassis, per simulated node.
// The reference row is the same daemon against the same API with none of these objects (its
// probes' Services and pods aside).
//
//   npm run bench:cluster [-- --nodes 50 --pods 5000 --services 200 --samples 40 --adds 10 --keep]
//
// BENCH_LOG_LEVEL=debug runs the daemon at that log level; its logs and the samples' wall-clock
// times (samples.log) stay in build/lab-bench/bench/. BENCH_CPU_PROF=<dir> writes each daemon's
// CPU profile there (bench-kube-common.ts).
//
// Runs on a lab of its own (build/lab-bench, 1 node, no CNI until the daemon installs its own)
// beside the tests' lab, with the controller-manager stopped (bench-kube-common.ts). Needs root.

import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { contractAnnotations } from '../daemon/cluster/node-contract';
import { MAX_PORT_KEY } from '../daemon/cluster/tunnel-keys';
import { OvsdbClient } from '../daemon/ovsdb/client';
import { asArray, type Row } from '../daemon/ovsdb/values';
import { isOurs } from '../daemon/cluster/remote-port-plan';
import type { HttpKubeApi } from '../daemon/sources/kube/http-api';
import type { LabInfo } from '../test/cluster/harness/lab';
import {
  allocatedPodAnnotations, create, createNamespaces, daemonArgs, downBenchLab, fmt, memoryMiB, nodeProcess, ovnSocket, parseArgs, pct, pool,
  startStack, stopProcess, upBenchLab, waitLine, type NodeProcess,
} from './bench-kube-common';
import { addProbe, createServices, PROBE_NAMESPACE, PROBE_NB_TABLES, PROBE_SB_TABLES, serviceProbe } from './bench-cluster-probes';

interface Args { nodes: number; pods: number; samples: number; services: number; adds: number; keep: boolean }

const NAMESPACES = 10;
/** Pods' addresses start at this offset in 10.16.0.0/16, clear of the blocks node1 claims first. */
const POD_BASE = 8192;
/** Peers' transit addresses: this offset in the join network 100.64.0.0/16, clear of node1's. */
const TRANSIT_BASE = 20000;
/** Settling time after ready in which late start writes still count as the start's. */
const SETTLE_MS = 2000;

const nsName = (k: number): string => `bc-${k}`;
const simNode = (k: number): string => `sim-${k}`;
const dotted = (a: number, b: number, offset: number): string => `${a}.${b}.${(offset >> 8) & 255}.${offset & 255}`;

function nodeObject(k: number): object {
  const name = simNode(k);
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: {
      name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux' },
      // As the peer's own daemon publishes them; encap addresses in the benchmarking range
      // 198.18.0.0/15, which nothing routes: ovn-controller builds tunnels that carry nothing.
      annotations: contractAnnotations({ chassisId: name, encapIp: dotted(198, 18, k + 1), zone: name, transitIp: dotted(100, 64, TRANSIT_BASE + k) }),
    },
  };
}

/** Pod i (the samples continue the numbering, so every address is distinct and keyed). */
function podObject(name: string, i: number, nodes: number): object {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: nsName(i % NAMESPACES), labels: { app: `a${i % 10}` }, annotations: allocatedPodAnnotations(POD_BASE + i) },
    spec: {
      nodeName: simNode(i % nodes),
      automountServiceAccountToken: false,
      containers: [{ name: 'app', image: 'lab/tools:1', resources: { requests: { cpu: '10m', memory: '16Mi' } } }],
    },
  };
}

const podIp = (i: number): string => allocatedPodAnnotations(POD_BASE + i)['ovn.kubernetes.io/ip_address'] as string;
const podsPath = (i: number): string => `/api/v1/namespaces/${nsName(i % NAMESPACES)}/pods`;

async function populate(api: HttpKubeApi, args: Args): Promise<number> {
  const t0 = performance.now();
  await createNamespaces(api, Array.from({ length: NAMESPACES }, (_, k) => nsName(k)));
  await pool(Array.from({ length: args.nodes }, (_, k) => k), 8, (k) => create(api, '/api/v1/nodes', nodeObject(k)));
  await pool(Array.from({ length: args.pods }, (_, i) => i), 24, (i) => create(api, podsPath(i), podObject(`p-${i}`, i, args.nodes)));
  await createServices(api, nsName(0), args.services, (i) => podIp(i % args.pods));
  return performance.now() - t0;
}

// --- runs ----------------------------------------------------------------------------------------------

interface Rows { lsp: number; remote: number; local: number; chassis: number; bound: number }

interface RunResult {
  label: string;
  startMs: number;
  /** NB operations up to ready, and in the SETTLE_MS after it. */
  nbOps: number;
  nbOpsLate: number;
  sbOps: number;
  /** Spawn -> every remote LSP of the NB bound to a chassis in the SB. */
  boundMs: number;
  ready: { rss: number; hwm: number };
  after?: { rss: number; hwm: number };
  rows: Rows;
  appearMs: number[];
  /** POST -> the remote port bound to its chassis in this SB. */
  boundSampleMs: number[];
  serviceNbMs: number[];
  serviceSbMs: number[];
  addMs: number[];
}

/** What a run measures after it is ready. */
interface Probes { remotePods: number; services: number; adds: number }

interface RunContext { lab: LabInfo; api: HttpKubeApi; nb: OvsdbClient; sb: OvsdbClient; kubeconfig: string; logDir: string; args: Args; nextSample: number; remoteLsps: Set<string> }

/** The daemon installs ovnode as the node's CNI, as in the DaemonSet: kubelet then runs the ADD probe's pods through it. */
const CNI_ARGS = ['--cni-bin-dir', '/opt/cni/bin', '--cni-conf-dir', '/etc/cni/net.d'];

async function runDaemon(ctx: RunContext, label: string, probes: Probes): Promise<RunResult> {
  const t0 = Date.now();
  const level = process.env.BENCH_LOG_LEVEL;
  const p = nodeProcess(ctx.lab, [...daemonArgs(ctx.kubeconfig), ...CNI_ARGS, ...(level ? ['--log-level', level] : [])], join(ctx.logDir, `daemon-${label.replace(/\W+/g, '-')}.log`));
  const ops = { nb: 0, late: 0, sb: 0 };
  let isReady = false;
  p.lines((l) => {
    const n = Number(l.ops ?? 0);
    const nbWrite = (l.msg === 'policy applied' && l.reason === 'start') || l.msg === 'remote ports written';
    if (nbWrite) { if (isReady) ops.late += n; else ops.nb += n; }
    if (l.msg === 'remote chassis written') ops.sb += n;
  });
  // Binding writes are logged at debug only: counted where they land.
  const onSb = (table: string, _u: string, old: Row | undefined, row: Row | undefined): void => {
    if (table === 'Port_Binding' && row && isRemote(ctx, row.logical_port as string) && chassisOf(row) !== undefined && chassisOf(row) !== (old && chassisOf(old))) ops.sb++;
  };
  ctx.sb.on('change', onSb);
  try {
    const ready = await waitLine(p, 'ovnoded ready', 120_000);
    isReady = true;
    const pid = p.child.pid as number;
    const readyMem = memoryMiB(pid);
    const sbOpsAtReady = ops.sb;
    await allBound(ctx, 120_000);
    const boundMs = Date.now() - t0;
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const result: RunResult = {
      label, startMs: new Date(ready.time).getTime() - t0, nbOps: ops.nb, nbOpsLate: ops.late, sbOps: sbOpsAtReady, boundMs, ready: readyMem,
      rows: await countRows(ctx), appearMs: [], boundSampleMs: [], serviceNbMs: [], serviceSbMs: [], addMs: [],
    };
    for (let s = 0; s < probes.remotePods; s++) {
      const { nbMs, boundMs: bound } = await remotePodAppears(ctx);
      result.appearMs.push(nbMs);
      result.boundSampleMs.push(bound);
    }
    const tag = label.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/-+$/, '');
    for (let s = 0; s < probes.services; s++) {
      const { nbMs, sbMs } = await serviceProbe({ api: ctx.api, nb: ctx.nb, sb: ctx.sb }, `${tag}-${s}`, podIp(s));
      result.serviceNbMs.push(nbMs);
      result.serviceSbMs.push(sbMs);
    }
    if (probes.adds > 0) result.addMs = await addProbe(ctx.api, p, tag, probes.adds);
    if (probes.remotePods + probes.services + probes.adds > 0) result.after = memoryMiB(pid);
    return result;
  } finally {
    ctx.sb.off('change', onSb);
    await stopProcess(p.child);
  }
}

const chassisOf = (row: Row): string | undefined => asArray<string>(row.chassis)[0];
const isRemote = (ctx: RunContext, lsp: string): boolean => ctx.remoteLsps.has(lsp);

/** Follows the NB's remote ports by name (the SB's bindings only name their port). */
function followRemoteLsps(nb: OvsdbClient): Set<string> {
  const names = new Set<string>();
  nb.on('change', (table: string, _u: string, old: Row | undefined, row: Row | undefined) => {
    if (table !== 'Logical_Switch_Port') return;
    if (old) names.delete(old.name as string);
    if (row && isOurs(row)) names.add(row.name as string);
  });
  return names;
}

/** Resolves once every remote LSP of the NB has a bound SB binding (checked on each SB or NB change). */
function allBound(ctx: RunContext, timeoutMs: number): Promise<void> {
  const done = (): boolean => {
    const want = new Set([...ctx.nb.rows('Logical_Switch_Port').values()].filter(isOurs).map((r) => r.name as string));
    for (const pb of ctx.sb.rows('Port_Binding').values()) if (chassisOf(pb) !== undefined) want.delete(pb.logical_port as string);
    return want.size === 0;
  };
  return new Promise((resolve, reject) => {
    const finish = (e?: Error): void => {
      clearTimeout(timer);
      ctx.sb.off('change', check);
      ctx.nb.off('change', check);
      if (e) reject(e); else resolve();
    };
    const check = (): void => { if (done()) finish(); };
    const timer = setTimeout(() => finish(new Error(`remote ports not all bound within ${timeoutMs} ms`)), timeoutMs);
    ctx.sb.on('change', check);
    ctx.nb.on('change', check);
    check();
  });
}

/**
 * A new pod on a peer: POST (bound and annotated, as its node leaves it) -> its remote LSP in this
 * NB, and -> its binding bound to the peer's chassis in this SB (from then on ovn-controller
 * tunnels to it). Measured alone: the next sample starts once this one's consequences (the
 * policy's deferred run, northd) have settled.
 */
async function remotePodAppears(ctx: RunContext): Promise<{ nbMs: number; boundMs: number }> {
  const i = ctx.args.pods + ctx.nextSample;
  const name = `s-${ctx.nextSample++}`;
  const lsp = `${name}.${nsName(i % NAMESPACES)}`;
  const arrived = ctx.nb.waitFor('Logical_Switch_Port', (row) => row.name === lsp && isOurs(row), AbortSignal.timeout(30_000));
  const bound = ctx.sb.waitFor('Port_Binding', (row) => row.logical_port === lsp && chassisOf(row) !== undefined, AbortSignal.timeout(30_000));
  const t0 = performance.now();
  const res = await ctx.api.request<{ message?: string }>({ method: 'POST', path: podsPath(i), body: podObject(name, i, ctx.args.nodes) });
  if (res.status !== 201) throw new Error(`POST pod ${name}: HTTP ${res.status} ${res.body.message ?? ''}`);
  const nbMs = await arrived.then(() => performance.now() - t0);
  const boundMs = await bound.then(() => performance.now() - t0);
  // Wall-clock times, to put beside the daemon's log lines.
  appendFileSync(join(ctx.logDir, 'samples.log'), `${JSON.stringify({ pod: lsp, posted: new Date(Date.now() - boundMs).toISOString(), ms: +nbMs.toFixed(1), boundMs: +boundMs.toFixed(1) })}\n`);
  await new Promise((r) => setTimeout(r, 300));
  return { nbMs, boundMs };
}

async function countRows(ctx: RunContext): Promise<Rows> {
  const lsps = [...ctx.nb.rows('Logical_Switch_Port').values()];
  const remote = lsps.filter(isOurs).length;
  const chassis = await ctx.sb.select('Chassis', [], ['name']);
  const bound = [...ctx.sb.rows('Port_Binding').values()].filter((r) => isRemote(ctx, r.logical_port as string) && chassisOf(r) !== undefined).length;
  return { lsp: lsps.length, remote, local: lsps.length - remote, chassis: chassis.length, bound };
}

// --- main ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args: Args = parseArgs(process.argv.slice(2), { nodes: 50, pods: 5000, samples: 40, services: 200, adds: 10 });
  if (POD_BASE + args.pods + args.samples > MAX_PORT_KEY) throw new Error(`--pods + --samples must stay under ${MAX_PORT_KEY - POD_BASE} (tunnel keys of ovn-default)`);
  if (args.nodes > 250) throw new Error('--nodes must be <= 250');
  const stack: { p?: NodeProcess } = {};
  let nb: OvsdbClient | undefined;
  let sb: OvsdbClient | undefined;
  try {
    const { lab, api, kubeconfig, logDir } = await upBenchLab();
    stack.p = await startStack({ lab, api, kubeconfig, logDir });
    nb = new OvsdbClient({ socketPath: ovnSocket(lab, 'nb'), database: 'OVN_Northbound' });
    sb = new OvsdbClient({ socketPath: ovnSocket(lab, 'sb'), database: 'OVN_Southbound' });
    await Promise.all([nb.connect(AbortSignal.timeout(30_000)), sb.connect(AbortSignal.timeout(30_000))]);
    const remoteLsps = followRemoteLsps(nb);
    await nb.monitor({ Logical_Switch_Port: { columns: ['name', 'type', 'external_ids'] }, ...PROBE_NB_TABLES });
    await sb.monitor({ Port_Binding: { columns: ['logical_port', 'type', 'chassis'] }, ...PROBE_SB_TABLES });
    await createNamespaces(api, [PROBE_NAMESPACE]);
    const ctx: RunContext = { lab, api, nb, sb, kubeconfig, logDir, args, nextSample: 0, remoteLsps };
    const serviceSamples = Math.min(args.samples, 20);

    const results: RunResult[] = [];
    results.push(await runDaemon(ctx, 'reference: empty API', { remotePods: 0, services: serviceSamples, adds: args.adds }));
    const populateMs = await populate(api, args);
    console.error(`bench: ${args.nodes} peer nodes, ${args.pods} pods on them and ${args.services} Services created in ${(populateMs / 1000).toFixed(1)} s`);
    results.push(await runDaemon(ctx, 'first start', { remotePods: 0, services: 0, adds: 0 }));
    results.push(await runDaemon(ctx, 'restart', { remotePods: args.samples, services: serviceSamples, adds: args.adds }));

    const f = fmt;
    const p = (xs: number[], q: number): string => f(xs.length ? pct(xs, q) : undefined, 1);
    console.log(`\none node's ovnoded with ${args.nodes} simulated peer nodes, ${args.pods} pods on them and ${args.services} Services in the API (kube-apiserver 1.20.2)\n`);
    console.log('| run                  | start->ready ms | NB ops at start (after ready) | SB ops to ready | all bound ms | RSS ready MiB | RSS after MiB | peak MiB |');
    console.log('|----------------------|-----------------|-------------------------------|-----------------|--------------|---------------|---------------|----------|');
    for (const r of results) {
      const ops = `${r.nbOps} (${r.nbOpsLate})`;
      console.log(`| ${r.label.padEnd(20)} | ${f(r.startMs).padStart(15)} | ${ops.padStart(29)} | ${String(r.sbOps).padStart(15)} | ${f(r.boundMs).padStart(12)} | ${f(r.ready.rss).padStart(13)} | ${f(r.after?.rss).padStart(13)} | ${f(r.after?.hwm ?? r.ready.hwm).padStart(8)} |`);
    }
    console.log('\n| run                  | remote pod->NB p50 / p90 ms | ->SB bound p50 / p90 ms | Service->NB p50 / p90 ms | ->SB lflow p50 / p90 ms | ADD p50 / p90 ms (n) |');
    console.log('|----------------------|-----------------------------|-------------------------|--------------------------|-------------------------|----------------------|');
    for (const r of results.filter((x) => x.label !== 'first start')) {
      const pair = (xs: number[]): string => (xs.length ? `${p(xs, 50)} / ${p(xs, 90)}` : '-');
      console.log(`| ${r.label.padEnd(20)} | ${pair(r.appearMs).padStart(27)} | ${pair(r.boundSampleMs).padStart(23)} | ${pair(r.serviceNbMs).padStart(24)} | ${pair(r.serviceSbMs).padStart(23)} | ${`${pair(r.addMs)} (${r.addMs.length})`.padStart(20)} |`);
    }
    console.log('\n| run                  | NB LSPs | remote | local | SB Chassis | remote bindings bound | remote LSPs / peer node | chassis / node |');
    console.log('|----------------------|---------|--------|-------|------------|-----------------------|-------------------------|----------------|');
    for (const r of results) {
      const peers = r.label.startsWith('reference') ? 0 : args.nodes;
      const perNode = (n: number, d: number): string => (peers === 0 ? '-' : f(n / d, 1));
      console.log(`| ${r.label.padEnd(20)} | ${String(r.rows.lsp).padStart(7)} | ${String(r.rows.remote).padStart(6)} | ${String(r.rows.local).padStart(5)} | ${String(r.rows.chassis).padStart(10)} | ${String(r.rows.bound).padStart(21)} | ${perNode(r.rows.remote, peers).padStart(23)} | ${perNode(r.rows.chassis, peers + 1).padStart(14)} |`);
    }
    const loaded = results.filter((r) => !r.label.startsWith('reference'));
    const reference = results[0] as RunResult;
    const worstStart = Math.max(...loaded.map((r) => r.startMs));
    const worstRss = Math.max(...loaded.map((r) => r.after?.hwm ?? r.ready.hwm));
    const restart = results[2] as RunResult;
    const restartOps = restart.nbOps + restart.nbOpsLate;
    const p50 = pct(restart.appearMs, 50);
    const svc50 = pct(restart.serviceNbMs, 50);
    const addRatio = pct(restart.addMs, 50) / pct(reference.addMs, 50);
    console.log(`\ntargets: start->ready <= 3000 ms: ${f(worstStart)} ${worstStart <= 3000 ? 'ok' : 'MISSED'}; ` +
      `NB ops on restart = 0: ${restartOps} ${restartOps === 0 ? 'ok' : 'MISSED'}; ` +
      `remote pod->NB p50 <= 50 ms: ${f(p50, 1)} ${p50 <= 50 ? 'ok' : 'MISSED'}; ` +
      `Service->NB p50 <= 100 ms: ${f(svc50, 1)} ${svc50 <= 100 ? 'ok' : 'MISSED'}; ` +
      `ADD p50 <= 1.1x the empty cluster's: ${f(addRatio, 2)}x ${addRatio <= 1.1 ? 'ok' : 'MISSED'}; ` +
      `RSS <= 200 MiB (peak): ${f(worstRss)} ${worstRss <= 200 ? 'ok' : 'MISSED'}`);
  } finally {
    await nb?.close();
    await sb?.close();
    if (stack.p) await stopProcess(stack.p.child);
    if (!args.keep) downBenchLab();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
