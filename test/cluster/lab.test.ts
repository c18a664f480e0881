// The lab itself (scripts/lab/up.sh, brought up by the cluster project's global setup): a real
// Kubernetes 1.20.2 control plane with nodes that each have their own netns, mount namespace,
// containerd and kubelet. These are the properties the other cluster tests rely on.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  apply, cgroupPids, hostNetworkPod, hostSysctl, kubectl, kubectlJson, kubectlOk, type KubeObject,
  nodeExec, pidAlive, readLab, restartApiserver, startNode, stopNode, uniqueName, waitForDeleted,
  waitForEvent, waitForNodeHeartbeat, waitForObject, waitForPodPhase, waitForPodReady,
} from './harness/lab';

const created: string[] = [];

afterAll(async () => {
  if (created.length === 0) return;
  await kubectl(['delete', 'pod', '-n', 'default', '--ignore-not-found', '--wait=false', ...created]);
  // The last test restarts the apiserver: a kubelet still re-establishing its watch can take past
  // a minute to see the deletion (CI saw it once). These are throwaway hostNetwork pods: the API
  // object is removed by force then, and kubelet stops the container when it resyncs.
  const left = (await Promise.all(created.map((p) => waitForDeleted(`pod/${p}`, { namespace: 'default', timeoutMs: 90_000 }).then(() => [], () => [p])))).flat();
  if (left.length > 0) {
    console.warn(`lab.test cleanup: ${left.join(' ')} not deleted within 90 s; deleting by force`);
    await kubectlOk(['delete', 'pod', '-n', 'default', '--ignore-not-found', '--grace-period=0', '--force', ...left]);
  }
});

async function runToolsPod(node: string, script: string): Promise<string> {
  const name = uniqueName(`tools-${node}`);
  created.push(name);
  await apply(hostNetworkPod(name, node, script));
  await waitForPodReady('default', name);
  return name;
}

function containerId(pod: KubeObject): string {
  return String(pod.status?.containerStatuses?.[0]?.containerID ?? '');
}

describe('lab cluster', () => {
  it('registers every node with kubelet v1.20.2 against a v1.20.2 apiserver', async () => {
    const lab = readLab();
    expect(lab.nodes.length).toBeGreaterThanOrEqual(2);
    const version = await kubectlJson<{ serverVersion: { gitVersion: string } }>(['version']);
    expect(version.serverVersion.gitVersion).toBe('v1.20.2');
    const nodes = await kubectlJson<{ items: KubeObject[] }>(['get', 'nodes']);
    const byName = new Map(nodes.items.map((n) => [n.metadata.name as string, n]));
    expect([...byName.keys()].sort()).toEqual(lab.nodes.map((n) => n.name).sort());
    for (const n of lab.nodes) {
      const obj = byName.get(n.name) as KubeObject;
      expect(obj.status.nodeInfo.kubeletVersion).toBe('v1.20.2');
      expect(obj.status.nodeInfo.containerRuntimeVersion).toMatch(/^containerd:\/\//);
      const internal = (obj.status.addresses as KubeObject[]).find((a) => a.type === 'InternalIP');
      expect(internal?.address).toBe(n.ip);
    }
  });

  it('has the default ServiceAccount', async () => {
    const sa = await kubectlJson(['get', 'serviceaccount', 'default', '-n', 'default']);
    expect((sa.metadata as KubeObject).name).toBe('default');
  });

  it('gives every node its own /etc/cni/net.d, /run/netns, ... (mount namespaces)', async () => {
    const [a, b] = readLab().nodes;
    if (!a || !b) throw new Error('the lab needs two nodes');
    const file = `.lab-isolation-${uniqueName('f')}`;
    const inNode = `/etc/cni/net.d/${file}`;
    try {
      const w = await nodeExec(a.name, ['sh', '-c', `echo from-${a.name} > ${inNode}`]);
      expect(w.code, w.stderr).toBe(0);
      expect((await nodeExec(a.name, ['cat', inNode])).stdout.trim()).toBe(`from-${a.name}`);
      expect((await nodeExec(b.name, ['test', '-e', inNode])).code).toBe(1);
      expect(existsSync(inNode)).toBe(false);
      expect(readFileSync(join(a.dir, 'fs', 'etc-cni-net.d', file), 'utf8').trim()).toBe(`from-${a.name}`);
    } finally {
      await nodeExec(a.name, ['rm', '-f', inNode]);
    }
    // The node sees its own /run/netns, not the host's (where the node's own netns is mounted).
    const netns = await nodeExec(a.name, ['ls', '-a', '/run/netns']);
    expect(netns.code).toBe(0);
    expect(netns.stdout).not.toContain(a.netns);
    // containerd's socket and CNI plugin dir are the node's own as well.
    expect((await nodeExec(a.name, ['test', '-S', '/run/containerd/containerd.sock'])).code).toBe(0);
    expect(existsSync('/run/containerd/containerd.sock')).toBe(false);
    expect((await nodeExec(a.name, ['test', '-x', '/opt/cni/bin/loopback'])).code).toBe(0);
  });

  it('runs a hostNetwork pod of lab/tools on every node', async () => {
    const lab = readLab();
    const pods = await Promise.all(lab.nodes.map((n) =>
      runToolsPod(n.name, `echo tools-up; sleep 3600 & wait`).then((pod) => ({ pod, node: n }))));
    for (const { pod, node } of pods) {
      const obj = await waitForPodPhase('default', pod, 'Running');
      expect(obj.spec.nodeName).toBe(node.name);
      expect(obj.status.podIP).toBe(node.ip);
      // exec and logs go apiserver -> kubelet over the underlay.
      const addr = await kubectlOk(['exec', '-n', 'default', pod, '--', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
      expect(addr).toContain(`inet ${node.ip}/24`);
      expect(await kubectlOk(['logs', '-n', 'default', pod])).toContain('tools-up');
    }
  });

  it('puts back the host sysctls kubelet rewrote', () => {
    const saved = readLab().savedSysctls;
    expect(Object.keys(saved)).toEqual(expect.arrayContaining(['kernel.panic', 'kernel.panic_on_oops', 'vm.overcommit_memory']));
    for (const [k, v] of Object.entries(saved)) expect(`${k}=${hostSysctl(k)}`).toBe(`${k}=${v}`);
  });

  it('stops and starts a node: containers outlive a runtime crash, the node reports again', async () => {
    const lab = readLab();
    const node = lab.nodes[lab.nodes.length - 1];
    if (!node) throw new Error('no node');
    const pod = await runToolsPod(node.name, 'sleep 3600 & wait');
    const before = containerId(await kubectlJson(['get', 'pod', pod, '-n', 'default']));
    expect(before).not.toBe('');

    await stopNode(node.name);
    expect(pidAlive(node.kubeletPid)).toBe(false);
    expect(pidAlive(node.containerdPid)).toBe(false);
    expect(readLab().nodes.find((n) => n.name === node.name)?.kubeletPid).toBeNull();
    // The pod's processes are still there: only the agents went down.
    expect(cgroupPids(node.cgroupRoot).length).toBeGreaterThan(0);

    const since = new Date();
    await startNode(node.name);
    const after = readLab().nodes.find((n) => n.name === node.name);
    expect(pidAlive(after?.kubeletPid)).toBe(true);
    expect(after?.kubeletPid).not.toBe(node.kubeletPid);
    const obj = await waitForNodeHeartbeat(node.name, since);
    expect(obj.status.nodeInfo.kubeletVersion).toBe('v1.20.2');
    const started = await waitForEvent({ involvedName: node.name, reason: 'Starting', since });
    expect(started.source?.component).toBe('kubelet');
    await waitForPodReady('default', pod);
    expect(containerId(await kubectlJson(['get', 'pod', pod, '-n', 'default']))).toBe(before);
    for (const [k, v] of Object.entries(readLab().savedSysctls)) expect(`${k}=${hostSysctl(k)}`).toBe(`${k}=${v}`);

    // A whole-node crash: the pod's processes die too; the restarted kubelet runs the pod again.
    await stopNode(node.name, { allProcesses: true });
    expect(cgroupPids(node.cgroupRoot)).toEqual([]);
    const since2 = new Date();
    await startNode(node.name);
    await waitForNodeHeartbeat(node.name, since2);
    const again = await waitForObject('pods', (o) =>
      o.metadata?.name === pod && containerId(o) !== '' && containerId(o) !== before
      && o.status?.containerStatuses?.[0]?.ready === true,
    { namespace: 'default', fieldSelector: `metadata.name=${pod}`, description: `pod ${pod} running again in a new container` });
    expect(containerId(again)).not.toBe(before);
  });

  it('restarts the apiserver', async () => {
    const old = readLab().controlPlane.pids.apiserver;
    await restartApiserver();
    const now = readLab().controlPlane.pids.apiserver;
    expect(pidAlive(old)).toBe(false);
    expect(pidAlive(now)).toBe(true);
    expect(now).not.toBe(old);
    expect(await kubectlOk(['get', 'nodes', '-o', 'name'])).toContain(`node/${readLab().nodes[0]?.name}`);
  });
});
