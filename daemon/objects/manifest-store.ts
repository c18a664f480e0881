// An ObjectStore over a manifests directory (embedded mode): *.yaml, *.yml and *.json files,
// read at load() and re-read on fs.watch events, coalesced, so the policy engine sees one change
// per edit. A file that cannot be read or parsed keeps its last good objects; other files are
// never affected by it.

import { watch, type FSWatcher } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { loadManifestFile, mergeManifestFiles, type FileState } from './manifest-files';
import { ChangeListeners, ObjectIndex } from './object-index';
import { manifestFormat } from './parse';
import type { Kind, ObjectOf, ObjectStore, RejectedObject } from './types';

/** What the store logs with: the daemon's pino logger fits. */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ManifestStoreOptions {
  /** Quiet time after the last event before re-reading (default 20 ms); editors save in several writes. */
  debounceMs?: number;
  /** Longest a steady stream of events may put a reload off (default 200 ms). */
  maxDelayMs?: number;
}

/** What one reload pass did, for onReload listeners (tests, metrics). */
export interface ReloadInfo {
  /** Whether the accepted object set changed (onChange listeners were called). */
  changed: boolean;
  /** Files read in this pass. */
  files: string[];
}

/** Manifest files are plain names with a manifest extension; dotfiles are editor artefacts. */
function isManifestName(name: string): boolean {
  return !name.startsWith('.') && manifestFormat(name) !== undefined;
}

export class ManifestStore implements ObjectStore {
  readonly #dir: string;
  readonly #debounceMs: number;
  readonly #maxDelayMs: number;
  readonly #log: StoreLogger | undefined;
  readonly #listeners = new ChangeListeners();
  readonly #reloadListeners = new Set<(info: ReloadInfo) => void>();
  readonly #files = new Map<string, FileState>();
  #index = ObjectIndex.empty;
  #fingerprint = '';
  #rejected: RejectedObject[] = [];
  // Directory-level problems, reported first in rejected(): the watch died, or listing failed.
  #watchError: RejectedObject | undefined;
  #listError: RejectedObject | undefined;
  #version = 0;
  #lastChangeAt = 0;
  #watcher: FSWatcher | undefined;
  #state: 'new' | 'loading' | 'open' | 'closed' = 'new';
  // Pending work: names seen in events, or everything when the platform gave no name.
  #dirty = new Set<string>();
  #rescan = false;
  #timer: NodeJS.Timeout | undefined;
  #firstEventAt: number | undefined;
  #running: Promise<void> | undefined;
  #again = false;

  /** Reads nothing until load(). `dir` is not searched recursively (as `kubectl apply -f DIR`). */
  constructor(dir: string, log?: StoreLogger, opts: ManifestStoreOptions = {}) {
    this.#dir = dir;
    this.#log = log;
    this.#debounceMs = opts.debounceMs ?? 20;
    this.#maxDelayMs = opts.maxDelayMs ?? 200;
  }

  /** Incremented on every effective change of the accepted objects. */
  get version(): number {
    return this.#version;
  }

  /** Date.now() of the last effective change; 0 before the first. */
  get lastChangeAt(): number {
    return this.#lastChangeAt;
  }

  /**
   * Reads every manifest and starts watching. The watch starts first so that a file written
   * while the directory is being read is read again, not missed. Rejects if the directory
   * cannot be watched or listed.
   */
  async load(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`ManifestStore.load() called when ${this.#state}`);
    this.#state = 'loading';
    try {
      this.#watcher = watch(this.#dir, { persistent: false }, (_event, name) => this.#onEvent(name));
      this.#watcher.on('error', (e) => this.#onWatchError(e));
      await this.#reload(null, true);
    } catch (e) {
      this.#watcher?.close();
      this.#state = 'closed';
      throw e;
    }
    if (this.#state === 'loading') this.#state = 'open';
    if (this.#dirty.size > 0 || this.#rescan) this.#schedule();
  }

  /** Stops watching; waits for a reload in progress. No listener is called afterwards. */
  async close(): Promise<void> {
    this.#state = 'closed';
    clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#watcher = undefined;
    await this.#running;
  }

  list<K extends Kind>(kind: K): ReadonlyArray<ObjectOf<K>> {
    return this.#index.list(kind);
  }

  get<K extends Kind>(kind: K, name: string, namespace?: string): ObjectOf<K> | undefined {
    return this.#index.get(kind, name, namespace);
  }

  rejected(): ReadonlyArray<RejectedObject> {
    return this.#rejected;
  }

  onChange(listener: () => void): () => void {
    return this.#listeners.add(listener);
  }

  /** Called after every reload pass, changed or not. */
  onReload(listener: (info: ReloadInfo) => void): () => void {
    const entry = (info: ReloadInfo) => listener(info);
    this.#reloadListeners.add(entry);
    return () => {
      this.#reloadListeners.delete(entry);
    };
  }

  #onEvent(name: string | Buffer | null): void {
    if (this.#state === 'closed') return;
    const n = name?.toString();
    // No name (some platforms), or the `..data` symlink swap of a Kubernetes ConfigMap or Secret
    // volume, which changes every file at once: read everything again.
    if (n === undefined || n.startsWith('..')) this.#rescan = true;
    else if (isManifestName(n)) this.#dirty.add(n);
    else return;
    // During load() the pass already under way is followed by one more (see load()).
    if (this.#state === 'open') this.#schedule();
  }

  #onWatchError(e: Error): void {
    this.#watchError = { source: this.#dir, message: `watching ${this.#dir} failed, changes are no longer seen: ${e.message}` };
    this.#log?.error({ dir: this.#dir, err: e }, 'manifest directory watch failed');
    this.#rejected = [this.#watchError, ...this.#rejected];
  }

  // Trailing debounce, bounded by maxDelayMs from the first event of the burst.
  #schedule(): void {
    this.#firstEventAt ??= Date.now();
    clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(this.#debounceMs, this.#firstEventAt + this.#maxDelayMs - Date.now()));
    this.#timer = setTimeout(() => this.#kick(), wait);
  }

  #kick(): void {
    this.#timer = undefined;
    if (this.#state === 'closed') return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    const dirty = this.#rescan ? null : this.#dirty;
    this.#dirty = new Set();
    this.#rescan = false;
    this.#firstEventAt = undefined;
    this.#running = this.#reload(dirty, false)
      .catch((e: unknown) => this.#log?.error({ dir: this.#dir, err: e }, 'manifest reload failed'))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.#kick();
        }
      });
  }

  /** Re-reads `dirty` (null: every file) plus files that appeared, drops files that went. */
  async #reload(dirty: Set<string> | null, initial: boolean): Promise<void> {
    let names: string[];
    try {
      const dirents = await readdir(this.#dir, { withFileTypes: true });
      names = dirents.filter((d) => !d.isDirectory() && isManifestName(d.name)).map((d) => d.name);
      this.#listError = undefined;
    } catch (e) {
      if (initial) throw e;
      // The directory went away or became unreadable: keep serving what we have.
      this.#listError = { source: this.#dir, message: `cannot list ${this.#dir}: ${(e as Error).message}` };
      this.#publish([]);
      return;
    }
    const present = new Set(names);
    for (const name of [...this.#files.keys()]) if (!present.has(name)) this.#files.delete(name);
    const toRead = names.filter((n) => dirty === null || dirty.has(n) || !this.#files.has(n));
    for (const name of toRead) {
      const state = await loadManifestFile(this.#dir, name, this.#files.get(name));
      if (state) this.#files.set(name, state);
      else this.#files.delete(name);
    }
    if (this.#state !== 'closed') this.#publish(toRead);
  }

  /** Merges files in name order (first wins), then notifies if the accepted set changed. */
  #publish(files: string[]): void {
    const merged = mergeManifestFiles(this.#files);
    const dirErrors = [this.#watchError, this.#listError].filter((r): r is RejectedObject => r !== undefined);
    const rejected = [...dirErrors, ...merged.rejected];
    this.#logNewRejections(rejected);
    this.#rejected = rejected;
    const index = new ObjectIndex(merged.objects);
    // Compared as stable text: a rewrite with the same objects is no change.
    const fingerprint = index.fingerprint();
    const changed = fingerprint !== this.#fingerprint;
    if (changed) {
      this.#index = index;
      this.#fingerprint = fingerprint;
      this.#version++;
      this.#lastChangeAt = Date.now();
      this.#log?.info({ dir: this.#dir, version: this.#version, objects: index.size, files }, 'manifests changed');
      for (const err of this.#listeners.notify()) this.#log?.error({ err }, 'onChange listener failed');
    }
    for (const l of [...this.#reloadListeners]) {
      try {
        l({ changed, files });
      } catch (err) {
        this.#log?.error({ err }, 'onReload listener failed');
      }
    }
  }

  #logNewRejections(next: RejectedObject[]): void {
    const seen = new Set(this.#rejected.map((r) => `${r.source}\n${r.message}`));
    for (const r of next) {
      if (seen.has(`${r.source}\n${r.message}`)) continue;
      this.#log?.warn({ source: r.source, kind: r.kind, name: r.name, namespace: r.namespace }, `rejected: ${r.message}`);
    }
  }
}
