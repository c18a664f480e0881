// What a reflector holds of a collection: per key, the projected object with the uid and
// resourceVersion that say whether a later sight of it is news. Every change is applied here and
// turned into the event that describes it, whether it came from a watch event or from comparing
// a complete list with what was held.

/** An object as the API server sent it (parsed JSON), before projection. */
export type KubeRawObject = Record<string, unknown> & {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; [k: string]: unknown };
};

export type ReflectorEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ReflectorEvent<S> {
  type: ReflectorEventType;
  /** `namespace/name`, or `name` for cluster-scoped objects (client-go's key). */
  key: string;
  /** The object now; for DELETED, its last state. */
  object: S;
  /** What was held before (MODIFIED, DELETED). */
  old?: S;
  /** True when a list produced the event (the first list, or a re-list's difference), false for a watch event. */
  fromList: boolean;
}

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

interface Entry<S> {
  uid: string;
  rv: string;
  obj: S;
}

/** A list being read page by page: projected as each page arrives, applied once complete. */
export interface ListInProgress {
  add(raw: unknown): void;
}

export class HeldObjects<S> {
  readonly #items = new Map<string, Entry<S>>();
  readonly #project: (raw: KubeRawObject, key: string) => S | undefined;
  readonly #emit: (ev: ReflectorEvent<S>) => void;

  /** `project` returns undefined for an object not to keep (or one it failed on); `emit` gets every change in order. */
  constructor(project: (raw: KubeRawObject, key: string) => S | undefined, emit: (ev: ReflectorEvent<S>) => void) {
    this.#project = project;
    this.#emit = emit;
  }

  get size(): number {
    return this.#items.size;
  }

  get(key: string): S | undefined {
    return this.#items.get(key)?.obj;
  }

  *values(): IterableIterator<S> {
    for (const e of this.#items.values()) yield e.obj;
  }

  startList(): ListInProgress & { readonly entries: Map<string, Entry<S>> } {
    const entries = new Map<string, Entry<S>>();
    return {
      entries,
      add: (raw) => {
        const meta = metaOf(raw);
        if (meta?.key === undefined) return;
        const obj = this.#project(raw as KubeRawObject, meta.key);
        if (obj !== undefined) entries.set(meta.key, { uid: meta.uid, rv: meta.rv, obj });
      },
    };
  }

  /** Applies a complete list: events for what differs from what was held, nothing for the rest. */
  replace(list: { readonly entries: Map<string, Entry<S>> }): void {
    for (const [key, entry] of list.entries) {
      const held = this.#items.get(key);
      if (held && held.uid === entry.uid && held.rv === entry.rv) continue;
      this.#items.set(key, entry);
      this.#changed(key, held, entry, true);
    }
    for (const [key, held] of this.#items) {
      if (list.entries.has(key)) continue;
      this.#items.delete(key);
      this.#emit({ type: 'DELETED', key, object: held.obj, old: held.obj, fromList: true });
    }
  }

  /** A watch's ADDED or MODIFIED. */
  upsert(raw: unknown): void {
    const meta = metaOf(raw);
    const key = meta?.key;
    if (!meta || key === undefined) return;
    const held = this.#items.get(key);
    if (held && held.uid === meta.uid && held.rv === meta.rv) return; // already applied
    const obj = this.#project(raw as KubeRawObject, key);
    if (obj === undefined) {
      if (!held) return;
      this.#items.delete(key);
      this.#emit({ type: 'DELETED', key, object: held.obj, old: held.obj, fromList: false });
      return;
    }
    const entry = { uid: meta.uid, rv: meta.rv, obj };
    this.#items.set(key, entry);
    this.#changed(key, held, entry, false);
  }

  /** A watch's DELETED: the object's last state, projected, or what was held if the projection declines it. */
  delete(raw: unknown): void {
    const key = metaOf(raw)?.key;
    if (key === undefined) return;
    const held = this.#items.get(key);
    if (!held) return;
    this.#items.delete(key);
    const last = this.#project(raw as KubeRawObject, key) ?? held.obj;
    this.#emit({ type: 'DELETED', key, object: last, old: held.obj, fromList: false });
  }

  #changed(key: string, held: Entry<S> | undefined, next: Entry<S>, fromList: boolean): void {
    const obj = next.obj;
    if (!held) {
      this.#emit({ type: 'ADDED', key, object: obj, fromList });
    } else if (held.uid !== next.uid) {
      // Deleted and re-created under the same name (while we were away, or between two events):
      // two objects, two events.
      this.#emit({ type: 'DELETED', key, object: held.obj, old: held.obj, fromList });
      this.#emit({ type: 'ADDED', key, object: obj, fromList });
    } else {
      this.#emit({ type: 'MODIFIED', key, object: obj, old: held.obj, fromList });
    }
  }
}

/** Key, uid and resourceVersion of a raw object; a BOOKMARK's object has only a resourceVersion (no key). */
export function metaOf(obj: unknown): { key: string | undefined; uid: string; rv: string } | undefined {
  if (!isRecord(obj)) return undefined;
  const m = obj.metadata;
  if (!isRecord(m)) return undefined;
  const rv = typeof m.resourceVersion === 'string' ? m.resourceVersion : '';
  if (typeof m.name !== 'string' || m.name === '') return { key: undefined, uid: '', rv };
  const ns = typeof m.namespace === 'string' ? m.namespace : undefined;
  return { key: objectKey(ns, m.name), uid: typeof m.uid === 'string' ? m.uid : '', rv };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
