// An ObjectStore held in memory and fed by calls: unit tests now, the Kubernetes watch later.
// Same change semantics as the manifests directory: a listener call per effective change only.

import { byNamespaceAndName, ChangeListeners, deepFreeze, keyOf, objectKey, stableStringify } from './object-index';
import type { Kind, KubeObject, ObjectChange, ObjectChanges, ObjectOf, ObjectStore, RejectedObject } from './types';

export class MemoryStore implements ObjectStore, ObjectChanges {
  // No serialised copy is kept: an update serialises the old and the new object to compare them,
  // which costs less than holding the text of every pod of a cluster.
  readonly #objects = new Map<string, KubeObject>();
  readonly #listeners = new ChangeListeners();
  readonly #objectListeners = new ChangeListeners<[ObjectChange]>();
  #rejected: RejectedObject[] = [];
  /** Sorted lists per kind, rebuilt at the next read of a kind that changed. */
  readonly #lists = new Map<Kind, ReadonlyArray<KubeObject>>();
  #version = 0;
  #lastChangeAt = 0;

  /** Incremented on every effective change. */
  get version(): number {
    return this.#version;
  }

  /** Date.now() of the last effective change; 0 before the first. */
  get lastChangeAt(): number {
    return this.#lastChangeAt;
  }

  /**
   * Adds or replaces an object. A copy is stored, unless `adopt`: the caller hands over an object
   * it built for the store and never touches again (it is frozen here), which saves a copy of
   * every object. Returns whether anything changed.
   */
  apply(obj: KubeObject, opts: { adopt?: boolean } = {}): boolean {
    const key = keyOf(obj);
    const old = this.#objects.get(key);
    if (old && stableStringify(old) === stableStringify(obj)) return false;
    const stored = deepFreeze(opts.adopt ? obj : structuredClone(obj));
    this.#objects.set(key, stored);
    // An update keeps the object's place: the kind's sorted list is copied with it replaced
    // instead of sorted again (thousands of pods, one label change).
    const list = old ? this.#lists.get(obj.kind) : undefined;
    const at = list ? list.indexOf(old as KubeObject) : -1;
    let replaced: KubeObject[] | undefined;
    if (list && at >= 0) {
      replaced = list.slice();
      replaced[at] = stored;
    }
    this.#changed({ kind: obj.kind, name: obj.metadata.name, namespace: obj.metadata.namespace }, replaced);
    return true;
  }

  /** Removes an object; namespaced kinds default to the "default" namespace. Returns whether it existed. */
  remove(kind: Kind, name: string, namespace?: string): boolean {
    const key = objectKey(kind, name, namespace);
    const old = this.#objects.get(key);
    if (!old) return false;
    this.#objects.delete(key);
    this.#changed({ kind, name, namespace: old.metadata.namespace });
    return true;
  }

  /** Replaces the refused-object report (a source that validates input sets it). Not a change. */
  setRejected(rejected: ReadonlyArray<RejectedObject>): void {
    this.#rejected = [...rejected];
  }

  list<K extends Kind>(kind: K): ReadonlyArray<ObjectOf<K>> {
    let list = this.#lists.get(kind);
    if (!list) {
      const own: KubeObject[] = [];
      for (const o of this.#objects.values()) if (o.kind === kind) own.push(o);
      list = Object.freeze(own.sort(byNamespaceAndName));
      this.#lists.set(kind, list);
    }
    return list as unknown as ReadonlyArray<ObjectOf<K>>;
  }

  get<K extends Kind>(kind: K, name: string, namespace?: string): ObjectOf<K> | undefined {
    return this.#objects.get(objectKey(kind, name, namespace)) as ObjectOf<K> | undefined;
  }

  rejected(): ReadonlyArray<RejectedObject> {
    return this.#rejected;
  }

  onChange(listener: () => void): () => void {
    return this.#listeners.add(listener);
  }

  onObjectChange(listener: (change: ObjectChange) => void): () => void {
    return this.#objectListeners.add(listener);
  }

  /** Nothing to release; present so either store can be closed the same way. */
  close(): void {}

  // The kind's list is rebuilt lazily, so a burst of apply() calls costs one sort at the next read.
  #changed(change: ObjectChange, list?: KubeObject[]): void {
    if (list) this.#lists.set(change.kind, Object.freeze(list));
    else this.#lists.delete(change.kind);
    this.#version++;
    this.#lastChangeAt = Date.now();
    // The object's own listeners first: a listener of the whole store may start a pass that
    // should find the object marked.
    const errors = this.#objectListeners.notify(change);
    errors.push(...this.#listeners.notify());
    // Listeners are the caller's code: their failure surfaces at the call that triggered them.
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'onChange listeners failed');
  }
}
