// A SecurityGroup whose rule names a remote group with members on other nodes (real lab cluster):
// `db` (on the first node) admits TCP 8080 only from members of the group `app`; the one member of
// `app` runs on the second node, a non-member on the third. The first node's zone holds the app
// member as a remote port in the group's port group, so northd's address set for the group carries
// its address there, and the db's node enforces the rule for a pod it does not run. Joining the
// group (kubectl annotate) lets the third node's pod in as well; leaving shuts it out again.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, kubectl, kubectlOk, readLab, uniqueName, waitForPodReady } from './harness/lab';
import { HTTP_PORT, matrix, MatrixSequence, podAddress, type Peer } from './harness/matrix';
import { createNamespace, deleteNamespace, deployOvnode, testPod } from './harness/ovnode';

const NS = uniqueName('sgn');
const DB = uniqueName('sg-db');
const APP = uniqueName('sg-app');
const SG_ANNOTATION = 'ovn.kubernetes.io/security_groups';
let peers: Peer[] = [];
const steps = new MatrixSequence(() => peers.filter((p) => p.alias !== 'db'), () => peers.filter((p) => p.alias === 'db'), { icmp: false });

function group(name: string, ingress: object[], egress: object[]): object {
  return { apiVersion: 'kubeovn.io/v1', kind: 'SecurityGroup', metadata: { name }, spec: { allowSameGroupTraffic: false, ingressRules: ingress, egressRules: egress } };
}
const allowAll = { ipVersion: 'ipv4', protocol: 'all', priority: 10, remoteType: 'address', remoteAddress: '0.0.0.0/0', policy: 'allow' };

beforeAll(async () => {
  const nodes = readLab().nodes.map((n) => n.name);
  expect(nodes.length).toBeGreaterThanOrEqual(3);
  await deployOvnode();
  await createNamespace(NS);
  await apply(group(APP, [allowAll], [allowAll]));
  await apply(group(DB, [
    { ipVersion: 'ipv4', protocol: 'tcp', priority: 10, remoteType: 'securityGroup', remoteSecurityGroup: APP, portRangeMin: HTTP_PORT, portRangeMax: HTTP_PORT, policy: 'allow' },
    // kubelet's readiness probe comes from the node's join address.
    { ipVersion: 'ipv4', protocol: 'tcp', priority: 20, remoteType: 'address', remoteAddress: '100.64.0.0/16', portRangeMin: HTTP_PORT, portRangeMax: HTTP_PORT, policy: 'allow' },
  ], []));
  const pods = [
    { name: 'db', node: nodes[0] as string, sg: DB },
    { name: 'app', node: nodes[1] as string, sg: APP },
    { name: 'other', node: nodes[2] as string, sg: '' },
  ];
  for (const p of pods) await apply(testPod({ name: p.name, namespace: NS, node: p.node, ...(p.sg ? { annotations: { [SG_ANNOTATION]: p.sg } } : {}) }));
  await Promise.all(pods.map((p) => waitForPodReady(NS, p.name, 180_000)));
  peers = await Promise.all(pods.map(async (p) => ({ alias: p.name, namespace: NS, pod: p.name, ip: await podAddress(NS, p.name) })));
  console.log(`groups ${DB} (db@${nodes[0]}) and ${APP} (app@${nodes[1]}), other@${nodes[2]}: ${peers.map((p) => `${p.alias}=${p.ip}`).join(' ')}`);
}, 600_000);

afterAll(async () => {
  await deleteNamespace(NS);
  await kubectl(['delete', 'security-groups', DB, APP, '--ignore-not-found', '--wait=true', '--timeout=60s'], { timeoutMs: 90_000 });
}, 300_000);

describe('a SecurityGroup rule naming a group whose members run on other nodes (real lab cluster)', () => {
  it('db admits HTTP from the app group\'s member on another node, not from a non-member', async () => {
    await steps.expect(`${DB}: tcp ${HTTP_PORT} from group ${APP} only`, {
      tcp: matrix(`
              db
        app   ok
        other no
      `),
    });
  });

  it('kubectl annotate: the pod on the third node joins the app group and gets in; leaving shuts it out', async () => {
    await steps.change(`other joins ${APP}`, async () => { await kubectlOk(['-n', NS, 'annotate', 'pod', 'other', `${SG_ANNOTATION}=${APP}`, '--overwrite']); }, {
      tcp: matrix(`
              db
        app   ok
        other ok
      `),
    });
    await steps.change(`other leaves ${APP}`, async () => { await kubectlOk(['-n', NS, 'annotate', 'pod', 'other', `${SG_ANNOTATION}-`]); }, {
      tcp: matrix(`
              db
        app   ok
        other no
      `),
    });
  });
});
