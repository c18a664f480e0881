// 100 pods created at once across the lab's nodes (one `kubectl apply` of a List, the pods spread
// round-robin over every node; pause containers, so the test measures the network and not the
// images): every pod runs with an address no other pod has; its annotation, the address the
// runtime reports (status.podIP), its port in its own node's NB and its remote port in every other
// node's NB agree; the address lies in a block its node claimed. The time until all are Running
// is printed. The namespace is deleted in afterAll, also after a failure.

import { describe, expect, it } from 'vitest';
import { apply, kubectlJson, kubectlOk, readLab, PAUSE_IMAGE, type KubeObject } from './harness/lab';
import { nbPorts, useTestNamespace, type NbPort } from './harness/ovnode';

/** Graceful delete, then (as deleteNamespace does) force-delete the API objects kubelet is slow to remove. */
async function deleteNamespacePods(): Promise<void> {
  await kubectlOk(['-n', NS, 'delete', 'pods', '--all', '--wait=false'], { timeoutMs: 60_000 });
  const nodes = readLab().nodes.map((n) => n.name);
  const t0 = Date.now();
  while (Date.now() - t0 < 120_000) {
    const local = (await Promise.all(nodes.map(async (n) => [...(await portsOn(n)).values()].filter((p) => p.type === '').length))).reduce((a, b) => a + b, 0);
    if (local === 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await kubectlOk(['-n', NS, 'delete', 'pods', '--all', '--grace-period=0', '--force', '--wait=true'], { timeoutMs: 120_000 });
}

const NS = useTestNamespace('scale');
const COUNT = 100;

function inCidr(ip: string, cidr: string): boolean {
  const [net, bits] = cidr.split('/') as [string, string];
  const v = (a: string): number => a.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  return Math.floor(v(ip) / size) === Math.floor(v(net) / size);
}

/** Name -> "MAC IP" of the logical switch ports of this namespace in a node's NB, and their type. */
async function portsOn(node: string): Promise<Map<string, NbPort>> {
  return new Map([...(await nbPorts(node))].filter(([name]) => name.endsWith(`.${NS}`)));
}

describe(`${COUNT} pods created at once across the nodes (real lab cluster)`, () => {
  it('all run with distinct addresses; annotations, runtime, local and remote NB ports and claims agree', async () => {
    const nodes = readLab().nodes.map((n) => n.name);
    const items = Array.from({ length: COUNT }, (_, i) => ({
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `p${i}`, namespace: NS },
      spec: { nodeName: nodes[i % nodes.length], terminationGracePeriodSeconds: 1, containers: [{ name: 'pause', image: PAUSE_IMAGE, imagePullPolicy: 'Never' }] },
    }));
    const t0 = Date.now();
    await apply({ apiVersion: 'v1', kind: 'List', items }, 120_000);
    let pods: KubeObject[] = [];
    for (;;) {
      pods = (await kubectlJson<{ items: KubeObject[] }>(['-n', NS, 'get', 'pods'])).items;
      if (pods.length === COUNT && pods.every((p) => p.status?.phase === 'Running' && p.status?.podIP)) break;
      if (Date.now() - t0 > 300_000) {
        const stuck = pods.filter((p) => p.status?.phase !== 'Running').map((p) => `${p.metadata.name}:${p.status?.phase}`);
        throw new Error(`not all ${COUNT} pods Running within 300 s: ${stuck.slice(0, 10).join(' ')}`);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    console.log(`${COUNT} pods on ${nodes.length} nodes Running ${Date.now() - t0} ms after one kubectl apply`);

    const ips = pods.map((p) => p.metadata.annotations?.['ovn.kubernetes.io/ip_address'] as string);
    expect(new Set(ips).size, 'distinct addresses').toBe(COUNT);
    const claims = (await kubectlJson<{ items: KubeObject[] }>(['get', 'ipclaims'])).items;
    // Remote ports follow the pods' annotations, written back after each ADD: wait for them.
    let nbOf = new Map<string, Map<string, NbPort>>();
    const t1 = Date.now();
    do {
      nbOf = new Map(await Promise.all(nodes.map(async (n) => [n, await portsOn(n)] as const)));
      if ([...nbOf.values()].every((m) => m.size === COUNT)) break;
      await new Promise((r) => setTimeout(r, 500));
    } while (Date.now() - t1 < 30_000);
    console.log(`every node's NB holds all ${COUNT} ports ${Date.now() - t0} ms after the apply`);
    for (const p of pods) {
      const name = p.metadata.name as string;
      const node = p.spec.nodeName as string;
      const ip = p.metadata.annotations['ovn.kubernetes.io/ip_address'] as string;
      const mac = p.metadata.annotations['ovn.kubernetes.io/mac_address'] as string;
      expect(p.status.podIP, `${name}: the runtime reports the CNI result`).toBe(ip);
      const block = claims.find((c) => c.spec.kind === 'block' && c.spec.node === node && inCidr(ip, c.spec.cidr as string));
      expect(block, `${name}: a block claim of ${node} holding ${ip}`).toBeTruthy();
      for (const n of nodes) {
        const port = nbOf.get(n)?.get(`${name}.${NS}`);
        expect(port, `${n}'s NB: port of ${name}@${node}`).toBeDefined();
        expect(port?.line, `${n}'s NB: ${name}`).toBe(`${mac} ${ip}`);
        expect(port?.type, `${n}'s NB: ${name} is a VIF port`).toBe('');
        expect(port?.remoteNode, `${n}'s NB: ${name} is ${n === node ? 'local' : `held for ${node}`}`).toBe(n === node ? undefined : node);
      }
    }
  });

  it('deleting them all leaves no port of theirs, local or remote, in any node\'s NB', async () => {
    const nodes = readLab().nodes.map((n) => n.name);
    const t0 = Date.now();
    await deleteNamespacePods();
    let left: string[] = [];
    do {
      left = (await Promise.all(nodes.map(async (n) => [...(await portsOn(n)).keys()].map((k) => `${n}:${k}`)))).flat();
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    } while (Date.now() - t0 < 120_000);
    expect(left.slice(0, 10), `${left.length} ports left`).toEqual([]);
    console.log(`${COUNT} pods deleted: every node's NB clean ${Date.now() - t0} ms after the delete`);
  });
});
