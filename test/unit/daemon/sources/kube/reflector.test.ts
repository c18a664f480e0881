import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeCache } from '../../../../../daemon/sources/kube/cache';
import { staticConnection } from '../../../../../daemon/sources/kube/config';
import { HttpKubeApi } from '../../../../../daemon/sources/kube/http-api';
import { Reflector, type KubeRawObject, type ReflectorEvent, type ReflectorOptions, type RetryInfo } from '../../../../../daemon/sources/kube/reflector';
import { FakeApiServer, type FakeApiServerOptions } from '../../../../fakes/fake-apiserver';
import { pod, seeded, slimPod, tick, type SlimPod } from './helpers';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  server: FakeApiServer;
  api: HttpKubeApi;
  reflector: Reflector<SlimPod>;
  events: Array<ReflectorEvent<SlimPod>>;
  retries: RetryInfo[];
}

async function setup(opts: { server?: FakeApiServerOptions; reflector?: Partial<ReflectorOptions<SlimPod>>; before?: (s: FakeApiServer) => void } = {}): Promise<Setup> {
  const server = await FakeApiServer.start(opts.server);
  cleanups.push(() => server.close());
  opts.before?.(server);
  const api = new HttpKubeApi(staticConnection(server.url), { requestTimeoutMs: 5_000, retry: { initialMs: 5, maxMs: 20 } });
  cleanups.push(() => api.close());
  const events: Array<ReflectorEvent<SlimPod>> = [];
  const retries: RetryInfo[] = [];
  const reflector = new Reflector<SlimPod>({
    api,
    path: '/api/v1/pods',
    project: slimPod,
    backoff: { initialMs: 5, maxMs: 50 },
    watchTimeoutSeconds: 60,
    onRetry: (r) => retries.push(r),
    ...opts.reflector,
  });
  reflector.subscribe((ev) => events.push(ev));
  cleanups.push(() => reflector.stop());
  return { server, api, reflector, events, retries };
}

/** Resolves at the first event (from now on) that matches; all events a list emits in one go are delivered by then. */
function nextEvent<S>(r: Reflector<S>, pred: (ev: ReflectorEvent<S>) => boolean): Promise<ReflectorEvent<S>> {
  return new Promise((resolve) => {
    const off = r.subscribe((ev) => {
      if (!pred(ev)) return;
      off();
      resolve(ev);
    });
  });
}

const summary = (evs: Array<ReflectorEvent<SlimPod>>): string[] => evs.map((e) => `${e.type} ${e.key} ${e.object.resourceVersion}`);

describe('Reflector', () => {
  it('lists page by page (limit/continue), then reports synced with every object', async () => {
    const { server, reflector, events } = await setup({
      reflector: { pageSize: 10 },
      before: (s) => {
        for (let i = 0; i < 25; i++) s.create('pods', pod(`p${String(i).padStart(2, '0')}`));
      },
    });
    expect(reflector.synced).toBe(false);
    reflector.start();
    await reflector.whenSynced();
    expect(reflector.synced).toBe(true);
    const lists = server.requests.filter((r) => !r.watch && r.path === '/api/v1/pods');
    expect(lists).toHaveLength(3);
    expect(lists.map((r) => r.query.limit)).toEqual(['10', '10', '10']);
    expect(lists[0]?.query.continue).toBeUndefined();
    // The first list may come from the watch cache (client-go's resourceVersion=0); a continue
    // token carries its own version, and the two together are refused by the apiserver.
    expect(lists.map((r) => r.query.resourceVersion)).toEqual(['0', undefined, undefined]);
    expect(lists[1]?.query.continue).toBeTruthy();
    expect(lists[2]?.query.continue).toBeTruthy();
    expect(reflector.size).toBe(25);
    expect(events).toHaveLength(25);
    expect(events.every((e) => e.type === 'ADDED' && e.fromList)).toBe(true);
    const watch = await server.nextRequest((r) => r.watch);
    expect(watch.query).toMatchObject({ resourceVersion: String(server.resourceVersion), allowWatchBookmarks: 'true', timeoutSeconds: '60' });
  });

  it('starts the list over when a continue token expired midway', async () => {
    const { server, reflector } = await setup({
      reflector: { pageSize: 10 },
      before: (s) => {
        for (let i = 0; i < 25; i++) s.create('pods', pod(`p${i}`));
        s.inject({ status: 410, match: (r) => r.query.continue !== undefined });
      },
    });
    await reflector.start().whenSynced();
    expect(reflector.size).toBe(25);
    const lists = server.requests.filter((r) => !r.watch);
    expect(lists.map((r) => (r.query.continue ? 'next' : 'first'))).toEqual(['first', 'next', 'first', 'next', 'next']);
  });

  it('resumes a dropped watch from the last resourceVersion: no event lost, none repeated', async () => {
    const { server, reflector, events } = await setup({
      before: (s) => {
        for (let i = 0; i < 10; i++) s.create('pods', pod(`p${i}`));
      },
    });
    await reflector.start().whenSynced();
    const listRv = Number(reflector.resourceVersion);
    events.length = 0;
    for (let round = 0; round < 4; round++) {
      server.create('pods', pod(`new${round}`));
      await nextEvent(reflector, (e) => e.key === `default/new${round}`);
      const resumeRv = reflector.resourceVersion;
      server.dropWatches(); // the socket dies mid-stream
      // Written while the reflector is disconnected: it must get them from the resumed watch.
      server.patch('pods', 'default', `p${round}`, { metadata: { labels: { round: String(round) } } });
      server.remove('pods', 'default', `p${round + 5}`);
      const resumed = await server.nextRequest((r) => r.watch);
      expect(resumed.query.resourceVersion).toBe(resumeRv);
    }
    server.create('pods', pod('sentinel'));
    await nextEvent(reflector, (e) => e.key === 'default/sentinel');
    const expected = server.history('pods').filter((e) => e.rv > listRv).map((e) => `${e.type} ${e.key} ${e.rv}`);
    expect(summary(events)).toEqual(expected);
    expect(events.every((e) => !e.fromList)).toBe(true);
    expect(reflector.stats.lists).toBe(1);
    expect(reflector.stats.watches).toBeGreaterThanOrEqual(5);
  });

  it.each(['event', 'status'] as const)('after 410 Gone (as %s) re-lists and emits only the difference', async (goneAs) => {
    const { server, reflector, events } = await setup({
      server: { goneAs },
      before: (s) => {
        for (const n of ['a', 'b', 'c', 'd', 'f']) s.create('pods', pod(n));
      },
    });
    await reflector.start().whenSynced();
    events.length = 0;
    const oldF = reflector.get('default/f');
    const oldC = reflector.get('default/c');

    const back = server.restart({ downMs: 150 });
    server.remove('pods', 'default', 'b');
    server.patch('pods', 'default', 'c', { metadata: { labels: { app: 'changed' } } });
    server.create('pods', pod('e'));
    server.remove('pods', 'default', 'f');
    server.create('pods', pod('f')); // same name, new uid
    server.compact();
    const lastRelistEvent = nextEvent(reflector, (e) => e.type === 'DELETED' && e.key === 'default/b');
    await back;
    await lastRelistEvent;

    expect(reflector.stats.gone).toBe(1);
    expect(reflector.stats.relists).toBe(1);
    // Listing again after 410 is a consistent read, never the watch cache that may lag.
    const lists = server.requests.filter((r) => !r.watch && r.path === '/api/v1/pods');
    expect(lists.map((r) => r.query.resourceVersion)).toEqual(['0', undefined]);
    expect(events.every((e) => e.fromList)).toBe(true);
    const byKey = events.map((e) => `${e.type} ${e.key}`).sort();
    expect(byKey).toEqual(['ADDED default/e', 'ADDED default/f', 'DELETED default/b', 'DELETED default/f', 'MODIFIED default/c'].sort());
    const modC = events.find((e) => e.type === 'MODIFIED');
    expect(modC?.old).toBe(oldC);
    expect(modC?.object.labels).toEqual({ app: 'changed' });
    const delF = events.find((e) => e.type === 'DELETED' && e.key === 'default/f');
    const addF = events.find((e) => e.type === 'ADDED' && e.key === 'default/f');
    expect(delF?.object).toBe(oldF);
    expect(addF?.object.uid).not.toBe(oldF?.uid);
    // The delete of the old f precedes the add of the new one.
    expect(events.indexOf(delF as ReflectorEvent<SlimPod>)).toBeLessThan(events.indexOf(addF as ReflectorEvent<SlimPod>));
    expect([...reflector.values()].sort((x, y) => x.name.localeCompare(y.name))).toEqual(server.items('pods').map((o) => slimPod(o as KubeRawObject)));
  });

  it('a bookmark advances the resourceVersion the next watch resumes from', async () => {
    const { server, reflector, events } = await setup({ before: (s) => s.create('pods', pod('p1')) });
    await reflector.start().whenSynced();
    await server.nextRequest((r) => r.watch);
    const listed = reflector.resourceVersion;
    // Other resources move the global resourceVersion; no pod event tells the pod watch.
    for (let i = 0; i < 3; i++) server.create('namespaces', { metadata: { name: `ns${i}` } });
    server.bookmark();
    server.dropWatches({ clean: true });
    const resumed = await server.nextRequest((r) => r.watch);
    expect(resumed.query.resourceVersion).toBe(String(server.resourceVersion));
    expect(resumed.query.resourceVersion).not.toBe(listed);
    expect(reflector.stats.bookmarks).toBe(1);
    expect(events).toHaveLength(1); // the list's ADDED only: bookmarks are not events
  });

  it('backs off exponentially with jitter, honours Retry-After, and resets after a working watch', async () => {
    const { server, reflector, retries } = await setup({
      reflector: { backoff: { initialMs: 10, maxMs: 1_000, random: seeded(7) } },
      before: (s) => s.inject({ status: 503, times: 5, match: (r) => r.watch }),
    });
    await reflector.start().whenSynced();
    const p1 = nextEvent(reflector, (e) => e.key === 'default/p1');
    // The sixth watch succeeds; an event on it proves it works.
    await server.nextRequest((r) => r.watch && server.requests.filter((x) => x.watch).length === 6);
    server.create('pods', pod('p1'));
    await p1;
    const first = retries.splice(0);
    expect(first.map((r) => r.failures)).toEqual([1, 2, 3, 4, 5]);
    for (let i = 1; i < first.length; i++) expect(first[i]?.delayMs).toBeGreaterThanOrEqual(first[i - 1]?.delayMs as number);
    expect(first[0]?.delayMs).toBeLessThanOrEqual(10);
    expect(first[4]?.delayMs).toBeGreaterThanOrEqual(80); // 10 * 2^4 with at most half taken by jitter

    // After success the next failure starts from the first delay again.
    server.inject({ status: 429, retryAfterSeconds: 0.3, match: (r) => r.watch });
    const t0 = Date.now();
    server.dropWatches();
    const p2 = nextEvent(reflector, (e) => e.key === 'default/p2');
    await server.nextRequest((r) => r.watch && server.requests.filter((x) => x.watch).length === 8);
    server.create('pods', pod('p2'));
    await p2;
    expect(retries.map((r) => r.failures)).toEqual([1, 2]);
    expect(retries[0]?.delayMs).toBeLessThanOrEqual(10);
    expect(retries[1]?.delayMs).toBeGreaterThanOrEqual(300);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
  });

  it('an ERROR event other than 410 backs off and resumes from the same resourceVersion, without a new list', async () => {
    const { server, reflector, retries } = await setup({ before: (s) => s.create('pods', pod('p1')) });
    await reflector.start().whenSynced();
    await server.nextRequest((r) => r.watch);
    const rv = reflector.resourceVersion;
    const resumed = server.nextRequest((r) => r.watch);
    server.watchError(500);
    expect((await resumed).query.resourceVersion).toBe(rv);
    expect(retries).toHaveLength(1);
    expect(retries[0]?.error.message).toMatch(/500/);
    expect(reflector.stats.lists).toBe(1);
  });

  it('a throwing handler is logged and does not stop the others or the watch', async () => {
    const logged: string[] = [];
    const log = { info: () => {}, warn: () => {}, error: (_: object, msg: string) => void logged.push(msg) };
    const { server, reflector, events } = await setup({ reflector: { log } });
    reflector.subscribe(() => {
      throw new Error('handler bug');
    });
    await reflector.start().whenSynced();
    const second = nextEvent(reflector, (e) => e.key === 'default/p2');
    server.create('pods', pod('p1'));
    server.create('pods', pod('p2'));
    await second;
    expect(events.map((e) => e.key)).toEqual(['default/p1', 'default/p2']);
    expect(logged).toEqual(['kube reflector: event handler failed', 'kube reflector: event handler failed']);
  });

  it('passes selectors to list and watch; a label change out of the selector is a DELETED', async () => {
    const { server, reflector, events } = await setup({
      reflector: { labelSelector: 'tier=web', fieldSelector: 'spec.nodeName=node-1' },
      before: (s) => {
        s.create('pods', pod('w1', { labels: { tier: 'web' } }));
        s.create('pods', pod('w2', { labels: { tier: 'web' }, nodeName: 'node-2' }));
        s.create('pods', pod('db', { labels: { tier: 'db' } }));
      },
    });
    await reflector.start().whenSynced();
    expect([...reflector.values()].map((p) => p.name)).toEqual(['w1']);
    const gone = nextEvent(reflector, (e) => e.type === 'DELETED');
    server.patch('pods', 'default', 'w1', { metadata: { labels: { tier: 'db' } } });
    expect((await gone).key).toBe('default/w1');
    const added = nextEvent(reflector, (e) => e.type === 'ADDED');
    server.patch('pods', 'default', 'db', { metadata: { labels: { tier: 'web' } } });
    expect((await added).key).toBe('default/db');
    expect(events.map((e) => `${e.type} ${e.key}`)).toEqual(['ADDED default/w1', 'DELETED default/w1', 'ADDED default/db']);
    const watch = server.requests.find((r) => r.watch);
    expect(watch?.query).toMatchObject({ labelSelector: 'tier=web', fieldSelector: 'spec.nodeName=node-1' });
  });

  it('keeps only what the projection returns; undefined keeps nothing and drops what was held', async () => {
    const { server, reflector, events } = await setup({
      reflector: { project: (raw) => ((raw.metadata?.labels as Record<string, string> | undefined)?.skip ? undefined : slimPod(raw)) },
      before: (s) => {
        s.create('pods', pod('keep'));
        s.create('pods', pod('skip', { labels: { skip: 'yes' } }));
      },
    });
    await reflector.start().whenSynced();
    expect([...reflector.values()].map((p) => p.name)).toEqual(['keep']);
    const dropped = nextEvent(reflector, (e) => e.type === 'DELETED');
    server.patch('pods', 'default', 'keep', { metadata: { labels: { skip: 'now' } } });
    expect((await dropped).key).toBe('default/keep');
    expect(reflector.size).toBe(0);
    expect(events.map((e) => e.type)).toEqual(['ADDED', 'DELETED']);
  });

  it('holds no raw object: every raw JSON object is collectable once projected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const raws: Array<WeakRef<object>> = [];
    const { server, reflector } = await setup({
      reflector: {
        pageSize: 50,
        project: (raw) => {
          raws.push(new WeakRef(raw));
          return slimPod(raw);
        },
      },
      before: (s) => {
        for (let i = 0; i < 200; i++) s.create('pods', { ...pod(`p${i}`), status: { podIP: `10.0.0.${i % 250}`, blob: 'x'.repeat(2_000) } });
      },
    });
    await reflector.start().whenSynced();
    for (let i = 0; i < 20; i++) server.patch('pods', 'default', `p${i}`, { metadata: { labels: { round: '2' } } });
    await nextEvent(reflector, (e) => e.key === 'default/p19' && e.type === 'MODIFIED');
    expect(raws.length).toBe(220);
    await tick();
    gc();
    await tick();
    gc();
    const alive = raws.filter((w) => w.deref() !== undefined).length;
    // The watch loop may still hold the event it parsed last, nothing more.
    expect(alive).toBeLessThanOrEqual(1);
    const kept = reflector.get('default/p7');
    expect(Object.keys(kept ?? {}).sort()).toEqual(['labels', 'name', 'namespace', 'nodeName', 'podIP', 'resourceVersion', 'uid']);
  });

  it('stop() aborts the watch and a pending backoff; nothing arrives afterwards', async () => {
    const { server, reflector, events } = await setup();
    await reflector.start().whenSynced();
    await server.nextRequest((r) => r.watch);
    expect(server.openWatches).toBe(1);
    await reflector.stop();
    await server.watchesClosed();
    server.create('pods', pod('late'));
    await new Promise((r) => setTimeout(r, 50));
    expect(events).toHaveLength(0);

    // Stopping during a long backoff returns at once, and whenSynced of a never-synced reflector rejects.
    const down = await setup({ reflector: { backoff: { initialMs: 60_000, maxMs: 60_000 } } });
    down.server.inject({ status: 403, times: 100, match: (r) => !r.watch });
    const synced = down.reflector.start().whenSynced();
    await down.server.nextRequest((r) => !r.watch);
    const t0 = Date.now();
    await down.reflector.stop();
    expect(Date.now() - t0).toBeLessThan(1_000);
    await expect(synced).rejects.toThrow(/stopped before its first list/);
  });

  it.each([1, 2, 3])('randomized (seed %i): apiserver restarts, cuts and compactions while objects change; the cache ends equal to the server', async (seed) => {
    const rand = seeded(seed);
    const { server, reflector, events } = await setup({ server: { historyLimit: 40 } });
    for (let i = 0; i < 30; i++) server.create('pods', pod(`p${i}`, { labels: { v: '0' } }));
    const cache = new KubeCache(reflector.start());
    cleanups.push(() => cache.close());
    await cache.whenSynced();
    let next = 30;
    let restarting: Promise<void> | undefined;
    let restarts = 0;
    const pick = (): string | undefined => {
      const names = server.items('pods').map((o) => o.metadata.name);
      return names[Math.floor(rand() * names.length)];
    };
    for (let op = 0; op < 400; op++) {
      const r = rand();
      if (r < 0.3) {
        server.create('pods', pod(`p${next++}`, { labels: { v: '0' } }));
      } else if (r < 0.6) {
        const name = pick();
        if (name) server.patch('pods', 'default', name, { metadata: { labels: { v: String(op) } } });
      } else if (r < 0.8) {
        const name = pick();
        if (name) server.remove('pods', 'default', name);
      } else if (r < 0.85) {
        server.dropWatches({ clean: rand() < 0.3 });
      } else if (r < 0.88) {
        await restarting;
        restarts++;
        restarting = server.restart({ downMs: 5 + Math.floor(rand() * 40) });
      } else if (r < 0.9) {
        server.compact();
      } else if (r < 0.93) {
        server.bookmark();
      } else {
        await new Promise((res) => setTimeout(res, Math.floor(rand() * 8)));
      }
      if (rand() < 0.3) await tick();
    }
    await restarting;
    const sentinel = `sentinel-${seed}`;
    server.create('pods', pod(sentinel));
    expect(await cache.waitFor(`default/${sentinel}`, () => true, { timeoutMs: 10_000 })).toBeDefined();

    const want = server.items('pods').map((o) => slimPod(o as KubeRawObject));
    const byName = (a: SlimPod, b: SlimPod): number => a.name.localeCompare(b.name);
    expect(cache.list().sort(byName)).toEqual(want.sort(byName));
    // The events alone rebuild the same state, and no object version was delivered twice.
    const replay = new Map<string, SlimPod>();
    const seen = new Set<string>();
    for (const e of events) {
      if (e.type === 'DELETED') {
        expect(replay.has(e.key)).toBe(true);
        replay.delete(e.key);
      } else {
        const version = `${e.key}@${e.object.resourceVersion}`;
        expect(seen.has(version)).toBe(false);
        seen.add(version);
        replay.set(e.key, e.object);
      }
    }
    expect([...replay.values()].sort(byName)).toEqual(want);
    expect(restarts).toBeGreaterThan(3);
    expect(reflector.stats.gone).toBeGreaterThan(0);
    // Resumed watches and re-lists both happened: the run exercised both ways back.
    expect(reflector.stats.watches).toBeGreaterThan(3);
    expect(reflector.stats.relists).toBeGreaterThan(0);
  });
});
