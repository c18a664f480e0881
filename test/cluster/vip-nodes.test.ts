// A Kube-OVN Vip failing over between pods on different nodes (real lab cluster), keepalived
// style: ha-a (first node) and ha-b (second node) carry the annotation `ovn.kubernetes.io/vip`, so
// their port security lists the VIP in their own nodes' zones; the holder adds the address and
// announces it with an unsolicited ARP; a client on the third node reaches whichever holds it
// (the ARP for the VIP crosses the tunnels, the answer comes from the holder's own MAC). Each
// holder's HTTP server answers with its pod name.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, kubectl, readLab, uniqueName, waitForPodReady, type KubeObject } from './harness/lab';
import { createNamespace, deleteNamespace, deployOvnode, podExec, testPod } from './harness/ovnode';

const NS = uniqueName('vipn');
const VIP_NAME = uniqueName('vip-ha');
const VIP = `10.16.127.${200 + Math.floor(Math.random() * 50)}`;

function holder(name: string, node: string): KubeObject {
  const pod = testPod({ name, namespace: NS, node, annotations: { 'ovn.kubernetes.io/vip': VIP_NAME } });
  const c = pod.spec.containers[0];
  c.command = ['/bin/sh', '-c', "trap 'exit 0' TERM; hostname > /tmp/index.html; httpd -f -p 8080 -h /tmp & wait"];
  c.securityContext = { capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } };
  return pod;
}

async function sh(pod: string, script: string): Promise<string> {
  const r = await podExec(NS, pod, ['sh', '-c', script]);
  if (r.code !== 0) throw new Error(`${pod}: ${script}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** The VIP moves to `to`: the old holder drops it, the new one adds it and announces it. */
async function takeVip(to: string, from?: string): Promise<void> {
  if (from) await sh(from, `ip addr del ${VIP}/32 dev eth0`);
  await sh(to, `ip addr add ${VIP}/32 dev eth0 && arping -U -c 2 -I eth0 ${VIP} >/dev/null 2>&1 || true`);
}

/** Who answers HTTP on the VIP from the client, within `ms`: the first answer that is `want`, else the last. */
async function answerFrom(want: string, ms = 10_000): Promise<string> {
  const t0 = Date.now();
  let got = '';
  while (Date.now() - t0 < ms) {
    got = (await podExec(NS, 'client', ['sh', '-c', `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 1 ${VIP} 8080 | tail -n 1`])).stdout.trim();
    if (got === want) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log(`VIP ${VIP} answered by ${got || 'nobody'} ${Date.now() - t0} ms after the move to ${want}`);
  return got;
}

beforeAll(async () => {
  const nodes = readLab().nodes.map((n) => n.name);
  expect(nodes.length).toBeGreaterThanOrEqual(3);
  await deployOvnode();
  await createNamespace(NS);
  await apply({ apiVersion: 'kubeovn.io/v1', kind: 'Vip', metadata: { name: VIP_NAME }, spec: { subnet: 'ovn-default', v4ip: VIP } });
  await apply(holder('ha-a', nodes[0] as string));
  await apply(holder('ha-b', nodes[1] as string));
  await apply(testPod({ name: 'client', namespace: NS, node: nodes[2] as string }));
  await Promise.all(['ha-a', 'ha-b', 'client'].map((n) => waitForPodReady(NS, n, 180_000)));
}, 600_000);

afterAll(async () => {
  await deleteNamespace(NS);
  await kubectl(['delete', 'vip', VIP_NAME, '--ignore-not-found', '--wait=true'], { timeoutMs: 60_000 });
});

describe('a Vip failing over between pods on different nodes (real lab cluster)', () => {
  it('the client on a third node reaches ha-a on the VIP, then ha-b after the failover, then ha-a again', async () => {
    await takeVip('ha-a');
    expect(await answerFrom('ha-a')).toBe('ha-a');
    await takeVip('ha-b', 'ha-a');
    expect(await answerFrom('ha-b')).toBe('ha-b');
    await takeVip('ha-a', 'ha-b');
    expect(await answerFrom('ha-a')).toBe('ha-a');
  });
});
