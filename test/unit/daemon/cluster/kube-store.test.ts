// KubeStore against the fake API server (named fake: list/watch/resourceVersion semantics, no
// real apiserver): objects arrive validated and typed with the fields the daemon reads; an object
// our validators refuse is reported and recorded as an Event, and replaced by nothing; a pod is
// waited for until its watch event; after an apiserver restart during changes the store equals
// the server.
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventRecorder } from '../../../../daemon/cluster/events';
import { KubeStore } from '../../../../daemon/cluster/kube-store';
import { staticConnection } from '../../../../daemon/sources/kube/config';
import { HttpKubeApi } from '../../../../daemon/sources/kube/http-api';
import { FAKE_RESOURCES, FakeApiServer } from '../../../fakes/fake-apiserver';

const log = pino({ level: 'silent' });
const RESOURCES = [
  ...Object.values(FAKE_RESOURCES),
  { prefix: '/apis/kubeovn.io/v1', plural: 'security-groups', kind: 'SecurityGroup', namespaced: false },
  { prefix: '/apis/kubeovn.io/v1', plural: 'vips', kind: 'Vip', namespaced: false },
  { prefix: '/apis/kubeovn.io/v1', plural: 'provider-networks', kind: 'ProviderNetwork', namespaced: false },
  { prefix: '/apis/kubeovn.io/v1', plural: 'vlans', kind: 'Vlan', namespaced: false },
  { prefix: '/api/v1', plural: 'events', kind: 'Event', namespaced: true },
];

let server: FakeApiServer;
let api: HttpKubeApi;
let store: KubeStore;

function pod(name: string, labels: Record<string, string> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    metadata: { name, namespace: 'ns1', labels, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(4000) }, managedFields: [{ big: 'y'.repeat(2000) }] },
    spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'i', ports: [{ name: 'http', containerPort: 80 }], env: [{ name: 'A', value: 'z'.repeat(1000) }] }] },
    status: { phase: 'Running', podIP: '10.16.0.9' },
    ...extra,
  };
}

beforeEach(async () => {
  server = await FakeApiServer.start({ resources: RESOURCES });
  api = new HttpKubeApi(staticConnection(server.url), { requestTimeoutMs: 5_000 });
  server.create('namespaces', { metadata: { name: 'ns1', labels: { team: 'a' } } });
  server.create('pods', pod('web', { app: 'web' }));
  server.create('subnets', { metadata: { name: 'sub1' }, spec: { cidrBlock: '10.66.0.0/24', protocol: 'IPv4' } });
  // Refused by ovnode: a gateway outside the CIDR (a schema cannot say that).
  server.create('subnets', { metadata: { name: 'bad' }, spec: { cidrBlock: '10.67.0.0/24', gateway: '10.99.0.1' } });
  store = new KubeStore({ api, log, events: new EventRecorder(api, 'n1', log) });
  await store.start();
});
afterEach(async () => {
  await store.close();
  api.close();
  await server.close();
});

describe('KubeStore (fake API server)', () => {
  it('holds validated objects with only the fields the daemon reads', () => {
    const web = store.get('Pod', 'web', 'ns1');
    expect(web).toEqual({
      kind: 'Pod',
      metadata: { name: 'web', namespace: 'ns1', uid: server.get('pods', 'ns1', 'web')?.metadata.uid, labels: { app: 'web' }, annotations: {} },
      spec: { nodeName: 'n1', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' }] }] },
      // Which of two pods with one address is the live one (cluster/remote-ports.ts).
      status: { createdAt: server.get('pods', 'ns1', 'web')?.metadata.creationTimestamp },
    });
    expect(store.get('Namespace', 'ns1')?.metadata.labels).toEqual({ team: 'a' });
    expect(store.list('Subnet').map((s) => s.metadata.name)).toEqual(['sub1']);
  });

  it('reports a refused object, records one Event on it, and acts on nothing of it', async () => {
    expect(store.get('Subnet', 'bad')).toBeUndefined();
    expect(store.rejected().map((r) => r.name)).toEqual(['bad']);
    const isEventPost = (r: { method: string; path: string }): boolean => r.method === 'POST' && r.path.endsWith('/events');
    const post = server.requests.find(isEventPost) ?? await server.nextRequest(isEventPost);
    expect(post.path).toBe('/api/v1/namespaces/default/events');
    const [event] = server.items('events') as Array<Record<string, unknown>>;
    expect(event).toMatchObject({
      type: 'Warning', reason: 'SubnetRefused',
      // With the uid: `kubectl describe` finds a cluster-scoped object's events by it.
      involvedObject: { apiVersion: 'kubeovn.io/v1', kind: 'Subnet', name: 'bad', uid: server.get('subnets', undefined, 'bad')?.metadata.uid },
    });
    expect(String(event?.message)).toMatch(/gateway/);
    // Fixed: accepted, and no longer reported.
    const changed = new Promise<void>((r) => { const off = store.onChange(() => { if (store.get('Subnet', 'bad')) { off(); r(); } }); });
    server.patch('subnets', undefined, 'bad', { spec: { gateway: '10.67.0.1' } });
    await changed;
    expect(store.rejected()).toEqual([]);
  });

  it('waitFor resolves on the watch event that delivers the pod, and gives up at its timeout', async () => {
    const signal = new AbortController().signal;
    const waiting = store.waitFor('ns1', 'late', () => true, 5_000, signal);
    server.create('pods', pod('late'));
    expect((await waiting)?.metadata.uid).toBe(server.get('pods', 'ns1', 'late')?.metadata.uid);
    const t0 = Date.now();
    expect(await store.waitFor('ns1', 'never', () => true, 150, signal)).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it('after an apiserver restart during changes, the store equals the server', async () => {
    for (let i = 0; i < 20; i++) server.create('pods', pod(`p${i}`, { i: String(i) }));
    const restarting = server.restart({ downMs: 300 });
    server.remove('pods', 'ns1', 'p3');
    server.patch('pods', 'ns1', 'p4', { metadata: { labels: { i: 'changed' } } });
    await restarting;
    server.create('pods', pod('after'));
    const want = server.items('pods').map((p) => (p.metadata as { name: string }).name).sort();
    await new Promise<void>((resolve) => {
      const check = (): boolean => store.list('Pod').map((p) => p.metadata.name).sort().join() === want.join();
      if (check()) { resolve(); return; }
      const off = store.onChange(() => { if (check()) { off(); resolve(); } });
    });
    expect(store.get('Pod', 'p3', 'ns1')).toBeUndefined();
    expect(store.get('Pod', 'p4', 'ns1')?.metadata.labels).toEqual({ i: 'changed' });
  });
});
