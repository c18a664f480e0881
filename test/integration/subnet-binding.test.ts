// Subnet placement on the real datapath: a namespace listed in a Subnet's spec.namespaces puts
// its pods in that subnet (no annotation needed), excludeIps are never handed out, a
// logical_switch annotation wins over the namespace binding, and pods of a bound namespace reach
// the subnet's gateway and, through the node's router, pods of the default subnet. The node
// itself (kubelet's probes) reaches pods of the Subnet through a route that follows the object.

import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type ClusterPod } from './harness/cluster';
import type { LogLine } from './harness/log-tap';
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

  it('the node routes the Subnet through its node port and reaches its pods; the route goes with the Subnet', async () => {
    const c = theCluster();
    const routeOf = (): string => execFileSync('ip', ['-n', c.node.ns, '-4', 'route', 'show', '172.30.0.0/24'], { encoding: 'utf8' }).trim();
    // The route was set before the daemon applied the Subnet's first pods: no wait needed here.
    expect(routeOf()).toMatch(/^172\.30\.0\.0\/24 via 100\.64\.0\.1 dev ovn0/);
    expect(c.netns.ping(c.node.ns, pods.a1!.ip)).toBe(true);
    // A route removed by hand is not the daemon's business until the Subnet changes or the
    // reconcile loop runs (SIGHUP runs it now).
    execFileSync('ip', ['-n', c.node.ns, 'route', 'del', '172.30.0.0/24']);
    let mark = c.log.mark;
    process.kill(c.node.pid as number, 'SIGHUP');
    await c.log.waitFor(routeLine('node route to a pod subnet'), { from: mark, timeoutMs: 15_000, what: 'the route put back' });
    expect(routeOf()).toMatch(/via 100\.64\.0\.1 dev ovn0/);
    mark = c.log.mark;
    c.removeManifest('subnet-team-a.yaml');
    await c.log.waitFor(routeLine('removed the node route to a subnet that is gone'), { from: mark, timeoutMs: 15_000, what: 'the route removed' });
    expect(routeOf()).toBe('');
    // The default subnet's route is untouched.
    expect(execFileSync('ip', ['-n', c.node.ns, '-4', 'route', 'show', '10.16.0.0/16'], { encoding: 'utf8' })).toMatch(/dev ovn0/);
  });
});

const routeLine = (msg: string) => (l: LogLine): boolean => l.json?.msg === msg && l.json.dst === '172.30.0.0/24';
