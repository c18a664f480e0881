// Pods on every node of the lab cluster talk to each other through the nodes' own OVN zones,
// joined over Geneve by the daemons (no central database, no controller): one pod per node in the
// default subnet and one per node in a Subnet of this run, then ICMP and TCP between every pair,
// same subnet and across subnets, with the MAC a remote pod is seen with checked against the
// pod's own. Also: each zone holds the other nodes' pods as remote ports bound to their chassis,
// with the tunnel keys their own nodes gave them; every node's join (transit) address is its own;
// pod MTU follows the overlay interface. Real kubelets, containerd, ovnode deployed by kubectl.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_ANNOTATION } from '../../daemon/cluster/node-contract';
import { apply, kubectl, kubectlJson, nodeExec, readLab, uniqueName, waitForPodReady, type KubeObject } from './harness/lab';
import { Outside, OUTSIDE_PORT } from './harness/outside';
import { expectMatrix, podAddress, uniform, type Peer } from './harness/matrix';
import { createNamespace, deleteNamespace, deployOvnode, freeSubnetCidr, nbctl, nbPorts, podExec, sbctl, testPod } from './harness/ovnode';

const NS = uniqueName('xnode');
const SUBNET = uniqueName('xnode-net');
// Read once the lab is up (globalSetup).
let LAB: ReturnType<typeof readLab>;
let NODES: string[] = [];

interface XPod extends Peer { node: string; subnet: 'default' | 'own' }
let pods: XPod[] = [];
let cidr = '';

beforeAll(async () => {
  LAB = readLab();
  NODES = LAB.nodes.map((n) => n.name);
  expect(NODES.length, 'the lab runs 3 nodes for these tests (NODES=3)').toBeGreaterThanOrEqual(3);
  await deployOvnode();
  await createNamespace(NS);
  cidr = await freeSubnetCidr();
  await apply({ apiVersion: 'kubeovn.io/v1', kind: 'Subnet', metadata: { name: SUBNET }, spec: { cidrBlock: cidr, protocol: 'IPv4', gateway: cidr.replace(/0\/24$/, '1') } });
  const specs = NODES.flatMap((node, i) => [
    { name: `d${i}`, node, subnet: 'default' as const, annotations: {} as Record<string, string> },
    { name: `s${i}`, node, subnet: 'own' as const, annotations: { 'ovn.kubernetes.io/logical_switch': SUBNET } },
  ]);
  const t0 = Date.now();
  for (const s of specs) await apply(testPod({ name: s.name, namespace: NS, node: s.node, annotations: s.annotations }));
  // A pod of another Subnet is not routed from its node (only the default subnet's route is
  // kubelet's concern here); readiness is its own TCP probe, which works for both.
  await Promise.all(specs.map((s) => waitForPodReady(NS, s.name, 180_000)));
  pods = await Promise.all(specs.map(async (s) => ({ alias: s.name, namespace: NS, pod: s.name, node: s.node, subnet: s.subnet, ip: await podAddress(NS, s.name) })));
  console.log(`cross-node pods ready in ${Date.now() - t0} ms: ${pods.map((p) => `${p.alias}@${p.node}=${p.ip}`).join(' ')}`);
}, 600_000);

const outside = new Outside();

afterAll(async () => {
  await outside.stop();
  await deleteNamespace(NS);
  await kubectl(['delete', 'subnet', SUBNET, '--ignore-not-found', '--wait=true'], { timeoutMs: 60_000 });
});

describe('pods on different nodes (real lab cluster, one OVN zone per node)', () => {
  it('every pod reaches every other by ICMP and TCP, in its subnet and across subnets', async () => {
    const aliases = pods.map((p) => p.alias);
    await expectMatrix(`${pods.length} pods on ${NODES.length} nodes`, pods, pods, { icmp: uniform(aliases, aliases, true) });
  });

  it('a pod sees a remote pod of its subnet with that pod\'s own MAC (ARP across nodes)', async () => {
    for (const subnet of ['default', 'own'] as const) {
      const group = pods.filter((p) => p.subnet === subnet);
      for (const from of group) {
        for (const to of group.filter((p) => p.node !== from.node)) {
          const own = (await podExec(NS, to.pod, ['cat', '/sys/class/net/eth0/address'])).stdout.trim();
          expect(own, `${to.alias}'s eth0 MAC`).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
          const seen = await podExec(NS, from.pod, ['sh', '-c', `ping -c 1 -W 2 ${to.ip} >/dev/null; ip neigh show ${to.ip}`]);
          expect(seen.stdout, `${from.alias}@${from.node} -> ${to.alias}@${to.node}`).toContain(`lladdr ${own}`);
        }
      }
    }
  });

  it('each zone holds the other nodes\' pods as ports bound to their chassis, keyed by address', async () => {
    for (const here of NODES) {
      const ports = await nbPorts(here);
      for (const p of pods.filter((x) => x.node !== here)) {
        const lsp = `${p.pod}.${NS}`;
        const port = ports.get(lsp);
        // A VIF bound to the pod's chassis (not ovn-ic's `remote` type: see remote-port-plan.ts).
        expect(port?.type, `${here}: port ${lsp}`).toBe('');
        expect(port?.remoteNode, `${here}: ${lsp} held for ${p.node}`).toBe(p.node);
        expect(port?.options['requested-chassis']).toBe(p.node);
        // The key is the address's offset in its subnet: the default one is a /16, this run's a /24.
        const [, , third, fourth] = p.ip.split('.').map(Number) as [number, number, number, number];
        const key = p.subnet === 'own' ? fourth : third * 256 + fourth;
        expect(port?.options['requested-tnl-key']).toBe(String(key));
        // On the pod's own node, the local port carries the same key.
        const local = (await nbPorts(p.node)).get(lsp);
        expect(local?.remoteNode, `${p.node}: local port ${lsp}`).toBeUndefined();
        expect(local?.options['requested-tnl-key']).toBe(String(key));
      }
      // Bound in this zone's SB to the chassis of the pod's node.
      const bound = (await sbctl(here, ['--format=csv', '--data=bare', '--no-headings', '--columns=logical_port,chassis', 'list', 'Port_Binding'])).trim().split('\n');
      const chassis = new Map((await sbctl(here, ['--format=csv', '--data=bare', '--no-headings', '--columns=_uuid,name', 'list', 'Chassis'])).trim().split('\n').map((l) => l.split(',') as [string, string]));
      for (const p of pods.filter((x) => x.node !== here)) {
        const row = bound.find((l) => l.startsWith(`${p.pod}.${NS},`));
        expect(chassis.get(row?.split(',')[1] ?? ''), `${here}: binding of ${p.pod}.${NS}`).toBe(p.node);
      }
    }
  });

  it('every node has its own join (transit) address, published on its Node and set on its ovn0', async () => {
    const seen = new Map<string, string>();
    for (const n of NODES) {
      const node = await kubectlJson<KubeObject>(['get', 'node', n]);
      const ip = node.metadata.annotations?.[NODE_ANNOTATION.transitIp] as string | undefined;
      expect(ip, `${n}: ${NODE_ANNOTATION.transitIp}`).toMatch(/^100\.64\.\d+\.\d+$/);
      expect(seen.get(ip as string), `${n} and ${seen.get(ip as string)} share ${ip}`).toBeUndefined();
      seen.set(ip as string, n);
      const addrs = await nodeExec(n, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'ovn0']);
      expect(addrs.stdout, `${n}: ovn0`).toContain(` ${ip}/`);
    }
  });

  it('pod MTU is the overlay interface\'s MTU less 58 (Geneve over IPv4), on every node', async () => {
    for (const p of pods) {
      // The node's netns shares the host's /sys: ask the kernel through netlink instead.
      const link = (await nodeExec(p.node, ['ip', '-o', 'link', 'show', 'dev', LAB.overlay.interface])).stdout;
      const overlayMtu = Number(/ mtu (\d+) /.exec(link)?.[1]);
      expect(overlayMtu, `${p.node}: ${link}`).toBeGreaterThan(576);
      const mtu = (await podExec(NS, p.pod, ['cat', '/sys/class/net/eth0/mtu'])).stdout.trim();
      expect(Number(mtu), `${p.alias}@${p.node}`).toBe(overlayMtu - 58);
    }
  });

  it('a pod reaches a server outside the cluster through its own node, which SNATs to its own address', async () => {
    await outside.start();
    for (const p of pods) {
      const r = await podExec(NS, p.pod, ['sh', '-c', `nc -w 3 ${outside.ip} ${OUTSIDE_PORT} </dev/null`]);
      const node = LAB.nodes.find((n) => n.name === p.node);
      expect(r.stdout.trim(), `${p.alias}@${p.node} -> ${outside.ip}: ${r.stderr}`).toBe(node?.ip);
    }
  });
});
