// A Kube-OVN SecurityGroup (kubeovn.io/v1, cluster-scoped) on the real lab cluster: a pod joins
// it with the annotation `ovn.kubernetes.io/security_groups`; rule changes made with
// `kubectl apply` and a membership change made with `kubectl annotate` reach the datapath.
// Members drop what no rule of their groups allows, both ways; rules are stateful (replies pass);
// a lower priority number is evaluated first (test/integration/security-groups.test.ts covers the
// semantics in depth on an embedded node; here the point is the path API -> ovnoded -> datapath).
//
// Three pods on node1 in the default subnet: `web` (the member), `client` and `peer` (not
// members). Each change is awaited on one pair it flips (the time is printed), then the whole
// matrix is asserted, ICMP and TCP (HTTP on 8080), allowed and denied pairs. The namespace and
// the SecurityGroup are deleted in afterAll, also after a failure.

import { afterAll, beforeAll, describe, it } from 'vitest';
import { apply, kubectl, kubectlOk, uniqueName, waitForPodReady } from './harness/lab';
import { HTTP_PORT, matrix, MatrixSequence, podAddress, uniform, type Peer } from './harness/matrix';
import { createNamespace, deleteNamespace, deployOvnode, testPod } from './harness/ovnode';

const NODE = 'node1';
const NS = uniqueName('sgt');
const SG = uniqueName('sg-web');
const SG_ANNOTATION = 'ovn.kubernetes.io/security_groups';
const PODS = ['client', 'web', 'peer'];

interface Rule {
  protocol: 'all' | 'icmp' | 'tcp' | 'udp';
  priority: number;
  remoteAddress: string;
  policy: 'allow' | 'drop';
  ports?: [number, number];
}

/** The SecurityGroup as an operator would write it (every rule by address, IPv4). */
function securityGroup(ingress: Rule[], egress: Rule[]): object {
  const rule = (r: Rule): object => ({
    ipVersion: 'ipv4', protocol: r.protocol, priority: r.priority, remoteType: 'address', remoteAddress: r.remoteAddress, policy: r.policy,
    ...(r.ports ? { portRangeMin: r.ports[0], portRangeMax: r.ports[1] } : {}),
  });
  return {
    apiVersion: 'kubeovn.io/v1', kind: 'SecurityGroup', metadata: { name: SG },
    spec: { allowSameGroupTraffic: false, ingressRules: ingress.map(rule), egressRules: egress.map(rule) },
  };
}

let peers: Peer[] = [];
const ip = (alias: string): string => {
  const p = peers.find((x) => x.alias === alias);
  if (!p) throw new Error(`pod ${alias} not started (see beforeAll)`);
  return p.ip;
};
const steps = new MatrixSequence(() => peers, () => peers);
const applySg = (ingress: Rule[], egress: Rule[]) => async (): Promise<void> => { await apply(securityGroup(ingress, egress)); };

/** HTTP from anywhere: also lets kubelet's readiness probe (from the node) in. */
const HTTP_IN: Rule = { protocol: 'tcp', priority: 10, remoteAddress: '0.0.0.0/0', policy: 'allow', ports: [HTTP_PORT, HTTP_PORT] };

beforeAll(async () => {
  const t0 = Date.now();
  await deployOvnode();
  await createNamespace(NS);
  // The group exists before its member is ADDed: the member is filtered from its first packet.
  await apply(securityGroup([HTTP_IN], []));
  await apply({
    apiVersion: 'v1', kind: 'List',
    items: PODS.map((name) => testPod({ name, namespace: NS, node: NODE, labels: { app: name }, ...(name === 'web' ? { annotations: { [SG_ANNOTATION]: SG } } : {}) })),
  });
  await Promise.all(PODS.map((name) => waitForPodReady(NS, name, 180_000)));
  peers = await Promise.all(PODS.map(async (name) => ({ alias: name, namespace: NS, pod: name, ip: await podAddress(NS, name) })));
  console.log(`SecurityGroup ${SG} on ${NODE}, namespace ${NS}: ${peers.map((p) => `${p.alias}=${p.ip}`).join(' ')} (ready in ${Date.now() - t0} ms)`);
}, 600_000);

afterAll(async () => {
  const t0 = Date.now();
  await deleteNamespace(NS);
  const r = await kubectl(['delete', 'security-groups', SG, '--ignore-not-found', '--wait=true', '--timeout=60s'], { timeoutMs: 90_000 });
  if (r.code !== 0) console.warn(`cleanup: deleting SecurityGroup ${SG} failed: ${r.stderr.trim()}`);
  console.log(`namespace ${NS} and SecurityGroup ${SG} deleted in ${Date.now() - t0} ms`);
}, 300_000);

describe('a SecurityGroup changed through the API reaches the datapath (real lab cluster, pods on node1)', () => {
  it('web, a member allowing only HTTP in, answers HTTP but not ping and starts nothing; client <-> peer are not filtered', async () => {
    await steps.expect(`SecurityGroup ${SG}: ingress tcp ${HTTP_PORT} from anywhere, no egress rule`, {
      icmp: matrix(`
               client web peer
        client   -    no   ok
        web      no   -    no
        peer     ok   no   -
      `),
      tcp: matrix(`
               client web peer
        client   -    ok   ok
        web      no   -    no
        peer     ok   ok   -
      `),
    });
  });

  it('kubectl apply: the ingress rule becomes "ICMP from client only": client pings web, HTTP is dropped, peer gets nothing through', async () => {
    const icmpFromClient: Rule = { protocol: 'icmp', priority: 10, remoteAddress: `${ip('client')}/32`, policy: 'allow' };
    await steps.change('ingress rule: icmp from client', applySg([icmpFromClient], []), {
      icmp: matrix(`
               client web peer
        client   -    ok   ok
        web      no   -    no
        peer     ok   no   -
      `),
      tcp: matrix(`
               client web peer
        client   -    no   ok
        web      no   -    no
        peer     ok   no   -
      `),
    });
  });

  it('kubectl apply: an egress rule "all to 0.0.0.0/0" lets web start connections; a drop to peer with a lower number wins over it', async () => {
    const icmpFromClient: Rule = { protocol: 'icmp', priority: 10, remoteAddress: `${ip('client')}/32`, policy: 'allow' };
    const allOut: Rule = { protocol: 'all', priority: 20, remoteAddress: '0.0.0.0/0', policy: 'allow' };
    await steps.change('egress rule: all to 0.0.0.0/0', applySg([icmpFromClient], [allOut]), {
      icmp: matrix(`
               client web peer
        client   -    ok   ok
        web      ok   -    ok
        peer     ok   no   -
      `),
      tcp: matrix(`
               client web peer
        client   -    no   ok
        web      ok   -    ok
        peer     ok   no   -
      `),
    });
    const dropToPeer: Rule = { protocol: 'all', priority: 5, remoteAddress: `${ip('peer')}/32`, policy: 'drop' };
    await steps.change('egress rule: drop to peer, priority 5', applySg([icmpFromClient], [allOut, dropToPeer]), {
      icmp: matrix(`
               client web peer
        client   -    ok   ok
        web      ok   -    no
        peer     ok   no   -
      `),
      tcp: matrix(`
               client web peer
        client   -    no   ok
        web      ok   -    no
        peer     ok   no   -
      `),
    });
  });

  it('kubectl annotate: web leaves the group (annotation removed) and nothing is filtered any more', async () => {
    await steps.change('security_groups annotation removed from web', async () => {
      await kubectlOk(['-n', NS, 'annotate', 'pod', 'web', `${SG_ANNOTATION}-`]);
    }, { icmp: uniform(PODS, PODS, true) });
  });
});
