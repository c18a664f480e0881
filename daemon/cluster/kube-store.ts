// The ObjectStore of a Kubernetes node: one reflector (list + watch) per kind the daemon reads,
// each object projected and validated as it arrives, the accepted ones in a MemoryStore that the
// policy engine and the request path read, the refused ones reported (and recorded as Events on
// the object, which is what `kubectl describe` shows). Pods can be waited for: a CNI ADD may
// arrive before the watch delivered its pod.

import type { Logger } from 'pino';
import { MemoryStore } from '../objects/memory-store';
import { describeObject } from '../objects/validate';
import { SUPPORTED_KINDS } from '../objects/parse';
import type { Kind, ObjectChange, ObjectChanges, ObjectOf, ObjectStore, PodObj, RejectedObject } from '../objects/types';
import type { KubeApi } from '../sources/kube/api';
import { Reflector, type ReflectorEvent } from '../sources/kube/reflector';
import type { KubeStreamApi } from '../sources/kube/stream';
import type { EventRecorder } from './events';
import type { PodLookup } from './hooks';
import { projectObject, RESOURCE_PATHS, type SlimObject } from './kube-objects';

// Every kind the daemon knows: a kind added to the object model is watched without a second list here.
const KINDS = Object.keys(RESOURCE_PATHS) as Kind[];

interface PodWaiter {
  accept: (pod: PodObj) => boolean;
  resolve: (pod: PodObj | undefined) => void;
}

export interface KubeStoreOptions {
  api: KubeApi & KubeStreamApi;
  log: Logger;
  /** Where refusals are recorded as Events (optional: unit tests, a read-only daemon). */
  events?: EventRecorder;
}

export class KubeStore implements ObjectStore, ObjectChanges, PodLookup {
  private readonly memory = new MemoryStore();
  private readonly reflectors = new Map<Kind, Reflector<SlimObject>>();
  private readonly refused = new Map<string, RejectedObject>();
  private readonly podWaiters = new Map<string, Set<PodWaiter>>();

  constructor(private readonly opts: KubeStoreOptions) {
    for (const kind of KINDS) {
      const reflector = new Reflector<SlimObject>({
        api: opts.api, path: RESOURCE_PATHS[kind], log: opts.log,
        project: (raw) => projectObject(kind, raw),
      });
      reflector.subscribe((e) => this.onEvent(e));
      this.reflectors.set(kind, reflector);
    }
  }

  /** Starts every watch and resolves once each has delivered its first full list. */
  async start(signal?: AbortSignal): Promise<void> {
    for (const r of this.reflectors.values()) r.start();
    await Promise.all([...this.reflectors.values()].map((r) => r.whenSynced(signal)));
  }

  async close(): Promise<void> {
    for (const waiters of this.podWaiters.values()) for (const w of waiters) w.resolve(undefined);
    this.podWaiters.clear();
    await Promise.all([...this.reflectors.values()].map((r) => r.stop()));
  }

  list<K extends Kind>(kind: K): ReadonlyArray<ObjectOf<K>> { return this.memory.list(kind); }
  get<K extends Kind>(kind: K, name: string, namespace?: string): ObjectOf<K> | undefined { return this.memory.get(kind, name, namespace); }
  rejected(): ReadonlyArray<RejectedObject> { return [...this.refused.values()]; }
  onChange(listener: () => void): () => void { return this.memory.onChange(listener); }
  onObjectChange(listener: (change: ObjectChange) => void): () => void { return this.memory.onObjectChange(listener); }

  pod(namespace: string, name: string): PodObj | undefined { return this.memory.get('Pod', name, namespace); }

  waitFor(namespace: string, name: string, accept: (pod: PodObj) => boolean, timeoutMs: number, signal: AbortSignal): Promise<PodObj | undefined> {
    const now = this.memory.get('Pod', name, namespace);
    if (now && accept(now)) return Promise.resolve(now);
    const key = `${namespace}/${name}`;
    return new Promise((resolve) => {
      const waiters = this.podWaiters.get(key) ?? new Set<PodWaiter>();
      this.podWaiters.set(key, waiters);
      const done = (pod: PodObj | undefined): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        waiters.delete(waiter);
        if (waiters.size === 0) this.podWaiters.delete(key);
        resolve(pod);
      };
      const waiter: PodWaiter = { accept, resolve: done };
      const onAbort = (): void => done(undefined);
      const timer = setTimeout(() => done(undefined), timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      waiters.add(waiter);
    });
  }

  private onEvent(e: ReflectorEvent<SlimObject>): void {
    const slim = e.object;
    if (e.type === 'DELETED') {
      this.refused.delete(slim.key);
      this.memory.remove(slim.kind, slim.name, slim.namespace || undefined);
      return;
    }
    if (slim.result.ok) {
      this.refused.delete(slim.key);
      // The projection built this object for the store alone (the reflector's copy is the same
      // frozen object): adopted, not copied.
      this.memory.apply(slim.result.object, { adopt: true });
      if (slim.kind === 'Pod') this.wakePodWaiters(slim.result.object as PodObj);
      return;
    }
    // Refused whole, as a manifest would be: an earlier accepted version is no longer acted on.
    const rejected = slim.result.rejected;
    const known = this.refused.get(slim.key);
    this.refused.set(slim.key, rejected);
    const { name, namespace } = slim;
    this.memory.remove(slim.kind, name, namespace || undefined);
    if (known?.message === rejected.message) return;
    this.opts.log.warn({ step: 'objects', object: describeObject(slim.kind, name, namespace), reason: rejected.message }, 'object refused');
    void this.opts.events?.record(
      { apiVersion: SUPPORTED_KINDS[slim.kind], kind: slim.kind, name, namespace, ...(slim.uid ? { uid: slim.uid } : {}) },
      { type: 'Warning', reason: `${slim.kind}Refused`, message: `ovnode cannot honour this object: ${rejected.message}` },
    );
  }

  private wakePodWaiters(pod: PodObj): void {
    const waiters = this.podWaiters.get(`${pod.metadata.namespace}/${pod.metadata.name}`);
    if (!waiters) return;
    for (const w of [...waiters]) if (w.accept(pod)) w.resolve(pod);
  }
}
