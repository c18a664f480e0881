// The API-server model the deploy tests rely on (test/support/openapi-schema.ts): it must refuse
// the schemas a 1.20 API server refuses, and prune and validate objects as the server does, or
// the CRD tests prove nothing.
import { describe, expect, it } from 'vitest';
import { admit, patternPortabilityErrors, structuralErrors, validate, type Schema } from '../../support/openapi-schema';

const root = (spec: Schema): Schema => ({ type: 'object', properties: { spec } });

describe('structural schema rules (refused by 1.20, or lints of schemas it accepts but that cannot work)', () => {
  it('accepts a typed schema with junctors over specified fields', () => {
    expect(
      structuralErrors(
        root({
          type: 'object',
          required: ['a'],
          properties: { a: { type: 'string', pattern: '^[a-z]+$' }, b: { type: 'integer', minimum: 1, maximum: 3 } },
          anyOf: [{ properties: { a: { enum: ['x'] } } }, { required: ['b'], not: { properties: { b: { enum: [2] } } } }],
        }),
      ),
    ).toEqual([]);
  });

  const bad: Array<[string, Schema, RegExp]> = [
    ['a field without a type', root({ type: 'object', properties: { a: {} } }), /type: must not be empty/],
    ['an array without items', root({ type: 'array' }), /items: must be specified/],
    ['properties with additionalProperties', root({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: { type: 'string' } }), /mutually exclusive/],
    ['additionalProperties: false', root({ type: 'object', additionalProperties: false }), /must be a schema/],
    ['a type inside anyOf', root({ type: 'string', anyOf: [{ type: 'string' }] }), /must not be set inside/],
    ['a nullable inside oneOf', root({ type: 'string', oneOf: [{ nullable: true }] }), /must not be set inside/],
    ['a junctor on an unspecified field', root({ type: 'object', properties: { a: { type: 'string' } }, anyOf: [{ properties: { b: { enum: ['x'] } } }] }), /only constrain fields/],
    ['required naming an unspecified field', root({ type: 'object', properties: { a: { type: 'string' } }, required: ['b'] }), /b is not a specified property/],
    ['CEL rules', root({ type: 'string', 'x-kubernetes-validations': [{ rule: 'self != ""' }] }), /Kubernetes 1.20/],
    ['$ref', root({ $ref: '#/definitions/x' }), /\$ref/],
    ['uniqueItems: true', root({ type: 'array', items: { type: 'string' }, uniqueItems: true }), /uniqueItems/],
    ['a misspelt keyword (Kube-OVN\'s min/max)', root({ type: 'integer', min: 1, max: 200 }), /unsupported keyword/],
    ['an enum value of the wrong type', root({ type: 'integer', enum: ['1'] }), /not of type integer/],
    ['a type other than the six', root({ type: 'null' }), /must be one of/],
    ['a root that is not an object', { type: 'string' }, /root must be of type object/],
    ['metadata restricting more than the name', { type: 'object', properties: { metadata: { type: 'object', properties: { labels: { type: 'object' } } } } }, /only restrict name/],
    ['preserve-unknown-fields: false', root({ type: 'object', 'x-kubernetes-preserve-unknown-fields': false }), /must be true or unset/],
    ['minimum above maximum', root({ type: 'integer', minimum: 5, maximum: 1 }), /greater than maximum/],
  ];
  for (const [desc, schema, message] of bad) {
    it(`refuses ${desc}`, () => {
      expect(structuralErrors(schema).join('\n')).toMatch(message);
    });
  }

  it('accepts preserve-unknown-fields and int-or-string nodes without a type', () => {
    expect(structuralErrors(root({ type: 'object', properties: { a: { 'x-kubernetes-int-or-string': true }, b: { 'x-kubernetes-preserve-unknown-fields': true } } }))).toEqual([]);
  });
});

describe('patterns must mean the same to RE2 and JavaScript', () => {
  it.each([
    ['\\s+', /whitespace/],
    ['^a.b$', /unescaped \./],
    ['(a)\\1', /back-references/],
    ['^(?=a)', /only \(\?:/],
    ['(?<n>a)', /only \(\?:/],
    ['\\u00a0', /not RE2 syntax/],
    ['a{1001}', /above 1000/],
    ['[]a]', /class starting with \]/],
    ['(', /does not compile/],
  ])('refuses %j', (p, message) => {
    expect(patternPortabilityErrors(p).join('\n')).toMatch(message);
  });
  it('accepts portable syntax', () => {
    expect(patternPortabilityErrors('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(?:[.][0-9]{1,3}){0,2}$')).toEqual([]);
  });
});

describe('objects: pruning, nulls and validation as the API server does them', () => {
  const schema: Schema = {
    type: 'object',
    properties: {
      spec: {
        type: 'object',
        required: ['a'],
        properties: {
          a: { type: 'string', minLength: 2 },
          n: { type: 'integer', minimum: 1, maximum: 10 },
          list: { type: 'array', items: { type: 'string', nullable: true, pattern: '^x' } },
          strict: { type: 'array', items: { type: 'string' } },
          map: { type: 'object', additionalProperties: { type: 'string' } },
          free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
          e: { type: 'string', enum: ['on', 'off'] },
        },
      },
      status: { type: 'object', properties: { phase: { type: 'string', enum: ['Ready'] } } },
    },
  };

  it('drops unknown fields, keeps apiVersion/kind/metadata and preserved subtrees', () => {
    const r = admit({ apiVersion: 'g/v1', kind: 'K', metadata: { name: 'x', odd: 1 }, extra: 1, spec: { a: 'ab', junk: true, free: { any: { deep: 1 } } } }, schema);
    expect(r.ok).toBe(true);
    expect(r.stored).toEqual({ apiVersion: 'g/v1', kind: 'K', metadata: { name: 'x', odd: 1 }, spec: { a: 'ab', free: { any: { deep: 1 } } } });
  });

  it('drops a null field the schema does not make nullable, but not a null list item', () => {
    const r = admit({ spec: { a: 'ab', n: null, list: [null, 'xy'] } }, schema);
    expect(r.ok).toBe(true);
    expect(r.stored).toEqual({ spec: { a: 'ab', list: [null, 'xy'] } });
    const strict = admit({ spec: { a: 'ab', strict: [null] } }, schema);
    expect(strict.errors).toEqual(['spec.strict[0]: Invalid value: "null": must be of type string']);
  });

  it('a required field that is null is missing', () => {
    expect(admit({ spec: { a: null } }, schema).errors).toEqual(['spec.a: Required value']);
  });

  it('reports types, ranges, lengths, enums and patterns with their paths', () => {
    const r = admit({ spec: { a: 'é', n: 11, list: ['y'], map: { k: 1 }, e: 'maybe' } }, schema);
    expect(r.errors).toEqual([
      'spec.a: should be at least 2 chars long',
      'spec.n: Invalid value: 11: should be less than or equal to 10',
      'spec.list[0]: Invalid value: "y": should match the field\'s pattern',
      'spec.map.k: Invalid value: 1: must be of type string',
      'spec.e: Unsupported value: "maybe": supported values: "on", "off"',
    ]);
  });

  it('counts string length in characters, as Go counts runes', () => {
    expect(admit({ spec: { a: '😀😀' } }, schema).ok).toBe(true);
    expect(validate('😀', { type: 'string', maxLength: 1 })).toEqual([]);
  });

  it('an integer field refuses a fraction and a string', () => {
    expect(admit({ spec: { a: 'ab', n: 1.5 } }, schema).errors).toEqual(['spec.n: Invalid value: 1.5: must be of type integer']);
    expect(admit({ spec: { a: 'ab', n: '2' } }, schema).errors).toEqual(['spec.n: Invalid value: "2": must be of type integer']);
  });

  it('discards status on create when the version has a status subresource', () => {
    expect(admit({ spec: { a: 'ab' }, status: { phase: 'Bad' } }, schema).ok).toBe(false);
    const r = admit({ spec: { a: 'ab' }, status: { phase: 'Bad' } }, schema, { statusSubresource: true });
    expect(r.ok).toBe(true);
    expect(r.stored).toEqual({ spec: { a: 'ab' } });
  });

  it('anyOf, oneOf, allOf and not', () => {
    const s: Schema = {
      type: 'object',
      properties: { t: { type: 'string' }, v: { type: 'integer' } },
      anyOf: [{ properties: { t: { enum: ['a'] } }, required: ['v'] }, { properties: { t: { enum: ['b'] } }, not: { required: ['v'] } }],
      oneOf: [{ required: ['t'] }, { required: ['v'] }, { properties: { t: { enum: ['zzz'] } } }],
    };
    expect(validate({ t: 'a', v: 1 }, s)).toHaveLength(1); // t and v: two of oneOf
    expect(validate({ t: 'b' }, s)).toEqual([]);
    expect(validate({ t: 'b', v: 1 }, s).join()).toMatch(/anyOf/);
    expect(validate({ t: 'a' }, s).join()).toMatch(/anyOf/);
    expect(validate({ t: 'zzz' }, s).join()).toMatch(/oneOf/);
    expect(validate(5, { type: 'integer', allOf: [{ minimum: 1 }, { maximum: 4 }] })).toHaveLength(1);
  });
});
