// How fast the datapath follows a manifest edit, on the real OVS/OVN userspace datapath: for each
// kind of change (NetworkPolicy created, Namespace label changed, Pod label changed, NetworkPolicy
// deleted, SecurityGroup rule changed and changed back) the time from the file write until pings
// start or stop getting through, measured with a `ping -c1 -W1` started every 25 ms (the start of
// the first ping of the new behaviour). Each must be at most 1000 ms; the table is printed.
//
// The pods: cli (namespace live-cli, label role=client) pings srv (namespace live-srv, label
// app=srv) and, in the last test, sgsrv (live-srv, member of SecurityGroup sg-live). The NetworkPolicy admits into
// app=srv only pods labelled role=client in namespaces labelled team=blue. One node for the whole
// file; everything is removed in afterAll, even when a test fails.

import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type ClusterPod } from './harness/cluster';
import { requireArtefacts } from './harness/paths';
import { writePod } from './harness/pod-tools';

const NODE = 'live';
const MAX_MS = 1_000;
const INTERVAL_MS = 25;
const NP_FILE = 'networkpolicy-live.yaml';
const SG_FILE = 'securitygroup-sg-live.yaml';

let cluster: TestCluster | undefined;
let cli: ClusterPod;
let srv: ClusterPod;
let sgsrv: ClusterPod;
const table: Array<{ change: string; effect: string; ms: number; appliedMs: number; pings: number }> = [];

function theCluster(): TestCluster {
  if (!cluster) throw new Error('cluster not started');
  return cluster;
}

const POLICY = YAML.stringify({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'live', namespace: 'live-srv' },
  spec: {
    podSelector: { matchLabels: { app: 'srv' } },
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'blue' } }, podSelector: { matchLabels: { role: 'client' } } }] }],
  },
});

function sgLive(policy: 'allow' | 'drop'): string {
  return YAML.stringify({
    apiVersion: 'kubeovn.io/v1',
    kind: 'SecurityGroup',
    metadata: { name: 'sg-live' },
    spec: {
      allowSameGroupTraffic: false,
      ingressRules: [{ ipVersion: 'ipv4', protocol: 'icmp', priority: 10, remoteType: 'address', remoteAddress: '10.16.0.0/16', policy }],
      egressRules: [],
    },
  });
}

/** Checks the state before a change (so that the change is what flips it), then measures the change. */
async function measure(change: string, to: ClusterPod, works: boolean, edit: () => void): Promise<number> {
  const c = theCluster();
  const before = await c.ping(cli, to.ip, works ? 2 : 3);
  expect(before, `before "${change}": cli -> ${to.alias} must ${works ? 'not yet work' : 'still work'}`).toBe(!works);
  const t = await c.timeUntilPing(cli, to.ip, works, edit, { intervalMs: INTERVAL_MS, timeoutMs: 4_000 });
  const applied = await c.waitApplied();
  table.push({ change, effect: `cli -> ${to.alias} ${works ? 'passes' : 'dropped'}`, ms: t.ms, appliedMs: applied.ms, pings: t.pings });
  console.log(`${change}: cli -> ${to.alias} ${works ? 'passes' : 'is dropped'} ${t.ms} ms after the write ("policy applied" after ${applied.ms} ms)`);
  const after = await c.ping(cli, to.ip, works ? 3 : 2);
  expect(after, `after "${change}": cli -> ${to.alias}`).toBe(works);
  return t.ms;
}

beforeAll(async () => {
  requireArtefacts();
  cluster = await TestCluster.start({ name: NODE });
  cluster.writeNamespace('live-cli');
  cluster.writeNamespace('live-srv');
  [cli, srv] = await cluster.addPods([
    { name: 'cli', namespace: 'live-cli', alias: 'cli', labels: { role: 'client' } },
    { name: 'srv', namespace: 'live-srv', alias: 'srv', labels: { app: 'srv' } },
  ]) as [ClusterPod, ClusterPod];
});

afterAll(async () => {
  if (table.length > 0) {
    const w = Math.max(...table.map((r) => r.change.length));
    console.log(`manifest write -> datapath (ping every ${INTERVAL_MS} ms), limit ${MAX_MS} ms\n`
      + `${'change'.padEnd(w)}  ${'effect'.padEnd(22)} ${'datapath'.padStart(9)} ${'applied'.padStart(8)}\n`
      + table.map((r) => `${r.change.padEnd(w)}  ${r.effect.padEnd(22)} ${`${r.ms} ms`.padStart(9)} ${`${r.appliedMs} ms`.padStart(8)}`).join('\n'));
  }
  await cluster?.destroy();
});

describe('manifest edits reach the datapath within 1 s (real OVS/OVN userspace datapath)', () => {
  it('NetworkPolicy created: srv admits only role=client from team=blue namespaces -> cli (namespace unlabelled) is dropped', async () => {
    const c = theCluster();
    expect(await measure('NetworkPolicy create', srv, false, () => c.writeManifest(NP_FILE, POLICY))).toBeLessThanOrEqual(MAX_MS);
  });

  it('Namespace label change: live-cli gets team=blue -> cli passes', async () => {
    const c = theCluster();
    expect(await measure('Namespace label change', srv, true, () => { c.writeNamespace('live-cli', { team: 'blue' }); })).toBeLessThanOrEqual(MAX_MS);
  });

  it('Pod label change: cli role=client -> role=other -> dropped', async () => {
    const c = theCluster();
    expect(await measure('Pod label change', srv, false, () => writePod(c, cli, { labels: { role: 'other' } }))).toBeLessThanOrEqual(MAX_MS);
  });

  it('NetworkPolicy deleted -> cli passes', async () => {
    const c = theCluster();
    expect(await measure('NetworkPolicy delete', srv, true, () => c.removeManifest(NP_FILE))).toBeLessThanOrEqual(MAX_MS);
  });

  it('SecurityGroup rule change: the icmp rule of sg-live turns from allow to drop -> dropped, and back -> passes', async () => {
    const c = theCluster();
    // The group and its member come only now, so that the NetworkPolicy steps do not depend on them.
    c.writeManifest(SG_FILE, sgLive('allow'));
    await c.waitApplied();
    sgsrv = await c.addPod({ name: 'sgsrv', namespace: 'live-srv', alias: 'sgsrv', annotations: { 'ovn.kubernetes.io/security_groups': 'sg-live' } });
    const drop = await measure('SG rule allow -> drop', sgsrv, false, () => c.writeManifest(SG_FILE, sgLive('drop')));
    const allow = await measure('SG rule drop -> allow', sgsrv, true, () => c.writeManifest(SG_FILE, sgLive('allow')));
    expect(drop).toBeLessThanOrEqual(MAX_MS);
    expect(allow).toBeLessThanOrEqual(MAX_MS);
  });
});
