// Underlay on the lab cluster: Kube-OVN's ProviderNetwork, Vlan and Subnet.spec.vlan applied with
// kubectl; each lab node gets an uplink cabled to a "physical network" namespace this test creates
// (a VLAN switch in a private userspace OVS and a router on VLAN 100:
// test/integration/harness/physical-network.ts). Pods of the underlay subnet on two nodes get
// cluster-wide unique addresses, reach the router (their gateway) and each other through the
// physical network with tag 100 on the wire, next to overlay pods; deleting the objects removes
// the bridges and mappings again.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsSet } from '../integration/harness/netns';
import { PhysicalNetwork } from '../integration/harness/physical-network';
import { apply, kubectl, kubectlJson, readLab, uniqueName, waitForObject, waitForPodReady, type KubeObject, type LabNode } from './harness/lab';
import { createNamespace, deleteNamespace, deployOvnode, pingFrom, podExec, testPod, vsctl } from './harness/ovnode';

const NS = uniqueName('ul');
const PROVIDER = 'labphys';
const VLAN_NAME = uniqueName('vlan');
const SUBNET = uniqueName('ul-net');
const ROUTER = '192.168.210.1';
const UPLINK = 'uplink0';

let phys: PhysicalNetwork;
const wires = new Map<string, string>();
let nodes: LabNode[] = [];

async function addressOf(pod: string): Promise<string> {
  const r = await podExec(NS, pod, ['ip', '-o', '-4', 'addr', 'show', 'eth0']);
  const ip = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout)?.[1];
  if (!ip) throw new Error(`${pod}: no address: ${r.stdout}${r.stderr}`);
  return ip;
}

/**
 * A tools pod without the readiness probe: kubelet probes from the node, and an underlay pod is
 * reached through the physical network, on which the lab's nodes are not (as on a real cluster
 * whose nodes are not on that VLAN; Kube-OVN's u2o interconnection is not implemented).
 */
function underlayPod(name: string, node: string): KubeObject {
  const p = testPod({ name, namespace: NS, node });
  delete ((p.spec.containers as KubeObject[])[0] as KubeObject).readinessProbe;
  return p;
}

const reaches = async (from: string, ip: string): Promise<boolean> => (await pingFrom(NS, from, ip, 5)) || pingFrom(NS, from, ip, 5);

beforeAll(async () => {
  nodes = readLab().nodes.slice(0, 2);
  expect(nodes.length).toBe(2);
  await deployOvnode();
  phys = new PhysicalNetwork(new NetnsSet());
  await phys.start();
  await phys.router(100, `${ROUTER}/24`);
  for (const n of nodes) wires.set(n.name, await phys.cable(n.netns, UPLINK));
  await createNamespace(NS);
  await apply({ apiVersion: 'kubeovn.io/v1', kind: 'ProviderNetwork', metadata: { name: PROVIDER }, spec: { defaultInterface: UPLINK, excludeNodes: readLab().nodes.slice(2).map((n) => n.name) } });
  await apply({ apiVersion: 'kubeovn.io/v1', kind: 'Vlan', metadata: { name: VLAN_NAME }, spec: { id: 100, provider: PROVIDER } });
  await apply({ apiVersion: 'kubeovn.io/v1', kind: 'Subnet', metadata: { name: SUBNET }, spec: { protocol: 'IPv4', cidrBlock: '192.168.210.0/24', gateway: ROUTER, vlan: VLAN_NAME, namespaces: [NS] } });
  await apply(underlayPod('ua', (nodes[0] as LabNode).name));
  await apply(underlayPod('ub', (nodes[1] as LabNode).name));
  await Promise.all(['ua', 'ub'].map((p) => waitForPodReady(NS, p, 180_000)));
}, 600_000);

afterAll(async () => {
  await deleteNamespace(NS);
  await kubectl(['delete', 'subnet', SUBNET, '--ignore-not-found', '--wait=true', '--timeout=60s'], { timeoutMs: 90_000 });
  await kubectl(['delete', 'vlans.kubeovn.io', VLAN_NAME, '--ignore-not-found'], { timeoutMs: 60_000 });
  await kubectl(['delete', 'provider-networks.kubeovn.io', PROVIDER, '--ignore-not-found'], { timeoutMs: 60_000 });
  await phys?.destroy();
}, 300_000);

describe('underlay subnet on the lab cluster (ProviderNetwork, Vlan, Subnet.spec.vlan)', () => {
  it('each node bridges its uplink and maps the provider; the third node is excluded', async () => {
    for (const n of nodes) {
      expect(await vsctl(n.name, ['list-ports', `br-${PROVIDER}`])).toContain(UPLINK);
      expect(await vsctl(n.name, ['get', 'Open_vSwitch', '.', 'external_ids:ovn-bridge-mappings'])).toContain(`${PROVIDER}:br-${PROVIDER}`);
    }
  });

  it('the joined nodes carry Kube-OVN\'s provider network labels (ready, uplink, MTU); the excluded node does not', async () => {
    const key = (k: string): string => `${PROVIDER}.provider-network.kubernetes.io/${k}`;
    for (const n of nodes) {
      const node = await waitForObject('nodes', (o) => o.metadata?.name === n.name && o.metadata?.labels?.[key('ready')] === 'true',
        { fieldSelector: `metadata.name=${n.name}`, timeoutMs: 30_000, description: `${n.name} labelled ${key('ready')}` });
      expect(node.metadata.labels[key('interface')]).toBe(UPLINK);
      expect(Number(node.metadata.labels[key('mtu')])).toBeGreaterThanOrEqual(1280);
    }
    for (const n of readLab().nodes.slice(2)) {
      const node = await kubectlJson<KubeObject>(['get', 'node', n.name]);
      expect(node.metadata.labels?.[key('ready')], `${n.name} is excluded`).toBeUndefined();
    }
  });

  it('pods on two nodes get distinct addresses in the subnet, reach the physical router and each other, tagged 100 on the wire', async () => {
    const a = await addressOf('ua');
    const b = await addressOf('ub');
    expect(a).toMatch(/^192\.168\.210\./);
    expect(b).toMatch(/^192\.168\.210\./);
    expect(a).not.toBe(b);
    expect(await reaches('ua', ROUTER), `ua -> router\n${phys.log()}`).toBe(true);
    expect(await reaches('ub', ROUTER), 'ub -> router').toBe(true);
    const cap = await phys.capture(wires.get((nodes[0] as LabNode).name) as string, ['icmp', 'or', '(vlan', 'and', 'icmp)']);
    expect(await reaches('ua', b), 'ua -> ub across nodes').toBe(true);
    const frames = (await cap.stop()).split('\n').filter((l) => l.includes(a));
    expect(frames.length).toBeGreaterThan(0);
    for (const f of frames) expect(f).toMatch(/vlan 100/);
  });
});
