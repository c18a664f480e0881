// SR-IOV VFs through the whole production path on the lab cluster, on a FAKE NIC (no SR-IOV
// hardware here): each node gets a fake switchdev sysfs tree under its /var/lib/ovnode (the lab's
// ovnode-config points the daemon at it) whose VF netdevs and representors are real veth pairs in
// the node's netns; a FAKE device plugin (test/fakes/fake-sriov-device-plugin.ts) registers the
// VFs with the real kubelet over the device plugin gRPC API; real Multus reads kubelet's
// allocation from the pod-resources API and passes it as deviceID to ovnode, which plugs the VF
// (offload mode: its representor in br-int). Pods on two nodes talk over their VFs through OVN;
// the PF-side settings recorded by the fake NIC are the pod's MAC and annotations; deleting the
// pods puts every VF back (name, MAC, namespace, PF settings) and kubelet's capacity with it.

import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeSriovDevicePlugin } from '../fakes/fake-sriov-device-plugin';
import { FakeNicOnNode } from '../integration/harness/fake-nic';
import { apply, kubectl, kubectlJson, readLab, uniqueName, waitForObject, waitForPodReady, type KubeObject, type LabNode } from './harness/lab';
import { deployMultus, removeMultus } from './harness/multus';
import { createNamespace, deleteNamespace, freeSubnetCidr, nbPorts, pingFrom, podExec, testPod, vsctl } from './harness/ovnode';

const NS = uniqueName('vf');
const SUBNET = uniqueName('vf-net');
const PROVIDER = `sriov.${NS}.ovn`;
const RESOURCE = 'ovnode.io/fake_vf';
const NUM_VFS = 2;

interface NodeNic { node: LabNode; nic: FakeNicOnNode; plugin: FakeSriovDevicePlugin }
const nics: NodeNic[] = [];
/** Temp dirs holding the plugin dir symlinks. */
const links: string[] = [];

const DEFAULTS = { mac: '00:00:00:00:00:00', vlan: 0, qos: 0, spoofchk: true, trust: false, linkState: 'auto', minTxRate: 0, maxTxRate: 0 };

/** The PF-side settings the node's fake NIC holds, by VF index. */
function pfSettings(n: NodeNic, vf: number): Record<string, unknown> {
  const file = join(n.nic.root, 'ovnode-fake-nic', 'vf-settings.json');
  const state = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>> : {};
  return state[`${n.nic.pf.pci}/${vf}`] ?? DEFAULTS;
}

function vfPod(name: string, node: string, annotations: Record<string, string>): KubeObject {
  const p = testPod({ name, namespace: NS, node, annotations: { 'k8s.v1.cni.cncf.io/networks': 'sriov', ...annotations } });
  const container = (p.spec.containers as KubeObject[])[0] as KubeObject;
  container.resources = { requests: { [RESOURCE]: '1' }, limits: { [RESOURCE]: '1' } };
  return p;
}

async function net1(pod: string): Promise<{ ip: string; mac: string }> {
  const r = await podExec(NS, pod, ['sh', '-c', 'ip -o -4 addr show net1; cat /sys/class/net/net1/address']);
  const ip = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(r.stdout)?.[1];
  const mac = r.stdout.trim().split('\n').pop()?.trim() ?? '';
  if (!ip) throw new Error(`${pod}: no IPv4 address on net1: ${r.stdout}${r.stderr}`);
  return { ip, mac };
}

async function allocatable(node: string, want: string): Promise<void> {
  await waitForObject('nodes', (o) => o.metadata?.name === node && o.status?.allocatable?.[RESOURCE] === want,
    { fieldSelector: `metadata.name=${node}`, timeoutMs: 60_000, description: `${node} allocatable ${RESOURCE}=${want}` });
}

/** The VF's index on its node's fake NIC, from the PF settings holding this MAC. */
function vfHolding(n: NodeNic, mac: string): number {
  const i = n.nic.pf.vfs.findIndex((vf) => pfSettings(n, vf.index).mac === mac);
  if (i < 0) throw new Error(`no VF of ${n.node.name} holds ${mac}`);
  return i;
}

beforeAll(async () => {
  const lab = readLab();
  expect(lab.nodes.length).toBeGreaterThanOrEqual(2);
  await deployMultus();
  for (const node of lab.nodes.slice(0, 2)) {
    const nic = await FakeNicOnNode.create({ nodeNs: node.netns, root: join(node.dir, 'fs', 'var-lib-ovnode', 'fake-sysfs'), numVfs: NUM_VFS });
    // The node's kubelet dir, through a short symlink: unix socket paths hold 107 bytes.
    const pluginDir = join(mkdtempSync(join(tmpdir(), 'ovdp-')), 'd');
    symlinkSync(join(node.dir, 'fs', 'var-lib-kubelet', 'device-plugins'), pluginDir);
    links.push(dirname(pluginDir));
    const plugin = new FakeSriovDevicePlugin({ resourceName: RESOURCE, deviceIds: nic.pf.vfs.map((vf) => vf.pci), pluginDir });
    nics.push({ node, nic, plugin });
    await plugin.start();
    await allocatable(node.name, String(NUM_VFS));
  }
  await createNamespace(NS);
  await apply({ apiVersion: 'kubeovn.io/v1', kind: 'Subnet', metadata: { name: SUBNET }, spec: { cidrBlock: await freeSubnetCidr(), protocol: 'IPv4', provider: PROVIDER } });
  // sriov-cni's NAD shape: the device plugin's resource in the annotation, Multus adds deviceID.
  await apply({
    apiVersion: 'k8s.cni.cncf.io/v1', kind: 'NetworkAttachmentDefinition',
    metadata: { name: 'sriov', namespace: NS, annotations: { 'k8s.v1.cni.cncf.io/resourceName': RESOURCE } },
    spec: { config: JSON.stringify({ cniVersion: '1.0.0', type: 'ovnode', provider: PROVIDER, spoofchk: 'on', trust: 'off' }) },
  });
  const [a, b] = nics as [NodeNic, NodeNic];
  await apply(vfPod('vf-a', a.node.name, { [`${PROVIDER}.kubernetes.io/vlan_id`]: '100', [`${PROVIDER}.kubernetes.io/egress_rate`]: '200' }));
  await apply(vfPod('vf-b', b.node.name, {}));
  await Promise.all(['vf-a', 'vf-b'].map((n) => waitForPodReady(NS, n, 240_000)));
}, 900_000);

afterAll(async () => {
  await deleteNamespace(NS);
  await kubectl(['delete', 'subnet', SUBNET, '--ignore-not-found', '--wait=true', '--timeout=60s'], { timeoutMs: 90_000 });
  for (const n of nics) {
    await n.plugin.stop().catch(() => undefined);
    n.nic.destroy();
  }
  for (const d of links) rmSync(d, { recursive: true, force: true });
  await removeMultus();
}, 600_000);

describe('SR-IOV VFs through kubelet, a device plugin and Multus (fake NIC on the lab cluster)', () => {
  it('kubelet allocated a VF to each pod; Multus passed it as deviceID; the VF is net1 and its representor is in br-int', async () => {
    for (const [pod, n] of [['vf-a', nics[0]], ['vf-b', nics[1]]] as Array<[string, NodeNic]>) {
      const { mac } = await net1(pod);
      const vf = vfHolding(n, mac);
      // The VF netdev left the node; its representor carries the pod's port.
      expect(n.nic.nodeLink(n.nic.vf(vf).netdev), `${pod}: VF ${vf} netdev moved into the pod`).toBeUndefined();
      expect((await vsctl(n.node.name, ['get', 'Interface', n.nic.vf(vf).representor as string, 'external_ids:iface-id'])).trim().replace(/"/g, ''))
        .toBe(`${pod}.${NS}.${PROVIDER}`);
      // hw-offload is configured (lab ConfigMap): the NIC side got hw-tc-offload on the PF and
      // the representor; vswitchd's own hw-offload stays off on the lab's userspace datapath.
      const calls = readFileSync(join(n.nic.root, 'ovnode-fake-nic', 'calls.jsonl'), 'utf8');
      expect(calls).toContain(`"netdev":"${n.nic.vf(vf).representor}"`);
      expect(calls).toContain(`"netdev":"${n.nic.pf.netdev}"`);
      expect(await vsctl(n.node.name, ['get', 'Open_vSwitch', '.', 'other_config'])).not.toContain('hw-offload');
      // Multus lists net1 with the VF's PCI address (its device-info from the deviceID).
      const status = JSON.parse(((await kubectlJson<KubeObject>(['-n', NS, 'get', 'pod', pod])).metadata.annotations ?? {})['k8s.v1.cni.cncf.io/network-status'] ?? '[]') as Array<{ interface?: string; mac?: string }>;
      expect(status.find((s) => s.interface === 'net1')?.mac).toBe(mac);
    }
  });

  it('the PF-side settings are the pod\'s MAC, its annotations and the NAD\'s', async () => {
    const [a, b] = nics as [NodeNic, NodeNic];
    const macA = (await net1('vf-a')).mac;
    expect(pfSettings(a, vfHolding(a, macA))).toEqual({ ...DEFAULTS, mac: macA, vlan: 100, spoofchk: true, trust: false, maxTxRate: 200 });
    const macB = (await net1('vf-b')).mac;
    expect(pfSettings(b, vfHolding(b, macB))).toEqual({ ...DEFAULTS, mac: macB, spoofchk: true, trust: false });
  });

  it('the two VF pods on two nodes talk over net1 through their representors and OVN', async () => {
    const a = await net1('vf-a');
    const b = await net1('vf-b');
    // Each zone holds the other node's VF port (remote, bound to that node's chassis) first: the
    // pods are Ready once their own node plugged them, not once every other zone heard of it.
    const [na, nb] = nics as [NodeNic, NodeNic];
    const started = Date.now();
    for (const [zone, peer] of [[na.node.name, `vf-b.${NS}.${PROVIDER}`], [nb.node.name, `vf-a.${NS}.${PROVIDER}`]] as const) {
      let seen = false;
      for (let i = 0; i < 60 && !seen; i++) {
        seen = (await nbPorts(zone)).get(peer)?.remoteNode !== undefined;
        if (!seen) await new Promise((r) => setTimeout(r, 500));
      }
      expect(seen, `${zone}'s NB holds ${peer} as a remote port`).toBe(true);
    }
    console.log(`remote VF ports in both zones ${Date.now() - started} ms after the test began`);
    // The first packets of a new flow take the slow path of both nodes' userspace datapaths
    // (seconds on a loaded 2-core machine); CI has also seen new VF pods without connectivity for
    // over 10 s (cause not found yet, see the notes): up to thirty one-second pings, the delay printed.
    const reaches = async (from: string, ip: string): Promise<boolean> => {
      for (let i = 0; i < 6; i++) if (await pingFrom(NS, from, ip, 5)) return true;
      return false;
    };
    expect(await reaches('vf-a', b.ip), `vf-a net1 -> vf-b net1 ${b.ip}`).toBe(true);
    console.log(`vf-a -> vf-b answered ${Date.now() - started} ms after the test began`);
    expect(await reaches('vf-b', a.ip), `vf-b net1 -> vf-a net1 ${a.ip}`).toBe(true);
  });

  it('deleting the pods puts every VF back in its node with its PF settings, and kubelet can allocate them again', async () => {
    await kubectl(['-n', NS, 'delete', 'pod', 'vf-a', 'vf-b', '--wait=true', '--timeout=120s'], { timeoutMs: 150_000 });
    for (const n of nics) {
      for (const vf of n.nic.pf.vfs) {
        const link = n.nic.nodeLink(vf.netdev);
        expect(link, `${n.node.name} VF ${vf.index} back`).toBeDefined();
        expect(link?.mac).toBe(n.nic.originalMac(vf.index));
        expect(pfSettings(n, vf.index)).toEqual(DEFAULTS);
      }
      const ports = (await vsctl(n.node.name, ['list-ports', 'br-int'])).split('\n');
      for (const vf of n.nic.pf.vfs) expect(ports, `${n.node.name}: representor ${vf.representor} out of br-int`).not.toContain(vf.representor);
    }
    // kubelet gives a freed VF to the next pod, and it works as the first one did.
    const a = nics[0] as NodeNic;
    await apply(vfPod('vf-c', a.node.name, {}));
    await waitForPodReady(NS, 'vf-c', 120_000);
    const { mac } = await net1('vf-c');
    expect(pfSettings(a, vfHolding(a, mac)).mac).toBe(mac);
  }, 200_000);
});
