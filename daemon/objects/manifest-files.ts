// One manifest file to accepted objects plus refusals, keeping what was accepted before when the
// new text cannot be used; and the merge of all files, where the first file by name wins.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deepFreeze, keyOf, objectKey } from './object-index';
import { parseManifest } from './parse';
import { describeObject, validateObject } from './validate';
import type { Kind, KubeObject, RejectedObject } from './types';

export interface FileEntry {
  object: KubeObject;
  /** 1-based document position, for duplicate messages. */
  document: number;
}

/** What one file contributes: accepted objects (frozen) and what it had refused. */
export interface FileState {
  entries: FileEntry[];
  rejected: RejectedObject[];
}

function keyForRejected(r: RejectedObject): string {
  // Only objects of a known kind reach validation, so r.kind is a Kind here.
  return r.kind && r.name ? objectKey(r.kind as Kind, r.name, r.namespace) : '';
}

/** The file as a whole is unusable (unreadable, half-written): its last good objects stay. */
function keepPrevious(file: string, why: string, previous: FileState | undefined): FileState {
  const n = previous?.entries.length ?? 0;
  const message = n > 0 ? `${why}; its ${n} previously accepted object(s) stay in effect` : why;
  return { entries: previous?.entries ?? [], rejected: [{ source: file, message }] };
}

/**
 * Reads `dir/name` again. Returns undefined when the file is gone. A refused object whose
 * previous version came from this file keeps that version, as the API server keeps an object
 * when an update of it is refused.
 */
export async function loadManifestFile(dir: string, name: string, previous: FileState | undefined): Promise<FileState | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, name), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR') return undefined;
    return keepPrevious(name, `cannot read: ${(e as Error).message}`, previous);
  }
  const parsed = parseManifest(text, name);
  if (parsed.unreadable) return keepPrevious(name, parsed.rejected.map((r) => r.message).join('; '), previous);
  const before = new Map((previous?.entries ?? []).map((e) => [keyOf(e.object), e]));
  const state: FileState = { entries: [], rejected: parsed.rejected };
  for (const raw of parsed.objects) {
    const r = validateObject(raw);
    if (r.ok) {
      state.entries.push({ object: deepFreeze(r.object), document: raw.document });
      continue;
    }
    const kept = before.get(keyForRejected(r.rejected));
    if (!kept) {
      state.rejected.push(r.rejected);
      continue;
    }
    state.rejected.push({ ...r.rejected, message: `${r.rejected.message} (the previously accepted version stays in effect)` });
    state.entries.push(kept);
  }
  return state;
}

function duplicate(entry: FileEntry, file: string, first: { entry: FileEntry; file: string }): RejectedObject {
  const { kind, metadata } = entry.object;
  const r: RejectedObject = {
    source: file,
    kind,
    name: metadata.name,
    message:
      `${describeObject(kind, metadata.name, metadata.namespace)}: duplicate: already defined in ${first.file} ` +
      `(document ${first.entry.document}), which wins; this copy in ${file} (document ${entry.document}) is ignored`,
  };
  if (metadata.namespace) r.namespace = metadata.namespace;
  return r;
}

/** All files' objects, the first definition by file name (then document) winning. */
export function mergeManifestFiles(files: ReadonlyMap<string, FileState>): { objects: KubeObject[]; rejected: RejectedObject[] } {
  const winners = new Map<string, { entry: FileEntry; file: string }>();
  const rejected: RejectedObject[] = [];
  for (const file of [...files.keys()].sort()) {
    const st = files.get(file) as FileState;
    rejected.push(...st.rejected);
    for (const entry of st.entries) {
      const key = keyOf(entry.object);
      const first = winners.get(key);
      if (first) rejected.push(duplicate(entry, file, first));
      else winners.set(key, { entry, file });
    }
  }
  return { objects: [...winners.values()].map((w) => w.entry.object), rejected };
}
