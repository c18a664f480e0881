// bench:kube-node — one node's ovnoded against a real kube-apiserver holding a cluster's worth of
// objects: 5000 pods (bound to nodes that do not exist here, so every one is a remote policy peer)
// and 500 NetworkPolicies. Measures, in one invocation:
//   - start to ready: process spawn -> its "ovnoded ready" line (the stack already runs, as in the
//     DaemonSet, where ovnode-ovs outlives ovnoded), on an NB without the policies (first start)
//     and on one that holds them (a restart);
//   - the daemon's RSS when ready and after the label changes (VmRSS; VmHWM for the peak);
//   - one pod label change reflected in the NB: PATCH sent -> the NB update that puts the pod's
//     address into the peer address set of the policy it now matches (OVSDB monitor).
// The reference row is the same daemon against the same API with none of these objects.
//
//   npm run bench:kube-node [-- --pods 5000 --policies 500 --samples 40 --keep]
//
// Runs on a lab of its own (build/lab-bench, 1 node, no CNI) beside the tests' lab. The
// controller-manager is stopped there: its pod garbage collector deletes pods bound to nodes that
// do not exist, which is what these pods are. Needs root.

import { join } from 'node:path';
import { OvsdbClient } from '../daemon/ovsdb/client';
import { asNetworkPolicyPeer } from '../daemon/policy/names';
import type { HttpKubeApi } from '../daemon/sources/kube/http-api';
import type { LabInfo } from '../test/cluster/harness/lab';
import {
  allocatedPodAnnotations, create, createNamespaces, daemonArgs, downBenchLab, fmt, memoryMiB, nodeProcess, ovnSocket, parseArgs, pct, pool,
  startStack, stopProcess, upBenchLab, waitLine, type NodeProcess,
} from './bench-kube-common';

interface Args { pods: number; policies: number; samples: number; keep: boolean }

const NAMESPACES = 50;
const GHOST_NODES = 20;

// --- the objects --------------------------------------------------------------------------------

const nsName = (k: number): string => `kb-${k}`;
const podIp = (i: number): string => { const n = i + 10; return `10.16.${(n >> 8) & 255}.${n & 255}`; };
const role = (r: number): string => `r${r % 7}`;

function podObject(i: number): object {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name: `p-${i}`, namespace: nsName(i % NAMESPACES),
      labels: { app: `a${Math.floor(i / NAMESPACES) % 10}`, role: role(i), tier: i % 3 === 0 ? 'web' : 'backend' },
      // As another node's daemon wrote them back: this node sees an allocated remote pod.
      annotations: allocatedPodAnnotations(i + 10),
    },
    spec: {
      nodeName: `ghost-${i % GHOST_NODES}`,
      automountServiceAccountToken: false,
      containers: [{ name: 'app', image: 'lab/tools:1', ports: [{ containerPort: 80 }], resources: { requests: { cpu: '10m', memory: '16Mi' } } }],
    },
  };
}

/** Policy j of namespace k: pods app=a<j%10> accept TCP 80 from role r<j> here and web pods of role r<j> in the team t<j%5> namespaces; every fourth also limits egress. */
function policyObject(k: number, j: number): object {
  const ingress = [
    { from: [{ podSelector: { matchLabels: { role: role(j) } } }], ports: [{ protocol: 'TCP', port: 80 }] },
    { from: [{ namespaceSelector: { matchLabels: { team: `t${j % 5}` } }, podSelector: { matchLabels: { tier: 'web', role: role(j) } } }] },
  ];
  const egress = j % 4 === 0 ? [{ to: [{ podSelector: { matchLabels: { app: `a${(j + 1) % 10}` } } }], ports: [{ protocol: 'UDP', port: 53 }] }] : undefined;
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy',
    metadata: { name: `np-${j}`, namespace: nsName(k) },
    spec: { podSelector: { matchLabels: { app: `a${j % 10}` } }, ingress, ...(egress ? { egress, policyTypes: ['Ingress', 'Egress'] } : { policyTypes: ['Ingress'] }) },
  };
}

async function populate(api: HttpKubeApi, args: Args): Promise<number> {
  const t0 = performance.now();
  await createNamespaces(api, Array.from({ length: NAMESPACES }, (_, k) => nsName(k)), (n) => ({ team: `t${Number(n.slice(3)) % 5}` }));
  const nps = Array.from({ length: args.policies }, (_, x) => ({ k: x % NAMESPACES, j: Math.floor(x / NAMESPACES) }));
  await pool(nps, 16, ({ k, j }) => create(api, `/apis/networking.k8s.io/v1/namespaces/${nsName(k)}/networkpolicies`, policyObject(k, j)));
  const pods = Array.from({ length: args.pods }, (_, i) => i);
  await pool(pods, 24, (i) => create(api, `/api/v1/namespaces/${nsName(i % NAMESPACES)}/pods`, podObject(i)));
  return performance.now() - t0;
}

// --- the daemon -----------------------------------------------------------------------------------

interface RunResult {
  label: string;
  startMs: number;
  startNbOps: number;
  ready: { rss: number; hwm: number };
  after?: { rss: number; hwm: number };
  changeMs: number[];
}

interface RunContext { lab: LabInfo; api: HttpKubeApi; nb: OvsdbClient; kubeconfig: string; logDir: string }

async function runDaemon(ctx: RunContext, label: string, samples: number): Promise<RunResult> {
  const t0 = Date.now();
  const p = nodeProcess(ctx.lab, daemonArgs(ctx.kubeconfig), join(ctx.logDir, `daemon-${label.replace(/\W+/g, '-')}.log`));
  let startNbOps = 0;
  p.lines((l) => { if (l.msg === 'policy applied' && l.reason === 'start') startNbOps = Number(l.ops); });
  try {
    const ready = await waitLine(p, 'ovnoded ready', 120_000);
    const pid = p.child.pid as number;
    const result: RunResult = { label, startMs: new Date(ready.time).getTime() - t0, startNbOps, ready: memoryMiB(pid), changeMs: [] };
    for (let s = 0; s < samples; s++) result.changeMs.push(await labelChange(ctx, s));
    if (samples > 0) result.after = memoryMiB(pid);
    return result;
  } finally {
    await stopProcess(p.child);
  }
}

/** Moves pod p-0 between roles r0 and r1; resolves with the ms until its address is in the peer set of the policy it now matches. */
async function labelChange(ctx: RunContext, sample: number): Promise<number> {
  const toRole = sample % 2 === 0 ? 1 : 0;
  const ip = podIp(0);
  // Policy np-<toRole> of kb-0 admits role r<toRole>: rule 0, peer 0, IPv4.
  const set = asNetworkPolicyPeer(nsName(0), `np-${toRole}`, 'in', 0, 0, 4);
  const arrived = ctx.nb.waitFor('Address_Set', (row) => row.name === set && members(row.addresses).includes(ip), AbortSignal.timeout(30_000));
  const t0 = performance.now();
  const res = await ctx.api.request({ method: 'PATCH', path: `/api/v1/namespaces/${nsName(0)}/pods/p-0`, body: { metadata: { labels: { role: role(toRole) } } } });
  if (res.status !== 200) throw new Error(`PATCH p-0: HTTP ${res.status}`);
  await arrived;
  const ms = performance.now() - t0;
  // Let the daemon settle (the set it left) before the next sample.
  await new Promise((r) => setTimeout(r, 200));
  return ms;
}

function members(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (v instanceof Set) return [...v].map(String);
  return typeof v === 'string' ? [v] : [];
}

// --- main ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args: Args = parseArgs(process.argv.slice(2), { pods: 5000, policies: 500, samples: 40 });
  const stack: { p?: NodeProcess } = {};
  let nb: OvsdbClient | undefined;
  try {
    const { lab, api, kubeconfig, logDir } = await upBenchLab();
    stack.p = await startStack({ lab, api, kubeconfig, logDir });
    nb = new OvsdbClient({ socketPath: ovnSocket(lab, 'nb'), database: 'OVN_Northbound' });
    await nb.connect(AbortSignal.timeout(30_000));
    await nb.monitor({ Address_Set: { columns: ['name', 'addresses'] } });
    const ctx: RunContext = { lab, api, nb, kubeconfig, logDir };

    const results: RunResult[] = [];
    results.push(await runDaemon(ctx, 'reference: empty API', 0));
    const populateMs = await populate(api, args);
    console.error(`bench: ${args.pods} pods and ${args.policies} NetworkPolicies created in ${(populateMs / 1000).toFixed(1)} s`);
    results.push(await runDaemon(ctx, 'first start', 0));
    results.push(await runDaemon(ctx, 'restart', args.samples));

    const f = fmt;
    console.log(`\none node's ovnoded, ${args.pods} remote pods and ${args.policies} NetworkPolicies in the API (kube-apiserver 1.20.2)\n`);
    console.log('| run                  | start->ready ms | NB ops at start | RSS ready MiB | RSS after MiB | peak MiB | label->NB p50 ms | p90 ms |');
    console.log('|----------------------|-----------------|-----------------|---------------|---------------|----------|------------------|--------|');
    for (const r of results) {
      console.log(`| ${r.label.padEnd(20)} | ${f(r.startMs).padStart(15)} | ${f(r.startNbOps).padStart(15)} | ${f(r.ready.rss).padStart(13)} | ${f(r.after?.rss).padStart(13)} | ${f(r.after?.hwm ?? r.ready.hwm).padStart(8)} | ${f(r.changeMs.length ? pct(r.changeMs, 50) : undefined, 1).padStart(16)} | ${f(r.changeMs.length ? pct(r.changeMs, 90) : undefined, 1).padStart(6)} |`);
    }
    const loaded = results.filter((r) => r.label !== 'reference: empty API');
    const worstStart = Math.max(...loaded.map((r) => r.startMs));
    const worstRss = Math.max(...loaded.map((r) => r.after?.hwm ?? r.ready.hwm));
    const p50 = pct(results[2]?.changeMs ?? [], 50);
    console.log(`\ntargets: start->ready <= 3000 ms: ${f(worstStart)} ${worstStart <= 3000 ? 'ok' : 'MISSED'}; ` +
      `RSS <= 150 MiB (peak): ${f(worstRss)} ${worstRss <= 150 ? 'ok' : 'MISSED'}; label->NB p50 <= 100 ms: ${f(p50, 1)} ${p50 <= 100 ? 'ok' : 'MISSED'}`);
  } finally {
    await nb?.close();
    if (stack.p) await stopProcess(stack.p.child);
    if (!args.keep) downBenchLab();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
