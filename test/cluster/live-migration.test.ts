// KubeVirt live migration on the lab cluster, Kube-OVN's model, node side only. KubeVirt is NOT
// installed: its pods are FAKED as plain pods carrying its labels and annotations
// (harness/kubevirt.ts), and the virtual machine is a network namespace of its own holding the
// guest's TCP connections, moved from the launcher pod's interface to the target pod's as a
// paused-and-resumed guest moves, announcing itself with RARPs as QEMU does (harness/vm.ts).
// A migration target pod is first made what virt-launcher makes it (its eth0 keeps the link, the
// guest keeps the address). A client pod on the third node keeps a 20 ms ping and a
// sequence-numbered TCP stream to the VM (harness/probe.ts) throughout.
//
// What ovnode must do: all launcher pods of one VM share ONE port, <vm>.<namespace> (one address,
// one MAC); while a migration is pending every zone pins that port to both chassis
// (requested-chassis "<source>,<target>", activation-strategy=rarp on the two nodes), the
// target's binding activates on the guest's RARP from the target side, the target node's daemon
// annotates the target pod ovnode.io/migration-activated=<node>, and from then on every zone pins
// the port to the target alone; a target deleted before activation (a failed migration) pins it
// back to the source, which keeps serving.
//
// First, a check of the harness itself on plain pods (no KubeVirt labels): it does not depend on
// the feature and tells a broken harness apart from a broken feature.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, kubectl, readLab, uniqueName, waitForDeleted, waitForPodReady } from './harness/lab';
import {
  ACTIVATED_ANNOTATION, chassisByNode, launcherPod, lspInZone, pinnedTo, podNetworkAnnotations, vmPortName, waitForActivation, waitForVmPort,
} from './harness/kubevirt';
import { createNamespace, deleteNamespace, deployOvnode, nbPorts, testPod } from './harness/ovnode';
import { podNetnsPath } from './harness/pods';
import { describeStats, TrafficProbe, type ProbeStats } from './harness/probe';
import { captureRarps, sendRarps } from './harness/frames';
import { neighbourMac, TestVm, VM_ECHO_PORT } from './harness/vm';

const NS = uniqueName('lm');
const VM = 'vm1';
const LSP = vmPortName(VM, NS);
const CLIENT = 'client';
/** The lab's first three nodes: the VM starts on n1 and moves to n2; the client is on n3. */
let n1 = '';
let n2 = '';
let n3 = '';
let ZONES: string[] = [];
let chassis = new Map<string, string>();
let clientNetns = '';
/** Everything started here, stopped in afterAll whatever happened. */
const vms: TestVm[] = [];
const probes: TrafficProbe[] = [];
let vm: TestVm;

const ch = (node: string): string => chassis.get(node) as string;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  const lab = readLab();
  expect(lab.nodes.length, 'the lab runs 3 nodes for these tests (NODES=3)').toBeGreaterThanOrEqual(3);
  [n1, n2, n3] = lab.nodes.slice(0, 3).map((n) => n.name) as [string, string, string];
  ZONES = [n1, n2, n3];
  await deployOvnode();
  await createNamespace(NS);
  chassis = await chassisByNode(ZONES);
  await apply(testPod({ name: CLIENT, namespace: NS, node: n3 }));
  await waitForPodReady(NS, CLIENT, 180_000);
  clientNetns = await podNetnsPath({ namespace: NS, pod: CLIENT });
  console.log(`live migration: namespace ${NS}, VM port ${LSP}, chassis ${[...chassis].map(([n, c]) => `${n}=${c}`).join(' ')}`);
}, 600_000);

afterAll(async () => {
  for (const p of probes) p.kill();
  for (const v of vms) await v.destroy();
  await deleteNamespace(NS);
}, 300_000);

async function newVm(name: string): Promise<TestVm> {
  const v = await TestVm.create(name);
  vms.push(v);
  return v;
}

/** A probe from the client to the VM, once the first packets got through (flows set up on the slow path first). */
async function probeTo(target: TestVm): Promise<TrafficProbe> {
  const p = await TrafficProbe.start({ clientNetns, target: target.ip, port: VM_ECHO_PORT });
  probes.push(p);
  await p.waitFlowing({ pings: 10, echoes: 10, timeoutMs: 30_000 });
  return p;
}

/** A window's figures, printed so that they stand out in the test output. */
function report(title: string, s: ProbeStats): void {
  console.log(`\n==== ${title}: ${describeStats(s)} ====\n`);
}

describe('test harness on plain pods (no KubeVirt labels): a VM namespace on a pod\'s interface, the probe, RARPs', () => {
  it('the VM on a node1 pod\'s interface answers ping and TCP from node3; a 1 s link outage shows as a ~1 s gap with ~50 pings lost and TCP intact; RARPs leave through the pod\'s port', async () => {
    await apply(testPod({ name: 'plain', namespace: NS, node: n1 }));
    await waitForPodReady(NS, 'plain', 120_000);
    const h = await newVm('harness');
    const id = await h.attach({ namespace: NS, pod: 'plain' });
    expect(id.mac).toBe((await podNetworkAnnotations(NS, 'plain')).mac);
    const probe = await probeTo(h);

    const from = Date.now();
    await sleep(1000);
    const downAt = Date.now();
    expect((await h.exec(['ip', 'link', 'set', 'eth0', 'down'])).code).toBe(0);
    await sleep(1000);
    // Up again: the kernel drops the routes through a link that goes down; put the default back.
    expect((await h.exec(['sh', '-c', `ip link set eth0 up && ${id.routes.map((r) => `ip -${r.family} route replace ${r.args.join(' ')} dev eth0`).join(' && ') || 'true'}`])).code).toBe(0);
    const upAt = Date.now();
    await probe.waitFlowing({ sinceMs: upAt, pings: 10, echoes: 10, timeoutMs: 30_000 });
    const s = await probe.stats(from, Date.now() + 1000);
    report(`harness: link down ${upAt - downAt} ms`, s);
    expect(s.longestGapMs).toBeGreaterThanOrEqual(upAt - downAt - 50);
    expect(s.longestGapMs).toBeLessThan(upAt - downAt + 1000);
    expect(s.pingsLost).toBeGreaterThanOrEqual(Math.floor((upAt - downAt - 100) / 20));
    expect(s.pingsLost).toBeLessThanOrEqual(Math.ceil((s.longestGapMs + 100) / 20));
    expect(s.tcpAlive).toBe(true);

    // RARPs as a migrated guest sends them, seen on the host side of the pod's veth (node1).
    const node1Netns = readLab().nodes.find((n) => n.name === n1)?.netnsPath as string;
    const capture = await captureRarps(node1Netns, await h.hostPeer(node1Netns));
    const sent = await sendRarps(h.netnsPath, h.mac, 3);
    await sleep(300);
    const seen = await capture.stop();
    expect(sent).toHaveLength(3);
    expect(seen.map((f) => [f.dst, f.src, f.opcode, f.sha, f.tha])).toEqual(Array(3).fill(['ff:ff:ff:ff:ff:ff', h.mac, 3, h.mac, h.mac]));

    const total = await probe.stop();
    expect(total.tcpIntact, JSON.stringify(total)).toBe(true);
    await h.destroy();
    await kubectl(['-n', NS, 'delete', 'pod', 'plain', '--wait=false']);
  }, 180_000);
});

describe('KubeVirt live migration (KubeVirt pods faked as plain pods)', () => {
  const src = `virt-launcher-${VM}-src`;
  const tgt = `virt-launcher-${VM}-tgt`;
  const failed = `virt-launcher-${VM}-fail`;
  let probe: TrafficProbe;
  let address = { ip: '', mac: '' };

  it('a VM\'s launcher pod on node1 gets the VM\'s port <vm>.<namespace>, with its address and MAC written back', async () => {
    await apply(launcherPod({ vm: VM, namespace: NS, pod: src, node: n1 }));
    await waitForPodReady(NS, src, 120_000);
    address = await podNetworkAnnotations(NS, src);
    expect(address.ip, 'ovn.kubernetes.io/ip_address').toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(address.mac, 'ovn.kubernetes.io/mac_address').toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    const ports = await nbPorts(n1);
    expect(ports.has(`${src}.${NS}`), `no per-pod port ${src}.${NS} on ${n1}`).toBe(false);
    const port = ports.get(LSP);
    expect(port, `${n1}: port ${LSP}`).toBeDefined();
    expect(port?.remoteNode, `${n1}: ${LSP} is its own`).toBeUndefined();
    expect(port?.line).toBe(`${address.mac} ${address.ip}`);
    // The other zones hold it as node1's port.
    await waitForVmPort([n2, n3], LSP, pinnedTo(ch(n1)), { description: `${LSP} pinned to ${ch(n1)} in ${n2} and ${n3}` });

    vm = await newVm(VM);
    const id = await vm.attach({ namespace: NS, pod: src });
    expect(id.mac).toBe(address.mac);
    expect(vm.ip).toBe(address.ip);
    probe = await probeTo(vm);
  }, 240_000);

  it('migrates to node2: both chassis pinned while pending, the target activated by the guest\'s RARP, the TCP stream survives, address and MAC kept', async () => {
    const pendingFrom = Date.now();
    await apply(launcherPod({ vm: VM, namespace: NS, pod: tgt, node: n2, migration: { uid: uniqueName('uid'), name: 'migration-1' } }));
    // ADD of the target does not fail on the address in use; it returns once OVN installed the port.
    await waitForPodReady(NS, tgt, 120_000);
    expect(await podNetworkAnnotations(NS, tgt), 'the target pod\'s address and MAC are the VM\'s').toEqual(address);
    // As virt-launcher does: the pod's eth0 keeps its link, the guest its address.
    await vm.prepareTarget({ namespace: NS, pod: tgt });

    const both = `${ch(n1)},${ch(n2)}`;
    await waitForVmPort(ZONES, LSP, pinnedTo(both, [n1, n2]), { timeoutMs: 60_000, description: `${LSP}: requested-chassis ${both}, activation-strategy=rarp on ${n1} and ${n2}` });
    // Nothing activates the target yet: the source serves on.
    expect((await kubectl(['-n', NS, 'get', 'pod', tgt, '-o', `jsonpath={.metadata.annotations.${ACTIVATED_ANNOTATION.replace(/\./g, '\\.')}}`])).stdout).toBe('');
    await probe.waitFlowing({ pings: 10, echoes: 10, timeoutMs: 10_000 });
    const pending = await probe.stats(pendingFrom, Date.now());
    report('while the migration is pending (source serving)', pending);
    // Until virt-launcher (prepareTarget) takes the address, the target pod answers for it: a second
    // reply to a ping, or a reset of the stream, means traffic reached the target before its activation.
    expect(pending.duplicates, 'pings answered by the not yet activated target').toBe(0);
    expect(pending.tcpAlive, `TCP stream while pending: ${pending.tcpError}`).toBe(true);
    const clientSawMac = await neighbourMac(clientNetns, vm.ip);
    expect(clientSawMac, 'the client resolved the VM').toBe(address.mac);

    const move = await vm.migrate({ namespace: NS, pod: tgt });
    expect(move.targetMac, 'the target pod\'s eth0 has the VM\'s MAC').toBe(address.mac);
    expect(move.targetAddresses, 'the target pod\'s eth0 has the VM\'s address').toContain(vm.identity?.addresses[0]);
    expect(move.pendingFrames, 'IPv4 frames to the VM that reached the inactive target before the RARP').toBe(0);
    await waitForActivation(NS, tgt, n2, 30_000);
    await waitForVmPort(ZONES, LSP, pinnedTo(ch(n2)), { timeoutMs: 30_000, description: `${LSP}: requested-chassis ${ch(n2)} alone, no activation-strategy` });

    await probe.waitFlowing({ sinceMs: move.resumedAt, pings: 25, echoes: 25, timeoutMs: 30_000 });
    const s = await probe.stats(move.pausedAt - 1000, Date.now() + 1000);
    report(`MIGRATION ${n1} -> ${n2}: downtime (longest ping gap) ${s.longestGapMs.toFixed(0)} ms (Kube-OVN documents < 500 ms); guest paused -> running ${move.resumedAt - move.pausedAt} ms, first RARP +${((move.rarpsAt[0] ?? NaN) - move.resumedAt).toFixed(0)} ms`, s);
    expect(s.tcpAlive, `TCP stream: ${s.tcpError}`).toBe(true);
    expect(s.longestGapMs, 'longest gap between ping replies across the move').toBeLessThan(2000);
    expect(s.duplicates, 'ping replies from two places at once').toBe(0);
    expect(await neighbourMac(clientNetns, vm.ip), 'the client\'s neighbour entry').toBe(address.mac);
    expect((await vm.link())?.address).toBe(address.mac);

    // The source pod goes, as KubeVirt deletes it after a migration: the port stays the target's.
    const deletedFrom = Date.now();
    await kubectl(['-n', NS, 'delete', 'pod', src, '--wait=false']);
    await waitForDeleted(`pod/${src}`, { namespace: NS, timeoutMs: 120_000 });
    await waitForVmPort(ZONES, LSP, pinnedTo(ch(n2)), { timeoutMs: 30_000, description: `${LSP} still pinned to ${ch(n2)} after the source pod's deletion` });
    await sleep(2000);
    expect((await lspInZone(n1, LSP))?.options['requested-chassis'], `${n1} after the deletion settled`).toBe(ch(n2));
    await probe.waitFlowing({ pings: 25, echoes: 25, timeoutMs: 30_000 });
    const after = await probe.stats(deletedFrom, Date.now());
    report('source pod deleted', after);
    expect(after.tcpAlive).toBe(true);
    expect(after.longestGapMs).toBeLessThan(2000);
    const total = await probe.stop();
    expect(total.tcpIntact, `no byte lost on the TCP stream: ${JSON.stringify(total)}`).toBe(true);
  }, 300_000);

  it('a failed migration (target deleted before any RARP) pins the port back to the source alone, which keeps serving', async () => {
    // The VM now runs on node2 (previous test); a migration back to node1 is started and abandoned.
    const p = await probeTo(vm);
    const from = Date.now();
    await apply(launcherPod({ vm: VM, namespace: NS, pod: failed, node: n1, migration: { uid: uniqueName('uid'), name: 'migration-2' } }));
    await waitForPodReady(NS, failed, 120_000);
    const target = await vm.prepareTarget({ namespace: NS, pod: failed });
    expect(target.mac).toBe(address.mac);
    const both = `${ch(n2)},${ch(n1)}`;
    await waitForVmPort(ZONES, LSP, pinnedTo(both, [n1, n2]), { timeoutMs: 60_000, description: `${LSP}: requested-chassis ${both}` });
    await sleep(2000);
    expect(await target.stop(), 'IPv4 frames to the VM that reached the never-activated target').toBe(0);

    await kubectl(['-n', NS, 'delete', 'pod', failed, '--wait=false']);
    await waitForDeleted(`pod/${failed}`, { namespace: NS, timeoutMs: 120_000 });
    await waitForVmPort(ZONES, LSP, pinnedTo(ch(n2)), { timeoutMs: 30_000, description: `${LSP} back to ${ch(n2)} alone` });
    await p.waitFlowing({ pings: 25, echoes: 25, timeoutMs: 30_000 });
    const s = await p.stats(from, Date.now());
    report('failed migration (target deleted before activation)', s);
    expect(s.tcpAlive).toBe(true);
    expect(s.longestGapMs, 'the VM on node2 kept answering').toBeLessThan(2000);
    expect(s.duplicates).toBe(0);
    expect(await neighbourMac(clientNetns, vm.ip)).toBe(address.mac);
    const total = await p.stop();
    expect(total.tcpIntact, JSON.stringify(total)).toBe(true);
  }, 300_000);
});
