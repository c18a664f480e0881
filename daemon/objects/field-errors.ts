// Field errors as the Kubernetes API server words them (apimachinery field.Error), and the
// readers validators use to walk untyped YAML while collecting them.

/** One problem at one field path, e.g. `spec.policyTypes[0]`. */
export type FieldError =
  | { type: 'Required'; path: string; detail?: string }
  | { type: 'Invalid'; path: string; value: unknown; detail: string }
  | { type: 'Unsupported'; path: string; value: unknown; supported: readonly string[] }
  | { type: 'Forbidden'; path: string; detail: string }
  | { type: 'Duplicate'; path: string; value: unknown }
  | { type: 'Unknown'; path: string };

/** Renders a value the way field.Error does: strings quoted, numbers and booleans bare. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** `spec.policyTypes[0]: Unsupported value: "egress": supported values: "Ingress", "Egress"`. */
export function formatFieldError(e: FieldError): string {
  switch (e.type) {
    case 'Required':
      return `${e.path}: Required value${e.detail ? `: ${e.detail}` : ''}`;
    case 'Invalid':
      return `${e.path}: Invalid value: ${describeValue(e.value)}: ${e.detail}`;
    case 'Unsupported':
      return `${e.path}: Unsupported value: ${describeValue(e.value)}: supported values: ${e.supported
        .map((s) => JSON.stringify(s))
        .join(', ')}`;
    case 'Forbidden':
      return `${e.path}: Forbidden: ${e.detail}`;
    case 'Duplicate':
      return `${e.path}: Duplicate value: ${describeValue(e.value)}`;
    case 'Unknown':
      // The strict field validation wording of kubectl apply (server-side, Strict).
      return `unknown field ${JSON.stringify(e.path)}`;
  }
}

export function child(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}

export function index(path: string, i: number): string {
  return `${path}[${i}]`;
}

export type Json = Record<string, unknown>;

export function isPlainObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Collects errors while reading an untyped document. Readers return undefined (or an empty
 * value) on a type mismatch after recording it, so validation continues and reports every
 * problem at once, as the API server does.
 */
export class FieldErrors {
  readonly list: FieldError[] = [];

  get empty(): boolean {
    return this.list.length === 0;
  }

  required(path: string, detail?: string): void {
    this.list.push(detail === undefined ? { type: 'Required', path } : { type: 'Required', path, detail });
  }
  invalid(path: string, value: unknown, detail: string): void {
    this.list.push({ type: 'Invalid', path, value, detail });
  }
  unsupported(path: string, value: unknown, supported: readonly string[]): void {
    this.list.push({ type: 'Unsupported', path, value, supported });
  }
  forbidden(path: string, detail: string): void {
    this.list.push({ type: 'Forbidden', path, detail });
  }
  duplicate(path: string, value: unknown): void {
    this.list.push({ type: 'Duplicate', path, value });
  }

  /** Absent and null read as undefined (Kubernetes decodes null as "not set"). */
  object(v: unknown, path: string): Json | undefined {
    if (v === undefined || v === null) return undefined;
    if (isPlainObject(v)) return v;
    this.invalid(path, v, 'must be an object');
    return undefined;
  }

  /** Absent and null read as an empty list. */
  array(v: unknown, path: string): unknown[] {
    if (v === undefined || v === null) return [];
    if (Array.isArray(v)) return v;
    this.invalid(path, v, 'must be a list');
    return [];
  }

  string(v: unknown, path: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    this.invalid(path, v, 'must be a string (quote it in YAML)');
    return undefined;
  }

  integer(v: unknown, path: string): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
    this.invalid(path, v, 'must be an integer');
    return undefined;
  }

  boolean(v: unknown, path: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    this.invalid(path, v, 'must be true or false');
    return undefined;
  }

  /** A string that must be one of `supported` (the CRD enum / API constant set). */
  oneOf<T extends string>(v: unknown, path: string, supported: readonly T[]): T | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' && (supported as readonly string[]).includes(v)) return v as T;
    this.unsupported(path, v, supported);
    return undefined;
  }

  /** Strict field validation, for schemas small and stable enough to know completely. */
  knownFields(obj: Json, path: string, known: readonly string[]): void {
    for (const k of Object.keys(obj)) if (!known.includes(k)) this.list.push({ type: 'Unknown', path: child(path, k) });
  }
}
