// Kube-OVN Vip objects (kubeovn.io/v1) and pod port security on the real OVS/OVN userspace
// datapath, with real packets between pods of one ovnoded node on its default subnet
// ovn-default (10.16.0.0/16):
// - a Vip's address is excluded from IPAM (never handed to a pod, even when next in line; refused
//   to a pod that asks for it), and given back when the Vip is deleted;
// - keepalived-style failover: pods annotated `ovn.kubernetes.io/vip: <vip>` may carry the VIP
//   (their port security lists it), so a client reaches whichever of them holds it after a
//   gratuitous ARP; a pod without the annotation that takes the VIP is cut off on it both ways;
// - port security is on by default (a spoofed source address is dropped), off with
//   `ovn.kubernetes.io/port_security: "false"`, and flipping the annotation on a running pod
//   changes the LSP's port_security column and the datapath.
//
// One node for the whole file; pods, processes, namespaces and directories are removed in
// afterAll, even when a test fails.

import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type ClusterPod, type PodSpec } from './harness/cluster';
import { requireArtefacts } from './harness/paths';
import {
  capture, listenReply, lspOf, PodProcs, portSecurityOf, tcpAnswer, waitUntil, writePod,
} from './harness/pod-tools';

const NODE = 'vip';
const NS = 'vip-test';
const VIP_ANNOTATION = 'ovn.kubernetes.io/vip';
const PS_ANNOTATION = 'ovn.kubernetes.io/port_security';
const IP_ANNOTATION = 'ovn.kubernetes.io/ip_address';
const HA_VIP = '10.16.0.100';
const HA_PORT = 7300;
const MAX_MS = 1_000;

let cluster: TestCluster | undefined;
const procs = new PodProcs();

function theCluster(): TestCluster {
  if (!cluster) throw new Error('cluster not started');
  return cluster;
}

function vipYaml(name: string, v4ip: string, subnet = 'ovn-default'): string {
  return YAML.stringify({ apiVersion: 'kubeovn.io/v1', kind: 'Vip', metadata: { name }, spec: { subnet, v4ip } });
}

const pod = (name: string, annotations: Record<string, string> = {}): PodSpec => ({ name, namespace: NS, alias: name, annotations });

/** Runs a command in a pod; throws with its output when it fails. */
async function run(p: ClusterPod, cmd: string[]): Promise<string> {
  const r = await theCluster().exec(p.ns, cmd, 10_000);
  if (r.status !== 0) throw new Error(`${p.alias}: ${cmd.join(' ')} -> exit ${r.status}: ${r.stdout} ${r.stderr}`);
  return r.stdout;
}

/** ADDs one pod; on failure returns the error and removes what the attempt left (netns, manifest). */
async function tryAddPod(spec: PodSpec): Promise<{ pod?: ClusterPod; error?: string }> {
  const c = theCluster();
  try {
    return { pod: await c.addPod(spec) };
  } catch (e) {
    const left = c.pods.find((p) => p.name === spec.name && p.namespace === spec.namespace);
    if (left) await c.removePod(left).catch(() => undefined);
    return { error: String(e) };
  }
}

/** Sends `count` pings from `from` to `to` with source address `src` (which `from` must hold) and returns how many `to` saw. */
async function spoofedArrivals(from: ClusterPod, to: ClusterPod, src: string, count = 3): Promise<number> {
  const cap = await capture(procs, to, `icmp[icmptype] == icmp-echo and (src host ${src} or src host ${from.ip})`);
  await theCluster().exec(from.ns, ['ping', '-n', '-c', String(count), '-i', '0.2', '-W', '1', '-I', src, to.ip], 5_000);
  // Then one echo from the pod's own address along the same path: once it is seen, any spoofed
  // echo that was going to arrive has arrived.
  await theCluster().exec(from.ns, ['ping', '-n', '-c', '1', '-W', '1', '-I', from.ip, to.ip], 5_000);
  const seen = await cap.stop(new RegExp(`IP ${from.ip.replace(/\./g, '\\.')} > `));
  return seen.filter((l) => l.includes(`IP ${src} > `)).length;
}

beforeAll(async () => {
  requireArtefacts();
  cluster = await TestCluster.start({ name: NODE });
  cluster.writeNamespace(NS);
  await cluster.waitApplied();
});

afterAll(async () => {
  await procs.killAll();
  await cluster?.destroy();
});

describe('Vip (kubeovn.io/v1): IPAM exclusion', () => {
  let first: ClusterPod | undefined;

  it('a Vip\'s address is never handed to a pod, even when it is next in line', async () => {
    const c = theCluster();
    // Before any pod: 10.16.0.2 is the first address ovn-default hands out (.1 is the gateway).
    c.writeManifest('vip-low.yaml', vipYaml('vip-low', '10.16.0.2'));
    await c.waitApplied();
    first = await c.addPod(pod('first'));
    console.log(`Vip vip-low = 10.16.0.2; first pod ADDed afterwards got ${first.ip}`);
    expect(first.ip, 'the first pod must not get the Vip\'s 10.16.0.2').not.toBe('10.16.0.2');
    expect(first.ip.startsWith('10.16.')).toBe(true);

    // The address right after the last one handed out, reserved while pods already exist.
    const parts = first.ip.split('.').map(Number);
    const next = `${parts[0]}.${parts[1]}.${parts[2]}.${(parts[3] as number) + 1}`;
    c.writeManifest('vip-next.yaml', vipYaml('vip-next', next));
    await c.waitApplied();
    const second = await c.addPod(pod('second'));
    console.log(`Vip vip-next = ${next} (next in line after ${first.ip}); the next pod got ${second.ip}`);
    expect(second.ip, `the pod ADDed after Vip vip-next must not get ${next}`).not.toBe(next);
    expect(second.ip).not.toBe('10.16.0.2');
  });

  it('a pod that asks for a Vip\'s address (ip_address annotation) is refused', async () => {
    const r = await tryAddPod(pod('thief', { [IP_ANNOTATION]: '10.16.0.2' }));
    console.log(`pod asking for 10.16.0.2 (Vip vip-low): ${r.pod ? `ADDed with ${r.pod.ip}` : r.error?.split('\n').slice(0, 2).join(' ')}`);
    expect(r.pod?.ip, 'a pod must not be given the address of Vip vip-low').toBeUndefined();
    expect(r.error ?? '').toMatch(/10\.16\.0\.2/);
  });

  it('deleting the Vip gives its address back: a pod may then ask for it', async () => {
    const c = theCluster();
    c.removeManifest('vip-low.yaml');
    await c.waitApplied();
    const r = await tryAddPod(pod('heir', { [IP_ANNOTATION]: '10.16.0.2' }));
    console.log(`after deleting Vip vip-low, a pod asking for 10.16.0.2: ${r.pod ? `ADDed with ${r.pod.ip}` : r.error?.split('\n').slice(0, 2).join(' ')}`);
    expect(r.error, 'static ADD of 10.16.0.2 after the Vip was deleted').toBeUndefined();
    expect(r.pod?.ip).toBe('10.16.0.2');
  });
});

describe('Vip: keepalived-style failover between the pods that carry the annotation', () => {
  let a: ClusterPod;
  let b: ClusterPod;
  let other: ClusterPod;
  let client: ClusterPod;

  /** The VIP moves to `p`: the holder drops it first (if any), `p` adds it and announces it. */
  async function takeVip(p: ClusterPod, from?: ClusterPod): Promise<void> {
    if (from) await run(from, ['ip', 'addr', 'del', `${HA_VIP}/32`, 'dev', 'eth0']);
    await run(p, ['ip', 'addr', 'add', `${HA_VIP}/32`, 'dev', 'eth0']);
    // Unsolicited ARP, as keepalived sends on a transition (iputils arping: -U, source = the VIP).
    await theCluster().exec(p.ns, ['arping', '-U', '-c', '2', '-I', 'eth0', HA_VIP], 5_000);
  }

  /** Who answers on HA_VIP:HA_PORT from the client, polled for up to `ms`: the first answer, or undefined. */
  async function whoAnswers(ms: number): Promise<{ who: string | undefined; after: number }> {
    const t0 = Date.now();
    let who: string | undefined;
    const after = await waitUntil(async () => { who = await tcpAnswer(theCluster(), client, HA_VIP, HA_PORT); return who !== undefined; }, ms, 50);
    return { who, after: after === Infinity ? Date.now() - t0 : after };
  }

  beforeAll(async () => {
    const c = theCluster();
    c.writeManifest('vip-ha.yaml', vipYaml('vip-ha', HA_VIP));
    await c.waitApplied();
    [a, b, other, client] = await c.addPods([
      pod('ha-a', { [VIP_ANNOTATION]: 'vip-ha' }),
      pod('ha-b', { [VIP_ANNOTATION]: 'vip-ha' }),
      pod('ha-c'),
      pod('ha-client'),
    ]) as [ClusterPod, ClusterPod, ClusterPod, ClusterPod];
    await Promise.all([[a, 'A'], [b, 'B'], [other, 'C']].map(([p, n]) => listenReply(procs, p as ClusterPod, HA_PORT, n as string)));
  });

  it('port security of the annotated pods lists the VIP; the other pod\'s does not', () => {
    const node = theCluster().node;
    const ps = Object.fromEntries([a, b, other].map((p) => [p.alias, portSecurityOf(node, lspOf(p))]));
    console.log(`port_security: ${JSON.stringify(ps)}`);
    for (const p of [a, b]) expect((ps[p.alias] ?? []).join(' ').split(/\s+/), `${p.alias} carries vip-ha`).toEqual(expect.arrayContaining([p.ip, HA_VIP]));
    expect((ps[other.alias] ?? []).join(' ').split(/\s+/), 'ha-c has no vip annotation').not.toContain(HA_VIP);
    expect((ps[other.alias] ?? []).join(' ').split(/\s+/)).toContain(other.ip);
  });

  it('A holds the VIP: the client reaches A on it (ICMP and TCP), A\'s packets from the VIP arrive', async () => {
    const c = theCluster();
    await takeVip(a);
    const r = await whoAnswers(3_000);
    console.log(`A took the VIP: client's TCP to ${HA_VIP}:${HA_PORT} answered by ${r.who} after ${r.after} ms`);
    expect(r.who, 'TCP to the VIP while A holds it').toBe('A');
    expect(await c.ping(client, HA_VIP, 3), `client pings ${HA_VIP} (A)`).toBe(true);
    expect(await spoofedArrivals(a, client, HA_VIP), 'pings from A with source VIP seen by the client').toBeGreaterThan(0);
  });

  it('A gives the VIP up and B takes it over (ip addr + arping -U): the client reaches B on the VIP', async () => {
    const c = theCluster();
    await takeVip(b, a);
    const t0 = Date.now();
    let who: string | undefined;
    // After the gratuitous ARP every answer must come from B (A no longer holds the address).
    const after = await waitUntil(async () => { who = await tcpAnswer(c, client, HA_VIP, HA_PORT); return who === 'B'; }, 3_000, 50);
    console.log(`B took the VIP: client's TCP answered by ${who} ${after === Infinity ? `(never B within ${Date.now() - t0} ms)` : `after ${after} ms`}`);
    expect(who, 'TCP to the VIP after the failover').toBe('B');
    expect(await c.ping(client, HA_VIP, 3), `client pings ${HA_VIP} (B)`).toBe(true);
    expect(await spoofedArrivals(b, client, HA_VIP), 'pings from B with source VIP seen by the client').toBeGreaterThan(0);
  });

  it('a pod without the annotation (C) that takes the VIP is cut off on it: the client cannot reach it, its VIP-sourced packets do not arrive', async () => {
    const c = theCluster();
    // C sees every IPv4 packet sent to the VIP; the client sees every ICMP packet from it.
    const atC = await capture(procs, other, `ip and dst host ${HA_VIP}`);
    await takeVip(other, b);
    // The client must resolve the VIP afresh (C's gratuitous ARP is what it would follow).
    await c.exec(client.ns, ['ip', 'neigh', 'flush', 'all']);
    const r = await whoAnswers(3_000);
    const ping = await c.ping(client, HA_VIP, 2);
    const toC = await atC.stop();
    const fromC = await spoofedArrivals(other, client, HA_VIP);
    console.log(`C took the VIP without the annotation: client's TCP answered by ${r.who ?? 'nobody'}; ping ${ping ? 'answered' : 'unanswered'}; `
      + `IPv4 packets to the VIP seen in C: ${toC.length}; C's VIP-sourced pings seen by the client: ${fromC}`);
    expect(r.who, 'nobody may answer on the VIP via C').toBeUndefined();
    expect(ping, 'client ping to the VIP held by C').toBe(false);
    expect(toC, 'IPv4 packets to the VIP delivered to C').toEqual([]);
    expect(fromC, 'pings from C with source VIP that reach the client').toBe(0);
    await run(other, ['ip', 'addr', 'del', `${HA_VIP}/32`, 'dev', 'eth0']);
  });
});

describe('port security', () => {
  let on: ClusterPod;
  let off: ClusterPod;
  let target: ClusterPod;
  const SPOOF_ON = '10.16.0.201';
  const SPOOF_OFF = '10.16.0.202';

  beforeAll(async () => {
    [on, off, target] = await theCluster().addPods([
      pod('ps-on'),
      pod('ps-off', { [PS_ANNOTATION]: 'false' }),
      pod('ps-target'),
    ]) as [ClusterPod, ClusterPod, ClusterPod];
    // Each pod adds an address it was not given and sends from it.
    await run(on, ['ip', 'addr', 'add', `${SPOOF_ON}/32`, 'dev', 'eth0']);
    await run(off, ['ip', 'addr', 'add', `${SPOOF_OFF}/32`, 'dev', 'eth0']);
  });

  it('on by default: the LSP lists MAC and IP, and a spoofed source address is dropped (its own still works)', async () => {
    const c = theCluster();
    const ps = portSecurityOf(c.node, lspOf(on));
    console.log(`ps-on port_security: ${JSON.stringify(ps)}`);
    expect(ps).toHaveLength(1);
    expect((ps[0] as string).split(/\s+/)).toEqual(expect.arrayContaining([on.ip]));
    expect(await c.ping(on, target.ip, 3), 'ps-on pings from its own address').toBe(true);
    const n = await spoofedArrivals(on, target, SPOOF_ON);
    console.log(`ps-on: pings from spoofed ${SPOOF_ON} seen by the target: ${n}`);
    expect(n, `pings with spoofed source ${SPOOF_ON} that reach the target`).toBe(0);
  });

  it('port_security: "false": the LSP has no port security and the pod can use another address', async () => {
    const c = theCluster();
    expect(portSecurityOf(c.node, lspOf(off)), 'ps-off port_security').toEqual([]);
    const n = await spoofedArrivals(off, target, SPOOF_OFF);
    console.log(`ps-off: pings from ${SPOOF_OFF} seen by the target: ${n}`);
    expect(n, `pings with source ${SPOOF_OFF} that reach the target`).toBeGreaterThan(0);
  });

  it('a vip annotation that names no Vip object ("db", not created) adds nothing to port security, which stays enforced', async () => {
    const c = theCluster();
    // Annotation entries are Vip names or plain IPs; "db" is a valid Vip name made only of hex digits.
    const dbPod = await c.addPod(pod('ps-db', { [VIP_ANNOTATION]: 'db' }));
    await run(dbPod, ['ip', 'addr', 'add', '10.16.0.203/32', 'dev', 'eth0']);
    const ps = portSecurityOf(c.node, lspOf(dbPod));
    const n = await spoofedArrivals(dbPod, target, '10.16.0.203');
    console.log(`ps-db (vip: db, no such Vip): port_security ${JSON.stringify(ps)}; spoofed pings seen by the target: ${n}`);
    expect(ps, 'port_security of a pod whose vip annotation names no Vip').toEqual([`${(await run(dbPod, ['cat', '/sys/class/net/eth0/address'])).trim()} ${dbPod.ip}`]);
    expect(n, 'spoofed 10.16.0.203 from ps-db reaches the target').toBe(0);
  });

  it('flipping the annotation on a running pod: "false" lifts port security, removing it restores it', async () => {
    const c = theCluster();
    const before = portSecurityOf(c.node, lspOf(on));
    writePod(c, on, { annotations: { [PS_ANNOTATION]: 'false' } });
    const offMs = await waitUntil(() => portSecurityOf(c.node, lspOf(on)).length === 0, 3_000);
    await c.waitApplied();
    const arrivedOff = await spoofedArrivals(on, target, SPOOF_ON);
    console.log(`ps-on -> port_security "false": LSP column emptied after ${offMs} ms; spoofed pings seen by the target: ${arrivedOff}`);
    expect(offMs, 'LSP port_security emptied within 1 s of the annotation edit').toBeLessThanOrEqual(MAX_MS);
    expect(arrivedOff, `spoofed ${SPOOF_ON} reaches the target with port security off`).toBeGreaterThan(0);

    writePod(c, on, {});
    const onMs = await waitUntil(() => JSON.stringify(portSecurityOf(c.node, lspOf(on))) === JSON.stringify(before), 3_000);
    await c.waitApplied();
    const arrivedOn = await spoofedArrivals(on, target, SPOOF_ON);
    console.log(`annotation removed: LSP port_security back to ${JSON.stringify(portSecurityOf(c.node, lspOf(on)))} after ${onMs} ms; spoofed pings seen: ${arrivedOn}`);
    expect(onMs, 'LSP port_security restored within 1 s').toBeLessThanOrEqual(MAX_MS);
    expect(arrivedOn, `spoofed ${SPOOF_ON} dropped again`).toBe(0);
    expect(await c.ping(on, target.ip, 3), 'ps-on still pings from its own address').toBe(true);
  });
});
