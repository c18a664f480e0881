// Objects run through both lines of defence: the API server (deploy/00-crds.yaml's schema, through
// the model in test/support/openapi-schema.ts) and ovnode's validators, on what the API server
// would store (pruned). The rules:
//   - nothing ovnode accepts may be refused by the schema (users' YAML must apply);
//   - everything the schema accepts and ovnode refuses is a known gap, listed in crd-corpus.ts with
//     why a 1.20 schema cannot say it; ovnode refuses such an object and reports it;
//   - pruning never changes what ovnode reads from an object it accepts.
// Subnet, SecurityGroup, Vip, ProviderNetwork and Vlan are the kinds with CRDs here; Namespace,
// Pod and NetworkPolicy are built into Kubernetes, and the API server validates them itself.
import { describe, expect, it } from 'vitest';
import { CASES, KNOWN_GAPS, seedCases, type Case } from './crd-corpus';
import { apiserverCreate, ovnodeVerdict, type Doc } from './manifests';

function classify(c: Case) {
  const api = apiserverCreate(c.obj);
  const original = ovnodeVerdict(c.obj);
  const stored = api.ok ? ovnodeVerdict(api.stored as Doc) : undefined;
  return { api, original, stored };
}

describe('CRD schemas against ovnode\'s validators', () => {
  it('the corpus names are unique; the gaps are the ones listed in crd-corpus.ts', () => {
    expect(KNOWN_GAPS.length).toBe(CASES.filter((c) => c.gap !== undefined).length);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
    expect(seedCases).toHaveLength(4);
  });

  for (const c of CASES) {
    const label = c.refuse !== undefined ? 'both refuse' : c.gap !== undefined ? 'known gap' : 'both accept';
    it(`${c.obj.kind}: ${c.name} (${label})`, () => {
      const { api, original, stored } = classify(c);
      // Nothing ovnode accepts may be refused by the schema.
      if (original.ok) expect(api.errors, 'ovnode accepts it, so the API server must').toEqual([]);
      if (c.refuse !== undefined) {
        expect(original.ok, 'ovnode must refuse it').toBe(false);
        expect(api.ok, 'the API server must refuse it').toBe(false);
        expect(api.errors.join('\n')).toContain(c.refuse);
      } else if (c.gap !== undefined) {
        expect(api.ok, 'a gap is an object the API server accepts').toBe(true);
        expect(stored?.ok, `a gap is an object ovnode refuses (${c.gap})`).toBe(false);
      } else {
        expect(api.errors).toEqual([]);
        if (!stored?.ok) throw new Error(`ovnode refuses what the API server stores: ${stored?.message}`);
        // What the API server stores reads the same to ovnode as what the user wrote.
        if (original.ok) expect(stored.object).toEqual(original.object);
        c.stored?.(api.stored as Doc);
      }
    });
  }
});
