// MemoryStore: apply/remove with the ObjectStore change semantics (one call per effective
// change, none for a no-op), namespace defaulting in lookups, frozen copies.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { NamespaceObj, PodObj } from '../../../../daemon/objects/types';

const meta = (name: string, namespace = '', labels: Record<string, string> = {}) => ({ name, namespace, labels, annotations: {} });
const ns = (name: string, labels: Record<string, string> = {}): NamespaceObj => ({ kind: 'Namespace', metadata: meta(name, '', labels) });
const pod = (name: string, namespace: string, labels: Record<string, string> = {}): PodObj => ({
  kind: 'Pod',
  metadata: meta(name, namespace, labels),
  spec: { containers: [{ name: 'c', ports: [] }] },
});

describe('MemoryStore', () => {
  it('calls onChange once per effective change, never for a no-op', () => {
    const store = new MemoryStore();
    let calls = 0;
    store.onChange(() => calls++);
    expect(store.apply(ns('a'))).toBe(true);
    expect(store.apply(ns('a'))).toBe(false);
    // Same content, keys in another order: still no change.
    expect(store.apply({ metadata: { annotations: {}, labels: {}, namespace: '', name: 'a' }, kind: 'Namespace' })).toBe(false);
    expect(store.apply(ns('a', { team: 'x' }))).toBe(true);
    expect(store.remove('Namespace', 'a')).toBe(true);
    expect(store.remove('Namespace', 'a')).toBe(false);
    expect(calls).toBe(3);
    expect(store.version).toBe(3);
    expect(store.lastChangeAt).toBeGreaterThan(0);
  });

  it('lists per kind in namespace/name order and gets by key', () => {
    const store = new MemoryStore();
    store.apply(pod('b', 'default'));
    store.apply(pod('a', 'team'));
    store.apply(pod('a', 'default'));
    store.apply(ns('team'));
    expect(store.list('Pod').map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).toEqual(['default/a', 'default/b', 'team/a']);
    expect(store.list('Namespace').map((n) => n.metadata.name)).toEqual(['team']);
    expect(store.list('Subnet')).toEqual([]);
    expect(store.get('Pod', 'a', 'team')?.metadata.namespace).toBe('team');
    // A namespaced kind without a namespace means "default", as kubectl does.
    expect(store.get('Pod', 'b')?.metadata.namespace).toBe('default');
    expect(store.get('Pod', 'b', 'team')).toBeUndefined();
    // Cluster-scoped kinds ignore the namespace.
    expect(store.get('Namespace', 'team', 'whatever')?.metadata.name).toBe('team');
  });

  it('stores a frozen copy: neither the caller nor a reader can change it', () => {
    const store = new MemoryStore();
    const mine = pod('p', 'default', { app: 'web' });
    store.apply(mine);
    mine.metadata.labels.app = 'changed';
    const stored = store.get('Pod', 'p', 'default');
    expect(stored?.metadata.labels.app).toBe('web');
    expect(Object.isFrozen(stored?.metadata.labels)).toBe(true);
  });

  it('adopts an object handed over (frozen, not copied) and keeps lists in order across updates, adds and removals', () => {
    const store = new MemoryStore();
    const given = pod('p', 'default', { app: 'web' });
    store.apply(given, { adopt: true });
    expect(store.get('Pod', 'p')).toBe(given);
    expect(Object.isFrozen(given.metadata)).toBe(true);
    for (const name of ['c', 'a', 'b']) store.apply(pod(name, 'x'));
    const names = (): string[] => store.list('Pod').map((p) => `${p.metadata.namespace}/${p.metadata.name}:${p.metadata.labels.v ?? ''}`);
    expect(names()).toEqual(['default/p:', 'x/a:', 'x/b:', 'x/c:']);
    const before = store.list('Pod');
    // An update in place: same order, a new list (readers holding the old one keep it), the new object in it.
    let seen: string[] = [];
    store.onChange(() => { seen = names(); });
    store.apply(pod('b', 'x', { v: '2' }));
    expect(seen).toEqual(['default/p:', 'x/a:', 'x/b:2', 'x/c:']);
    expect(store.list('Pod')).not.toBe(before);
    expect(before.map((p) => p.metadata.labels.v ?? '')).toEqual(['', '', '', '']);
    expect(store.list('Pod')[2]).toBe(store.get('Pod', 'b', 'x'));
    store.apply(pod('aa', 'x'));
    store.remove('Pod', 'p');
    expect(names()).toEqual(['x/a:', 'x/aa:', 'x/b:2', 'x/c:']);
    // Other kinds' lists are untouched by pod changes.
    store.apply(ns('x'));
    const namespaces = store.list('Namespace');
    store.apply(pod('c', 'x', { v: '3' }));
    expect(store.list('Namespace')).toBe(namespaces);
  });

  it('a listener sees the new state, can unsubscribe, and its failure reaches the caller after the others ran', () => {
    const store = new MemoryStore();
    const seen: string[] = [];
    const off = store.onChange(() => seen.push(store.list('Namespace').map((n) => n.metadata.name).join(',')));
    store.onChange(() => {
      throw new Error('listener bug');
    });
    let third = 0;
    store.onChange(() => third++);
    expect(() => store.apply(ns('a'))).toThrow('listener bug');
    expect(seen).toEqual(['a']);
    expect(third).toBe(1);
    off();
    expect(() => store.apply(ns('b'))).toThrow('listener bug');
    expect(seen).toEqual(['a']);
  });

  it('tells onObjectChange which object each effective change was about, before the onChange listeners, until unsubscribed', () => {
    const store = new MemoryStore();
    const events: unknown[] = [];
    const off = store.onObjectChange((c) => {
      // The store already holds the new state when the listener runs.
      const now = store.get(c.kind, c.name, c.namespace);
      events.push({ ...c, present: now !== undefined });
    });
    store.onChange(() => events.push('onChange'));
    const take = (): unknown[] => events.splice(0);

    store.apply(pod('p', 'team', { app: 'web' }));
    expect(take()).toEqual([{ kind: 'Pod', name: 'p', namespace: 'team', present: true }, 'onChange']);
    // Same content: no change, nobody called.
    expect(store.apply(pod('p', 'team', { app: 'web' }))).toBe(false);
    expect(take()).toEqual([]);
    store.apply(pod('p', 'team', { app: 'api' }));
    expect(take()).toEqual([{ kind: 'Pod', name: 'p', namespace: 'team', present: true }, 'onChange']);
    // Cluster-scoped kinds: namespace "".
    store.apply(ns('team'));
    expect(take()).toEqual([{ kind: 'Namespace', name: 'team', namespace: '', present: true }, 'onChange']);

    // A removal names the object as stored: the defaulted namespace of a pod, "" for a cluster-scoped kind whatever was passed.
    store.apply(pod('q', 'default'));
    take();
    expect(store.remove('Pod', 'q')).toBe(true);
    expect(take()).toEqual([{ kind: 'Pod', name: 'q', namespace: 'default', present: false }, 'onChange']);
    expect(store.remove('Namespace', 'team', 'whatever')).toBe(true);
    expect(take()).toEqual([{ kind: 'Namespace', name: 'team', namespace: '', present: false }, 'onChange']);
    expect(store.remove('Pod', 'missing', 'team')).toBe(false);
    expect(store.remove('Pod', 'p', 'elsewhere')).toBe(false);
    expect(take()).toEqual([]);

    off();
    store.remove('Pod', 'p', 'team');
    expect(take()).toEqual(['onChange']);
  });

  it('runs the onChange listeners even when an onObjectChange listener throws, and reports the failure to the caller', () => {
    const store = new MemoryStore();
    let whole = 0;
    store.onObjectChange(() => { throw new Error('object listener bug'); });
    store.onChange(() => whole++);
    expect(() => store.apply(ns('a'))).toThrow('object listener bug');
    expect(whole).toBe(1);
    expect(store.get('Namespace', 'a')).toBeDefined();
  });

  it('reports what setRejected was given, without a change', () => {
    const store = new MemoryStore();
    let calls = 0;
    store.onChange(() => calls++);
    store.setRejected([{ source: 'api', kind: 'Pod', name: 'x', message: 'Pod default/x: bad' }]);
    expect(store.rejected()).toEqual([{ source: 'api', kind: 'Pod', name: 'x', message: 'Pod default/x: bad' }]);
    expect(calls).toBe(0);
    store.close();
  });
});
