import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KubeStatus } from '../../../../../daemon/sources/kube/api';
import { staticConnection, type KubeConnection } from '../../../../../daemon/sources/kube/config';
import { KubeTransportError } from '../../../../../daemon/sources/kube/errors';
import { HttpKubeApi } from '../../../../../daemon/sources/kube/http-api';
import { FakeApiServer } from '../../../../fakes/fake-apiserver';
import { pod } from './helpers';

interface PodBody { metadata: { name: string; uid: string; resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string> }; status?: { phase?: string } }

describe('HttpKubeApi against the fake apiserver', () => {
  let server: FakeApiServer;
  let api: HttpKubeApi;

  beforeEach(async () => {
    server = await FakeApiServer.start();
    api = new HttpKubeApi(staticConnection(server.url), { requestTimeoutMs: 2_000, retry: { initialMs: 10, maxMs: 50 } });
  });
  afterEach(async () => {
    api.close();
    await server.close();
  });

  it('creates, then answers 409 AlreadyExists with a Status body', async () => {
    const created = await api.request<PodBody>({ method: 'POST', path: '/api/v1/namespaces/default/pods', body: pod('p1') });
    expect(created.status).toBe(201);
    expect(created.body.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    const again = await api.request<KubeStatus>({ method: 'POST', path: '/api/v1/namespaces/default/pods', body: pod('p1') });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'AlreadyExists', code: 409 });
    expect(again.body.message).toContain('"p1" already exists');
  });

  it('gets an object, and 404 NotFound for a missing one', async () => {
    server.create('pods', pod('p1'));
    const got = await api.request<PodBody>({ method: 'GET', path: '/api/v1/namespaces/default/pods/p1' });
    expect(got.status).toBe(200);
    expect(got.body.metadata.name).toBe('p1');
    const missing = await api.request<KubeStatus>({ method: 'GET', path: '/api/v1/namespaces/default/pods/nope' });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ reason: 'NotFound', code: 404 });
  });

  it('merge-patches annotations (null removes), bumping the resourceVersion; the status subresource only changes status', async () => {
    const p = server.create('pods', { ...pod('p1'), metadata: { name: 'p1', namespace: 'default', labels: { app: 'p1' }, annotations: { a: '1', b: '2' } } });
    const patched = await api.request<PodBody>({
      method: 'PATCH', path: '/api/v1/namespaces/default/pods/p1', body: { metadata: { annotations: { a: null, c: '3' } }, status: { phase: 'Ignored' } },
    });
    expect(patched.status).toBe(200);
    expect(patched.body.metadata.annotations).toEqual({ b: '2', c: '3' });
    expect(patched.body.status).toBeUndefined();
    expect(Number(patched.body.metadata.resourceVersion)).toBeGreaterThan(Number(p.metadata.resourceVersion));

    const st = await api.request<PodBody>({
      method: 'PATCH', path: '/api/v1/namespaces/default/pods/p1/status', body: { status: { phase: 'Running' }, metadata: { labels: { ignored: 'x' } } },
    });
    expect(st.status).toBe(200);
    expect(st.body.status?.phase).toBe('Running');
    expect(st.body.metadata.labels).toEqual({ app: 'p1' });

    const stale = await api.request<KubeStatus>({
      method: 'PATCH', path: '/api/v1/namespaces/default/pods/p1', body: { metadata: { resourceVersion: p.metadata.resourceVersion, labels: { x: 'y' } } },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.reason).toBe('Conflict');
  });

  it('deletes only when the uid and resourceVersion preconditions hold', async () => {
    const p = server.create('pods', pod('p1'));
    const wrongUid = await api.request<KubeStatus>({
      method: 'DELETE', path: '/api/v1/namespaces/default/pods/p1', body: { preconditions: { uid: '00000000-0000-0000-0000-000000000000' } },
    });
    expect(wrongUid.status).toBe(409);
    expect(wrongUid.body.message).toContain('UID in precondition');
    const wrongRv = await api.request<KubeStatus>({
      method: 'DELETE', path: '/api/v1/namespaces/default/pods/p1', body: { preconditions: { resourceVersion: '1' } },
    });
    expect(wrongRv.status).toBe(409);
    expect(server.get('pods', 'default', 'p1')).toBeDefined();
    const ok = await api.request<PodBody>({
      method: 'DELETE', path: '/api/v1/namespaces/default/pods/p1', body: { preconditions: { uid: p.metadata.uid, resourceVersion: p.metadata.resourceVersion } },
    });
    expect(ok.status).toBe(200);
    expect(server.get('pods', 'default', 'p1')).toBeUndefined();
  });

  it('sends query parameters and reaches cluster-scoped CRDs', async () => {
    server.create('subnets', { metadata: { name: 'ovn-default' }, spec: { cidrBlock: '10.16.0.0/16' } });
    const list = await api.request<{ items: unknown[] }>({ method: 'GET', path: '/apis/kubeovn.io/v1/subnets', query: { limit: '10' } });
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(1);
    expect(server.requests.at(-1)?.query).toEqual({ limit: '10' });
  });

  it('retries a 429 after its Retry-After, for any method', async () => {
    server.inject({ status: 429, retryAfterSeconds: 0.2, match: (r) => r.method === 'POST' });
    const t0 = Date.now();
    const res = await api.request({ method: 'POST', path: '/api/v1/namespaces/default/pods', body: pod('p1') });
    expect(res.status).toBe(201);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(server.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
  });

  it('returns a 503 to a POST (its outcome is the caller\'s to judge) but retries it for a GET', async () => {
    server.inject({ status: 503, times: 1, match: (r) => r.method === 'POST' });
    expect((await api.request({ method: 'POST', path: '/api/v1/namespaces/default/pods', body: pod('p1') })).status).toBe(503);
    server.inject({ status: 503, times: 2, match: (r) => r.method === 'GET' });
    expect((await api.request({ method: 'GET', path: '/api/v1/namespaces/default/pods/p1' })).status).toBe(404);
    expect(server.requests.filter((r) => r.method === 'GET')).toHaveLength(3);
  });

  it('bounds the request time: a request the server never answers fails with TIMEOUT', async () => {
    const quick = new HttpKubeApi(staticConnection(server.url), { requestTimeoutMs: 200 });
    server.inject({ hang: true });
    const t0 = Date.now();
    const err = await quick.request({ method: 'POST', path: '/api/v1/namespaces/default/pods', body: pod('p1') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeTransportError);
    expect(err).toMatchObject({ code: 'TIMEOUT', outcomeUnknown: true });
    expect(Date.now() - t0).toBeLessThan(3_000);
    quick.close();
  });

  it('rides out an apiserver restart for a GET (connection refused is retried)', async () => {
    server.create('pods', pod('p1'));
    const restarted = server.restart({ downMs: 150 });
    await new Promise((r) => setTimeout(r, 20));
    const got = await api.request({ method: 'GET', path: '/api/v1/namespaces/default/pods/p1' });
    expect(got.status).toBe(200);
    await restarted;
  });

  it('reuses one keep-alive connection for consecutive requests', async () => {
    server.create('pods', pod('p1'));
    for (let i = 0; i < 5; i++) {
      await api.request({ method: 'GET', path: '/api/v1/namespaces/default/pods/p1' });
    }
    expect(server.requests).toHaveLength(5);
    expect(server.connectionsAccepted).toBe(1);
  });

  it('re-reads credentials once after a 401 and retries', async () => {
    await server.close();
    server = await FakeApiServer.start({ tokens: new Set(['good']) });
    let token = 'expired';
    let invalidated = 0;
    const conn: KubeConnection = {
      server: new URL(server.url),
      namespace: undefined,
      credentials: () => Promise.resolve({ tls: {}, headers: { Authorization: `Bearer ${token}` }, tlsId: 'x' }),
      invalidate: () => {
        invalidated++;
        token = 'good';
      },
    };
    const authApi = new HttpKubeApi(conn);
    const res = await authApi.request({ method: 'GET', path: '/api/v1/namespaces' });
    expect(res.status).toBe(200);
    expect(invalidated).toBe(1);
    expect(server.requests.map((r) => r.authorization)).toEqual(['Bearer expired', 'Bearer good']);
    authApi.close();
  });

  it('streams watch events as they come, parsed line by line', async () => {
    const ac = new AbortController();
    const res = await api.stream({ path: '/api/v1/pods', query: { watch: 'true', resourceVersion: String(server.resourceVersion) }, signal: ac.signal });
    expect(res.status).toBe(200);
    const it = res.events[Symbol.asyncIterator]();
    server.create('pods', pod('p1'));
    const first = await it.next();
    expect(first.value).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'p1' } } });
    server.remove('pods', 'default', 'p1');
    expect((await it.next()).value).toMatchObject({ type: 'DELETED' });
    ac.abort();
    await expect(it.next()).rejects.toThrow();
  });

  it('reports a cut watch connection as a transport error, and a clean end as the end', async () => {
    const res = await api.stream({ path: '/api/v1/pods', query: { watch: 'true', resourceVersion: String(server.resourceVersion) } });
    const it = res.events[Symbol.asyncIterator]();
    const next = it.next();
    server.dropWatches();
    await expect(next).rejects.toBeInstanceOf(KubeTransportError);

    const res2 = await api.stream({ path: '/api/v1/pods', query: { watch: 'true', resourceVersion: String(server.resourceVersion) } });
    const it2 = res2.events[Symbol.asyncIterator]();
    const next2 = it2.next();
    server.dropWatches({ clean: true });
    expect(await next2).toEqual({ done: true, value: undefined });
  });

  it('gives up on a watch that stays silent longer than its idle limit', async () => {
    const res = await api.stream({ path: '/api/v1/pods', query: { watch: 'true', resourceVersion: String(server.resourceVersion) }, idleTimeoutMs: 150 });
    const t0 = Date.now();
    const err = await res.events[Symbol.asyncIterator]().next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeTransportError);
    expect(err).toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('hands a non-2xx watch answer back with its Status and Retry-After', async () => {
    server.inject({ status: 429, retryAfterSeconds: 3, match: (r) => r.watch });
    const res = await api.stream({ path: '/api/v1/pods', query: { watch: 'true' } });
    expect(res.status).toBe(429);
    expect(res.retryAfterMs).toBe(3_000);
    expect(res.body).toMatchObject({ kind: 'Status', code: 429 });
  });
});
