// Shared by the validation tables: build a raw object of a kind and validate it.
import { expect } from 'vitest';
import type { RawObject } from '../../../../daemon/objects/parse';
import { SUPPORTED_KINDS } from '../../../../daemon/objects/parse';
import { validateObject, type ValidationResult } from '../../../../daemon/objects/validate';
import type { Kind, KubeObject } from '../../../../daemon/objects/types';

export type Body = Record<string, unknown>;

/** A table row: `error` is the exact message (valid when absent); `check` inspects the result. */
export interface Row {
  desc: string;
  body: Body;
  error?: string;
  check?: (obj: KubeObject) => void;
}

export function rawOf(kind: Kind, body: Body, source = 'test.yaml'): RawObject {
  return { source, document: 1, apiVersion: SUPPORTED_KINDS[kind], kind, body: { apiVersion: SUPPORTED_KINDS[kind], kind, ...body } };
}

export function validate(kind: Kind, body: Body): ValidationResult {
  return validateObject(rawOf(kind, body));
}

export function runRow(kind: Kind, row: Row): void {
  const r = validate(kind, row.body);
  if (row.error === undefined) {
    expect(r.ok ? '' : r.rejected.message).toBe('');
    if (r.ok && row.check) row.check(r.object);
  } else {
    expect(r.ok ? '(accepted)' : r.rejected.message).toBe(row.error);
  }
}
