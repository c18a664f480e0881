// Manifest text to raw objects: multi-document YAML, JSON, List flattening, empty documents, and
// refusals (unknown kind, wrong apiVersion, missing fields, syntax errors) as messages.
import { describe, expect, it } from 'vitest';
import { manifestFormat, parseManifest } from '../../../../daemon/objects/parse';

describe('parseManifest', () => {
  it('splits multi-document YAML and skips empty documents', () => {
    const text = [
      '---',
      'apiVersion: v1',
      'kind: Namespace',
      'metadata: {name: a}',
      '---',
      '# only a comment',
      '---',
      '',
      '---',
      'apiVersion: v1',
      'kind: Pod',
      'metadata: {name: p, namespace: a}',
      'spec: {containers: [{name: c}]}',
    ].join('\n');
    const r = parseManifest(text, 'm.yaml');
    expect(r.rejected).toEqual([]);
    expect(r.unreadable).toBe(false);
    expect(r.objects.map((o) => [o.kind, o.document])).toEqual([['Namespace', 1], ['Pod', 4]]);
    expect(r.objects[1]?.body.metadata).toEqual({ name: 'p', namespace: 'a' });
    expect(r.objects[0]?.source).toBe('m.yaml');
  });

  it('flattens a v1 List, remembering each item position', () => {
    const text = `
apiVersion: v1
kind: List
items:
  - apiVersion: kubeovn.io/v1
    kind: Subnet
    metadata: {name: s1}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: np}
`;
    const r = parseManifest(text, 'list.yaml');
    expect(r.objects.map((o) => [o.kind, o.document, o.item])).toEqual([['Subnet', 1, 0], ['NetworkPolicy', 1, 2]]);
    expect(r.rejected).toHaveLength(1);
    expect(r.rejected[0]).toMatchObject({ source: 'list.yaml', kind: 'Deployment', name: 'web' });
    expect(r.rejected[0]?.message).toMatch(/^document 1, items\[1\]: unsupported kind "Deployment" \(apps\/v1\): ovnode reads /);
  });

  it('reads JSON, a single object or a List', () => {
    const one = parseManifest(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } }), 'ns.json');
    expect(one.objects.map((o) => o.kind)).toEqual(['Namespace']);
    const list = parseManifest(
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'kubeovn.io/v1', kind: 'Vip', metadata: { name: 'v' } }] }),
      'l.json',
    );
    expect(list.objects.map((o) => [o.kind, o.item])).toEqual([['Vip', 0]]);
    expect(parseManifest('  \n', 'empty.json')).toEqual({ objects: [], rejected: [], unreadable: false });
  });

  const refusals: { desc: string; text: string; message: RegExp }[] = [
    { desc: 'unknown kind', text: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}', message: /^document 1: unsupported kind "Deployment" \(apps\/v1\)/ },
    {
      desc: 'known kind, wrong apiVersion',
      text: 'apiVersion: extensions/v1beta1\nkind: NetworkPolicy\nmetadata: {name: d}',
      message: /^document 1: no matches for kind "NetworkPolicy" in version "extensions\/v1beta1": use apiVersion networking.k8s.io\/v1$/,
    },
    { desc: 'no apiVersion', text: 'kind: Pod\nmetadata: {name: p}', message: /^document 1: apiVersion not set$/ },
    { desc: 'neither apiVersion nor kind', text: 'metadata: {name: p}', message: /^document 1: apiVersion not set, kind not set$/ },
    { desc: 'a document that is a list', text: '- a\n- b', message: /^document 1: expected an object with apiVersion, kind and metadata, found a list$/ },
    { desc: 'a scalar document', text: 'hello', message: /found a string$/ },
    { desc: 'List without items', text: 'apiVersion: v1\nkind: List', message: /a List needs an items list/ },
    { desc: 'nested List', text: 'apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: List, items: []}]', message: /items\[0\]: unsupported kind "List"/ },
  ];
  for (const c of refusals) {
    it(`refuses, without throwing: ${c.desc}`, () => {
      const r = parseManifest(c.text, 'x.yaml');
      expect(r.objects).toEqual([]);
      expect(r.unreadable).toBe(false);
      expect(r.rejected).toHaveLength(1);
      expect(r.rejected[0]?.message).toMatch(c.message);
    });
  }

  const unreadable: { desc: string; text: string; source: string; message: RegExp }[] = [
    { desc: 'YAML syntax error', text: 'apiVersion: v1\nkind: [Pod\n', source: 'a.yaml', message: /^invalid YAML: / },
    { desc: 'duplicate mapping key', text: 'apiVersion: v1\nkind: Pod\nkind: Namespace\n', source: 'a.yaml', message: /^invalid YAML: .*unique/ },
    { desc: 'JSON syntax error', text: '{"apiVersion": "v1",', source: 'a.json', message: /^invalid JSON: / },
    { desc: 'error in a later document spoils the file', text: 'apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n: : :\n  - [', source: 'a.yml', message: /^invalid YAML/ },
  ];
  for (const c of unreadable) {
    it(`marks the whole source unreadable: ${c.desc}`, () => {
      const r = parseManifest(c.text, c.source);
      expect(r.unreadable).toBe(true);
      expect(r.objects).toEqual([]);
      expect(r.rejected[0]?.message).toMatch(c.message);
    });
  }

  it('uses YAML 1.2 scalars: yes stays a string, an unquoted number stays a number', () => {
    const r = parseManifest('apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels: {x: yes, y: 1}', 'a.yaml');
    expect((r.objects[0]?.body.metadata as { labels: unknown }).labels).toEqual({ x: 'yes', y: 1 });
  });
});

describe('manifestFormat', () => {
  const cases: { desc: string; name: string; format: 'yaml' | 'json' | undefined }[] = [
    { desc: '.yaml', name: 'a.yaml', format: 'yaml' },
    { desc: '.yml', name: 'a.yml', format: 'yaml' },
    { desc: 'upper case', name: 'A.YAML', format: 'yaml' },
    { desc: '.json', name: 'a.json', format: 'json' },
    { desc: 'editor backup', name: 'a.yaml~', format: undefined },
    { desc: 'swap file', name: '.a.yaml.swp', format: undefined },
    { desc: 'text', name: 'README.md', format: undefined },
  ];
  for (const c of cases) it(c.desc, () => expect(manifestFormat(c.name)).toBe(c.format));
});
