// Real Multus v4.0.2 (thin plugin, deployed as a DaemonSet) in front of ovnode on the lab cluster:
// NetworkAttachmentDefinitions of type ovnode (and Kube-OVN's own form, type kube-ovn) give pods
// extra interfaces in the Subnet bound to the NAD's provider. A pod with eth0 (default subnet) and
// net1 (the provider's subnet) on one node talks to a peer of each network on another node; each
// interface has its own provider-prefixed annotations and port; Multus' network-status lists both
// with the right addresses; a Subnet ACL holds on net1; one NAD attached twice gives net1 and
// net2 their own addresses; a provider bound to no Subnet fails the sandbox with that message;
// DEL works without Multus' cache, and when Multus skips the DEL (cache and pod gone) the
// daemon's reconcile loop removes the attachments; deleting the pods leaves no port in any zone.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, kubectl, kubectlJson, kubectlOk, nodeExec, readLab, uniqueName, waitForEvent, waitForPodReady, type KubeObject } from './harness/lab';
import { deployMultus, removeMultus } from './harness/multus';
import { createNamespace, deleteNamespace, freeSubnetCidr, httpFrom, nbPorts, pingFrom, podExec, testPod } from './harness/ovnode';

const NS = uniqueName('mts');
const NET_A = uniqueName('mts-a');
const NET_K = uniqueName('mts-k');
const PROVIDER_A = `attnet.${NS}.ovn`;
const PROVIDER_K = `kovn.${NS}.ovn`;
let nodeA = '';
let nodeB = '';

const nad = (name: string, config: Record<string, unknown>): KubeObject => ({
  apiVersion: 'k8s.cni.cncf.io/v1', kind: 'NetworkAttachmentDefinition', metadata: { name, namespace: NS },
  spec: { config: JSON.stringify(config) },
});

function pod(name: string, node: string, annotations: Record<string, string>): KubeObject {
  return testPod({ name, namespace: NS, node, annotations });
}

const ann = async (name: string): Promise<Record<string, string>> =>
  (await kubectlJson<KubeObject>(['-n', NS, 'get', 'pod', name])).metadata.annotations ?? {};

async function addressOf(name: string, ifName: string): Promise<string> {
  const r = await podExec(NS, name, ['ip', '-o', '-4', 'addr', 'show', ifName]);
  const m = r.stdout.match(/inet (\d+\.\d+\.\d+\.\d+)\//);
  if (!m) throw new Error(`${name}: no IPv4 address on ${ifName}: ${r.stdout}${r.stderr}`);
  return m[1] as string;
}

beforeAll(async () => {
  const nodes = readLab().nodes.map((n) => n.name);
  expect(nodes.length).toBeGreaterThanOrEqual(2);
  [nodeA, nodeB] = nodes as [string, string];
  await deployMultus();
  await createNamespace(NS);
  const cidrA = await freeSubnetCidr();
  await apply({ apiVersion: 'kubeovn.io/v1', kind: 'Subnet', metadata: { name: NET_A }, spec: { cidrBlock: cidrA, protocol: 'IPv4', provider: PROVIDER_A } });
  const cidrK = await freeSubnetCidr();
  await apply({ apiVersion: 'kubeovn.io/v1', kind: 'Subnet', metadata: { name: NET_K }, spec: { cidrBlock: cidrK, protocol: 'IPv4', provider: PROVIDER_K } });
  await apply(nad('attnet', { cniVersion: '1.0.0', type: 'ovnode', provider: PROVIDER_A }));
  // Kube-OVN's own form, unchanged: ovnode's executable is installed as kube-ovn too.
  await apply(nad('kovn', { cniVersion: '0.3.1', type: 'kube-ovn', server_socket: '/run/openvswitch/kube-ovn-daemon.sock', provider: PROVIDER_K }));
  await apply(nad('orphan', { cniVersion: '1.0.0', type: 'ovnode', provider: `orphan.${NS}.ovn` }));
  await apply(pod('multi', nodeA, { 'k8s.v1.cni.cncf.io/networks': 'attnet' }));
  await apply(pod('peer-default', nodeB, {}));
  // A pod whose own eth0 is in the provider's subnet: net1's peer on the other node.
  await apply(pod('peer-a', nodeB, { 'ovn.kubernetes.io/logical_switch': NET_A }));
  await apply(pod('twice', nodeB, { 'k8s.v1.cni.cncf.io/networks': 'attnet@net1, attnet@net2' }));
  await apply(pod('kube-ovn-form', nodeA, { 'k8s.v1.cni.cncf.io/networks': 'kovn' }));
  await Promise.all(['multi', 'peer-default', 'peer-a', 'twice', 'kube-ovn-form'].map((n) => waitForPodReady(NS, n, 240_000)));
}, 900_000);

afterAll(async () => {
  await deleteNamespace(NS);
  for (const s of [NET_A, NET_K]) await kubectl(['delete', 'subnet', s, '--ignore-not-found', '--wait=true', '--timeout=60s'], { timeoutMs: 90_000 });
  await removeMultus();
}, 600_000);

describe('Multus attachments of ovnode (real Multus v4.0.2 on the lab cluster)', () => {
  it('gives net1 an address in the provider\'s Subnet, with its own annotations and port, and eth0 its own', async () => {
    const a = await ann('multi');
    const eth0 = await addressOf('multi', 'eth0');
    const net1 = await addressOf('multi', 'net1');
    expect(a['ovn.kubernetes.io/ip_address']).toBe(eth0);
    expect(a['ovn.kubernetes.io/logical_switch']).toBe('ovn-default');
    expect(a[`${PROVIDER_A}.kubernetes.io/ip_address`]).toBe(net1);
    expect(a[`${PROVIDER_A}.kubernetes.io/logical_switch`]).toBe(NET_A);
    expect(a[`${PROVIDER_A}.kubernetes.io/allocated`]).toBe('true');
    const ports = await nbPorts(nodeA);
    expect(ports.get(`multi.${NS}`)?.line.split(' ').slice(1)).toEqual([eth0]);
    expect(ports.get(`multi.${NS}.${PROVIDER_A}`)?.line.split(' ').slice(1)).toEqual([net1]);
    // The default route stays eth0's.
    const routes = (await podExec(NS, 'multi', ['ip', 'route'])).stdout;
    expect(routes).toMatch(/^default via \S+ dev eth0/m);
    expect(routes).not.toMatch(/default via \S+ dev net1/);
  });

  it('Multus\' network-status lists both interfaces with their addresses and MACs', async () => {
    const status = JSON.parse((await ann('multi'))['k8s.v1.cni.cncf.io/network-status'] ?? '[]') as Array<{ name: string; interface?: string; ips?: string[]; mac?: string; default?: boolean }>;
    const mac = async (ifName: string): Promise<string> => (await podExec(NS, 'multi', ['cat', `/sys/class/net/${ifName}/address`])).stdout.trim();
    const primary = status.find((s) => s.default);
    expect(primary).toMatchObject({ interface: 'eth0', ips: [await addressOf('multi', 'eth0')], mac: await mac('eth0') });
    expect(status.find((s) => s.name === `${NS}/attnet`)).toMatchObject({ interface: 'net1', ips: [await addressOf('multi', 'net1')], mac: await mac('net1') });
    expect(status).toHaveLength(2);
  });

  it('the pod talks to a peer of each network on the other node: eth0 to the default subnet, net1 to the provider\'s', async () => {
    const peerDefault = await addressOf('peer-default', 'eth0');
    const peerA = await addressOf('peer-a', 'eth0');
    expect(await pingFrom(NS, 'multi', peerDefault), `multi -> peer-default ${peerDefault}`).toBe(true);
    expect(await httpFrom(NS, 'multi', peerDefault)).toBe('ok');
    expect(await pingFrom(NS, 'multi', peerA), `multi (net1) -> peer-a ${peerA}`).toBe(true);
    expect(await httpFrom(NS, 'multi', peerA)).toBe('ok');
    // And back, to net1's address.
    expect(await httpFrom(NS, 'peer-a', await addressOf('multi', 'net1'))).toBe('ok');
  });

  it('a Subnet ACL of the provider\'s Subnet holds on net1', async () => {
    const net1 = await addressOf('multi', 'net1');
    expect(await pingFrom(NS, 'peer-a', net1)).toBe(true);
    await kubectlOk(['patch', 'subnet', NET_A, '--type=merge', '-p', JSON.stringify({ spec: { acls: [{ direction: 'to-lport', priority: 1010, match: `ip4.dst == ${net1} && icmp4`, action: 'drop' }] } })]);
    try {
      let blocked = false;
      for (let i = 0; i < 20 && !blocked; i++) blocked = !(await pingFrom(NS, 'peer-a', net1, 1));
      expect(blocked, 'ICMP to net1 dropped by the Subnet ACL').toBe(true);
      expect(await httpFrom(NS, 'peer-a', net1), 'TCP to net1 still allowed').toBe('ok');
    } finally {
      await kubectlOk(['patch', 'subnet', NET_A, '--type=merge', '-p', JSON.stringify({ spec: { acls: [] } })]);
    }
  });

  it('one NAD attached twice gives net1 and net2 their own addresses, annotations and ports', async () => {
    const a = await ann('twice');
    const net1 = await addressOf('twice', 'net1');
    const net2 = await addressOf('twice', 'net2');
    expect(net1).not.toBe(net2);
    expect(a[`${PROVIDER_A}.net1.kubernetes.io/ip_address`]).toBe(net1);
    expect(a[`${PROVIDER_A}.net2.kubernetes.io/ip_address`]).toBe(net2);
    const ports = await nbPorts(nodeB);
    expect(ports.get(`twice.${NS}.${PROVIDER_A}.net1`)?.line.split(' ').slice(1)).toEqual([net1]);
    expect(ports.get(`twice.${NS}.${PROVIDER_A}.net2`)?.line.split(' ').slice(1)).toEqual([net2]);
    // Two interfaces in one subnet: the kernel answers for either address on either, so each is
    // checked as the source of its own traffic (ping -I), across nodes to multi's net1.
    const peer = await addressOf('multi', 'net1');
    for (const ifName of ['net1', 'net2']) {
      const r = await podExec(NS, 'twice', ['ping', '-c', '3', '-W', '1', '-I', ifName, peer]);
      expect(r.code, `twice ${ifName} -> multi net1 ${peer}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });

  it('Kube-OVN\'s own NAD form (type kube-ovn, server_socket) works unchanged', async () => {
    const net1 = await addressOf('kube-ovn-form', 'net1');
    expect((await ann('kube-ovn-form'))[`${PROVIDER_K}.kubernetes.io/logical_switch`]).toBe(NET_K);
    expect((await ann('kube-ovn-form'))[`${PROVIDER_K}.kubernetes.io/ip_address`]).toBe(net1);
  });

  it('a provider bound to no Subnet fails the sandbox with a message that says so', async () => {
    const since = new Date();
    await apply(pod('orphan', nodeA, { 'k8s.v1.cni.cncf.io/networks': 'orphan' }));
    const ev = await waitForEvent({ involvedName: 'orphan', reason: 'FailedCreatePodSandBox', namespace: NS, since, timeoutMs: 120_000 });
    expect(String(ev.message)).toMatch(new RegExp(`provider orphan\\.${NS}\\.ovn is not bound to any subnet`));
    await kubectl(['-n', NS, 'delete', 'pod', 'orphan', '--wait=true', '--timeout=60s'], { timeoutMs: 90_000 });
  });

  it('DEL without Multus\' cache (the pod still in the API): ovnode finds the attachments by sandbox and interface', async () => {
    // Multus rebuilds the delegates from the API; ovnode needs nothing it cached either.
    await nodeExec(nodeA, ['sh', '-c', 'rm -f /var/lib/cni/multus/*']);
    await kubectlOk(['-n', NS, 'delete', 'pod', 'kube-ovn-form', '--wait=true', '--timeout=90s'], { timeoutMs: 120_000 });
    const left = [...(await nbPorts(nodeA)).keys()].filter((p) => p.startsWith(`kube-ovn-form.${NS}`));
    expect(left).toEqual([]);
  });

  it('cache and pod both gone (Multus skips the delegates\' DEL): the daemon\'s reconcile removes both attachments', async () => {
    await apply(pod('lost', nodeB, { 'k8s.v1.cni.cncf.io/networks': 'attnet' }));
    await waitForPodReady(NS, 'lost', 180_000);
    const ports = async (): Promise<string[]> => [...(await nbPorts(nodeB)).keys()].filter((p) => p.startsWith(`lost.${NS}`)).sort();
    expect(await ports()).toEqual([`lost.${NS}`, `lost.${NS}.${PROVIDER_A}`]);
    await nodeExec(nodeB, ['sh', '-c', 'rm -f /var/lib/cni/multus/*']);
    await kubectlOk(['-n', NS, 'delete', 'pod', 'lost', '--grace-period=0', '--force'], { timeoutMs: 60_000 });
    // The loop runs every 30 s and removes a leak it saw twice.
    const deadline = Date.now() + 150_000;
    let left = await ports();
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 3_000));
      left = await ports();
    }
    expect(left, 'ports of the lost pod after the reconcile loop').toEqual([]);
  }, 240_000);

  it('deleting the pods leaves no port of theirs in any zone', async () => {
    await kubectlOk(['-n', NS, 'delete', 'pods', '--all', '--wait=true', '--timeout=120s'], { timeoutMs: 150_000 });
    for (const n of readLab().nodes) {
      const left = [...(await nbPorts(n.name)).keys()].filter((p) => p.includes(`.${NS}`));
      expect(left, `${n.name}: ports of ${NS} left`).toEqual([]);
    }
  });
});
