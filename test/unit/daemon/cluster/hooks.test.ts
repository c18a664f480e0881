// The request path on a Kubernetes node, against a fake node (real schemas, fake OVS/OVN) and a
// fake pod watch: an ADD waits for a pod the watch has not delivered yet and answers 11 when it
// never comes (or only an earlier namesake does); a successful ADD queues Kube-OVN's annotations
// (one PATCH per pod and interface, none when they are already there; a secondary network's
// under its provider's prefix); a written-back ip_address is the pod's
// record, reused when it is still free and never a hard static request.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeClusterHooks, type PodLookup } from '../../../../daemon/cluster/hooks';
import { PodAnnotationWriter } from '../../../../daemon/cluster/pod-annotations';
import type { PodObj } from '../../../../daemon/objects/types';
import type { KubeApi, KubeRequest, KubeResponse } from '../../../../daemon/sources/kube/api';
import { FakeNode } from '../cmd/fake-node';
import { cmdAdd } from '../../../../daemon/cmd/add';
import { NB } from '../../../../daemon/ovs/schema';
import { ovsMap } from '../../../../daemon/ovsdb/values';
import { subnet } from '../policy/helpers';

/** A fake of the pod watch: pods appear when the test says so. */
class FakePodWatch implements PodLookup {
  private readonly pods = new Map<string, PodObj>();
  private readonly waiters = new Set<() => void>();
  pod(namespace: string, name: string): PodObj | undefined { return this.pods.get(`${namespace}/${name}`); }
  deliver(p: PodObj): void {
    this.pods.set(`${p.metadata.namespace}/${p.metadata.name}`, p);
    for (const w of [...this.waiters]) w();
  }
  waitFor(namespace: string, name: string, accept: (pod: PodObj) => boolean, timeoutMs: number, signal: AbortSignal): Promise<PodObj | undefined> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        const p = this.pod(namespace, name);
        if (p && accept(p)) { finish(p); return true; }
        return false;
      };
      const finish = (p: PodObj | undefined): void => { this.waiters.delete(wake); clearTimeout(timer); resolve(p); };
      const wake = (): void => { check(); };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      signal.addEventListener('abort', () => finish(undefined), { once: true });
      if (!check()) this.waiters.add(wake);
    });
  }
}

/** A fake API recording every request and answering 200. */
class RecordingApi implements KubeApi {
  readonly requests: KubeRequest[] = [];
  async request<T>(req: KubeRequest): Promise<KubeResponse<T>> {
    this.requests.push(req);
    return { status: 200, body: {} as T };
  }
}

function podObj(name: string, namespace: string, uid: string, annotations: Record<string, string> = {}): PodObj {
  return { kind: 'Pod', metadata: { name, namespace, uid, labels: {}, annotations }, spec: { containers: [{ name: 'c', ports: [] }] } };
}

let node: FakeNode;
let watch: FakePodWatch;
let api: RecordingApi;
let writer: PodAnnotationWriter;

beforeEach(async () => {
  node = await FakeNode.start();
  watch = new FakePodWatch();
  api = new RecordingApi();
  writer = new PodAnnotationWriter(api, (ns, name) => watch.pod(ns, name)?.metadata.annotations, pino({ level: 'silent' }));
  node.deps.cluster = new KubeClusterHooks(watch, writer, 300);
});
afterEach(async () => { writer.close(); await node.close(); });

const call = (pod: string, uid: string, sandbox = `sb-${pod}`) => ({ sandbox, pod, namespace: 'ns1', uid });

describe('ADD on a Kubernetes node (fake pod watch, fake API)', () => {
  it('waits for a pod the watch delivers late, then writes its annotations back once', async () => {
    const adding = node.add(call('late', 'u-late'));
    setTimeout(() => watch.deliver(podObj('late', 'ns1', 'u-late')), 50);
    const result = await adding;
    const ip = String(result.ips?.[0]?.address).split('/')[0];
    await writer.idle();
    expect(api.requests).toHaveLength(1);
    expect(api.requests[0]).toMatchObject({
      method: 'PATCH', path: '/api/v1/namespaces/ns1/pods/late', contentType: 'application/merge-patch+json',
      body: {
        metadata: {
          uid: 'u-late',
          annotations: {
            'ovn.kubernetes.io/ip_address': ip, 'ovn.kubernetes.io/cidr': '10.16.0.0/16', 'ovn.kubernetes.io/gateway': '10.16.0.1',
            'ovn.kubernetes.io/logical_switch': 'ovn-default', 'ovn.kubernetes.io/allocated': 'true',
            'ovn.kubernetes.io/mac_address': result.interfaces?.[1]?.mac,
          },
        },
      },
    });
  });

  it('a secondary interface (a provider\'s) writes its own <provider>.kubernetes.io/* beside eth0\'s, neither replacing the other', async () => {
    const provider = 'attnet.ns1.ovn';
    node.store.apply(subnet('blue', { cidrBlock: '10.30.0.0/24', provider }));
    await node.nb.transact([{ op: 'insert', table: NB.ls, row: { name: 'blue', external_ids: ovsMap({ 'ovnode:owner': 'ovnode', 'ovnode:cidrs': '10.30.0.0/24' }) } }]);
    node.subnets.add({ name: 'blue', cidrs: ['10.30.0.0/24'], gateways: ['10.30.0.1'] });
    watch.deliver(podObj('multi', 'ns1', 'u-multi'));
    await node.add(call('multi', 'u-multi'));
    const net1 = { ...call('multi', 'u-multi'), ifName: 'net1' };
    node.native.addNetns(node.netnsOf(net1));
    const req = node.request('ADD', net1);
    req.conf.provider = provider;
    const result = await cmdAdd(node.ctx(req));
    await writer.idle();
    const written = api.requests.map((r) => (r.body as { metadata: { annotations: Record<string, string> } }).metadata.annotations);
    expect(written).toHaveLength(2);
    expect(written.find((a) => a['ovn.kubernetes.io/logical_switch'] === 'ovn-default')).toBeTruthy();
    expect(written.find((a) => a[`${provider}.kubernetes.io/allocated`] === 'true')).toEqual({
      [`${provider}.kubernetes.io/ip_address`]: String(result.ips?.[0]?.address).split('/')[0],
      [`${provider}.kubernetes.io/mac_address`]: result.interfaces?.[1]?.mac,
      [`${provider}.kubernetes.io/cidr`]: '10.30.0.0/24',
      [`${provider}.kubernetes.io/gateway`]: '10.30.0.1',
      [`${provider}.kubernetes.io/logical_switch`]: 'blue',
      [`${provider}.kubernetes.io/allocated`]: 'true',
    });
  });

  it('answers 11 (try again later) when the pod never reaches the watch, and leaves nothing', async () => {
    const before = node.state();
    const err = await node.addFails(call('ghost', 'u-ghost')) as { cniCode: number; message: string };
    expect(err.cniCode).toBe(11);
    expect(err.message).toMatch(/ghost is not in the API yet/);
    expect(node.state()).toEqual(before);
    expect(api.requests).toEqual([]);
  });

  it('does not take an earlier pod of the same name for the one the runtime names by uid', async () => {
    watch.deliver(podObj('web', 'ns1', 'u-old'));
    const err = await node.addFails(call('web', 'u-new')) as { cniCode: number; message: string };
    expect(err.cniCode).toBe(11);
    expect(err.message).toMatch(/uid u-new.*u-old/);
  });

  it('skips the PATCH when the pod already carries exactly these annotations', async () => {
    watch.deliver(podObj('same', 'ns1', 'u-same'));
    await node.add(call('same', 'u-same'));
    await writer.idle();
    const patch = api.requests[0]?.body as { metadata: { annotations: Record<string, string> } };
    watch.deliver(podObj('same', 'ns1', 'u-same', patch.metadata.annotations));
    // A new sandbox of the same pod gets the same address and MAC: nothing to write.
    await node.add(call('same', 'u-same', 'sb-same-2'));
    await writer.idle();
    expect(api.requests).toHaveLength(1);
  });

  it('a written-back ip_address is reused when free, and is no hard request when another pod holds it', async () => {
    const record = { 'ovn.kubernetes.io/ip_address': '10.16.0.50', 'ovn.kubernetes.io/allocated': 'true' };
    watch.deliver(podObj('back', 'ns1', 'u-back', record));
    const r1 = await node.add(call('back', 'u-back'));
    expect(r1.ips?.[0]?.address).toBe('10.16.0.50/16');
    // Another pod whose record names the same address (say, restored from a backup) gets a new one.
    watch.deliver(podObj('copy', 'ns1', 'u-copy', record));
    const r2 = await node.add(call('copy', 'u-copy'));
    expect(r2.ips?.[0]?.address).not.toBe('10.16.0.50/16');
    // A user's ip_address (no allocated=true) is a hard request: held -> refused.
    watch.deliver(podObj('user', 'ns1', 'u-user', { 'ovn.kubernetes.io/ip_address': '10.16.0.50' }));
    const err = await node.addFails(call('user', 'u-user')) as { cniCode: number; message: string };
    expect(err.message).toMatch(/10\.16\.0\.50 is already in use/);
  });
});
