import { afterEach, describe, expect, it } from 'vitest';
import { KubeCache } from '../../../../../daemon/sources/kube/cache';
import { staticConnection } from '../../../../../daemon/sources/kube/config';
import { HttpKubeApi } from '../../../../../daemon/sources/kube/http-api';
import { Reflector, type ReflectorEvent } from '../../../../../daemon/sources/kube/reflector';
import { FakeApiServer } from '../../../../fakes/fake-apiserver';
import { pod, slimPod, type SlimPod } from './helpers';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(before?: (s: FakeApiServer) => void): Promise<{ server: FakeApiServer; reflector: Reflector<SlimPod>; cache: KubeCache<SlimPod> }> {
  const server = await FakeApiServer.start();
  cleanups.push(() => server.close());
  before?.(server);
  const api = new HttpKubeApi(staticConnection(server.url));
  cleanups.push(() => api.close());
  const reflector = new Reflector<SlimPod>({ api, path: '/api/v1/pods', project: slimPod, backoff: { initialMs: 5, maxMs: 50 } });
  cleanups.push(() => reflector.stop());
  const cache = new KubeCache(reflector);
  cleanups.push(() => cache.close());
  return { server, reflector, cache };
}

describe('KubeCache', () => {
  it('get, getIn, list and onChange follow the reflector', async () => {
    const { server, reflector, cache } = await setup((s) => {
      s.create('pods', pod('a', { namespace: 'ns1' }));
      s.create('pods', pod('b', { namespace: 'ns2' }));
    });
    const seen: Array<ReflectorEvent<SlimPod>> = [];
    cache.onChange((ev) => seen.push(ev));
    await reflector.start().whenSynced();
    expect(cache.synced).toBe(true);
    expect(cache.get('ns1/a')?.name).toBe('a');
    expect(cache.getIn('ns2', 'b')?.namespace).toBe('ns2');
    expect(cache.list((p) => p.namespace === 'ns2').map((p) => p.name)).toEqual(['b']);
    const removed = cache.waitFor('ns1/gone-marker', () => true, { timeoutMs: 5_000 });
    server.remove('pods', 'ns1', 'a');
    server.create('pods', pod('gone-marker', { namespace: 'ns1' }));
    await removed;
    expect(cache.get('ns1/a')).toBeUndefined();
    expect(seen.map((e) => `${e.type} ${e.key}`)).toEqual(['ADDED ns1/a', 'ADDED ns2/b', 'DELETED ns1/a', 'ADDED ns1/gone-marker']);
  });

  it('waitFor resolves in the turn of the event that satisfies it, not at a later poll', async () => {
    const { server, reflector, cache } = await setup();
    await reflector.start().whenSynced();
    let immediateRan = false;
    cache.onChange((ev) => {
      if (ev.key === 'default/p1' && ev.object.podIP !== undefined) setImmediate(() => (immediateRan = true));
    });
    const t0 = Date.now();
    const waiting = cache.waitFor('default/p1', (p) => p.podIP !== undefined, { timeoutMs: 5_000 });
    expect(cache.waiting).toBe(1);
    server.create('pods', pod('p1')); // present, but the predicate does not hold yet
    await new Promise((r) => setTimeout(r, 30));
    expect(cache.get('default/p1')).toBeDefined();
    expect(cache.waiting).toBe(1);
    server.patch('pods', 'default', 'p1', { status: { podIP: '10.16.0.5' } }, 'status');
    const got = await waiting;
    // Resolved from the event's own call stack: an immediate queued at the event has not run yet.
    expect(immediateRan).toBe(false);
    expect(got?.podIP).toBe('10.16.0.5');
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(cache.waiting).toBe(0);
  });

  it('waitFor answers at once when the object already qualifies, and waits through the first list when not synced yet', async () => {
    const { reflector, cache } = await setup((s) => s.create('pods', pod('early')));
    const beforeSync = cache.waitFor('default/early', () => true, { timeoutMs: 5_000 });
    expect(cache.synced).toBe(false);
    reflector.start();
    expect((await beforeSync)?.name).toBe('early');
    const t0 = Date.now();
    expect((await cache.waitFor('default/early', (p) => p.name === 'early', { timeoutMs: 5_000 }))?.name).toBe('early');
    expect(Date.now() - t0).toBeLessThan(500);
  });

  it('waitFor resolves undefined at the timeout', async () => {
    const { reflector, cache } = await setup();
    await reflector.start().whenSynced();
    const t0 = Date.now();
    expect(await cache.waitFor('default/never', () => true, { timeoutMs: 150 })).toBeUndefined();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(145);
    expect(took).toBeLessThan(3_000);
    expect(cache.waiting).toBe(0);
  });

  it('waitFor rejects on abort, on a throwing predicate, and when the cache closes', async () => {
    const { server, reflector, cache } = await setup();
    await reflector.start().whenSynced();
    const ac = new AbortController();
    const aborted = cache.waitFor('default/x', () => true, { timeoutMs: 5_000, signal: ac.signal });
    ac.abort(new Error('ADD cancelled'));
    await expect(aborted).rejects.toThrow('ADD cancelled');

    const throwing = cache.waitFor('default/y', () => {
      throw new Error('bad predicate');
    }, { timeoutMs: 5_000 });
    server.create('pods', pod('y'));
    await expect(throwing).rejects.toThrow('bad predicate');

    const pending = cache.waitFor('default/z', () => true, { timeoutMs: 5_000 });
    cache.close();
    await expect(pending).rejects.toThrow('kube cache closed');
    expect(cache.waiting).toBe(0);
  });
});
