// The probes bench:cluster runs against one daemon, each measured alone (the next starts once the
// previous one's consequences have settled), so that a figure is one change's latency and not the
// queue behind the previous change:
//   - a Service's endpoints changing: POST of an EndpointSlice -> the backend in the
//     Load_Balancer's vips in this NB (the daemon's part), and -> a logical flow balancing to it
//     in this SB (northd's part after it; ovn-controller installs the OpenFlow from there);
//   - a pod ADD on the bench node, through the real kubelet and containerd: the daemon's own
//     duration of each ADD (its "attached" line), pods created one at a time.

import type { OvsdbClient } from '../daemon/ovsdb/client';
import { asMap, type Row } from '../daemon/ovsdb/values';
import type { HttpKubeApi } from '../daemon/sources/kube/http-api';
import { BENCH_NODE, create, type LogLine, type NodeProcess } from './bench-kube-common';

export const PROBE_NAMESPACE = 'bc-probe';
/** After a probe, before the next: the policy's deferred run (100 ms) and northd are done by then. */
const SETTLE_MS = 300;
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, SETTLE_MS));

export interface ProbeContext {
  api: HttpKubeApi;
  /** Monitors Load_Balancer (name, vips). */
  nb: OvsdbClient;
  /** Monitors Logical_Flow (match, actions). */
  sb: OvsdbClient;
}

/** The tables the probes wait on, for the bench's monitors. */
export const PROBE_NB_TABLES = { Load_Balancer: { columns: ['name', 'vips'] } };
export const PROBE_SB_TABLES = { Logical_Flow: { columns: ['match', 'actions'] } };

const SLICES = '/apis/discovery.k8s.io/v1beta1';

function serviceObject(name: string): object {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { type: 'ClusterIP', ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 }] } };
}

function sliceObject(name: string, service: string, ips: string[]): object {
  return {
    apiVersion: 'discovery.k8s.io/v1beta1', kind: 'EndpointSlice',
    metadata: { name, labels: { 'kubernetes.io/service-name': service } },
    addressType: 'IPv4',
    endpoints: ips.map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
    ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
  };
}

/** `count` Services with a slice of two endpoints each, in `namespace` (the load a cluster's Services put on every node). */
export async function createServices(api: HttpKubeApi, namespace: string, count: number, backend: (i: number) => string): Promise<void> {
  for (let j = 0; j < count; j++) {
    await create(api, `/api/v1/namespaces/${namespace}/services`, serviceObject(`svc-${j}`));
    await create(api, `${SLICES}/namespaces/${namespace}/endpointslices`, sliceObject(`svc-${j}-a`, `svc-${j}`, [backend(2 * j), backend(2 * j + 1)]));
  }
}

const lbName = (service: string): string => `Service_${PROBE_NAMESPACE}/${service}_TCP`;

/** A new Service's first endpoint: slice POST -> backend in this NB's load balancer, and -> in an SB logical flow. */
export async function serviceProbe(ctx: ProbeContext, tag: string, backendIp: string): Promise<{ nbMs: number; sbMs: number }> {
  const name = `probe-${tag}`;
  const res = await ctx.api.request<{ spec?: { clusterIP?: string }; message?: string }>({
    method: 'POST', path: `/api/v1/namespaces/${PROBE_NAMESPACE}/services`, body: serviceObject(name),
  });
  const vip = res.body.spec?.clusterIP;
  if (res.status !== 201 || !vip) throw new Error(`POST service ${name}: HTTP ${res.status} ${res.body.message ?? ''}`);
  // The Service without endpoints is a load balancer already (it rejects): waited for, not measured.
  await ctx.nb.waitFor('Load_Balancer', (r) => r.name === lbName(name), AbortSignal.timeout(30_000));
  const backend = `${backendIp}:8080`;
  const inNb = ctx.nb.waitFor('Load_Balancer', (r: Row) => r.name === lbName(name) && String(asMap(r.vips)[`${vip}:80`] ?? '').split(',').includes(backend), AbortSignal.timeout(30_000));
  const inSb = ctx.sb.waitFor('Logical_Flow', (r: Row) => String(r.match).includes(vip) && String(r.actions).includes(backend), AbortSignal.timeout(30_000));
  const t0 = performance.now();
  await create(ctx.api, `${SLICES}/namespaces/${PROBE_NAMESPACE}/endpointslices`, sliceObject(`${name}-a`, name, [backendIp]));
  const nbMs = await inNb.then(() => performance.now() - t0);
  const sbMs = await inSb.then(() => performance.now() - t0);
  await settle();
  return { nbMs, sbMs };
}

function podOnBenchNode(name: string): object {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name },
    spec: {
      nodeName: BENCH_NODE, automountServiceAccountToken: false, terminationGracePeriodSeconds: 1,
      containers: [{ name: 'app', image: 'lab/tools:1', imagePullPolicy: 'Never', command: ['/bin/sh', '-c', "trap 'exit 0' TERM; sleep 3600 & wait"] }],
    },
  };
}

/** The next log line of `p` that `match` accepts. */
function nextLine(p: NodeProcess, match: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => { done = true; reject(new Error(`no ${what} within ${timeoutMs} ms`)); }, timeoutMs);
    p.lines((l) => { if (!done && match(l)) { done = true; clearTimeout(timer); resolve(l); } });
  });
}

/**
 * `count` pods on the bench node, one at a time, through kubelet -> containerd -> ovnode: the
 * daemon's duration of each ADD; then all deleted, returning once the daemon detached each.
 */
export async function addProbe(api: HttpKubeApi, p: NodeProcess, tag: string, count: number): Promise<number[]> {
  const names = Array.from({ length: count }, (_, i) => `add-${tag}-${i}`);
  const podPath = `/api/v1/namespaces/${PROBE_NAMESPACE}/pods`;
  const ms: number[] = [];
  try {
    for (const name of names) {
      const attached = nextLine(p, (l) => l.msg === 'attached' && l.pod === `${PROBE_NAMESPACE}/${name}`, 90_000, `ADD of ${name}`);
      await create(api, podPath, podOnBenchNode(name));
      ms.push(Number((await attached).ms));
    }
  } finally {
    const detached = names.map((name) => nextLine(p, (l) => l.msg === 'detached' && l.pod === `${PROBE_NAMESPACE}/${name}`, 90_000, `DEL of ${name}`));
    for (const name of names) await api.request({ method: 'DELETE', path: `${podPath}/${name}` });
    // A pod never created has no DEL: only those that were ADDed are waited for.
    await Promise.all(detached.slice(0, ms.length));
  }
  return ms;
}
