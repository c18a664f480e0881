// SR-IOV VFs as pod interfaces on a FAKE NIC (no SR-IOV hardware here; harness/fake-nic.ts): a
// fake switchdev sysfs tree whose VF netdevs and representors are real veth pairs in the node's
// netns, PF-side VF settings recorded by the daemon's FakeNic under the fake sysfs root. The
// daemon, OVS/OVN (userspace datapath), the netns moves, renames, addresses and all traffic are
// real. One node for the file, VFs taken in turn; everything removed in afterAll.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster } from './harness/cluster';
import { FakeNicOnNode, linkIn } from './harness/fake-nic';
import { TestNode } from './harness/node';
import { requireArtefacts } from './harness/paths';
import { scrapeMetrics } from './harness/node-probe';
import { vfTempName } from '../../daemon/sriov/vf-attach';

const vfTempNameFor = (sandbox: string): string => vfTempName(sandbox, 'eth0');
import { cniEnv, netconf, resultIps, runShimAsync, type ShimResult } from './harness/shim-calls';

const NS = 'vfs';
/** The daemon on the fake NIC; debug logs carry each ADD's steps (the SIGKILL test waits for them). */
const SRIOV_ARGS = (): string[] => ['--sriov-sysfs-root', nic.root, '--sriov-fake-nic', '--hw-offload', '--log-level', 'debug', '--reconcile-interval', '1'];
let cluster: TestCluster;
let nic: FakeNicOnNode;
let node: TestNode;
let seq = 0;
/** The daemon started again after the SIGKILL test (the cluster stops only its first one). */
let restarted: TestNode | undefined;

interface VfPod { name: string; ns: string; path: string; id: string; args: string; vf: number; result: ShimResult; conf: Record<string, unknown> }
const pods: VfPod[] = [];

function ovsVsctl(args: string[]): string {
  const r = spawnSync('ovs-vsctl', [`--db=unix:${join(node.stateDir, 'ovs', 'db.sock')}`, '--timeout=5', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ovs-vsctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim().replace(/^"(.*)"$/, '$1');
}

/** PF-side settings of a VF as the FakeNic recorded them (the VF's defaults when never set). */
function pfSettings(vf: number): Record<string, unknown> {
  const file = join(nic.root, 'ovnode-fake-nic', 'vf-settings.json');
  const state = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>> : {};
  return state[`${nic.pf.pci}/${vf}`] ?? DEFAULTS;
}
const DEFAULTS = { mac: '00:00:00:00:00:00', vlan: 0, qos: 0, spoofchk: true, trust: false, linkState: 'auto', minTxRate: 0, maxTxRate: 0 };

function podManifest(name: string, annotations: Record<string, string>): void {
  cluster.writeManifest(`pod-${NS}-${name}.yaml`, [
    'apiVersion: v1', 'kind: Pod', 'metadata:', `  name: ${name}`, `  namespace: ${NS}`,
    ...(Object.keys(annotations).length ? ['  annotations:', ...Object.entries(annotations).map(([k, v]) => `    ${k}: "${v}"`)] : []),
    'spec:', '  containers: [{name: main, image: "pause:3.9"}]',
  ].join('\n'));
}

async function addVfPod(name: string, vf: number, opts: { annotations?: Record<string, string>; conf?: Record<string, unknown>; expectOk?: boolean } = {}): Promise<VfPod> {
  podManifest(name, opts.annotations ?? {});
  await cluster.waitApplied();
  const ns = cluster.netns.create(`v${++seq}`);
  const conf = { deviceID: nic.vf(vf).pci, ...(opts.conf ?? {}) };
  const pod: VfPod = { name, ns, path: cluster.netns.path(ns), id: `${cluster.netns.prefix}-vf-${seq}-${name}`, args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${NS};K8S_POD_NAME=${name}`, vf, conf, result: undefined as unknown as ShimResult };
  pod.result = await runShimAsync(cniEnv({ command: 'ADD', containerId: pod.id, netns: pod.path, args: pod.args }), netconf(node.socket, conf));
  pods.push(pod);
  if (opts.expectOk !== false && pod.result.status !== 0) throw new Error(`ADD ${name}: ${pod.result.stdout}${pod.result.stderr}`);
  return pod;
}

async function delPod(p: VfPod): Promise<ShimResult> {
  const r = await runShimAsync(cniEnv({ command: 'DEL', containerId: p.id, netns: p.path, args: p.args }), netconf(node.socket, p.conf), 30_000);
  if (r.status === 0) pods.splice(pods.indexOf(p), 1);
  return r;
}

const ipOf = (p: VfPod): string => resultIps(p.result.json)[0] as string;
const macOf = (p: VfPod): string => ((p.result.json?.interfaces as Array<{ mac?: string }>)[1]?.mac ?? '');
const ping = (p: VfPod, ip: string, extra: string[] = []): boolean =>
  cluster.netns.exec(p.ns, ['ping', '-c', '1', '-W', '1', ...extra, ip]).status === 0;
const pingRetry = (p: VfPod, ip: string): boolean => [0, 1, 2, 3].some(() => ping(p, ip));

/**
 * The first ping between the file's first VF pods, retried for up to 30 s, with how long it took
 * printed: in 2 of about 15 runs (both on a loaded machine) the first VF pods of a fresh node
 * had no connectivity for 15-20 s after their ADDs returned, then did; cause not found yet.
 */
function firstPing(p: VfPod, ip: string): boolean {
  const started = Date.now();
  while (Date.now() - started < 30_000) {
    if (ping(p, ip)) {
      console.log(`first VF-to-VF ping answered ${Date.now() - started} ms after the ADDs`);
      return true;
    }
  }
  return false;
}

/** The VF is back in the node exactly as it was before any pod. */
function expectVfHome(vf: number): void {
  const link = nic.nodeLink(nic.vf(vf).netdev);
  expect(link, `VF ${vf} netdev ${nic.vf(vf).netdev} back in the node`).toBeDefined();
  expect(link?.mac).toBe(nic.originalMac(vf));
  expect(link?.mtu).toBe(1500);
  expect(pfSettings(vf)).toEqual(DEFAULTS);
  expect(ovsVsctl(['list-ports', 'br-int']).split('\n')).not.toContain(nic.vf(vf).representor);
}

beforeAll(async () => {
  requireArtefacts();
  // The fake NIC's links live in the node's netns: built once it exists, before the daemon starts.
  cluster = await TestCluster.start({
    name: 'vf1',
    beforeStart: async (n) => {
      nic = await FakeNicOnNode.create({ nodeNs: n.ns });
      return SRIOV_ARGS();
    },
  });
  node = cluster.node;
  cluster.writeNamespace(NS);
  await cluster.waitApplied();
}, 120_000);

afterAll(async () => {
  for (const p of [...pods]) await delPod(p).catch(() => undefined);
  if (restarted) await restarted.stop().catch(() => undefined);
  nic?.destroy();
  await cluster?.destroy();
}, 120_000);

describe('SR-IOV VFs on a fake NIC (switchdev, hw-offload on)', () => {
  it('two VF pods talk through their representors and OVN; PF-side settings are the annotations and netconf', async () => {
    const a = await addVfPod('vf-a', 0, { annotations: { 'ovn.kubernetes.io/vlan_id': '100', 'ovn.kubernetes.io/egress_rate': '500' }, conf: { spoofchk: 'on', trust: 'off', link_state: 'enable' } });
    const b = await addVfPod('vf-b', 1);
    // The VF netdev is the pod's eth0 (its MAC, the pod MTU), gone from the node.
    const eth0 = linkIn(a.ns, 'eth0');
    expect(eth0?.mac).toBe(macOf(a));
    expect(eth0?.up).toBe(true);
    expect(nic.nodeLink(nic.vf(0).netdev)).toBeUndefined();
    // Its representor is the OVS port, bound to the pod's logical port.
    expect(ovsVsctl(['get', 'Interface', nic.vf(0).representor as string, 'external_ids:iface-id'])).toBe(`vf-a.${NS}`);
    // On the userspace datapath vswitchd's hw-offload stays off (it would hand the kernel tc
    // flows of its AF_PACKET ports), and the daemon says so; the NIC side is configured anyway.
    expect(ovsVsctl(['get', 'Open_vSwitch', '.', 'other_config'])).not.toContain('hw-offload');
    expect(cluster.log.lines.some((l) => l.raw.includes('other_config:hw-offload left unset on the userspace datapath'))).toBe(true);
    expect(pfSettings(0)).toEqual({ ...DEFAULTS, mac: macOf(a), vlan: 100, qos: 0, spoofchk: true, trust: false, linkState: 'enable', minTxRate: 0, maxTxRate: 500 });
    expect(pfSettings(1)).toEqual({ ...DEFAULTS, mac: macOf(b) });
    const calls = readFileSync(join(nic.root, 'ovnode-fake-nic', 'calls.jsonl'), 'utf8');
    expect(calls).toContain(`"netdev":"${nic.vf(0).representor}"`);
    expect(calls).toContain(`"netdev":"${nic.pf.netdev}"`);
    expect(firstPing(a, ipOf(b))).toBe(true);
    expect(ping(b, ipOf(a))).toBe(true);
    // CHECK reads the VF's MAC back from its PF and the pod side from the netns.
    const check = await runShimAsync(cniEnv({ command: 'CHECK', containerId: a.id, netns: a.path, args: a.args }), netconf(node.socket, { ...a.conf, prevResult: a.result.json }));
    expect(check.status, check.stdout).toBe(0);
    // Offloaded flow counts come from vswitchd; the userspace datapath offloads none of the
    // flows that just carried the pings.
    const metrics = scrapeMetrics(node.ns);
    expect(metrics).toMatch(/^ovnode_ovs_offload_flows\{datapath="ovs-netdev",type="offloaded"\} 0$/m);
    expect(Number(/^ovnode_ovs_offload_flows\{datapath="ovs-netdev",type="non_offloaded"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
  }, 60_000);

  it('port security drops a spoofed source IP and a spoofed MAC from a VF pod', async () => {
    const [a, b] = pods as [VfPod, VfPod];
    const spoofIp = ipOf(a).replace(/\.\d+$/, '.250');
    execFileSync('ip', ['-n', a.ns, 'addr', 'add', `${spoofIp}/32`, 'dev', 'eth0']);
    try {
      expect(ping(a, ipOf(b), ['-I', spoofIp])).toBe(false);
      expect(pingRetry(a, ipOf(b))).toBe(true);
    } finally {
      execFileSync('ip', ['-n', a.ns, 'addr', 'del', `${spoofIp}/32`, 'dev', 'eth0']);
    }
    execFileSync('ip', ['-n', a.ns, 'link', 'set', 'eth0', 'address', '02:66:66:66:66:66']);
    try {
      execFileSync('ip', ['-n', a.ns, 'neigh', 'flush', 'all']);
      expect(ping(a, ipOf(b))).toBe(false);
    } finally {
      execFileSync('ip', ['-n', a.ns, 'link', 'set', 'eth0', 'address', macOf(a)]);
    }
    expect(pingRetry(a, ipOf(b))).toBe(true);
  }, 60_000);

  it('a VF another pod holds is refused (try again later) and changes nothing', async () => {
    const before = pfSettings(1);
    const c = await addVfPod('vf-c', 1, { expectOk: false });
    expect(c.result.status).not.toBe(0);
    expect(c.result.json?.code).toBe(11);
    expect(String(c.result.json?.msg)).toMatch(/VF 0000:3b:00\.3 is attached to sandbox/);
    expect(pfSettings(1)).toEqual(before);
    expect(linkIn(c.ns, 'eth0')).toBeUndefined();
    expect((await delPod(c)).status).toBe(0);
    // The holder is untouched by the refused ADD and its DEL.
    expect(pfSettings(1)).toEqual(before);
    expect(pingRetry(pods[1] as VfPod, ipOf(pods[0] as VfPod))).toBe(true);
  }, 60_000);

  it('DEL puts the VF back: name, MAC, MTU, namespace, PF settings; the VF serves the next pod', async () => {
    const a = pods.find((p) => p.name === 'vf-a') as VfPod;
    expect((await delPod(a)).status).toBe(0);
    expectVfHome(0);
    expect(linkIn(a.ns, 'eth0')).toBeUndefined();
    const again = await addVfPod('vf-a2', 0);
    expect(pingRetry(again, ipOf(pods.find((p) => p.name === 'vf-b') as VfPod))).toBe(true);
    expect((await delPod(again)).status).toBe(0);
    expectVfHome(0);
  }, 60_000);

  it('an ADD that fails after the VF moved (the pod already has an eth0) puts everything back and says why', async () => {
    podManifest('vf-clash', {});
    await cluster.waitApplied();
    const ns = cluster.netns.create(`v${++seq}`);
    execFileSync('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0peer']);
    const id = `${cluster.netns.prefix}-vf-clash`;
    const args = `IgnoreUnknown=1;K8S_POD_NAMESPACE=${NS};K8S_POD_NAME=vf-clash`;
    const r = await runShimAsync(cniEnv({ command: 'ADD', containerId: id, netns: cluster.netns.path(ns), args }), netconf(node.socket, { deviceID: nic.vf(0).pci }));
    expect(r.status).not.toBe(0);
    expect(r.json?.code).toBe(102);
    expect(String(r.json?.msg) + String(r.json?.details)).toMatch(/eth0.*File exists|File exists.*eth0/);
    expectVfHome(0);
    expect(linkIn(ns, vfTempNameFor(id))).toBeUndefined();
    expect(ovsVsctl(['--columns=name', 'find', 'Interface', `external_ids:iface-id=vf-clash.${NS}`])).toBe('');
  }, 60_000);

  it('an ADD repeated for the same attachment (no DEL between) takes the VF over; the DEL restores the first original', async () => {
    const p = await addVfPod('vf-again', 0, { annotations: { 'ovn.kubernetes.io/vlan_id': '42' } });
    expect(pfSettings(0).vlan).toBe(42);
    const again = await runShimAsync(cniEnv({ command: 'ADD', containerId: p.id, netns: p.path, args: p.args }), netconf(node.socket, p.conf));
    expect(again.status, again.stdout).toBe(0);
    expect(linkIn(p.ns, 'eth0')?.up).toBe(true);
    expect(pfSettings(0).vlan).toBe(42);
    expect((await delPod(p)).status).toBe(0);
    // Restored to what the VF was before the first ADD, not to the first ADD's settings.
    expectVfHome(0);
  }, 60_000);

  it('a VF pod whose netns vanished is cleaned up by its DEL', async () => {
    const p = await addVfPod('vf-gone', 2);
    expect(pfSettings(2).mac).toBe(macOf(p));
    cluster.netns.remove(p.ns); // the kernel deletes the fake VF (a veth) with it
    expect((await delPod(p)).status).toBe(0);
    expect(pfSettings(2)).toEqual(DEFAULTS);
    expect(ovsVsctl(['list-ports', 'br-int']).split('\n')).not.toContain(nic.vf(2).representor);
    nic.createVfLinks(2);
  }, 60_000);

  it('a VF pod whose netns vanished and whose DEL never comes is cleaned by the reconcile loop', async () => {
    const p = await addVfPod('vf-lost', 2);
    expect(pfSettings(2).mac).toBe(macOf(p));
    const mark = cluster.log.mark;
    cluster.netns.remove(p.ns);
    await cluster.log.waitFor((l) => l.raw.includes('"msg":"VF released"') && l.raw.includes(nic.vf(2).pci), { from: mark, timeoutMs: 30_000, what: 'the reconcile loop releasing VF 2' });
    expect(pfSettings(2)).toEqual(DEFAULTS);
    expect(ovsVsctl(['list-ports', 'br-int']).split('\n')).not.toContain(nic.vf(2).representor);
    pods.splice(pods.indexOf(p), 1);
    nic.createVfLinks(2);
  }, 60_000);

  it('a VF bound to vfio-pci: MAC through the PF, representor plugged, no netns interface; DEL resets it', async () => {
    await nic.sysfs.bindVfToVfio(nic.vf(3).pci);
    const p = await addVfPod('vf-vfio', 3, { conf: { cniVersion: '1.1.0' } });
    const itf = (p.result.json?.interfaces as Array<Record<string, unknown>>)[1];
    expect(itf).toMatchObject({ name: 'eth0', pciID: nic.vf(3).pci });
    expect(itf?.sandbox).toBeUndefined();
    expect(linkIn(p.ns, 'eth0')).toBeUndefined();
    expect(pfSettings(3).mac).toBe(itf?.mac);
    expect(ovsVsctl(['get', 'Interface', nic.vf(3).representor as string, 'external_ids:iface-id'])).toBe(`vf-vfio.${NS}`);
    expect((await delPod(p)).status).toBe(0);
    expect(pfSettings(3)).toEqual(DEFAULTS);
    expect(ovsVsctl(['list-ports', 'br-int']).split('\n')).not.toContain(nic.vf(3).representor);
  }, 60_000);

  it('SIGKILL of the daemon during VF ADDs leaks no VF: after a restart and the DELs every VF is home', async () => {
    for (const p of [...pods]) expect((await delPod(p)).status).toBe(0);
    // ovn-controller stopped: each ADD plumbs its VF completely (PF settings, netdev in the pod,
    // port) and then waits for the binding, so the kill finds all three at their most changed.
    const controller = Number(readFileSync(join(node.stateDir, 'ovn', 'ovn-controller.pid'), 'utf8').trim());
    process.kill(controller, 'SIGSTOP');
    try {
      const mark = cluster.log.mark;
      const adds = [0, 1, 2].map((vf) => addVfPod(`vf-k${vf}`, vf, { expectOk: false }));
      let from = mark;
      for (let i = 0; i < 3; i++) {
        const line = await cluster.log.waitFor((l) => l.json?.step === 'plumb' && l.json?.msg === 'step done', { from, timeoutMs: 30_000, what: `VF ADD ${i + 1} plumbed` });
        from = line.seq + 1;
      }
      for (const vf of [0, 1, 2]) expect(nic.nodeLink(nic.vf(vf).netdev), `VF ${vf} in its pod`).toBeUndefined();
      await node.kill9();
      const outcomes = await Promise.all(adds);
      expect(outcomes.map((p) => p.result.status).filter((s) => s === 0)).toEqual([]);
    } finally {
      process.kill(controller, 'SIGCONT');
    }
    restarted = new TestNode({ netns: cluster.netns, name: 'vf1', stateDir: node.stateDir, extraArgs: ['--manifests', cluster.manifestsDir, ...SRIOV_ARGS()] }, node.ns);
    await restarted.start();
    node = restarted;
    for (const p of pods.filter((x) => x.name.startsWith('vf-k'))) expect((await delPod(p)).status).toBe(0);
    for (const vf of [0, 1, 2]) expectVfHome(vf);
  }, 120_000);
});
