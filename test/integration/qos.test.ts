// Pod QoS annotations (Kube-OVN's `ovn.kubernetes.io/egress_rate` / `ingress_rate`, Mbit/s) on the
// real OVS/OVN userspace datapath: OVN NB QoS rules become OpenFlow meters that vswitchd enforces.
// Measured with iperf3 (TCP, one stream) between two pods of one ovnoded node on ovn-default:
// the server is started in the receiving pod by pid (`iperf3 -s -1`) and killed afterwards, the
// client runs for 8 s; the figure is what the receiver got (iperf3's sum_received).
//
// A limited transfer must come within ±20 % of 10 Mbit/s; an unlimited one must exceed 30 Mbit/s
// (pod-to-pod TCP on this datapath runs at hundreds of Mbit/s). One node for the whole file;
// everything is removed in afterAll, even when a test fails.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type ClusterPod } from './harness/cluster';
import { requireArtefacts } from './harness/paths';
import { iperf, lspOf, nbctl, PodProcs, writePod, type IperfResult } from './harness/pod-tools';

const NODE = 'qos';
const NS = 'qos-test';
const EGRESS = 'ovn.kubernetes.io/egress_rate';
const INGRESS = 'ovn.kubernetes.io/ingress_rate';
const RATE = 10;
const TOLERANCE = 0.2;
const UNLIMITED_MIN = 30;
// Long enough that the meter's one-second burst allowance (first second ~3x the rate) weighs
// little against the policed steady state (~8.3 Mbit/s of TCP for a 10 Mbit/s meter).
const SECONDS = 8;

let cluster: TestCluster | undefined;
const procs = new PodProcs();
let sender: ClusterPod;
let receiver: ClusterPod;
let port = 5201 + Math.floor(Math.random() * 1000);

function theCluster(): TestCluster {
  if (!cluster) throw new Error('cluster not started');
  return cluster;
}

/** The node's ovn-default QoS rules, one line each, for the log. */
function qosRules(): string {
  return nbctl(theCluster().node, ['qos-list', 'ovn-default']).trim() || '(none)';
}

async function measure(what: string): Promise<IperfResult> {
  const r = await iperf(procs, sender, receiver, receiver.ip, port++, SECONDS);
  // Per-second figures (sender side): the first second includes the meter's burst allowance.
  const intervals = ((r.json as { intervals?: Array<{ sum: { bits_per_second: number } }> }).intervals ?? []).map((i) => (i.sum.bits_per_second / 1e6).toFixed(1));
  console.log(`${what}: ${r.receivedMbps.toFixed(2)} Mbit/s received (${r.sentMbps.toFixed(2)} sent) over ${r.seconds.toFixed(1)} s; `
    + `per second (sent): ${intervals.join(' ')}; NB QoS: ${qosRules()}`);
  return r;
}

function expectNear(r: IperfResult, what: string): void {
  expect(r.receivedMbps, `${what}: ${r.receivedMbps.toFixed(2)} Mbit/s, want ${RATE} ±${TOLERANCE * 100} %`).toBeGreaterThanOrEqual(RATE * (1 - TOLERANCE));
  expect(r.receivedMbps, `${what}: ${r.receivedMbps.toFixed(2)} Mbit/s, want ${RATE} ±${TOLERANCE * 100} %`).toBeLessThanOrEqual(RATE * (1 + TOLERANCE));
}

beforeAll(async () => {
  requireArtefacts();
  cluster = await TestCluster.start({ name: NODE });
  [sender, receiver] = await cluster.addPods([
    { name: 'sender', namespace: NS, alias: 'sender', annotations: { [EGRESS]: String(RATE) } },
    { name: 'receiver', namespace: NS, alias: 'receiver' },
  ]) as [ClusterPod, ClusterPod];
});

afterAll(async () => {
  await procs.killAll();
  await cluster?.destroy();
});

describe('pod QoS annotations (iperf3 between two pods, real OVS/OVN userspace datapath)', () => {
  it(`egress_rate "${RATE}" on the sender: the transfer runs at ${RATE} Mbit/s ±${TOLERANCE * 100} %`, async () => {
    expect(qosRules(), 'a QoS rule for the sender\'s port').toContain(lspOf(sender));
    expectNear(await measure(`sender egress_rate ${RATE}`), 'egress-limited transfer');
  });

  it(`removing egress_rate lifts the limit (> ${UNLIMITED_MIN} Mbit/s)`, async () => {
    const c = theCluster();
    writePod(c, sender, {});
    await c.waitApplied();
    const r = await measure('no annotation');
    expect(qosRules(), 'no QoS rule left for the sender').not.toContain(lspOf(sender));
    expect(r.receivedMbps, 'unlimited transfer (Mbit/s)').toBeGreaterThan(UNLIMITED_MIN);
  });

  it(`ingress_rate "${RATE}" on the receiver: the transfer runs at ${RATE} Mbit/s ±${TOLERANCE * 100} %`, async () => {
    const c = theCluster();
    writePod(c, receiver, { annotations: { [INGRESS]: String(RATE) } });
    await c.waitApplied();
    expect(qosRules(), 'a QoS rule for the receiver\'s port').toContain(lspOf(receiver));
    expectNear(await measure(`receiver ingress_rate ${RATE}`), 'ingress-limited transfer');
  });

  it(`removing ingress_rate lifts the limit (> ${UNLIMITED_MIN} Mbit/s)`, async () => {
    const c = theCluster();
    writePod(c, receiver, {});
    await c.waitApplied();
    const r = await measure('no annotation');
    expect(qosRules(), 'no QoS rule left for the receiver').not.toContain(lspOf(receiver));
    expect(r.receivedMbps, 'unlimited transfer (Mbit/s)').toBeGreaterThan(UNLIMITED_MIN);
  });
});
