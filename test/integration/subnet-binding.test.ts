// Subnet placement on the real datapath: a namespace listed in a Subnet's spec.namespaces puts
// its pods in that subnet (no annotation needed), excludeIps are never handed out, a
// logical_switch annotation wins over the namespace binding, and pods of a bound namespace reach
// the subnet's gateway and, through the node's router, pods of the default subnet.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type ClusterPod } from './harness/cluster';
import { requireArtefacts } from './harness/paths';

const SUBNET = `apiVersion: kubeovn.io/v1
kind: Subnet
metadata:
  name: team-a
spec:
  cidrBlock: 172.30.0.0/24
  gateway: 172.30.0.1
  excludeIps:
  - 172.30.0.2..172.30.0.9
  namespaces:
  - team-a
`;

let cluster: TestCluster | undefined;
const pods: Record<string, ClusterPod> = {};

function theCluster(): TestCluster {
  if (!cluster) throw new Error('cluster not started');
  return cluster;
}

beforeAll(async () => {
  requireArtefacts();
  cluster = await TestCluster.start({ name: 'bind' });
  cluster.writeNamespace('team-a');
  cluster.writeNamespace('other');
  cluster.writeManifest('subnet-team-a.yaml', SUBNET);
  await cluster.waitApplied();
  const [a1, a2, pinned, outside] = await cluster.addPods([
    { name: 'a1', namespace: 'team-a' },
    { name: 'a2', namespace: 'team-a' },
    { name: 'pinned', namespace: 'team-a', annotations: { 'ovn.kubernetes.io/logical_switch': 'ovn-default' } },
    { name: 'o1', namespace: 'other' },
  ]);
  Object.assign(pods, { a1, a2, pinned, outside });
});

afterAll(async () => {
  await cluster?.destroy();
});

describe('Subnet spec.namespaces (real OVS/OVN userspace datapath)', () => {
  it('puts the pods of a bound namespace in the subnet, past its excludeIps', () => {
    const { a1, a2 } = pods as Record<string, ClusterPod>;
    expect(a1?.ip).toMatch(/^172\.30\.0\./);
    expect(a2?.ip).toMatch(/^172\.30\.0\./);
    for (const ip of [a1?.ip, a2?.ip]) expect(Number((ip as string).split('.')[3])).toBeGreaterThanOrEqual(10);
    expect(a1?.ip).not.toBe(a2?.ip);
  });

  it('leaves other namespaces, and a pod whose annotation names another switch, where they belong', () => {
    expect(pods.outside?.ip).toMatch(/^10\.16\./);
    expect(pods.pinned?.ip).toMatch(/^10\.16\./);
  });

  it('pods reach each other, their gateway, and the default subnet through the router', () => {
    const c = theCluster();
    const { a1, a2, outside } = pods as Record<string, ClusterPod>;
    expect(c.netns.ping(a1!.ns, a2!.ip)).toBe(true);
    expect(c.netns.ping(a1!.ns, '172.30.0.1')).toBe(true);
    expect(c.netns.ping(a1!.ns, outside!.ip)).toBe(true);
    expect(c.netns.ping(outside!.ns, a2!.ip)).toBe(true);
  });
});
