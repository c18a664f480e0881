// Validation shared by every kind: object names, metadata, labels and label selectors, with the
// rules and wording of apimachinery (pkg/util/validation, metav1 validation).

import { child, FieldErrors, index } from './field-errors';
import type { LabelSelector, LabelSelectorRequirement, ObjectMeta } from './types';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Problems with `v` as an RFC 1123 label (namespace and container names); empty if valid. */
export function dns1123LabelErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push('must be no more than 63 characters');
  if (!DNS1123_LABEL.test(v)) {
    errs.push(
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end " +
        "with an alphanumeric character (e.g. 'my-name',  or '123-abc')",
    );
  }
  return errs;
}

/** Problems with `v` as an RFC 1123 subdomain (most object names); empty if valid. */
export function dns1123SubdomainErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 253) errs.push('must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN.test(v)) {
    errs.push(
      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start " +
        "and end with an alphanumeric character (e.g. 'example.com')",
    );
  }
  return errs;
}

/** Label and annotation keys: `[prefix/]name`, prefix a DNS subdomain, name at most 63 characters. */
export function qualifiedNameErrors(v: string): string[] {
  const parts = v.split('/');
  if (parts.length > 2) return ["a qualified name must consist of an optional DNS subdomain prefix and '/' and a name"];
  const name = parts[parts.length - 1] as string;
  const errs: string[] = [];
  if (parts.length === 2) {
    const prefix = parts[0] as string;
    if (prefix === '') errs.push('prefix part must be non-empty');
    else errs.push(...dns1123SubdomainErrors(prefix).map((m) => `prefix part ${m}`));
  }
  if (name === '') errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push('name part must be no more than 63 characters');
  else if (!QUALIFIED_NAME.test(name)) {
    errs.push(
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an " +
        "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc')",
    );
  }
  return errs;
}

export function labelValueErrors(v: string): string[] {
  if (v.length > 63) return ['must be no more than 63 characters'];
  if (!LABEL_VALUE.test(v)) {
    return [
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start " +
        "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345')",
    ];
  }
  return [];
}

/** Port names (IANA_SVC_NAME): containers' ports[].name and NetworkPolicy named ports. */
export function portNameErrors(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 15) errs.push('must be no more than 15 characters');
  if (!/^[-a-z0-9]+$/.test(v)) errs.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)');
  if (v.includes('--')) errs.push('must not contain consecutive hyphens');
  if (!/[a-z]/.test(v)) errs.push('must contain at least one letter (a-z)');
  if (v.startsWith('-') || v.endsWith('-')) errs.push('must not begin or end with a hyphen');
  return errs;
}

export function checkPortNumber(errs: FieldErrors, v: number, path: string): void {
  if (v < 1 || v > 65535) errs.invalid(path, v, 'must be between 1 and 65535, inclusive');
}

/** A string map whose keys must be qualified names (and values, for labels, label values). */
function stringMap(errs: FieldErrors, v: unknown, path: string, checkValue: boolean): Record<string, string> {
  const obj = errs.object(v, path);
  const out: Record<string, string> = {};
  if (!obj) return out;
  for (const [k, raw] of Object.entries(obj)) {
    for (const m of qualifiedNameErrors(k)) errs.invalid(path, k, m);
    // Unquoted `true` or `1` are not strings: the API server refuses them, and so do we.
    const value = errs.string(raw ?? '', child(path, k));
    if (value === undefined) continue;
    if (checkValue) for (const m of labelValueErrors(value)) errs.invalid(path, value, m);
    out[k] = value;
  }
  return out;
}

export function readLabels(errs: FieldErrors, v: unknown, path: string): Record<string, string> {
  return stringMap(errs, v, path, true);
}

const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

function readRequirement(errs: FieldErrors, v: unknown, path: string): LabelSelectorRequirement | undefined {
  const obj = errs.object(v, path) ?? {};
  errs.knownFields(obj, path, ['key', 'operator', 'values']);
  const key = errs.string(obj.key, child(path, 'key'));
  if (key === undefined) errs.required(child(path, 'key'));
  else for (const m of qualifiedNameErrors(key)) errs.invalid(child(path, 'key'), key, m);
  const values: string[] = [];
  errs.array(obj.values, child(path, 'values')).forEach((x, i) => {
    const s = errs.string(x, index(child(path, 'values'), i));
    if (s === undefined) return;
    for (const m of labelValueErrors(s)) errs.invalid(index(child(path, 'values'), i), s, m);
    values.push(s);
  });
  const op = obj.operator;
  if (op === undefined || op === null) {
    errs.required(child(path, 'operator'));
    return undefined;
  }
  if (op === 'In' || op === 'NotIn') {
    if (values.length === 0) errs.required(child(path, 'values'), "must be specified when `operator` is 'In' or 'NotIn'");
  } else if (op === 'Exists' || op === 'DoesNotExist') {
    if (values.length > 0) {
      errs.forbidden(child(path, 'values'), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
    }
  } else {
    errs.invalid(child(path, 'operator'), op, `not a valid selector operator (use one of ${OPERATORS.join(', ')})`);
    return undefined;
  }
  return key === undefined ? undefined : { key, operator: op, values };
}

/** A metav1.LabelSelector; absent and null read as the empty selector (selects everything). */
export function readSelector(errs: FieldErrors, v: unknown, path: string): LabelSelector {
  const obj = errs.object(v, path) ?? {};
  errs.knownFields(obj, path, ['matchLabels', 'matchExpressions']);
  const matchLabels = readLabels(errs, obj.matchLabels, child(path, 'matchLabels'));
  const matchExpressions: LabelSelectorRequirement[] = [];
  errs.array(obj.matchExpressions, child(path, 'matchExpressions')).forEach((x, i) => {
    const r = readRequirement(errs, x, index(child(path, 'matchExpressions'), i));
    if (r) matchExpressions.push(r);
  });
  return { matchLabels, matchExpressions };
}

export type Scope = 'Namespaced' | 'Cluster';

export interface MetaRules {
  scope: Scope;
  /** Namespace names are RFC 1123 labels; most other names are subdomains. */
  nameRule: 'label' | 'subdomain';
}

/** metadata: name required and well-formed; namespace defaulted to "default" for namespaced kinds. */
export function readMeta(errs: FieldErrors, v: unknown, rules: MetaRules): ObjectMeta {
  const obj = errs.object(v, 'metadata') ?? {};
  const name = errs.string(obj.name, 'metadata.name') ?? '';
  if (name === '' && typeof (obj.name ?? '') === 'string') {
    const generated = obj.generateName !== undefined && obj.generateName !== null;
    errs.required(
      'metadata.name',
      generated ? 'generateName needs an API server; set metadata.name in a manifest' : 'name or generateName is required',
    );
  } else if (name !== '') {
    const check = rules.nameRule === 'label' ? dns1123LabelErrors : dns1123SubdomainErrors;
    for (const m of check(name)) errs.invalid('metadata.name', name, m);
  }
  let namespace = '';
  if (rules.scope === 'Namespaced') {
    namespace = errs.string(obj.namespace, 'metadata.namespace') || 'default';
    for (const m of dns1123LabelErrors(namespace)) errs.invalid('metadata.namespace', namespace, m);
  }
  // A namespace on a cluster-scoped object is ignored, as the API server does.
  const labels = readLabels(errs, obj.labels, 'metadata.labels');
  const annotations = stringMap(errs, obj.annotations, 'metadata.annotations', false);
  return { name, namespace, labels, annotations };
}
