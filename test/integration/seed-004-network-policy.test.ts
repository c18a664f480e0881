// Seed 004 ("Kube-OVN Virtual Machine Isolation"), Network Policies: five "VMs" VM1..VM5 at
// 172.20.10.2..6 in namespace default on vswitch1 (a Subnet without ACLs), and the published
// NetworkPolicy examples (test/fixtures/seeds/np-1..4.yaml) written into the manifests directory
// one at a time. Each gives the reachability matrix the seed describes, measured with real
// packets (ICMP and TCP, every ordered pair, plus ICMP to the gateway 172.20.10.1).
//
// How the expectations are derived (Kubernetes NetworkPolicy semantics; a policy without
// podSelector selects every pod of its namespace):
// - A -> B is allowed when (A is not egress-isolated, or an egress rule of a policy selecting A
//   admits B) and (B is not ingress-isolated, or an ingress rule of a policy selecting B admits A);
// - ipBlock 172.20.10.0/30 = 172.20.10.0-3: VM1 (.2), VM2 (.3) and the gateway (.1);
// - connections are stateful: replies of an allowed connection pass;
// - the gateway is not a pod: it is never isolated, only egress rules of the sender apply to it.
//
// Example 3 as published says `policyTypes: [egress]` (lower case): Kubernetes rejects that
// ("Unsupported value: \"egress\""), so does ovnode, and nothing changes; written with `Egress`
// it gives the seed's matrix. One ovnoded node for the whole file; everything is removed in
// afterAll, even when a test fails.

import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { seedFixture } from './harness/cluster';
import { matrix } from './harness/matrix';
import { ALL_OPEN, useFiveVms, VM_IPS } from './harness/seed-004-vms';
import { NP_EXAMPLE_1 as EXAMPLE_1, NP_EXAMPLE_2 as EXAMPLE_2, NP_EXAMPLE_3 as EXAMPLE_3, NP_EXAMPLE_4 as EXAMPLE_4 } from './harness/seed-004-expected';

const POLICY_FILE = 'networkpolicy-ip-block.yaml';

// ---------------------------------------------------------------- expected matrices, from the seed
// In harness/seed-004-expected.ts (shared with the cluster test), one per example, with why.

// ---------------------------------------------------------------- the cluster

const five = useFiveVms('np');

/** The published example 3 with the one mistake fixed: `egress` -> `Egress`. */
function example3Corrected(): string {
  const text = seedFixture('np-3.yaml');
  const fixed = text.replace(/^(\s*-\s*)egress\s*$/m, '$1Egress');
  expect(fixed, 'np-3.yaml has the lowercase policyType to fix').not.toBe(text);
  expect((YAML.parse(fixed) as { spec: { policyTypes: string[] } }).spec.policyTypes).toEqual(['Egress']);
  return fixed;
}

async function applyPolicy(yamlText: string, what: string): Promise<void> {
  const c = five.cluster;
  c.writeManifest(POLICY_FILE, yamlText);
  const applied = await c.waitApplied();
  console.log(`${what}: applied after ${applied.ms} ms (version ${applied.version})`);
}

async function removePolicy(what: string): Promise<void> {
  const c = five.cluster;
  c.removeManifest(POLICY_FILE);
  const applied = await c.waitApplied();
  console.log(`${what}: applied after ${applied.ms} ms (version ${applied.version})`);
}

describe('seed 004: NetworkPolicies between five VMs in namespace default (real OVS/OVN userspace datapath)', () => {
  it('without a policy everything is open (VMs at their static addresses in vswitch1)', async () => {
    expect(five.vms.map((p) => p.ip)).toEqual(VM_IPS);
    await five.expectMatrix('no NetworkPolicy', ALL_OPEN);
  });

  it('example 1: ingress and egress limited to 172.20.10.0/30 for every pod: only VM1 <-> VM2', async () => {
    await applyPolicy(seedFixture('np-1.yaml'), 'NetworkPolicy example 1');
    await five.expectMatrix('NetworkPolicy example 1', EXAMPLE_1);
  });

  it('example 2: ingress only from 172.20.10.0/30: VM1 and VM2 reach everyone, VM3..VM5 nobody', async () => {
    await applyPolicy(seedFixture('np-2.yaml'), 'NetworkPolicy example 2');
    await five.expectMatrix('NetworkPolicy example 2', EXAMPLE_2);
  });

  it('example 4: only VM2 (pod selector) is isolated and talks to VM1 only', async () => {
    await applyPolicy(seedFixture('np-4.yaml'), 'NetworkPolicy example 4');
    await five.expectMatrix('NetworkPolicy example 4', EXAMPLE_4);
  });

  it('deleting the policy file opens everything again', async () => {
    await removePolicy('NetworkPolicy file removed');
    await five.expectMatrix('NetworkPolicy file removed', ALL_OPEN);
  });

  it('example 3 as published (policyTypes: [egress]) is rejected with Kubernetes\' message and changes nothing', async () => {
    const c = five.cluster;
    const published = seedFixture('np-3.yaml');
    expect((YAML.parse(published) as { spec: { policyTypes: string[] } }).spec.policyTypes).toEqual(['egress']);
    c.writeManifest(POLICY_FILE, published);
    // The log line first (it shows the daemon has read the file), but the matrix is measured and
    // reported even when the line does not come.
    const rejected = await c.waitRejected('Unsupported value: "egress"').catch((e: unknown) => e as Error);
    if (!(rejected instanceof Error)) console.log(`NetworkPolicy example 3 as published: ${rejected.raw}`);
    // The daemon keeps serving the rest of the directory (Subnet, Namespace, Pods): still all open.
    await five.expectMatrix('NetworkPolicy example 3 as published (rejected)', ALL_OPEN);
    if (rejected instanceof Error) throw rejected;
  });

  it('example 3 with `Egress`: egress only to 172.20.10.0/30: everyone reaches VM1 and VM2, VM1 and VM2 nobody else', async () => {
    await applyPolicy(example3Corrected(), 'NetworkPolicy example 3 (Egress)');
    await five.expectMatrix('NetworkPolicy example 3 (Egress)', EXAMPLE_3);
  });

  it('deleting the corrected example 3 opens everything again', async () => {
    await removePolicy('NetworkPolicy example 3 removed');
    await five.expectMatrix('NetworkPolicy example 3 removed', ALL_OPEN);
  });
});
