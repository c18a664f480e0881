// A small model of what a Kubernetes 1.20 API server does with a CustomResourceDefinition's
// OpenAPI v3 schema (apiextensions.k8s.io/v1): the structural-schema rules a CRD must meet to be
// created, and, for a custom object, pruning of unknown fields, dropping of nulls the schema does
// not allow, and validation. Only the keywords ovnode's CRDs use are supported; anything else is
// reported as unsupported rather than silently ignored, so a schema this checker passes uses
// nothing it does not understand. Patterns are checked to mean the same in Go's RE2 (the API
// server) and in JavaScript (this checker).
//
// Messages marked "(lint)" are schemas 1.20 accepts but that cannot work as written (a misspelt
// keyword it drops silently, a constraint on a field pruning removes); the others are refused by
// the API server itself. Cross-checked against Kubernetes 1.20.2's apiextensions code (CRD
// validation, pruning, null handling, validation) on ovnode's CRDs and thousands of objects; that
// code refuses "" in non-nullable string fields when built with Go >= 1.16 (kube-openapi#230, fixed
// in 1.21), which this model, like the released 1.20 binaries (Go 1.15), does not.

export type Schema = Record<string, unknown>;

const TYPES = ['object', 'array', 'string', 'integer', 'number', 'boolean'] as const;
type SchemaType = (typeof TYPES)[number];

const JUNCTORS = ['allOf', 'anyOf', 'oneOf', 'not'] as const;

/** Value validations: allowed everywhere, inside junctors too. */
const VALUE_KEYWORDS = [
  'enum', 'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength',
  'minItems', 'maxItems', 'minProperties', 'maxProperties', 'required', 'properties', 'items', ...JUNCTORS,
];
/** Keywords only a node of the structural skeleton may carry, never a junctor branch. */
const SKELETON_KEYWORDS = [
  'type', 'description', 'nullable', 'additionalProperties', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-int-or-string',
];
/** Keywords apiextensions v1 refuses, with why; and ones this checker does not model. */
const REFUSED: Record<string, string> = {
  $ref: 'apiextensions v1 does not support $ref',
  $schema: 'apiextensions v1 does not support $schema',
  id: 'apiextensions v1 does not support id',
  definitions: 'apiextensions v1 does not support definitions',
  patternProperties: 'apiextensions v1 does not support patternProperties',
  dependencies: 'apiextensions v1 does not support dependencies',
  additionalItems: 'apiextensions v1 does not support additionalItems',
  uniqueItems: 'apiextensions v1 refuses uniqueItems: true',
  'x-kubernetes-validations': '(lint) CEL validation rules do not exist in Kubernetes 1.20, which drops them silently',
  default: 'defaults are not modelled by this checker',
  format: 'format support in 1.20 is limited and not modelled by this checker: use a pattern',
};

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

// ---------------------------------------------------------------------------------------------
// Patterns

/**
 * Why `pattern` would not mean the same to RE2 (Go, the API server) and to JavaScript with the
 * `u` flag (this checker), or would not compile in one of them; empty when it is portable.
 */
export function patternPortabilityErrors(pattern: string): string[] {
  const errs: string[] = [];
  try {
    new RegExp(pattern, 'u');
  } catch (e) {
    errs.push(`does not compile in JavaScript: ${(e as Error).message}`);
  }
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const n = pattern[i + 1] ?? '';
      if ('sS'.includes(n)) errs.push(`\\${n} matches different whitespace in RE2 and JavaScript: spell the class out`);
      else if (/[1-9k]/.test(n)) errs.push(`\\${n}: RE2 has no back-references`);
      else if ('uc'.includes(n)) errs.push(`\\${n} is not RE2 syntax`);
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      // `[]...]` and `[^]...]`: RE2 reads the ] as a literal, JavaScript as an empty class.
      if (pattern[i + 1] === ']' || (pattern[i + 1] === '^' && pattern[i + 2] === ']')) errs.push('a class starting with ] is read differently');
      continue;
    }
    if (c === '(' && pattern[i + 1] === '?') {
      if (pattern[i + 2] !== ':') errs.push(`"(?${pattern[i + 2] ?? ''}": only (?:...) groups are common to RE2 and JavaScript`);
      continue;
    }
    if (c === '.') errs.push('an unescaped . matches different line terminators in RE2 and JavaScript: use [.] or a class');
    if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
      if (m && Math.max(Number(m[1]), Number(m[3] || 0)) > 1000) errs.push('RE2 refuses repetition counts above 1000');
    }
  }
  return errs;
}

const compiled = new Map<string, RegExp>();
function regex(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    re = new RegExp(pattern, 'u');
    compiled.set(pattern, re);
  }
  return re;
}

// ---------------------------------------------------------------------------------------------
// Structural rules (the CRD itself)

interface Place {
  /** The root of openAPIV3Schema. */
  root: boolean;
  /** Inside allOf/anyOf/oneOf/not: only value validations, on fields the skeleton defines. */
  junctor: boolean;
  /** For a junctor branch: the skeleton node it constrains (undefined: no such node). */
  skeleton: Schema | undefined;
  /** The skeleton type in effect (for enum values inside junctors). */
  type: SchemaType | undefined;
}

function checkNumber(errs: string[], s: Schema, key: string, path: string, intOnly: boolean): void {
  if (!(key in s)) return;
  const v = s[key];
  if (typeof v !== 'number' || (intOnly && (!Number.isInteger(v) || v < 0))) {
    errs.push(`${path}.${key}: must be ${intOnly ? 'a non-negative integer' : 'a number'}`);
  }
}

function typeOfValue(v: unknown): SchemaType | 'null' | 'other' {
  if (v === null) return 'null';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (Array.isArray(v)) return 'array';
  if (isObj(v)) return 'object';
  return 'other';
}

function matchesType(v: unknown, type: SchemaType): boolean {
  const t = typeOfValue(v);
  return t === type || (type === 'number' && t === 'integer');
}

function checkNode(s: unknown, path: string, place: Place, errs: string[]): void {
  if (!isObj(s)) {
    errs.push(`${path}: must be a schema object`);
    return;
  }
  for (const key of Object.keys(s)) {
    if (key in REFUSED) {
      if (key === 'uniqueItems' && s[key] === false) continue;
      errs.push(`${path}.${key}: ${REFUSED[key]}`);
    } else if (place.junctor && SKELETON_KEYWORDS.includes(key)) {
      errs.push(`${path}.${key}: must not be set inside allOf/anyOf/oneOf/not (structural schema)`);
    } else if (!VALUE_KEYWORDS.includes(key) && !SKELETON_KEYWORDS.includes(key)) {
      errs.push(`${path}.${key}: unsupported keyword (unknown to 1.20, which drops it silently, or not modelled by this checker)`);
    }
  }

  const type = s.type;
  if (type !== undefined && !(TYPES as readonly unknown[]).includes(type)) errs.push(`${path}.type: must be one of ${TYPES.join(', ')}`);
  const preserve = s['x-kubernetes-preserve-unknown-fields'];
  const intOrString = s['x-kubernetes-int-or-string'];
  if (preserve !== undefined && preserve !== true) errs.push(`${path}.x-kubernetes-preserve-unknown-fields: must be true or unset`);
  if (intOrString !== undefined && intOrString !== true) errs.push(`${path}.x-kubernetes-int-or-string: must be true or unset`);
  if (s.nullable !== undefined && typeof s.nullable !== 'boolean') errs.push(`${path}.nullable: must be true or false`);
  if (!place.junctor) {
    if (intOrString === true) {
      if (type !== undefined) errs.push(`${path}.type: must be empty with x-kubernetes-int-or-string`);
      for (const j of JUNCTORS) if (j in s) errs.push(`${path}.${j}: not modelled together with x-kubernetes-int-or-string`);
    } else if (type === undefined && preserve !== true) {
      errs.push(`${path}.type: must not be empty for specified object fields and array items (structural schema)`);
    }
    if (place.root && type !== 'object') errs.push(`${path}.type: the root must be of type object`);
  }
  const effType = (place.junctor ? place.type : (type as SchemaType | undefined)) ?? undefined;

  // properties / additionalProperties
  if ('properties' in s) {
    const props = s.properties;
    if (!isObj(props)) errs.push(`${path}.properties: must be an object`);
    else {
      if (!place.junctor && type !== 'object') errs.push(`${path}.properties: (lint) only for type object`);
      if ('additionalProperties' in s) errs.push(`${path}: properties and additionalProperties are mutually exclusive`);
      for (const [k, sub] of Object.entries(props)) {
        const p = `${path}.properties.${k}`;
        if (place.junctor) {
          const skel = place.skeleton && isObj(place.skeleton.properties) ? place.skeleton.properties[k] : undefined;
          if (!isObj(skel)) {
            errs.push(`${p}: (lint) a junctor may only constrain fields the schema specifies outside it: pruning removes the others`);
            continue;
          }
          checkNode(sub, p, { root: false, junctor: true, skeleton: skel, type: skel.type as SchemaType | undefined }, errs);
        } else if (place.root && k === 'metadata') {
          checkMetadata(sub, p, errs);
        } else {
          checkNode(sub, p, { root: false, junctor: false, skeleton: undefined, type: undefined }, errs);
        }
      }
    }
  }
  if ('additionalProperties' in s) {
    const ap = s.additionalProperties;
    if (!isObj(ap)) errs.push(`${path}.additionalProperties: must be a schema (booleans are not modelled by this checker)`);
    else {
      if (type !== 'object') errs.push(`${path}.additionalProperties: (lint) only for type object`);
      checkNode(ap, `${path}.additionalProperties`, { root: false, junctor: false, skeleton: undefined, type: undefined }, errs);
    }
  }
  if ('required' in s) {
    const req = s.required;
    const known = place.junctor ? place.skeleton?.properties : s.properties;
    if (!Array.isArray(req) || req.some((r) => typeof r !== 'string') || new Set(req).size !== req.length) {
      errs.push(`${path}.required: must be a list of distinct field names`);
    } else {
      for (const r of req as string[]) {
        // A required field the schema does not specify is pruned before validation: always missing.
        if (!isObj(known) || !(r in known)) errs.push(`${path}.required: (lint) ${r} is not a specified property`);
      }
    }
  }

  // items
  if ('items' in s) {
    const items = s.items;
    if (!isObj(items)) errs.push(`${path}.items: must be one schema (tuples are not structural)`);
    else if (place.junctor) {
      const skel = place.skeleton && isObj(place.skeleton.items) ? place.skeleton.items : undefined;
      if (!skel) errs.push(`${path}.items: (lint) a junctor may only constrain items the schema specifies outside it`);
      else checkNode(items, `${path}.items`, { root: false, junctor: true, skeleton: skel, type: skel.type as SchemaType | undefined }, errs);
    } else {
      if (type !== 'array') errs.push(`${path}.items: (lint) only for type array`);
      checkNode(items, `${path}.items`, { root: false, junctor: false, skeleton: undefined, type: undefined }, errs);
    }
  } else if (!place.junctor && type === 'array') {
    errs.push(`${path}.items: must be specified for type array (structural schema)`);
  }

  // value validations
  if ('enum' in s) {
    const e = s.enum;
    if (!Array.isArray(e) || e.length === 0) errs.push(`${path}.enum: must be a non-empty list`);
    else if (effType) {
      for (const v of e) if (!matchesType(v, effType)) errs.push(`${path}.enum: (lint) ${JSON.stringify(v)} is not of type ${effType}`);
    }
  }
  if ('pattern' in s) {
    if (typeof s.pattern !== 'string') errs.push(`${path}.pattern: must be a string`);
    else {
      for (const m of patternPortabilityErrors(s.pattern)) errs.push(`${path}.pattern: ${m}`);
      if (effType && effType !== 'string') errs.push(`${path}.pattern: (lint) only applies to strings`);
    }
  }
  for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']) {
    if (k.startsWith('exclusive')) {
      if (k in s && typeof s[k] !== 'boolean') errs.push(`${path}.${k}: must be true or false (OpenAPI v3.0)`);
    } else checkNumber(errs, s, k, path, false);
  }
  for (const k of ['minLength', 'maxLength', 'minItems', 'maxItems', 'minProperties', 'maxProperties']) checkNumber(errs, s, k, path, true);
  for (const [lo, hi] of [['minimum', 'maximum'], ['minLength', 'maxLength'], ['minItems', 'maxItems'], ['minProperties', 'maxProperties']] as const) {
    if (typeof s[lo] === 'number' && typeof s[hi] === 'number' && (s[lo] as number) > (s[hi] as number)) {
      errs.push(`${path}: (lint) ${lo} is greater than ${hi}`);
    }
  }

  // junctors: value validations over the same skeleton
  const branchPlace: Place = { root: false, junctor: true, skeleton: place.junctor ? place.skeleton : s, type: effType };
  for (const j of ['allOf', 'anyOf', 'oneOf'] as const) {
    if (!(j in s)) continue;
    const list = s[j];
    if (!Array.isArray(list) || list.length === 0) errs.push(`${path}.${j}: must be a non-empty list of schemas`);
    else list.forEach((b, i) => checkNode(b, `${path}.${j}[${i}]`, branchPlace, errs));
  }
  if ('not' in s) checkNode(s.not, `${path}.not`, branchPlace, errs);
}

/** The root's metadata may only restrict name and generateName (structural schema). */
function checkMetadata(s: unknown, path: string, errs: string[]): void {
  if (!isObj(s)) {
    errs.push(`${path}: must be a schema object`);
    return;
  }
  for (const k of Object.keys(s)) {
    if (k !== 'type' && k !== 'properties') errs.push(`${path}.${k}: metadata may only restrict name and generateName`);
  }
  if (s.type !== undefined && s.type !== 'object') errs.push(`${path}.type: must be object`);
  const props = isObj(s.properties) ? s.properties : {};
  for (const [k, sub] of Object.entries(props)) {
    if (k !== 'name' && k !== 'generateName') errs.push(`${path}.properties.${k}: metadata may only restrict name and generateName`);
    else {
      checkNode(sub, `${path}.properties.${k}`, { root: false, junctor: false, skeleton: undefined, type: undefined }, errs);
      if (isObj(sub) && sub.type !== 'string') errs.push(`${path}.properties.${k}.type: must be string`);
    }
  }
}

/**
 * Why `schema` (a version's openAPIV3Schema) would be refused by a 1.20 API server, or uses
 * something this checker does not model; empty when it is fine.
 */
export function structuralErrors(schema: unknown): string[] {
  const errs: string[] = [];
  checkNode(schema, 'openAPIV3Schema', { root: true, junctor: false, skeleton: undefined, type: undefined }, errs);
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Custom objects: pruning, nulls, validation

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/** Structural pruning: fields the schema does not specify are dropped (kept under preserve-unknown-fields). */
function pruneUnknown(v: unknown, s: Schema | undefined, root: boolean): void {
  if (!s) return;
  if (Array.isArray(v)) {
    const items = isObj(s.items) ? s.items : undefined;
    for (const x of v) pruneUnknown(x, items, false);
    return;
  }
  if (!isObj(v)) return;
  const props = isObj(s.properties) ? s.properties : {};
  const ap = isObj(s.additionalProperties) ? s.additionalProperties : undefined;
  const preserve = s['x-kubernetes-preserve-unknown-fields'] === true;
  for (const k of Object.keys(v)) {
    // apiVersion, kind and metadata are the API server's own business at the root.
    if (root && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) continue;
    const sub = isObj(props[k]) ? (props[k] as Schema) : ap;
    if (sub) pruneUnknown(v[k], sub, false);
    else if (!preserve) delete v[k];
  }
}

/** A null the schema does not allow (not nullable, no default) is dropped, as if absent (1.20). */
function pruneNulls(v: unknown, s: Schema | undefined): void {
  if (Array.isArray(v)) {
    const items = s && isObj(s.items) ? s.items : undefined;
    for (const x of v) pruneNulls(x, items);
    return;
  }
  if (!isObj(v)) return;
  for (const k of Object.keys(v)) {
    const props = s && isObj(s.properties) ? s.properties : {};
    const sub = isObj(props[k]) ? (props[k] as Schema) : s && isObj(s.additionalProperties) ? s.additionalProperties : undefined;
    if (v[k] === null && sub && sub.nullable !== true && sub.default === undefined) delete v[k];
    else pruneNulls(v[k], sub);
  }
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function validateNode(v: unknown, s: Schema, path: string, errs: string[]): void {
  const where = path === '' ? '<root>' : path;
  const type = s.type as SchemaType | undefined;
  if (v === null) {
    if (s.nullable === true) return;
    if (type) errs.push(`${where}: Invalid value: "null": must be of type ${type}`);
    return;
  }
  if (s['x-kubernetes-int-or-string'] === true && !(typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v)))) {
    errs.push(`${where}: Invalid value: must be an integer or a string`);
    return;
  }
  if (type && !matchesType(v, type)) {
    errs.push(`${where}: Invalid value: ${JSON.stringify(v)}: must be of type ${type}`);
    return;
  }
  if (Array.isArray(s.enum) && !s.enum.some((e) => deepEqual(e, v))) {
    errs.push(`${where}: Unsupported value: ${JSON.stringify(v)}: supported values: ${s.enum.map((e) => JSON.stringify(e)).join(', ')}`);
  }
  if (typeof v === 'string') {
    const len = [...v].length;
    if (typeof s.minLength === 'number' && len < s.minLength) errs.push(`${where}: should be at least ${s.minLength} chars long`);
    if (typeof s.maxLength === 'number' && len > s.maxLength) errs.push(`${where}: should be at most ${s.maxLength} chars long`);
    if (typeof s.pattern === 'string' && !regex(s.pattern).test(v)) {
      errs.push(`${where}: Invalid value: ${JSON.stringify(v)}: should match the field's pattern`);
    }
  }
  if (typeof v === 'number') {
    const exMin = s.exclusiveMinimum === true, exMax = s.exclusiveMaximum === true;
    if (typeof s.minimum === 'number' && (exMin ? v <= s.minimum : v < s.minimum)) {
      errs.push(`${where}: Invalid value: ${v}: should be greater than ${exMin ? '' : 'or equal to '}${s.minimum}`);
    }
    if (typeof s.maximum === 'number' && (exMax ? v >= s.maximum : v > s.maximum)) {
      errs.push(`${where}: Invalid value: ${v}: should be less than ${exMax ? '' : 'or equal to '}${s.maximum}`);
    }
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === 'number' && v.length < s.minItems) errs.push(`${where}: should have at least ${s.minItems} items`);
    if (typeof s.maxItems === 'number' && v.length > s.maxItems) errs.push(`${where}: should have at most ${s.maxItems} items`);
    if (isObj(s.items)) v.forEach((x, i) => validateNode(x, s.items as Schema, `${path}[${i}]`, errs));
  }
  if (isObj(v)) {
    const n = Object.keys(v).length;
    if (typeof s.minProperties === 'number' && n < s.minProperties) errs.push(`${where}: should have at least ${s.minProperties} properties`);
    if (typeof s.maxProperties === 'number' && n > s.maxProperties) errs.push(`${where}: should have at most ${s.maxProperties} properties`);
    if (Array.isArray(s.required)) {
      for (const r of s.required as string[]) if (v[r] === undefined) errs.push(`${join(path, r)}: Required value`);
    }
    const props = isObj(s.properties) ? s.properties : {};
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) continue;
      if (isObj(props[k])) validateNode(x, props[k] as Schema, join(path, k), errs);
      else if (isObj(s.additionalProperties)) validateNode(x, s.additionalProperties, join(path, k), errs);
    }
  }
  if (Array.isArray(s.allOf)) for (const b of s.allOf) validateNode(v, b as Schema, path, errs);
  if (Array.isArray(s.anyOf)) {
    const results = s.anyOf.map((b) => errorsOf(v, b as Schema, path));
    if (!results.some((r) => r.length === 0)) {
      errs.push(`${where}: must validate at least one schema (anyOf): ${results.map((r) => `[${r.join('; ')}]`).join(' or ')}`);
    }
  }
  if (Array.isArray(s.oneOf)) {
    const valid = s.oneOf.filter((b) => errorsOf(v, b as Schema, path).length === 0).length;
    if (valid !== 1) errs.push(`${where}: must validate one and only one schema (oneOf), ${valid} matched`);
  }
  if (isObj(s.not) && errorsOf(v, s.not, path).length === 0) errs.push(`${where}: must not validate the schema (not)`);
}

function errorsOf(v: unknown, s: Schema, path: string): string[] {
  const errs: string[] = [];
  validateNode(v, s, path, errs);
  return errs;
}

/** Validation errors of `value` against `schema`, as is (no pruning). */
export function validate(value: unknown, schema: Schema): string[] {
  return errorsOf(value, schema, '');
}

export interface Admission {
  ok: boolean;
  errors: string[];
  /** What the API server would store (and watchers receive): pruned, nulls dropped. */
  stored: unknown;
}

/**
 * A create of `obj` against a version's schema: unknown fields pruned, disallowed nulls dropped,
 * status discarded when the version has a status subresource, then validated. ObjectMeta
 * (names, labels) is validated by the API server separately and is not modelled here.
 */
export function admit(obj: unknown, schema: Schema, opts: { statusSubresource?: boolean } = {}): Admission {
  const stored = clone(obj);
  pruneUnknown(stored, schema, true);
  pruneNulls(stored, schema);
  if (opts.statusSubresource && isObj(stored)) delete stored.status;
  const errors = validate(stored, schema);
  return { ok: errors.length === 0, errors, stored };
}
