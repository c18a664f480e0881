// Seed 003 (the OVN-Kubernetes talk) on the real lab cluster, pods spread over the nodes in the
// default subnet, the seed's two NetworkPolicies applied with `kubectl apply -f` and removed with
// `kubectl delete -f`:
//
// - "Namespaces Isolation" (test/fixtures/seeds/namespace-isolation.yaml): a pod alpine-worker
//   of namespace alpine-worker pings a pod of the same name in my-namespace; the policy admits
//   into my-namespace only namespaces labelled `namespace: alpine-worker`, a label the seed's
//   alpine-worker namespace does not carry: the ping fails after apply and works after delete.
//   As in the embedded test (test/integration/seed-003-namespace-isolation.test.ts), labelling
//   the namespace lets the pod in and removing the label shuts it out again; the reverse
//   direction (my-namespace -> alpine-worker) is never restricted.
// - "Namespace-ClusterIP Isolation" (ns-svc-isolation.yaml): the app=nginx pods of
//   nginx-namespace accept only namespaces labelled `namespace: alpine-worker`. As in the seed,
//   the clients reach them through a ClusterIP Service (an OVN load balancer on every node; HTTP
//   on 8080, as the seed's wget), and also at the pods' own addresses (the matrices, ICMP and
//   TCP). A pod of nginx-namespace without app=nginx stays open.
//
// The namespaces get this run's names (alpine-worker-<run>, ...): the policies' namespace and
// the label value they select are set to them; nothing else of the fixtures changes. Each change
// is awaited on one pair it flips (the time is printed), then the whole matrix is asserted,
// ICMP and TCP, allowed and denied pairs. The namespaces are deleted in afterAll, also after a
// failure.

import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedFixture } from '../integration/harness/cluster';
import { apply, kubectlJson, kubectlOk, readLab, uniqueName, waitForPodReady, type KubeObject } from './harness/lab';
import { HTTP_PORT, matrix, MatrixSequence, podAddress, uniform, type Peer } from './harness/matrix';
import { createNamespace, deleteNamespace, deployOvnode, httpFrom, testPod } from './harness/ovnode';

const AW = uniqueName('alpine-worker');
const MY = uniqueName('my-namespace');
const NGINX = uniqueName('nginx-namespace');

/** Pods by alias: aw = alpine-worker/alpine-worker, my = my-namespace/alpine-worker, n1 n2 = app=nginx, other. */
const PODS = [
  { alias: 'aw', namespace: AW, pod: 'alpine-worker', labels: { app: 'alpine' } },
  { alias: 'my', namespace: MY, pod: 'alpine-worker', labels: { app: 'alpine' } },
  { alias: 'n1', namespace: NGINX, pod: 'nginx-1', labels: { app: 'nginx' } },
  { alias: 'n2', namespace: NGINX, pod: 'nginx-2', labels: { app: 'nginx' } },
  { alias: 'other', namespace: NGINX, pod: 'other', labels: { app: 'other' } },
];
let peers: Peer[] = [];
const peer = (...aliases: string[]): Peer[] => aliases.map((a) => {
  const p = peers.find((x) => x.alias === a);
  if (!p) throw new Error(`pod ${a} not started (see beforeAll)`);
  return p;
});

/**
 * A seed policy for this run: its namespace (`ns` in the seed) and the namespace label value it
 * admits (`alpine-worker` in the seed) replaced by this run's names.
 */
function seedPolicy(file: string, seedNs: string, ns: string): string {
  const doc = YAML.parse(seedFixture(file)) as KubeObject;
  expect(doc.metadata.namespace).toBe(seedNs);
  const selector = doc.spec.ingress[0].from[0].namespaceSelector.matchLabels;
  expect(selector).toEqual({ namespace: 'alpine-worker' });
  doc.metadata.namespace = ns;
  selector.namespace = AW;
  return YAML.stringify(doc);
}

let clusterIp = '';

/** Whether each client's HTTP through the Service's ClusterIP gets an answer (from an nginx pod), as expected. */
async function expectThroughService(expected: Record<'aw' | 'my', boolean>): Promise<void> {
  for (const [alias, ok] of Object.entries(expected)) {
    const p = peer(alias)[0] as Peer;
    // Established before the change or not, each request is a new connection: the policy decides.
    let got = '';
    for (let i = 0; i < 3 && (got === 'ok') !== ok; i++) got = await httpFrom(p.namespace, p.pod, clusterIp);
    expect(got === 'ok', `${alias} -> Service nginx ${clusterIp}:${HTTP_PORT}`).toBe(ok);
  }
}

const kubectlApply = (text: string) => async (): Promise<void> => { await kubectlOk(['apply', '-f', '-'], { input: text }); };
const kubectlDelete = (text: string) => async (): Promise<void> => { await kubectlOk(['delete', '-f', '-'], { input: text }); };
const labelAlpineWorker = async (): Promise<void> => { await kubectlOk(['label', 'namespace', AW, `namespace=${AW}`]); };
const unlabelAlpineWorker = async (): Promise<void> => { await kubectlOk(['label', 'namespace', AW, 'namespace-']); };

beforeAll(async () => {
  const t0 = Date.now();
  await deployOvnode();
  // As in the seed, no namespace carries a `namespace` label.
  await Promise.all([AW, MY, NGINX].map((ns) => createNamespace(ns)));
  // Spread over the nodes: every pair of pods that must (or must not) talk crosses a tunnel somewhere.
  const nodes = readLab().nodes.map((n) => n.name);
  await apply({ apiVersion: 'v1', kind: 'List', items: PODS.map((p, i) => testPod({ name: p.pod, namespace: p.namespace, node: nodes[i % nodes.length] as string, labels: p.labels })) });
  await Promise.all(PODS.map((p) => waitForPodReady(p.namespace, p.pod, 180_000)));
  peers = await Promise.all(PODS.map(async (p) => ({ alias: p.alias, namespace: p.namespace, pod: p.pod, ip: await podAddress(p.namespace, p.pod) })));
  // The seed's clients reach the nginx pods through a ClusterIP Service: one over app=nginx.
  await apply({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'nginx', namespace: NGINX },
    spec: { selector: { app: 'nginx' }, ports: [{ name: 'http', port: HTTP_PORT, targetPort: HTTP_PORT, protocol: 'TCP' }] },
  });
  clusterIp = (await kubectlJson<KubeObject>(['-n', NGINX, 'get', 'service', 'nginx'])).spec.clusterIP as string;
  console.log(`seed 003 across the nodes: Service nginx ${clusterIp}, ${peers.map((p) => `${p.alias}=${p.namespace}/${p.pod}@${p.ip}`).join(' ')} (ready in ${Date.now() - t0} ms)`);
}, 600_000);

afterAll(async () => {
  const t0 = Date.now();
  await Promise.all([AW, MY, NGINX].map((ns) => deleteNamespace(ns)));
  console.log(`namespaces deleted in ${Date.now() - t0} ms`);
}, 300_000);

describe('seed 003 on the lab cluster: "Namespaces Isolation" (namespace-isolation.yaml, kubectl apply / delete)', () => {
  const policy = (): string => seedPolicy('namespace-isolation.yaml', 'my-namespace', MY);
  const steps = new MatrixSequence(() => peer('aw', 'my'), () => peer('aw', 'my'));
  const OPEN = uniform(['aw', 'my'], ['aw', 'my'], true);
  const SHUT_OUT = matrix(`
         aw  my
    aw    -  no
    my   ok   -
  `);

  it('without a policy the two alpine-worker pods (two namespaces) reach each other', async () => {
    await steps.expect('no policy', { icmp: OPEN });
  });

  it('kubectl apply: the unlabelled alpine-worker namespace is shut out of my-namespace; the other way stays open', async () => {
    await steps.change('namespace-isolation.yaml applied', kubectlApply(policy()), { icmp: SHUT_OUT });
  });

  it('labelling the alpine-worker namespace `namespace: alpine-worker` lets its pod in', async () => {
    await steps.change('alpine-worker namespace labelled', labelAlpineWorker, { icmp: OPEN });
  });

  it('removing the label shuts it out again', async () => {
    await steps.change('label removed', unlabelAlpineWorker, { icmp: SHUT_OUT });
  });

  it('kubectl delete: everything open again', async () => {
    await steps.change('namespace-isolation.yaml deleted', kubectlDelete(policy()), { icmp: OPEN });
  });
});

describe('seed 003 on the lab cluster: "Namespace-ClusterIP Isolation" (ns-svc-isolation.yaml) toward the nginx pods\' addresses', () => {
  const policy = (): string => seedPolicy('ns-svc-isolation.yaml', 'nginx-namespace', NGINX);
  const steps = new MatrixSequence(() => peer('aw', 'my'), () => peer('n1', 'n2', 'other'));
  const OPEN = uniform(['aw', 'my'], ['n1', 'n2', 'other'], true);
  const NGINX_CLOSED = matrix(`
         n1  n2  other
    aw   no  no  ok
    my   no  no  ok
  `);
  const ALPINE_ADMITTED = matrix(`
         n1  n2  other
    aw   ok  ok  ok
    my   no  no  ok
  `);

  it('without a policy both clients reach the nginx pods and the other pod, and the Service', async () => {
    await steps.expect('no policy', { icmp: OPEN });
    await expectThroughService({ aw: true, my: true });
  });

  it('kubectl apply: app=nginx pods admit only namespaces labelled namespace=alpine-worker, and none is', async () => {
    await steps.change('ns-svc-isolation.yaml applied', kubectlApply(policy()), { icmp: NGINX_CLOSED });
    await expectThroughService({ aw: false, my: false });
  });

  it('labelling the alpine-worker namespace admits its pod, not my-namespace\'s', async () => {
    await steps.change('alpine-worker namespace labelled', labelAlpineWorker, { icmp: ALPINE_ADMITTED });
    await expectThroughService({ aw: true, my: false });
    await steps.change('label removed', unlabelAlpineWorker, { icmp: NGINX_CLOSED });
    await expectThroughService({ aw: false, my: false });
  });

  it('kubectl delete: the nginx pods are open again', async () => {
    await steps.change('ns-svc-isolation.yaml deleted', kubectlDelete(policy()), { icmp: OPEN });
    await expectThroughService({ aw: true, my: true });
  });
});
