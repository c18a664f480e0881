// Services without kube-proxy on the real lab cluster: a Service (type NodePort) with two backend
// pods on two nodes becomes an OVN load balancer in every node's own NB; client pods on every node
// reach it by its ClusterIP and are answered by backends on other nodes; the outside (a netns of
// this run on the underlay) reaches it on every node's address at its node port; a deleted backend
// leaves every node's load balancer (the time until the last node's NB shows it is printed) and
// stops receiving traffic. Backends answer with their pod name, so the test sees who answered.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, kubectlJson, kubectlOk, readLab, uniqueName, waitForPodReady, type KubeObject } from './harness/lab';
import { podAddress } from './harness/matrix';
import { createNamespace, deleteNamespace, deployOvnode, nbctl, podExec, testPod } from './harness/ovnode';
import { Outside } from './harness/outside';

const NS = uniqueName('svc');
const SERVICE = 'web';
const outside = new Outside();
let nodes: string[] = [];
let clusterIp = '';
let nodePort = 0;
const backends: Array<{ name: string; node: string; ip: string }> = [];
const clients: Array<{ name: string; node: string }> = [];

/** A pod whose HTTP server on 8080 answers with the pod's name. */
function backendPod(name: string, node: string): KubeObject {
  const pod = testPod({ name, namespace: NS, node, labels: { app: SERVICE } });
  pod.spec.containers[0].command = ['/bin/sh', '-c', "trap 'exit 0' TERM; hostname > /tmp/index.html; httpd -f -p 8080 -h /tmp & wait"];
  return pod;
}

/** GET / through `target` from a client pod: the answering backend's name, or "" on failure. */
async function askFrom(client: string, target: string): Promise<string> {
  const r = await podExec(NS, client, ['sh', '-c', `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${target} | tail -n 1`]);
  return r.stdout.trim();
}

/** Every node's NB: the backends of the Service's TCP load balancer. */
async function lbBackends(node: string): Promise<string> {
  return (await nbctl(node, ['--bare', '--columns=vips', 'find', 'Load_Balancer', `name="Service_${NS}/${SERVICE}_TCP"`])).trim();
}

beforeAll(async () => {
  nodes = readLab().nodes.map((n) => n.name);
  expect(nodes.length).toBeGreaterThanOrEqual(3);
  await deployOvnode();
  await createNamespace(NS);
  // Backends on the second and third node, a client on every node.
  const specs = [
    { name: 'b1', node: nodes[1] as string },
    { name: 'b2', node: nodes[2] as string },
  ];
  for (const s of specs) await apply(backendPod(s.name, s.node));
  for (const [i, node] of nodes.entries()) {
    clients.push({ name: `c${i}`, node });
    await apply(testPod({ name: `c${i}`, namespace: NS, node }));
  }
  await apply({
    apiVersion: 'v1', kind: 'Service', metadata: { name: SERVICE, namespace: NS },
    spec: { type: 'NodePort', selector: { app: SERVICE }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
  });
  await Promise.all([...specs.map((s) => waitForPodReady(NS, s.name)), ...clients.map((c) => waitForPodReady(NS, c.name))]);
  for (const s of specs) backends.push({ ...s, ip: await podAddress(NS, s.name) });
  const svc = await kubectlJson<KubeObject>(['-n', NS, 'get', 'service', SERVICE]);
  clusterIp = svc.spec.clusterIP;
  nodePort = svc.spec.ports[0].nodePort;
  await outside.start();
}, 600_000);

afterAll(async () => {
  await outside.stop();
  await deleteNamespace(NS);
});

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - t0;
}

describe('Services as OVN load balancers on every node (real lab cluster, no kube-proxy)', () => {
  it('every node\'s NB holds the Service\'s ClusterIP and backends once they are ready', async () => {
    for (const n of nodes) {
      await until(async () => { const v = await lbBackends(n); return backends.every((b) => v.includes(`${b.ip}:8080`)); }, `${n}: both backends in its load balancer`);
      expect(await lbBackends(n), n).toContain(`${clusterIp}:80`);
    }
  });

  it('client pods on every node reach the ClusterIP, answered by backends on other nodes too', async () => {
    const seen = new Set<string>();
    for (const c of clients) {
      for (let i = 0; i < 8; i++) {
        const who = await askFrom(c.name, `${clusterIp} 80`);
        expect(backends.map((b) => b.name), `${c.name}@${c.node} -> ${clusterIp}:80`).toContain(who);
        seen.add(`${c.node}>${who}`);
      }
    }
    // The client on the first node has no backend on its node: all its answers came over a tunnel.
    expect([...seen].filter((s) => s.startsWith(`${nodes[0]}>`)).length, [...seen].join(' ')).toBeGreaterThan(0);
    expect(new Set([...seen].map((s) => s.split('>')[1])).size, 'both backends answered someone').toBe(2);
  });

  it('the outside reaches the Service at every node\'s address on its node port', async () => {
    for (const n of readLab().nodes) {
      const r = await outside.exec(['sh', '-c', `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${n.ip} ${nodePort} | tail -n 1`]);
      expect(backends.map((b) => b.name), `outside -> ${n.name} ${n.ip}:${nodePort}: ${r.stderr}`).toContain(r.stdout.trim());
    }
  });

  it('a deleted backend leaves every node\'s load balancer and gets no more traffic', async () => {
    const gone = backends[0] as { name: string; ip: string };
    const t0 = Date.now();
    await kubectlOk(['-n', NS, 'delete', 'pod', gone.name, '--wait=false']);
    const ms = await Promise.all(nodes.map((n) => until(async () => !(await lbBackends(n)).includes(`${gone.ip}:`), `${n}: ${gone.ip} out of the load balancer`)));
    console.log(`backend ${gone.name} out of every node's load balancer ${Date.now() - t0} ms after the delete (per node: ${ms.join(', ')} ms)`);
    for (const c of clients) {
      for (let i = 0; i < 6; i++) expect(await askFrom(c.name, `${clusterIp} 80`), `${c.name} after ${gone.name} was deleted`).toBe(backends[1]?.name);
    }
  });
});
