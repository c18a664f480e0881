// Seed 003 (OVN-Kubernetes talk, use case "Namespaces Isolation"): a pod named alpine-worker in
// namespace alpine-worker pings a pod of the same name in my-namespace; the NetworkPolicy
// namespace-isolation.yaml of the seed (test/fixtures/seeds/namespace-isolation.yaml) lets into
// my-namespace only traffic from namespaces labelled `namespace: alpine-worker`. In the seed the
// alpine-worker namespace does not carry that label, so after `kubectl apply` the ping fails, and
// after `kubectl delete` it works again. Here additionally: labelling the namespace (editing its
// Namespace manifest) lets the ping through, removing the label shuts it out again.
//
// Every change is a manifest write; the time from the write until the datapath follows is
// measured with a ping started every 50 ms (the first ping of the new behaviour), printed, and
// must be at most 1 s. Pods are on the node's default subnet (no Subnet object). One ovnoded node
// for the whole file; everything is removed in afterAll, even when a test fails.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedFixture, TestCluster, type ClusterPod } from './harness/cluster';
import { requireArtefacts } from './harness/paths';

const POLICY_FILE = 'networkpolicy-namespace-isolation.yaml';
const MAX_MS = 1_000;

let cluster: TestCluster | undefined;
/** alpine-worker/alpine-worker: the client of the seed. */
let client: ClusterPod;
/** my-namespace/alpine-worker: the pod the policy protects. */
let server: ClusterPod;

function theCluster(): TestCluster {
  if (!cluster) throw new Error('cluster not started');
  return cluster;
}

/**
 * Makes a change and measures how long the datapath takes to follow it (client -> server ping
 * starts working when `pingWorks`, stops otherwise); prints it and asserts the 1 s bound, then
 * checks the daemon's "policy applied" line came too.
 */
async function changeAndMeasure(what: string, pingWorks: boolean, change: () => void): Promise<void> {
  const c = theCluster();
  const t = await c.timeUntilPing(client, server.ip, pingWorks, change, { intervalMs: 50, timeoutMs: 3_000 });
  const applied = await c.waitApplied();
  console.log(`${what}: datapath ${pingWorks ? 'passes' : 'drops'} the ping ${t.ms} ms after the manifest write `
    + `(${t.pings} pings at 50 ms intervals); "policy applied" after ${applied.ms} ms (version ${applied.version})`);
  expect(t.ms, `${what}: ping must ${pingWorks ? 'start' : 'stop'} working within ${MAX_MS} ms of the write`).toBeLessThanOrEqual(MAX_MS);
}

async function expectPing(from: ClusterPod, to: ClusterPod, works: boolean, why: string): Promise<void> {
  const c = theCluster();
  // Positive: one of 3 pings answered. Negative: none of 2 answered.
  const ok = works ? await c.ping(from, to.ip, 3) : await c.ping(from, to.ip, 2);
  expect(ok, `${from.alias} -> ${to.alias} (${to.ip}): ${why}`).toBe(works);
}

beforeAll(async () => {
  requireArtefacts();
  cluster = await TestCluster.start({ name: 'nsiso' });
  // As in the seed: neither namespace carries a `namespace` label (only Kubernetes' own
  // kubernetes.io/metadata.name, which writeNamespace adds).
  cluster.writeNamespace('alpine-worker');
  cluster.writeNamespace('my-namespace');
  [client, server] = await cluster.addPods([
    { name: 'alpine-worker', namespace: 'alpine-worker', labels: { app: 'alpine' } },
    { name: 'alpine-worker', namespace: 'my-namespace', labels: { app: 'alpine' } },
  ]) as [ClusterPod, ClusterPod];
});

afterAll(async () => {
  await cluster?.destroy();
});

describe('seed 003: namespace isolation by NetworkPolicy namespaceSelector (real OVS/OVN userspace datapath)', () => {
  it('without a policy the two pods (same name, two namespaces) ping each other', async () => {
    expect(client.ip).not.toBe('');
    expect(server.ip).not.toBe(client.ip);
    await expectPing(client, server, true, 'no policy yet');
    await expectPing(server, client, true, 'no policy yet');
  });

  it('`kubectl apply -f namespace-isolation.yaml`: the unlabelled alpine-worker namespace is shut out', async () => {
    const c = theCluster();
    await changeAndMeasure('policy written', false, () => c.writeManifest(POLICY_FILE, seedFixture('namespace-isolation.yaml')));
    await expectPing(client, server, false, 'my-namespace admits only namespaces labelled namespace=alpine-worker');
    // Only ingress into my-namespace is limited: its pod still reaches alpine-worker (and gets replies).
    await expectPing(server, client, true, 'egress from my-namespace and ingress into alpine-worker are not restricted');
  });

  it('labelling the alpine-worker namespace `namespace: alpine-worker` lets its pod in', async () => {
    const c = theCluster();
    await changeAndMeasure('namespace labelled', true, () => { c.writeNamespace('alpine-worker', { namespace: 'alpine-worker' }); });
    await expectPing(client, server, true, 'the source namespace now matches the namespaceSelector');
  });

  it('removing the label shuts it out again', async () => {
    const c = theCluster();
    await changeAndMeasure('label removed', false, () => { c.writeNamespace('alpine-worker'); });
    await expectPing(client, server, false, 'the source namespace no longer matches');
  });

  it('`kubectl delete -f namespace-isolation.yaml`: the ping works again', async () => {
    const c = theCluster();
    await changeAndMeasure('policy deleted', true, () => c.removeManifest(POLICY_FILE));
    await expectPing(client, server, true, 'no policy any more');
    await expectPing(server, client, true, 'no policy any more');
  });
});
