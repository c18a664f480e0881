// Reading deploy/ for the tests: every file, every document, and the CRD schemas run through the
// API-server model (test/support/openapi-schema.ts) next to ovnode's own validators.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { SUPPORTED_KINDS, type RawObject } from '../../../daemon/objects/parse';
import { validateObject } from '../../../daemon/objects/validate';
import type { Kind, KubeObject } from '../../../daemon/objects/types';
import { admit, type Admission, type Schema } from '../../support/openapi-schema';

export const DEPLOY_DIR = join(__dirname, '..', '..', '..', 'deploy');

export type Doc = Record<string, any>;

export interface DeployDoc {
  file: string;
  doc: Doc;
}

/** The manifest files in apply order (kubectl apply -f deploy/ reads them sorted by name). */
export function deployFiles(): string[] {
  return readdirSync(DEPLOY_DIR).filter((f) => /\.ya?ml$/.test(f)).sort();
}

const cache = new Map<string, Doc[]>();

/**
 * Every document of a file, parsed as kubectl would (duplicate keys are an error). Parsed once
 * and shared between tests, so frozen: a test that wants to change a manifest copies it first.
 */
export function loadFile(file: string): Doc[] {
  let docs = cache.get(file);
  if (!docs) {
    docs = parseFile(file).map((d) => deepFreeze(d));
    cache.set(file, docs);
  }
  return [...docs];
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

function parseFile(file: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(join(DEPLOY_DIR, file), 'utf8'), { uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [];
  const out: Doc[] = [];
  for (const d of list) {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]?.message}`);
    const v = d.toJS();
    if (v !== null && v !== undefined) out.push(v as Doc);
  }
  return out;
}

export function loadAll(): DeployDoc[] {
  return deployFiles().flatMap((file) => loadFile(file).map((doc) => ({ file, doc })));
}

export function find(kind: string, name: string): Doc {
  const hit = loadAll().filter((d) => d.doc.kind === kind && d.doc.metadata?.name === name);
  if (hit.length !== 1) throw new Error(`expected one ${kind} ${name} in deploy/, found ${hit.length}`);
  return (hit[0] as DeployDoc).doc;
}

export function crd(name: string): Doc {
  return find('CustomResourceDefinition', name);
}

const versions = new Map<string, Doc>();

/** The one served version of a CRD. */
export function version(name: string): Doc {
  let v = versions.get(name);
  if (!v) {
    const list = crd(name).spec.versions as Doc[];
    if (list.length !== 1) throw new Error(`${name}: expected one version`);
    v = list[0] as Doc;
    versions.set(name, v);
  }
  return v;
}

export function schemaOf(name: string): Schema {
  return version(name).schema.openAPIV3Schema as Schema;
}

const CRD_OF: Partial<Record<Kind, string>> = {
  Subnet: 'subnets.kubeovn.io',
  SecurityGroup: 'security-groups.kubeovn.io',
  Vip: 'vips.kubeovn.io',
  ProviderNetwork: 'provider-networks.kubeovn.io',
  Vlan: 'vlans.kubeovn.io',
};

/** Kinds ovnode validates that come from deploy/'s CRDs (the others are built into Kubernetes). */
export const CRD_KINDS = Object.keys(CRD_OF) as Kind[];

/** A create through the API server model, with the CRD for the object's kind. */
export function apiserverCreate(obj: Doc, crdName?: string): Admission {
  const name = crdName ?? CRD_OF[obj.kind as Kind];
  if (!name) throw new Error(`no CRD in deploy/ for kind ${obj.kind}`);
  const v = version(name);
  return admit(obj, v.schema.openAPIV3Schema as Schema, { statusSubresource: v.subresources?.status !== undefined });
}

export type Verdict = { ok: true; object: KubeObject } | { ok: false; message: string };

/** ovnode's verdict on an object, as its Kubernetes source would see it. */
export function ovnodeVerdict(obj: Doc): Verdict {
  const kind = obj.kind as Kind;
  const raw: RawObject = { source: 'test', document: 1, apiVersion: SUPPORTED_KINDS[kind], kind, body: obj };
  const r = validateObject(raw);
  return r.ok ? { ok: true, object: r.object } : { ok: false, message: r.rejected.message };
}
