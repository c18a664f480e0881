// A dual-stack Subnet spanning the nodes (real lab cluster): one pod per node, each with an IPv4
// and an IPv6 address, and every pair talks over both families (ICMP and TCP), through each
// node's own OVN zone and the Geneve tunnels between them (the underlay is IPv4; the overlay
// carries either). Each zone holds the other nodes' pods with both addresses, keyed by the IPv4
// offset, and every pod reaches the subnet's IPv6 gateway on the distributed router of its own
// zone.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, kubectl, kubectlJson, kubectlOk, readLab, run, uniqueName, waitForDeleted, waitForPodReady, type KubeObject } from './harness/lab';
import { expectMatrix, uniform, type Peer } from './harness/matrix';
import { createNamespace, deleteNamespace, deployOvnode, freeSubnetCidr, nbPorts, pingFrom, podExec, testPod } from './harness/ovnode';
import { Outside, OUTSIDE_PORT } from './harness/outside';

const NS = uniqueName('dsn');
const SUBNET = uniqueName('dsn-net');

interface DualPod { name: string; node: string; v4: string; v6: string }
let pods: DualPod[] = [];
let v6Gateway = '';

beforeAll(async () => {
  const nodes = readLab().nodes.map((n) => n.name);
  expect(nodes.length, 'the lab runs 3 nodes for these tests (NODES=3)').toBeGreaterThanOrEqual(3);
  await deployOvnode();
  await createNamespace(NS);
  const v4 = await freeSubnetCidr();
  const n = Number(v4.split('.')[2]);
  const v6 = `fd00:21:${n.toString(16)}::/64`;
  v6Gateway = `fd00:21:${n.toString(16)}::1`;
  await apply({
    apiVersion: 'kubeovn.io/v1', kind: 'Subnet', metadata: { name: SUBNET },
    spec: { cidrBlock: `${v4},${v6}`, protocol: 'Dual', gateway: `${v4.replace(/0\/24$/, '1')},${v6Gateway}` },
  });
  const specs = nodes.map((node, i) => ({ name: `ds${i}`, node }));
  for (const s of specs) await apply(testPod({ name: s.name, namespace: NS, node: s.node, annotations: { 'ovn.kubernetes.io/logical_switch': SUBNET } }));
  await Promise.all(specs.map((s) => waitForPodReady(NS, s.name, 180_000)));
  pods = await Promise.all(specs.map(async (s) => {
    const pod = await kubectlJson<KubeObject>(['-n', NS, 'get', 'pod', s.name]);
    const ips = String(pod.metadata.annotations['ovn.kubernetes.io/ip_address'] ?? '').split(',');
    return { ...s, v4: ips.find((ip) => !ip.includes(':')) ?? '', v6: ips.find((ip) => ip.includes(':')) ?? '' };
  }));
  console.log(`dual-stack pods: ${pods.map((p) => `${p.name}@${p.node}=${p.v4},${p.v6}`).join(' ')}`);
}, 600_000);

const outside = new Outside();

afterAll(async () => {
  await outside.stop();
  // The pods first, then the Subnet they used.
  await deleteNamespace(NS);
  await kubectl(['delete', 'subnet', SUBNET, '--ignore-not-found', '--wait=true'], { timeoutMs: 60_000 });
});

const peers = (family: 'v4' | 'v6'): Peer[] => pods.map((p) => ({ alias: p.name, namespace: NS, pod: p.name, ip: p[family] }));

describe('a dual-stack Subnet across nodes (real lab cluster, one OVN zone per node)', () => {
  it('gives every pod one address of each family, recorded in every zone\'s port for it', async () => {
    for (const p of pods) {
      expect(p.v4, `${p.name}: IPv4`).toMatch(/^172\.21\./);
      expect(p.v6, `${p.name}: IPv6`).toMatch(/^fd00:21:/);
    }
    for (const here of readLab().nodes.map((n) => n.name)) {
      const ports = await nbPorts(here);
      for (const p of pods) {
        const port = ports.get(`${p.name}.${NS}`);
        expect(port?.line.split(' ').slice(1).sort(), `${here}: addresses of ${p.name}@${p.node}`).toEqual([p.v4, p.v6].sort());
        // Keyed by the IPv4 offset in the /24, the same in every zone.
        expect(port?.options['requested-tnl-key'], `${here}: key of ${p.name}`).toBe(p.v4.split('.')[3]);
      }
    }
  });

  it('every pod reaches every other over IPv6 and IPv4, ICMP and TCP', async () => {
    const aliases = pods.map((p) => p.name);
    await expectMatrix(`${pods.length} dual-stack pods, IPv6`, peers('v6'), peers('v6'), { icmp: uniform(aliases, aliases, true) });
    await expectMatrix(`${pods.length} dual-stack pods, IPv4`, peers('v4'), peers('v4'), { icmp: uniform(aliases, aliases, true) });
  });

  it('every pod reaches the IPv6 gateway (the distributed router in its own zone)', async () => {
    for (const p of pods) expect(await pingFrom(NS, p.name, v6Gateway), `${p.name}@${p.node} -> ${v6Gateway}`).toBe(true);
  });

  it('every node reaches every pod over IPv6 (its route to the subnet through ovn0 and the join network\'s IPv6)', async () => {
    for (const n of readLab().nodes) {
      for (const p of pods) {
        const r = await run(['ip', 'netns', 'exec', n.netns, 'ping', '-6', '-c', '1', '-W', '2', p.v6], { timeoutMs: 10_000 });
        expect(r.code, `${n.name} -> ${p.name}@${p.node} ${p.v6}: ${r.stdout}${r.stderr}`).toBe(0);
      }
    }
  });

  it('every pod reaches the outside over IPv6 through its own node, which SNATs to its own IPv6 address', async () => {
    await outside.start();
    const lab = readLab();
    for (const p of pods) {
      const r = await podExec(NS, p.name, ['sh', '-c', `nc -w 3 ${outside.ip6} ${OUTSIDE_PORT} </dev/null`]);
      expect(r.stdout.trim(), `${p.name}@${p.node} -> [${outside.ip6}]:${OUTSIDE_PORT}: ${r.stderr}`).toBe(lab.nodes.find((n) => n.name === p.node)?.ip6);
    }
  });

  it('deleting the pods and then the Subnet releases every node\'s claims in it (the daemons\' sweep, not the test)', async () => {
    const claimsOf = async (): Promise<string[]> => (await kubectlJson<{ items: KubeObject[] }>(['get', 'ipclaims'])).items
      .filter((c) => c.spec?.subnet === SUBNET).map((c) => `ipclaims/${String(c.metadata.name)}`);
    const held = await claimsOf();
    // One block per node at least: every node allocated a pod here.
    expect(held.length, `claims in ${SUBNET}`).toBeGreaterThanOrEqual(pods.length);
    await deleteNamespace(NS);
    await kubectlOk(['delete', 'subnet', SUBNET, '--wait=true', '--timeout=60s'], { timeoutMs: 90_000 });
    // Each daemon sweeps every 30 s, once its switch has no ports left.
    const deadline = Date.now() + 120_000;
    for (const claim of held) await waitForDeleted(claim, { timeoutMs: Math.max(1_000, deadline - Date.now()) });
    expect(await claimsOf()).toEqual([]);
  });
});
