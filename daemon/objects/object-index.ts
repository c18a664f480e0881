// What both ObjectStore implementations share: object keys, a stable serialisation to tell a
// real change from a rewrite, an immutable by-kind index, and the change listener list.

import { isNamespaced } from './validate';
import type { Kind, KubeObject, ObjectOf } from './types';

/** `Kind/namespace/name`; namespace is empty for cluster-scoped kinds. */
export function objectKey(kind: Kind, name: string, namespace = ''): string {
  return `${kind}/${isNamespaced(kind) ? namespace || 'default' : ''}/${name}`;
}

export function keyOf(obj: KubeObject): string {
  return objectKey(obj.kind, obj.metadata.name, obj.metadata.namespace);
}

/** JSON with object keys sorted, so equal content gives equal text whatever the key order. */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : stableStringify(x))).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const entries = Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify((v as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Stored objects are shared with every reader: freeze them so none can edit another's view. */
export function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

export function byNamespaceAndName(a: KubeObject, b: KubeObject): number {
  const ns = a.metadata.namespace.localeCompare(b.metadata.namespace);
  return ns !== 0 ? ns : a.metadata.name.localeCompare(b.metadata.name);
}

/** An immutable set of objects, listed per kind in namespace/name order. */
export class ObjectIndex {
  static readonly empty = new ObjectIndex([]);

  readonly #byKey = new Map<string, KubeObject>();
  readonly #byKind = new Map<Kind, KubeObject[]>();

  /** Objects must have distinct keys; the caller resolves duplicates first. */
  constructor(objects: Iterable<KubeObject>) {
    for (const o of objects) {
      this.#byKey.set(keyOf(o), o);
      const list = this.#byKind.get(o.kind) ?? [];
      list.push(o);
      this.#byKind.set(o.kind, list);
    }
    for (const list of this.#byKind.values()) Object.freeze(list.sort(byNamespaceAndName));
  }

  get size(): number {
    return this.#byKey.size;
  }

  list<K extends Kind>(kind: K): ReadonlyArray<ObjectOf<K>> {
    return (this.#byKind.get(kind) ?? []) as unknown as ReadonlyArray<ObjectOf<K>>;
  }

  get<K extends Kind>(kind: K, name: string, namespace?: string): ObjectOf<K> | undefined {
    return this.#byKey.get(objectKey(kind, name, namespace)) as ObjectOf<K> | undefined;
  }

  /** The whole set as stable text: equal text means no effective change. */
  fingerprint(): string {
    return [...this.#byKey.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => stableStringify(o))
      .join('\n');
  }
}

/** Listener bookkeeping (onChange, onObjectChange): listeners run in registration order; one throwing does not stop the rest. */
export class ChangeListeners<Args extends unknown[] = []> {
  readonly #listeners = new Set<(...args: Args) => void>();

  add(listener: (...args: Args) => void): () => void {
    // Wrapped so the same function registered twice is called twice and removed once.
    const entry = (...args: Args): void => listener(...args);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /** Calls every listener and returns what they threw. */
  notify(...args: Args): unknown[] {
    const errors: unknown[] = [];
    for (const l of [...this.#listeners]) {
      try {
        l(...args);
      } catch (e) {
        errors.push(e);
      }
    }
    return errors;
  }
}
