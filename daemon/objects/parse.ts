// Manifest text to raw objects: multi-document YAML or JSON, `kind: List` flattened, each
// object checked only for apiVersion/kind/metadata and a kind ovnode knows. Typed checks are
// validate.ts's. Problems become RejectedObject entries, never exceptions.

import { parseAllDocuments } from 'yaml';
import { isPlainObject, type Json } from './field-errors';
import type { Kind, RejectedObject } from './types';

/** apiVersion of each kind ovnode reads; anything else is refused by name. */
export const SUPPORTED_KINDS: Readonly<Record<Kind, string>> = {
  Namespace: 'v1',
  Pod: 'v1',
  Subnet: 'kubeovn.io/v1',
  SecurityGroup: 'kubeovn.io/v1',
  Vip: 'kubeovn.io/v1',
  ProviderNetwork: 'kubeovn.io/v1',
  Vlan: 'kubeovn.io/v1',
  NetworkPolicy: 'networking.k8s.io/v1',
};

const SUPPORTED_TEXT =
  'ovnode reads v1 Namespace, Pod and List, kubeovn.io/v1 Subnet, SecurityGroup, Vip, ProviderNetwork and Vlan, networking.k8s.io/v1 NetworkPolicy';

/** One document (or List item) of a known kind, not yet validated. */
export interface RawObject {
  /** Where it was read from (the file name, for a manifests directory). */
  source: string;
  /** 1-based position of the document in the source. */
  document: number;
  /** Position in the List's items, when the document was a List. */
  item?: number;
  apiVersion: string;
  kind: Kind;
  /** The whole document as decoded. */
  body: Json;
}

export interface ParseResult {
  objects: RawObject[];
  rejected: RejectedObject[];
  /**
   * The source as a whole could not be read (a YAML or JSON syntax error): `rejected` holds
   * the reason and `objects` is empty. A half-written file is the usual cause.
   */
  unreadable: boolean;
}

export type ManifestFormat = 'yaml' | 'json';

/** The format a file name implies, or undefined when it is not a manifest (kubectl's set). */
export function manifestFormat(fileName: string): ManifestFormat | undefined {
  if (/\.ya?ml$/i.test(fileName)) return 'yaml';
  if (/\.json$/i.test(fileName)) return 'json';
  return undefined;
}

function describeType(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function position(doc: number, item?: number): string {
  return item === undefined ? `document ${doc}` : `document ${doc}, items[${item}]`;
}

function identity(body: Json): Pick<RejectedObject, 'kind' | 'name' | 'namespace'> {
  const out: Pick<RejectedObject, 'kind' | 'name' | 'namespace'> = {};
  if (typeof body.kind === 'string') out.kind = body.kind;
  const meta = isPlainObject(body.metadata) ? body.metadata : {};
  if (typeof meta.name === 'string') out.name = meta.name;
  if (typeof meta.namespace === 'string') out.namespace = meta.namespace;
  return out;
}

/** Classifies one decoded document; Lists recurse one level into their items. */
function classify(value: unknown, source: string, doc: number, out: ParseResult, item?: number): void {
  const where = position(doc, item);
  if (!isPlainObject(value)) {
    out.rejected.push({ source, message: `${where}: expected an object with apiVersion, kind and metadata, found ${describeType(value)}` });
    return;
  }
  const reject = (message: string): void => {
    out.rejected.push({ source, ...identity(value), message: `${where}: ${message}` });
  };
  const v = typeof value.apiVersion === 'string' ? value.apiVersion : '';
  const k = typeof value.kind === 'string' ? value.kind : '';
  if (v === '' || k === '') {
    // kubectl's wording for the same mistake.
    return reject([v === '' ? 'apiVersion not set' : '', k === '' ? 'kind not set' : ''].filter(Boolean).join(', '));
  }
  if (k === 'List' && item === undefined) {
    if (v !== 'v1') return reject(`no matches for kind "List" in version "${v}": use apiVersion v1`);
    if (!Array.isArray(value.items)) return reject('a List needs an items list');
    value.items.forEach((x, i) => classify(x, source, doc, out, i));
    return;
  }
  if (!Object.hasOwn(SUPPORTED_KINDS, k) || k === 'List') {
    return reject(`unsupported kind "${k}" (${v}): ${SUPPORTED_TEXT}`);
  }
  const want = SUPPORTED_KINDS[k as Kind];
  if (v !== want) return reject(`no matches for kind "${k}" in version "${v}": use apiVersion ${want}`);
  const raw: RawObject = { source, document: doc, apiVersion: v, kind: k as Kind, body: value };
  if (item !== undefined) raw.item = item;
  out.objects.push(raw);
}

function parseYaml(text: string, source: string, out: ParseResult): unknown[] | undefined {
  // YAML 1.2 core schema; duplicate keys are an error, as in the API server's strict decoding.
  const docs = parseAllDocuments(text, { uniqueKeys: true, merge: true, prettyErrors: true });
  if (!Array.isArray(docs)) return []; // an empty stream
  const failed = docs.find((d) => d.errors.length > 0);
  if (failed) {
    const e = failed.errors[0];
    out.rejected.push({ source, message: `invalid YAML: ${e?.message.trim() ?? 'syntax error'}` });
    return undefined;
  }
  try {
    return docs.map((d) => (d.contents === null ? null : d.toJS({ maxAliasCount: 100 })));
  } catch (e) {
    out.rejected.push({ source, message: `invalid YAML: ${(e as Error).message}` });
    return undefined;
  }
}

function parseJson(text: string, source: string, out: ParseResult): unknown[] | undefined {
  if (text.trim() === '') return [];
  try {
    return [JSON.parse(text)];
  } catch (e) {
    out.rejected.push({ source, message: `invalid JSON: ${(e as Error).message}` });
    return undefined;
  }
}

/**
 * Splits a manifest into raw objects. Empty documents (`---` alone, comments only) are skipped;
 * each refused document is reported with its position and, when readable, its kind and name.
 */
export function parseManifest(text: string, source: string, format: ManifestFormat = manifestFormat(source) ?? 'yaml'): ParseResult {
  const out: ParseResult = { objects: [], rejected: [], unreadable: false };
  const docs = format === 'json' ? parseJson(text, source, out) : parseYaml(text, source, out);
  if (docs === undefined) {
    out.unreadable = true;
    return out;
  }
  docs.forEach((d, i) => {
    if (d !== null && d !== undefined) classify(d, source, i + 1, out);
  });
  return out;
}
