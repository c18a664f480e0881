// An ObjectStore held in memory and fed by calls: unit tests now, the Kubernetes watch later.
// Same change semantics as the manifests directory: a listener call per effective change only.

import { ChangeListeners, deepFreeze, keyOf, ObjectIndex, objectKey, stableStringify } from './object-index';
import type { Kind, KubeObject, ObjectOf, ObjectStore, RejectedObject } from './types';

export class MemoryStore implements ObjectStore {
  readonly #objects = new Map<string, { object: KubeObject; text: string }>();
  readonly #listeners = new ChangeListeners();
  #rejected: RejectedObject[] = [];
  #index: ObjectIndex | undefined = ObjectIndex.empty;
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

  /** Adds or replaces an object (a copy is stored). Returns whether anything changed. */
  apply(obj: KubeObject): boolean {
    const key = keyOf(obj);
    const text = stableStringify(obj);
    if (this.#objects.get(key)?.text === text) return false;
    this.#objects.set(key, { object: deepFreeze(structuredClone(obj)), text });
    this.#changed();
    return true;
  }

  /** Removes an object; namespaced kinds default to the "default" namespace. Returns whether it existed. */
  remove(kind: Kind, name: string, namespace?: string): boolean {
    if (!this.#objects.delete(objectKey(kind, name, namespace))) return false;
    this.#changed();
    return true;
  }

  /** Replaces the refused-object report (a source that validates input sets it). Not a change. */
  setRejected(rejected: ReadonlyArray<RejectedObject>): void {
    this.#rejected = [...rejected];
  }

  list<K extends Kind>(kind: K): ReadonlyArray<ObjectOf<K>> {
    return this.#view().list(kind);
  }

  get<K extends Kind>(kind: K, name: string, namespace?: string): ObjectOf<K> | undefined {
    return this.#view().get(kind, name, namespace);
  }

  rejected(): ReadonlyArray<RejectedObject> {
    return this.#rejected;
  }

  onChange(listener: () => void): () => void {
    return this.#listeners.add(listener);
  }

  /** Nothing to release; present so either store can be closed the same way. */
  close(): void {}

  // Rebuilt lazily, so a burst of apply() calls costs one sort at the next read.
  #view(): ObjectIndex {
    this.#index ??= new ObjectIndex([...this.#objects.values()].map((e) => e.object));
    return this.#index;
  }

  #changed(): void {
    this.#index = undefined;
    this.#version++;
    this.#lastChangeAt = Date.now();
    const errors = this.#listeners.notify();
    // Listeners are the caller's code: their failure surfaces at the call that triggered them.
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'onChange listeners failed');
  }
}
