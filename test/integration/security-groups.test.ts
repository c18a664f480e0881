// Kube-OVN SecurityGroup (kubeovn.io/v1) on the real OVS/OVN userspace datapath: pods join groups
// with the annotation `ovn.kubernetes.io/security_groups: sg-a[,sg-b]`; a member drops everything
// that no rule of its groups allows, in both directions; rules are stateful (replies of an allowed
// connection pass), ordered by priority (1 first), and a drop rule wins a tie with an allow rule.
// Measured with real packets (ping, TCP through nc) between pods of one ovnoded node on its default
// subnet 10.16.0.0/16; every change is a manifest write, and the remote-group test times how long
// the datapath takes to follow a Pod annotation edit.
//
// One node for the whole file; every pod, process, namespace and directory is removed in afterAll,
// even when a test fails.

import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, type ClusterPod } from './harness/cluster';
import { requireArtefacts } from './harness/paths';
import {
  listenReply, nbctl, PodProcs, restartDaemon, startPinger, startStream, tcpWorks, writePod, type Listener,
} from './harness/pod-tools';

const NODE = 'sg';
const NS = 'sg-test';
const SUBNET = '10.16.0.0/16';
const SG_ANNOTATION = 'ovn.kubernetes.io/security_groups';
const MAX_MS = 1_000;

interface Rule {
  ipVersion?: 'ipv4' | 'ipv6';
  protocol: 'all' | 'icmp' | 'tcp' | 'udp';
  priority: number;
  remoteType: 'address' | 'securityGroup';
  remoteAddress?: string;
  remoteSecurityGroup?: string;
  portRangeMin?: number;
  portRangeMax?: number;
  policy: 'allow' | 'drop';
}

function sgYaml(name: string, spec: { ingressRules?: Rule[]; egressRules?: Rule[]; allowSameGroupTraffic?: boolean }): string {
  const withVersion = (rules: Rule[] = []): Rule[] => rules.map((r) => ({ ipVersion: 'ipv4', ...r }));
  return YAML.stringify({
    apiVersion: 'kubeovn.io/v1',
    kind: 'SecurityGroup',
    metadata: { name },
    spec: {
      allowSameGroupTraffic: spec.allowSameGroupTraffic ?? false,
      ingressRules: withVersion(spec.ingressRules),
      egressRules: withVersion(spec.egressRules),
    },
  });
}

const fromSubnet = (protocol: Rule['protocol'], priority: number, policy: Rule['policy'], ports?: [number, number]): Rule => ({
  protocol, priority, policy, remoteType: 'address', remoteAddress: SUBNET,
  ...(ports ? { portRangeMin: ports[0], portRangeMax: ports[1] } : {}),
});

const ALLOW_ALL_OUT: Rule = { protocol: 'all', priority: 1, policy: 'allow', remoteType: 'address', remoteAddress: '0.0.0.0/0' };

let cluster: TestCluster | undefined;
const procs = new PodProcs();
const listeners: Listener[] = [];
let client: ClusterPod;
let web: ClusterPod;
let tie: ClusterPod;
let srv: ClusterPod;
let peer: ClusterPod;
let m1: ClusterPod;
let m2: ClusterPod;
let est: ClusterPod;
let podsError: unknown;

function theCluster(): TestCluster {
  if (!cluster) throw new Error('cluster not started');
  return cluster;
}

async function writeSg(name: string, spec: Parameters<typeof sgYaml>[1]): Promise<void> {
  const c = theCluster();
  c.writeManifest(`sg-${name}.yaml`, sgYaml(name, spec));
  await c.waitApplied();
}

async function listen(pod: ClusterPod, port: number, reply = 'ok'): Promise<Listener> {
  const l = await listenReply(procs, pod, port, reply);
  listeners.push(l);
  return l;
}

/** The NB ACLs (priority, direction, action, match) written for one owner, e.g. "sg/sg-tie", for failure messages. */
function aclsOf(owner: string): string {
  return nbctl(theCluster().node, ['--format=csv', '--no-headings', '--columns=priority,direction,action,match,external_ids', 'list', 'ACL'])
    .split('\n').filter((l) => l.includes(`"ovnode:policy"="${owner}"`) || l.includes(`ovnode:policy=${owner}`)).join('\n');
}

/** Positive: one of 3 pings answered; negative: none of 2. */
async function expectPing(from: ClusterPod, to: ClusterPod, works: boolean, why: string): Promise<void> {
  const ok = await theCluster().ping(from, to.ip, works ? 3 : 2);
  expect(ok, `ping ${from.alias} -> ${to.alias} (${to.ip}): ${why}`).toBe(works);
}

/** Positive: one of 3 connections answered; negative: none of 2. */
async function expectTcp(from: ClusterPod, to: ClusterPod, port: number, works: boolean, why: string): Promise<void> {
  const ok = await tcpWorks(theCluster(), from, to.ip, port, works ? 3 : 2);
  expect(ok, `tcp ${from.alias} -> ${to.alias} (${to.ip}:${port}): ${why}`).toBe(works);
}

beforeAll(async () => {
  requireArtefacts();
  cluster = await TestCluster.start({ name: NODE });
  const c = cluster;
  c.writeNamespace(NS);
  // The groups exist before their members are ADDed: members are isolated from their first packet.
  c.writeManifest('sg-sg-ports.yaml', sgYaml('sg-ports', { ingressRules: [fromSubnet('tcp', 10, 'allow', [8000, 8010])] }));
  c.writeManifest('sg-sg-tie.yaml', sgYaml('sg-tie', {}));
  c.writeManifest('sg-sg-server.yaml', sgYaml('sg-server', {
    ingressRules: [{ protocol: 'all', priority: 10, policy: 'allow', remoteType: 'securityGroup', remoteSecurityGroup: 'sg-client' }],
  }));
  c.writeManifest('sg-sg-client.yaml', sgYaml('sg-client', { egressRules: [ALLOW_ALL_OUT] }));
  c.writeManifest('sg-sg-empty.yaml', sgYaml('sg-empty', {}));
  c.writeManifest('sg-sg-same.yaml', sgYaml('sg-same', { allowSameGroupTraffic: true }));
  c.writeManifest('sg-sg-est.yaml', sgYaml('sg-est', { ingressRules: [fromSubnet('tcp', 10, 'allow', [7000, 7000])] }));
  await c.waitApplied();
});

/** The pods of the file (ADDed in the first test); throws when they could not be added. */
function need(): void {
  if (!est) throw new Error(`the pods of this file could not be ADDed (see the first test): ${String(podsError)}`);
}

afterAll(async () => {
  await procs.killAll();
  await cluster?.destroy();
});

describe('SecurityGroup (kubeovn.io/v1) on the real OVS/OVN userspace datapath', () => {
  it('SecurityGroups leave ovn-northd working: no NB Address_Set takes the name of northd\'s own <port group>_ip4/_ip6 set, and pods (members or not) are ADDed', async () => {
    const c = theCluster();
    // ovn-northd derives an SB Address_Set "<Port_Group name>_ip4" / "_ip6" from every port group
    // (ovn-northd(8)); an NB Address_Set of the same name makes every SB commit of northd fail
    // ("constraint violation": two rows with one name), so no new port is ever bound.
    const names = (table: string): string[] => nbctl(c.node, ['--bare', '--columns=name', 'list', table]).split('\n').map((l) => l.trim()).filter(Boolean);
    const pgs = names('Port_Group');
    const clashes = names('Address_Set').filter((a) => pgs.some((pg) => a === `${pg}_ip4` || a === `${pg}_ip6`));
    const t0 = Date.now();
    const member = (name: string, groups: string): { name: string; namespace: string; alias: string; annotations: Record<string, string> } =>
      ({ name, namespace: NS, alias: name, annotations: { [SG_ANNOTATION]: groups } });
    try {
      [client, web, tie, srv, peer, m1, m2, est] = await c.addPods([
        { name: 'client', namespace: NS, alias: 'client' },
        member('web', 'sg-ports'),
        member('tie', 'sg-tie'),
        member('srv', 'sg-server'),
        { name: 'peer', namespace: NS, alias: 'peer' },
        member('m1', 'sg-same'),
        member('m2', 'sg-same'),
        member('est', 'sg-est'),
      ]) as [ClusterPod, ClusterPod, ClusterPod, ClusterPod, ClusterPod, ClusterPod, ClusterPod, ClusterPod];
      console.log(`pods (ADDed in ${Date.now() - t0} ms): ${c.pods.map((p) => `${p.alias}=${p.ip}`).join(' ')}`);
    } catch (e) {
      podsError = e;
    }
    const northd = c.node.log(join('ovn', 'ovn-northd.log')).split('\n').filter((l) => l.includes('constraint violation'));
    expect(clashes, `NB Address_Sets named like northd's port-group sets (port groups: ${pgs.join(', ')})`).toEqual([]);
    expect(northd.slice(0, 2), 'ovn-northd SB transaction errors').toEqual([]);
    expect(podsError === undefined ? 'all pods ADDed' : String(podsError)).toBe('all pods ADDed');
  });

  it('allow by port range: ingress tcp 8000-8010 from the subnet admits 8000, 8005 and 8010, not 7999, 8011 or ICMP; the member starts nothing', async () => {
    need();
    await Promise.all([7999, 8000, 8005, 8010, 8011].map((p) => listen(web, p)));
    const cListener = await listen(client, 8005);
    await Promise.all([
      expectTcp(client, web, 8005, true, 'inside 8000-8010'),
      expectTcp(client, web, 8000, true, 'portRangeMin is inclusive'),
      expectTcp(client, web, 8010, true, 'portRangeMax is inclusive'),
      expectTcp(client, web, 7999, false, 'below the range'),
      expectTcp(client, web, 8011, false, 'above the range'),
      expectPing(client, web, false, 'ICMP is not allowed by a tcp rule'),
      // Both directions: web has no egress rule, so it cannot start anything.
      expectPing(web, client, false, 'a member without egress rules sends nothing new'),
      expectTcp(web, client, cListener.port, false, 'a member without egress rules sends nothing new'),
    ]);
  });

  it('drop wins: allow and drop of equal priority -> dropped; drop with a lower number -> dropped; with a higher number -> allowed', async () => {
    need();
    await listen(tie, 9000);
    const allow = fromSubnet('tcp', 10, 'allow', [9000, 9000]);
    const cases: Array<{ what: string; drop?: Rule; works: boolean }> = [
      { what: 'allow priority 10 alone', works: true },
      { what: 'allow 10 + drop 10 (tie: drop wins)', drop: fromSubnet('tcp', 10, 'drop', [9000, 9000]), works: false },
      { what: 'allow 10 + drop 5 (drop evaluated first)', drop: fromSubnet('tcp', 5, 'drop', [9000, 9000]), works: false },
      { what: 'allow 10 + drop 20 (allow evaluated first)', drop: fromSubnet('tcp', 20, 'drop', [9000, 9000]), works: true },
      // Rule order in the manifest does not matter, only priorities.
      { what: 'drop 10 listed before allow 10', drop: fromSubnet('tcp', 10, 'drop', [9000, 9000]), works: false },
    ];
    const results: string[] = [];
    for (const [i, k] of cases.entries()) {
      const rules = k.drop ? (i === 4 ? [k.drop, allow] : [allow, k.drop]) : [allow];
      await writeSg('sg-tie', { ingressRules: rules });
      const ok = await tcpWorks(theCluster(), client, tie.ip, 9000, k.works ? 3 : 2);
      results.push(`${k.what}: ${ok ? 'allowed' : 'dropped'} (expected ${k.works ? 'allowed' : 'dropped'})`);
      expect(ok, `tcp client -> tie:9000 with ${k.what}; NB ACLs of sg-tie:\n${ok !== k.works ? aclsOf('sg/sg-tie') : ''}`).toBe(k.works);
    }
    console.log(`drop vs allow:\n  ${results.join('\n  ')}`);
  });

  it('remote security group: membership follows Pod annotation edits live (sg-a,sg-b form), within 1 s', async () => {
    need();
    const c = theCluster();
    const port = 7100;
    await listen(srv, port);
    await Promise.all([
      expectPing(peer, srv, false, 'peer is not in sg-client'),
      expectTcp(peer, srv, port, false, 'peer is not in sg-client'),
      expectPing(client, srv, false, 'client is not in sg-client'),
    ]);
    // Join: two groups, sg-empty (no rules at all) and sg-client (egress to anywhere): the
    // member's allows are the union of its groups' rules.
    const join = await c.timeUntilPing(peer, srv.ip, true,
      () => writePod(c, peer, { annotations: { [SG_ANNOTATION]: 'sg-empty,sg-client' } }), { intervalMs: 25, timeoutMs: 3_000 });
    const joined = await c.waitApplied();
    console.log(`peer joins sg-client (annotation "sg-empty,sg-client"): srv answers ${join.ms} ms after the Pod manifest write `
      + `(${join.pings} pings at 25 ms); "policy applied" after ${joined.ms} ms`);
    expect(join.ms, 'ping peer -> srv must start working within 1 s of the annotation edit').toBeLessThanOrEqual(MAX_MS);
    await Promise.all([
      expectTcp(peer, srv, port, true, 'peer is in sg-client now'),
      expectPing(client, srv, false, 'client is still not in sg-client'),
    ]);

    const leave = await c.timeUntilPing(peer, srv.ip, false, () => writePod(c, peer, {}), { intervalMs: 25, timeoutMs: 4_000 });
    const left = await c.waitApplied();
    console.log(`peer leaves sg-client (annotation removed): srv stops answering ${leave.ms} ms after the write `
      + `(${leave.pings} pings at 25 ms); "policy applied" after ${left.ms} ms`);
    expect(leave.ms, 'ping peer -> srv must stop working within 1 s of the annotation removal').toBeLessThanOrEqual(MAX_MS);
    await expectTcp(peer, srv, port, false, 'peer left sg-client');
  });

  it('allowSameGroupTraffic: true lets two members talk; false (SecurityGroup edited) stops them', async () => {
    need();
    const c = theCluster();
    const port = 7200;
    await Promise.all([listen(m1, port), listen(m2, port)]);
    await Promise.all([
      expectPing(m1, m2, true, 'allowSameGroupTraffic: true'),
      expectPing(m2, m1, true, 'allowSameGroupTraffic: true'),
      expectTcp(m1, m2, port, true, 'allowSameGroupTraffic: true'),
      expectTcp(m2, m1, port, true, 'allowSameGroupTraffic: true'),
      expectPing(client, m1, false, 'not a member, and sg-same has no rules'),
    ]);
    const flip = await c.timeUntilPing(m1, m2.ip, false, () => c.writeManifest('sg-sg-same.yaml', sgYaml('sg-same', { allowSameGroupTraffic: false })),
      { intervalMs: 25, timeoutMs: 4_000 });
    await c.waitApplied();
    console.log(`allowSameGroupTraffic true -> false: m1 -> m2 ping stops ${flip.ms} ms after the write`);
    await Promise.all([
      expectPing(m1, m2, false, 'allowSameGroupTraffic: false'),
      expectPing(m2, m1, false, 'allowSameGroupTraffic: false'),
      expectTcp(m1, m2, port, false, 'allowSameGroupTraffic: false'),
      expectTcp(m2, m1, port, false, 'allowSameGroupTraffic: false'),
    ]);
    expect(flip.ms).toBeLessThanOrEqual(MAX_MS);
  });

  it('an established connection survives a SecurityGroup change that still allows it, and a daemon restart: no reset, no gap > 1 s', async () => {
    need();
    const c = theCluster();
    const stream = await startStream(procs, client, est, est.ip, 7000, 50);
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      const t0 = Date.now();
      const base = stream.maxGap(t0 - 1_000, t0);
      console.log(`stream client -> est:7000 (one byte every 50 ms, echoed): longest gap before any change: client ${base.client} ms, server ${base.server} ms`);
      expect(stream.failures(), 'stream before any change').toEqual([]);

      // 1. An unrelated rule is added to the member's group: the connection's rule is untouched.
      const t1 = Date.now();
      c.writeManifest('sg-sg-est.yaml', sgYaml('sg-est', {
        ingressRules: [fromSubnet('tcp', 10, 'allow', [7000, 7000]), fromSubnet('udp', 20, 'allow', [5353, 5353])],
      }));
      const applied = await c.waitApplied();
      await new Promise((r) => setTimeout(r, 1_500));
      const t2 = Date.now();
      const afterChange = stream.maxGap(t1, t2);
      console.log(`SecurityGroup sg-est + udp 5353 rule (applied after ${applied.ms} ms): longest gap client ${afterChange.client} ms, server ${afterChange.server} ms; failures ${JSON.stringify(stream.failures())}`);
      expect(stream.failures(), 'no reset or close after the SecurityGroup change').toEqual([]);
      expect(Math.max(afterChange.client, afterChange.server), 'longest gap around the SecurityGroup change (ms)').toBeLessThanOrEqual(MAX_MS);

      // 2. The daemon is restarted the way an upgrade does it: SIGUSR2 hand-over (OVS/OVN keep
      // forwarding), a new process on the same netns / state dir / manifests adopts them.
      // A 20 ms ping between two pods no policy touches shows how long the datapath itself is out.
      const pinger = await startPinger(procs, client, peer.ip);
      const r = await restartDaemon(c, NODE, [], 'handover');
      const startLine = c.log.find((l) => l.json?.msg === 'policy applied' && l.json?.reason === 'start' && l.at >= r.stoppedAt).at(-1);
      // Give the stream time to resume (TCP retransmission backs off while the datapath is down).
      const resumedBy = Date.now() + 10_000;
      while (Date.now() < resumedBy && !stream.client.some((e) => e.kind === 'data' && e.t > r.readyAt)) await new Promise((res) => setTimeout(res, 50));
      await new Promise((res) => setTimeout(res, 1_000));
      const t3 = Date.now();
      const acrossRestart = stream.maxGap(t2, t3);
      const datapathOut = pinger.maxGap(t2, t3);
      await pinger.stop();
      // Where the datapath outage (if any) sits: last reply before it and first after, relative to the signal.
      const replies = pinger.replies.filter((t) => t >= t2 && t <= t3);
      let outFrom = t2;
      let outTo = t2;
      for (let i = 1; i < replies.length; i++) {
        if ((replies[i] as number) - (replies[i - 1] as number) > outTo - outFrom) { outFrom = replies[i - 1] as number; outTo = replies[i] as number; }
      }
      const signalled = r.stoppedAt - r.stopMs;
      console.log(`datapath outage (20 ms ping, client -> peer): last reply ${outFrom - signalled} ms after SIGUSR2, first reply again ${outTo - signalled} ms after SIGUSR2 `
        + `(old daemon gone at +${r.stopMs} ms, new daemon ready at +${r.readyAt - signalled} ms)`);
      console.log(`daemon restart: exit ${r.exitCode}, stop ${r.stopMs} ms, start ${r.startMs} ms; start-up reconcile wrote ${String(startLine?.json?.ops)} NB ops; `
        + `longest gap across the restart: client ${acrossRestart.client} ms, server ${acrossRestart.server} ms `
        + `(20 ms ping client -> peer, no policy: longest gap ${datapathOut} ms); failures ${JSON.stringify(stream.failures())}`);
      expect(r.exitCode, 'daemon exit code on SIGUSR2').toBe(0);
      expect(datapathOut, 'longest gap of a 20 ms ping across the hand-over (ms)').toBeLessThanOrEqual(MAX_MS);
      expect(stream.failures(), 'no reset or close across the daemon restart').toEqual([]);
      expect(stream.client.some((e) => e.kind === 'data' && e.t > r.readyAt), 'echoes arrive again after the restart').toBe(true);
      expect(Math.max(acrossRestart.client, acrossRestart.server), 'longest gap across the daemon restart (ms)').toBeLessThanOrEqual(MAX_MS);
    } finally {
      await stream.stop();
    }
    // The policy still holds for new connections after the restart.
    await listen(est, 7001);
    await Promise.all([
      expectTcp(client, est, 7001, false, 'port 7001 is not allowed by sg-est (after the restart)'),
      listen(est, 7000).then(() => expectTcp(client, est, 7000, true, 'a new connection to 7000 is allowed (after the restart)')),
    ]);
  });
});
