// ovnode on the real lab cluster when things around it fail or are refused: the apiserver
// refuses seed 004's NetworkPolicy example 3 as published (kubectl says why); a Subnet the
// schema admits but ovnode cannot honour gets an Event saying why; an apiserver restart while a
// policy changes leaves the datapath matching the API; a node whose kubelet, containerd and every
// pod process (ovnode's included) are killed comes back with its pods networked and no leftovers,
// while pods on the other nodes keep talking, and rejoins them; a Node deleted from the API
// leaves every other zone and its claims are collected, and rejoins once re-registered.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apply, kubectl, kubectlJson, kubectlOk, labNode, type KubeObject, nodeExec, REPO, restartApiserver, startNode, stopNode, waitForEvent, waitForNodeReady, waitForPodReady } from './harness/lab';
import { daemonPod, httpFrom, nbctl, nbPorts, pingFrom, sbctl, testPod, useTestNamespace, waitDaemonSetReady } from './harness/ovnode';

const NS = useTestNamespace('ovr');

afterAll(async () => {
  await kubectl(['delete', 'subnet', 'refused-gw', '--ignore-not-found']);
});

async function ipOf(name: string): Promise<string> {
  const pod = await kubectlJson<KubeObject>(['-n', NS, 'get', 'pod', name]);
  return pod.metadata.annotations['ovn.kubernetes.io/ip_address'] as string;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not reached within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('refusals, an apiserver restart and a node crash (real lab cluster)', () => {
  it('seed 004 NetworkPolicy example 3 as published is refused by kubectl and by the apiserver itself, each saying why', async () => {
    const published = readFileSync(join(REPO, 'test', 'fixtures', 'seeds', 'np-3.yaml'), 'utf8').replace('namespace: default', `namespace: ${NS}`);
    const r = await kubectl(['apply', '-f', '-'], { input: published });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/missing required field "podSelector"/);
    // Past kubectl's own schema check, the apiserver refuses the lowercase policy type.
    const server = await kubectl(['apply', '--validate=false', '-f', '-'], { input: published });
    expect(server.code).not.toBe(0);
    expect(server.stderr).toMatch(/spec\.policyTypes\[0\]: Unsupported value: "egress"/);
    expect((await kubectl(['-n', NS, 'get', 'networkpolicy', 'ip-block'])).code).not.toBe(0);
  });

  it('a Subnet the schema admits but ovnode cannot honour gets a Warning Event saying why', async () => {
    const since = new Date();
    await apply({ apiVersion: 'kubeovn.io/v1', kind: 'Subnet', metadata: { name: 'refused-gw' }, spec: { cidrBlock: '10.77.0.0/24', gateway: '10.78.0.1', protocol: 'IPv4' } });
    const event = await waitForEvent({ involvedName: 'refused-gw', reason: 'SubnetRefused', since, namespace: 'default', timeoutMs: 60_000 });
    expect(event.type).toBe('Warning');
    expect(event.message).toMatch(/gateway 10\.78\.0\.1 is not in cidr 10\.77\.0\.0\/24/);
    const described = await kubectlOk(['describe', 'subnet', 'refused-gw']);
    expect(described).toMatch(/SubnetRefused/);
  });

  it('after an apiserver restart during policy changes, the datapath matches the API', async () => {
    await apply({ apiVersion: 'v1', kind: 'List', items: ['c1', 's1'].map((n) => testPod({ name: n, namespace: NS, node: 'node2', labels: { app: n } })) });
    await Promise.all(['c1', 's1'].map((n) => waitForPodReady(NS, n, 120_000)));
    const s1 = await ipOf('s1');
    expect(await httpFrom(NS, 'c1', s1)).toBe('ok');
    // The policy lands and the apiserver goes away at once: the daemons see the change either
    // before the restart or by resuming (or re-listing) after it.
    const policy = {
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'isolate-s1', namespace: NS },
      spec: { podSelector: { matchLabels: { app: 's1' } }, policyTypes: ['Ingress'] },
    };
    await apply(policy);
    await restartApiserver();
    await until(async () => (await httpFrom(NS, 'c1', s1)) === '', 'c1 -> s1 dropped after the restart');
    await kubectlOk(['-n', NS, 'delete', 'networkpolicy', 'isolate-s1']);
    const restarted = restartApiserver();
    await restarted;
    await until(async () => (await httpFrom(NS, 'c1', s1)) === 'ok', 'c1 -> s1 open again once the policy is deleted');
  });

  it('a node whose kubelet, containerd and pod processes are killed comes back with its pods networked and nothing left over', async () => {
    // k1, k2 on the node that goes down; w2, w3 on two others, which must not notice.
    const placed: Array<[string, string]> = [['k1', 'node1'], ['k2', 'node1'], ['w2', 'node2'], ['w3', 'node3']];
    await apply({ apiVersion: 'v1', kind: 'List', items: placed.map(([n, node]) => testPod({ name: n, namespace: NS, node, labels: { app: n } })) });
    await Promise.all(placed.map(([n]) => waitForPodReady(NS, n, 120_000)));
    const before = { k1: await ipOf('k1'), k2: await ipOf('k2') };
    const w3 = await ipOf('w3');
    expect(await httpFrom(NS, 'w2', w3)).toBe('ok');
    await stopNode('node1', { allProcesses: true });
    // The other nodes' pods keep talking across their tunnel while node1 is down.
    expect(await pingFrom(NS, 'w2', w3)).toBe(true);
    expect(await httpFrom(NS, 'w2', w3)).toBe('ok');
    await startNode('node1');
    await waitForNodeReady('node1', 180_000);
    await waitDaemonSetReady('ovnode-ovs', 300_000);
    await waitDaemonSetReady('ovnode', 300_000);
    for (const n of ['k1', 'k2']) await waitForPodReady(NS, n, 180_000);
    // The pods keep their addresses (the written-back record is reused) and talk again.
    expect({ k1: await ipOf('k1'), k2: await ipOf('k2') }).toEqual(before);
    await until(async () => pingFrom(NS, 'k1', before.k2, 1), 'k1 -> k2 after the node came back', 60_000);
    expect(await httpFrom(NS, 'k2', before.k1)).toBe('ok');
    // ... and rejoined the others: across the tunnels both ways.
    await until(async () => (await httpFrom(NS, 'k1', w3)) === 'ok', 'k1 (node1) -> w3 (node3) after the node came back', 60_000);
    expect(await httpFrom(NS, 'w2', before.k2)).toBe('ok');
    // Nothing leaks: node1 has exactly one LSP, one OVS port and one veth per pod it networks
    // (the sandboxes that died with the node are gone), once the reconcile loop had its turn.
    const daemon = await daemonPod('ovnode', 'node1');
    await until(async () => {
      // The node's own pod ports: not its node port, not router ports, not other nodes' pods.
      const lsps = [...(await nbPorts('node1'))].filter(([name, p]) => p.remoteNode === undefined && p.type === '' && !name.startsWith('node-')).map(([name]) => name);
      const links = (await nodeExec('node1', ['ip', '-o', 'link', 'show'])).stdout.split('\n').filter((l) => /\d+: [0-9a-f]{12}_h[@:]/.test(l));
      const mine = lsps.filter((l) => l.endsWith(`.${NS}`));
      return mine.length === 2 && links.length === lsps.length;
    }, `node1 holds exactly the pods' LSPs and veths (daemon ${daemon.metadata.name})`, 90_000);
  });

  it('a node that lost its state directory rejoins as itself: one chassis of it everywhere, its transit address kept, its pods talking across nodes', async () => {
    const node = 'node2';
    const transitBefore = (await kubectlJson<KubeObject>(['get', 'node', node])).metadata.annotations['ovnode.io/transit-ip'];
    await stopNode(node, { allProcesses: true });
    // Everything OVS/OVN kept for this node goes: databases, checkpoints, the claims cache.
    const state = join(labNode(node).dir, 'fs', 'var-lib-ovnode');
    for (const entry of readdirSync(state)) rmSync(join(state, entry), { recursive: true, force: true });
    await startNode(node);
    await waitForNodeReady(node, 180_000);
    await waitDaemonSetReady('ovnode-ovs', 300_000);
    await waitDaemonSetReady('ovnode', 300_000);
    await waitForPodReady(NS, 'w2', 180_000);
    const w2 = await ipOf('w2');
    const w3 = await ipOf('w3');
    await until(async () => (await httpFrom(NS, 'w3', w2)) === 'ok', 'w3 (node3) -> w2 (node2) after node2 came back without its state', 90_000);
    expect(await httpFrom(NS, 'w2', w3)).toBe('ok');
    expect((await kubectlJson<KubeObject>(['get', 'node', node])).metadata.annotations['ovnode.io/transit-ip'], 'transit address (its claim is in the API)').toBe(transitBefore);
    for (const other of ['node1', 'node3']) {
      const names = (await sbctl(other, ['--bare', '--columns=name', 'list', 'Chassis'])).split('\n').map((l) => l.trim()).filter(Boolean).sort();
      expect(names, `${other}'s SB: one chassis per node, no stale one`).toEqual(['node1', 'node2', 'node3']);
    }
  });

  it('a Node deleted from the API leaves every other zone (chassis, remote ports, node port) and its claims are collected; re-registered, it rejoins', async () => {
    const node = 'node3';
    const others = ['node1', 'node2'];
    const placed: Array<[string, string]> = [['d1', 'node1'], ['d2', 'node2']];
    await apply({ apiVersion: 'v1', kind: 'List', items: placed.map(([n, on]) => testPod({ name: n, namespace: NS, node: on, labels: { app: n } })) });
    await Promise.all(placed.map(([n]) => waitForPodReady(NS, n, 120_000)));
    const [d1, d2] = [await ipOf('d1'), await ipOf('d2')];
    const uidOf = async (): Promise<string> => (await kubectlJson<KubeObject>(['get', 'node', node])).metadata.uid as string;
    const ownedClaims = async (uid: string): Promise<string[]> => (await kubectlJson<{ items: KubeObject[] }>(['get', 'ipclaims'])).items
      .filter((c) => (c.metadata.ownerReferences ?? []).some((o: KubeObject) => o.uid === uid)).map((c) => c.metadata.name as string);
    let stopped = false;
    try {
      const nodeUid = await uidOf();
      expect((await ownedClaims(nodeUid)).length, `${node} owns claims (blocks, its transit address)`).toBeGreaterThan(0);
      // d1 and d2 talk before (d2's port in node1's zone is bound once northd created its binding).
      await until(async () => (await httpFrom(NS, 'd1', d2)) === 'ok', 'd1 (node1) -> d2 (node2) before', 60_000);
      await stopNode(node, { allProcesses: true });
      stopped = true;
      await kubectlOk(['delete', 'node', node, '--wait=true']);
      // The peers' watch sees the Node go: its chassis, its pods' remote ports and its node port go
      // from every other zone, although its pods are still in the API (nothing deleted them yet).
      for (const other of others) {
        await until(async () => {
          const chassis = (await sbctl(other, ['--bare', '--columns=name', 'list', 'Chassis'])).split('\n').map((l) => l.trim()).filter(Boolean).sort();
          const ports = (await nbctl(other, ['--bare', '--columns=name', 'find', 'Logical_Switch_Port', `external_ids:ovnode\\:remote-node=${node}`])).trim();
          return chassis.join(',') === others.join(',') && ports === '';
        }, `${other} holds no chassis and no remote port of the deleted ${node}`, 60_000);
      }
      // Its claims have the Node as owner: the garbage collector removes them with it.
      await until(async () => (await ownedClaims(nodeUid)).length === 0, `the claims owned by ${node} are collected`, 120_000);
      // Removing the tunnel to the deleted node's chassis makes ovn-controller rebuild its flows:
      // allowed a few seconds, no more.
      await until(async () => (await httpFrom(NS, 'd1', d2)) === 'ok', 'node1 <-> node2 after the Node went', 10_000);
      // The node comes back: kubelet registers a new Node, ovnode publishes its contract on it and
      // the others take it in again; a pod started there now talks across nodes.
      await startNode(node);
      stopped = false;
      await waitForNodeReady(node, 180_000);
      await waitDaemonSetReady('ovnode-ovs', 300_000);
      await waitDaemonSetReady('ovnode', 300_000);
      for (const other of others) {
        await until(async () => (await sbctl(other, ['--bare', '--columns=name', 'list', 'Chassis'])).split('\n').map((l) => l.trim()).filter(Boolean).sort().join(',') === 'node1,node2,node3',
          `${other} holds ${node}'s chassis again`, 120_000);
      }
      await apply(testPod({ name: 'w3b', namespace: NS, node, labels: { app: 'w3b' } }));
      await waitForPodReady(NS, 'w3b', 180_000);
      const w3b = await ipOf('w3b');
      await until(async () => (await httpFrom(NS, 'd1', w3b)) === 'ok', `d1 (node1) -> w3b (${node}) after it rejoined`, 90_000);
      // Each zone binds w3b's port once its northd created the binding: waited for, not assumed.
      await until(async () => (await httpFrom(NS, 'w3b', d2)) === 'ok', `w3b (${node}) -> d2 (node2)`, 30_000);
      await until(async () => (await httpFrom(NS, 'w3b', d1)) === 'ok', `w3b (${node}) -> d1 (node1)`, 30_000);
      const newUid = await uidOf();
      expect(newUid).not.toBe(nodeUid);
      expect((await ownedClaims(newUid)).length, `the re-registered ${node} claims its block and transit address again`).toBeGreaterThan(0);
    } finally {
      // Whatever failed, the node comes back for the tests after this one.
      if (stopped) {
        await startNode(node);
        await waitForNodeReady(node, 180_000);
        await waitDaemonSetReady('ovnode', 300_000);
      }
    }
  }, 900_000);
});
