// Benchmark: the first list of 5000 pod-shaped objects (~3 KB of JSON each, as real pods are with
// managedFields) from the fake apiserver through HttpKubeApi and the Reflector, until synced, and
// the memory the reflector then holds. The server runs in a child process of its own, and each
// measured configuration in a fresh one, so one's heap never shows in another's RSS.
//
//   node dist/scripts/bench-kube-list.js [--pods N] [--runs N]
//
// Rows: the example projection keeping ~10 fields with 500-object pages (client-go's default) and
// with 100; the identity projection (raw objects kept) for comparison; and the cost of loading
// @kubernetes/client-node, which config.ts does once in cluster mode.

import { fork, type ChildProcess } from 'node:child_process';
import { staticConnection } from '../daemon/sources/kube/config';
import { HttpKubeApi } from '../daemon/sources/kube/http-api';
import { Reflector, type KubeRawObject } from '../daemon/sources/kube/reflector';
import { FakeApiServer } from '../test/fakes/fake-apiserver';

interface ClientResult {
  mode: string;
  pageSize: number;
  objects: number;
  syncMs: number;
  /** CPU the client process spent (user + system) until synced: less at the mercy of a busy machine than wall time. */
  cpuMs: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  heapBeforeMiB: number;
  heapAfterMiB: number;
}

const MiB = 1024 * 1024;

/** A pod as the apiserver returns it, padded with the usual suspects to about 3 KB of JSON. */
function benchPod(i: number): Record<string, unknown> {
  const ns = `ns-${i % 50}`;
  const name = `app-${i}-7d9f8c6b5-${(i * 7919).toString(36).padStart(5, 'x')}`;
  const fieldsV1 = { 'f:metadata': { 'f:labels': { '.': {}, 'f:app': {}, 'f:pod-template-hash': {} }, 'f:ownerReferences': {} }, 'f:spec': { 'f:containers': { 'k:{"name":"app"}': { '.': {}, 'f:image': {}, 'f:ports': {}, 'f:resources': {} } } } };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: ns,
      labels: { app: `app-${i % 200}`, 'pod-template-hash': '7d9f8c6b5', tier: i % 3 === 0 ? 'web' : 'backend', version: 'v1' },
      annotations: {
        'ovn.kubernetes.io/ip_address': `10.16.${(i >> 8) & 255}.${i & 255}`,
        'ovn.kubernetes.io/mac_address': `00:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
        'ovn.kubernetes.io/logical_switch': 'ovn-default',
        'kubectl.kubernetes.io/restartedAt': '2025-01-01T00:00:00Z',
      },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `app-${i % 200}-7d9f8c6b5`, uid: '5b0c1c3e-2d5e-4c1a-9b8e-3f1e2d4c5b6a', controller: true, blockOwnerDeletion: true }],
      managedFields: [
        { manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'v1', time: '2025-01-01T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1 },
        { manager: 'kubelet', operation: 'Update', apiVersion: 'v1', time: '2025-01-01T00:00:05Z', fieldsType: 'FieldsV1', subresource: 'status', fieldsV1: { 'f:status': { 'f:conditions': {}, 'f:containerStatuses': {}, 'f:hostIP': {}, 'f:phase': {}, 'f:podIP': {}, 'f:podIPs': {}, 'f:startTime': {} } } },
      ],
    },
    spec: {
      nodeName: `node-${i % 20}`,
      serviceAccountName: 'default',
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      schedulerName: 'default-scheduler',
      containers: [{
        name: 'app',
        image: 'example/app:1.2.3',
        imagePullPolicy: 'IfNotPresent',
        ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'metrics', containerPort: 9090, protocol: 'TCP' }],
        env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } }, { name: 'LOG_LEVEL', value: 'info' }],
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
        volumeMounts: [{ name: 'kube-api-access-abcde', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
        readinessProbe: { httpGet: { path: '/healthz', port: 8080, scheme: 'HTTP' }, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 },
        terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File',
      }],
      volumes: [{ name: 'kube-api-access-abcde', projected: { defaultMode: 420, sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }, { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }] } }],
      tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }, { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
    },
    status: {
      phase: 'Running',
      hostIP: `192.168.0.${i % 20}`,
      podIP: `10.16.${(i >> 8) & 255}.${i & 255}`,
      podIPs: [{ ip: `10.16.${(i >> 8) & 255}.${i & 255}` }],
      startTime: '2025-01-01T00:00:01Z',
      qosClass: 'Burstable',
      conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: '2025-01-01T00:00:04Z' })),
      containerStatuses: [{ name: 'app', ready: true, restartCount: 0, started: true, image: 'example/app:1.2.3', imageID: 'example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', containerID: 'containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', state: { running: { startedAt: '2025-01-01T00:00:03Z' } } }],
    },
  };
}

/** What a node daemon keeps of a pod: about ten fields. */
interface BenchSlimPod {
  namespace: string;
  name: string;
  uid: string;
  labels: Record<string, string>;
  ovnAnnotations: Record<string, string>;
  nodeName: string | undefined;
  hostNetwork: boolean;
  podIPs: string[];
  phase: string | undefined;
  namedPorts: Array<{ name: string; port: number; protocol: string }>;
}

function slim(raw: KubeRawObject): BenchSlimPod {
  const m = raw.metadata ?? {};
  const spec = (raw.spec ?? {}) as { nodeName?: string; hostNetwork?: boolean; containers?: Array<{ ports?: Array<{ name?: string; containerPort: number; protocol?: string }> }> };
  const status = (raw.status ?? {}) as { phase?: string; podIPs?: Array<{ ip: string }> };
  const ovnAnnotations: Record<string, string> = {};
  for (const [k, v] of Object.entries((m.annotations as Record<string, string> | undefined) ?? {})) if (k.startsWith('ovn.kubernetes.io/')) ovnAnnotations[k] = v;
  const namedPorts: BenchSlimPod['namedPorts'] = [];
  for (const c of spec.containers ?? []) for (const p of c.ports ?? []) if (p.name) namedPorts.push({ name: p.name, port: p.containerPort, protocol: p.protocol ?? 'TCP' });
  return {
    namespace: m.namespace ?? '',
    name: m.name ?? '',
    uid: m.uid ?? '',
    labels: (m.labels as Record<string, string> | undefined) ?? {},
    ovnAnnotations,
    nodeName: spec.nodeName,
    hostNetwork: spec.hostNetwork === true,
    podIPs: (status.podIPs ?? []).map((p) => p.ip),
    phase: status.phase,
    namedPorts,
  };
}

function gcNow(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function serve(pods: number): Promise<void> {
  const server = await FakeApiServer.start();
  for (let i = 0; i < pods; i++) server.create('pods', benchPod(i));
  process.send?.({ url: server.url, bytes: JSON.stringify(benchPod(1)).length });
  process.on('disconnect', () => void server.close().then(() => process.exit(0)));
}

async function client(url: string, mode: string, pageSize: number): Promise<void> {
  const api = new HttpKubeApi(staticConnection(url), { requestTimeoutMs: 120_000 });
  const project = mode === 'raw' ? (raw: KubeRawObject) => raw : slim;
  const reflector = new Reflector<unknown>({ api, path: '/api/v1/pods', project, pageSize, watchTimeoutSeconds: 600 });
  gcNow();
  const before = process.memoryUsage();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await reflector.start().whenSynced();
  const syncMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  gcNow();
  gcNow();
  const mem = process.memoryUsage();
  const result: ClientResult = {
    mode, pageSize, objects: reflector.size, syncMs, cpuMs: (cpu.user + cpu.system) / 1000,
    rssBeforeMiB: before.rss / MiB, rssAfterMiB: mem.rss / MiB, heapBeforeMiB: before.heapUsed / MiB, heapAfterMiB: mem.heapUsed / MiB,
  };
  await reflector.stop();
  api.close();
  process.send?.(result);
}

async function clientNodeCost(): Promise<void> {
  gcNow();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  await import('@kubernetes/client-node');
  const ms = performance.now() - t0;
  gcNow();
  process.send?.({ ms, rssMiB: (process.memoryUsage().rss - rss0) / MiB, heapMiB: process.memoryUsage().heapUsed / MiB });
}

function run<T>(args: string[]): { child: ChildProcess; result: Promise<T> } {
  const child = fork(__filename, args, { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const result = new Promise<T>((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('exit', (code) => reject(new Error(`bench child ${args.join(' ')} exited with ${code} before answering`)));
  });
  return { child, result };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const at = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i === -1 ? undefined : argv[i + 1];
  };
  if (argv[0] === '--serve') return serve(Number(argv[1]));
  if (argv[0] === '--client') return client(argv[1] as string, argv[2] as string, Number(argv[3]));
  if (argv[0] === '--client-node') return clientNodeCost();

  const pods = Number(at('--pods') ?? 5000);
  const runs = Number(at('--runs') ?? 3);
  const server = run<{ url: string; bytes: number }>(['--serve', String(pods)]);
  const { url, bytes } = await server.result;
  console.log(`fake apiserver (own process): ${pods} pods of ${bytes} bytes of JSON each, ${(pods * bytes / MiB).toFixed(1)} MiB in all; median of ${runs} runs`);
  const rows: ClientResult[] = [];
  try {
    // One unmeasured round warms the server's code paths, so the first row does not pay for it.
    await run<ClientResult>(['--client', url, 'slim', '500']).result;
    for (const [mode, page] of [['slim', 500], ['slim', 100], ['raw', 500]] as const) {
      const results: ClientResult[] = [];
      for (let i = 0; i < runs; i++) results.push(await run<ClientResult>(['--client', url, mode, String(page)]).result);
      rows.push(median(results));
    }
  } finally {
    server.child.disconnect();
  }
  const lib = await run<{ ms: number; rssMiB: number; heapMiB: number }>(['--client-node']).result;

  console.log('');
  console.log('| projection | page | objects | time to synced | client CPU | RSS before | RSS after | heap held after gc |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const label = r.mode === 'slim' ? 'slim (10 fields)' : 'raw (identity)';
    console.log(`| ${label} | ${r.pageSize} | ${r.objects} | ${r.syncMs.toFixed(0)} ms | ${r.cpuMs.toFixed(0)} ms | ${r.rssBeforeMiB.toFixed(1)} MiB | ${r.rssAfterMiB.toFixed(1)} MiB | ${(r.heapAfterMiB - r.heapBeforeMiB).toFixed(1)} MiB |`);
  }
  console.log('');
  console.log(`loading @kubernetes/client-node (config.ts, cluster mode only): ${lib.ms.toFixed(0)} ms, +${lib.rssMiB.toFixed(1)} MiB RSS, heap ${lib.heapMiB.toFixed(1)} MiB after gc`);
}

/** Each figure's median over the runs. */
function median(results: ClientResult[]): ClientResult {
  const mid = <K extends keyof ClientResult>(k: K): number => {
    const xs = results.map((r) => r[k] as number).sort((a, b) => a - b);
    return xs[Math.floor(xs.length / 2)] as number;
  };
  const first = results[0] as ClientResult;
  return {
    mode: first.mode, pageSize: first.pageSize, objects: first.objects, syncMs: mid('syncMs'), cpuMs: mid('cpuMs'),
    rssBeforeMiB: mid('rssBeforeMiB'), rssAfterMiB: mid('rssAfterMiB'), heapBeforeMiB: mid('heapBeforeMiB'), heapAfterMiB: mid('heapAfterMiB'),
  };
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
