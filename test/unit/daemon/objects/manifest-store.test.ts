// ManifestStore over a temporary directory: initial load, add/edit/delete each giving exactly one
// onChange (awaited as an event, 1 s limit), bursts coalesced, rewrites that change nothing,
// broken files (others unaffected, last good kept), invalid objects, duplicates across files.
import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManifestStore, type ReloadInfo } from '../../../../daemon/objects/manifest-store';

const NS = (name: string, labels: Record<string, string> = {}) =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n  labels: ${JSON.stringify(labels)}\n`;
const POD = (name: string, app: string) =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, labels: {app: ${app}}}\nspec: {containers: [{name: c}]}\n`;

/** Resolves on the store's next onChange; fails after `ms`. Register before making the change. */
function nextChange(store: ManifestStore, ms = 1000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no onChange within ${ms} ms`));
    }, ms);
    const off = store.onChange(() => {
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/** Resolves after the next reload pass that read `file`. */
function nextReload(store: ManifestStore, file: string, ms = 1000): Promise<ReloadInfo> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no reload of ${file} within ${ms} ms`));
    }, ms);
    const off = store.onReload((info) => {
      if (!info.files.includes(file)) return;
      clearTimeout(timer);
      off();
      resolve(info);
    });
  });
}

let dir: string;
let store: ManifestStore;
let changes: number;

async function open(files: Record<string, string> = {}, opts = {}): Promise<ManifestStore> {
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  store = new ManifestStore(dir, undefined, opts);
  await store.load();
  changes = 0;
  store.onChange(() => changes++);
  return store;
}

const nsNames = () => store.list('Namespace').map((n) => n.metadata.name);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ovnode-manifests-'));
});

afterEach(async () => {
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('ManifestStore', () => {
  it('loads *.yaml, *.yml and *.json at start, multi-document and List, ignoring other files', async () => {
    await open({
      'a.yaml': `${NS('a')}---\n${POD('web', 'web')}`,
      'b.yml': NS('b'),
      'c.json': JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'kubeovn.io/v1', kind: 'Subnet', metadata: { name: 's' }, spec: { cidrBlock: '10.1.0.0/24' } }] }),
      'README.md': 'not a manifest',
      '.#a.yaml': 'editor lock: : :',
      'notes.yaml~': 'backup: [',
    });
    expect(nsNames()).toEqual(['a', 'b']);
    expect(store.get('Pod', 'web', 'default')?.metadata.labels).toEqual({ app: 'web' });
    expect(store.get('Subnet', 's')?.spec.gateway).toBe('10.1.0.1');
    expect(store.rejected()).toEqual([]);
    expect(store.version).toBe(1);
    expect(store.lastChangeAt).toBeGreaterThan(0);
    expect(Object.isFrozen(store.get('Pod', 'web')?.metadata.labels)).toBe(true);
  });

  it('an empty directory loads with no change', async () => {
    await open();
    expect(store.version).toBe(0);
    expect(store.list('Pod')).toEqual([]);
  });

  it('add, edit, delete: each is exactly one onChange, and the listener already sees the new content', async () => {
    await open({ 'a.yaml': NS('a') });
    const seen: string[][] = [];
    store.onChange(() => seen.push(nsNames()));

    let change = nextChange(store);
    await writeFile(join(dir, 'b.yaml'), NS('b'));
    await change;
    expect(seen.at(-1)).toEqual(['a', 'b']);

    change = nextChange(store);
    await writeFile(join(dir, 'b.yaml'), NS('b', { team: 'x' }));
    await change;
    expect(store.get('Namespace', 'b')?.metadata.labels).toEqual({ team: 'x' });

    change = nextChange(store);
    await unlink(join(dir, 'b.yaml'));
    await change;
    expect(seen.at(-1)).toEqual(['a']);

    expect(changes).toBe(3);
    expect(store.version).toBe(4);
  });

  it('an editor-style save (write a temporary file, rename over) is one change', async () => {
    await open({ 'a.yaml': NS('a') });
    const change = nextChange(store);
    await writeFile(join(dir, '.a.yaml.tmp'), NS('a', { v: '2' }));
    await rename(join(dir, '.a.yaml.tmp'), join(dir, 'a.yaml'));
    await change;
    expect(store.get('Namespace', 'a')?.metadata.labels).toEqual({ v: '2' });
    expect(changes).toBe(1);
  });

  it('a Kubernetes ConfigMap volume update (the ..data symlink swap) is read', async () => {
    // The kubelet's atomic writer: files are links through ..data, which is replaced in one rename.
    await mkdir(join(dir, '..v1'));
    await writeFile(join(dir, '..v1', 'a.yaml'), NS('a'));
    await symlink('..v1', join(dir, '..data'));
    await symlink(join('..data', 'a.yaml'), join(dir, 'a.yaml'));
    await open();
    expect(nsNames()).toEqual(['a']);
    const change = nextChange(store);
    await mkdir(join(dir, '..v2'));
    await writeFile(join(dir, '..v2', 'a.yaml'), NS('a2'));
    await symlink('..v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await change;
    expect(nsNames()).toEqual(['a2']);
    expect(changes).toBe(1);
  });

  it('a burst of writes is coalesced into one change with the last content', async () => {
    // A generous debounce keeps the burst inside one quiet period even on a slow machine.
    await open({ 'a.yaml': NS('a') }, { debounceMs: 100, maxDelayMs: 1000 });
    const change = nextChange(store, 2000);
    for (let i = 1; i <= 5; i++) await writeFile(join(dir, 'a.yaml'), NS('a', { v: String(i) }));
    await change;
    expect(store.get('Namespace', 'a')?.metadata.labels).toEqual({ v: '5' });
    expect(changes).toBe(1);
  });

  it('rewriting a file with the same objects reloads without onChange', async () => {
    await open({ 'a.yaml': NS('a') });
    const reload = nextReload(store, 'a.yaml');
    // Different text, same objects: comments and key order do not matter.
    await writeFile(join(dir, 'a.yaml'), `# a comment\nkind: Namespace\napiVersion: v1\nmetadata: {labels: {}, name: a}\n`);
    expect((await reload).changed).toBe(false);
    expect(changes).toBe(0);
    expect(store.version).toBe(1);
  });

  it('a broken file keeps the other files\' objects (and its own last good ones) and reports the error', async () => {
    await open({ 'a.yaml': NS('a'), 'b.yaml': NS('b') });
    const reload = nextReload(store, 'b.yaml');
    await writeFile(join(dir, 'b.yaml'), 'apiVersion: v1\nkind: [Namespace\n');
    expect((await reload).changed).toBe(false);
    expect(nsNames()).toEqual(['a', 'b']);
    expect(store.rejected()).toHaveLength(1);
    expect(store.rejected()[0]?.source).toBe('b.yaml');
    expect(store.rejected()[0]?.message).toMatch(/^invalid YAML: .*; its 1 previously accepted object\(s\) stay in effect$/s);

    // Fixing it clears the report; the new content is one change.
    const change = nextChange(store);
    await writeFile(join(dir, 'b.yaml'), NS('b2'));
    await change;
    expect(nsNames()).toEqual(['a', 'b2']);
    expect(store.rejected()).toEqual([]);
  });

  it('a new broken file changes nothing and is reported', async () => {
    await open({ 'a.yaml': NS('a') });
    const reload = nextReload(store, 'z.json');
    await writeFile(join(dir, 'z.json'), '{"apiVersion": ');
    expect((await reload).changed).toBe(false);
    expect(nsNames()).toEqual(['a']);
    expect(store.rejected().map((r) => r.source)).toEqual(['z.json']);
    expect(store.rejected()[0]?.message).toMatch(/^invalid JSON: /);
  });

  it('an invalid object is refused whole; the file\'s valid objects apply', async () => {
    await open({ 'a.yaml': NS('a') });
    const change = nextChange(store);
    const np3 = 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ip-block, namespace: default}\nspec:\n  policyTypes: [egress]\n';
    await writeFile(join(dir, 'p.yaml'), `${np3}---\n${NS('p')}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n`);
    await change;
    expect(nsNames()).toEqual(['a', 'p']);
    expect(store.list('NetworkPolicy')).toEqual([]);
    // Documents refused while parsing come first, then those refused by validation.
    expect(store.rejected()).toEqual([
      expect.objectContaining({ source: 'p.yaml', kind: 'Deployment', name: 'd', message: expect.stringMatching(/^document 3: unsupported kind "Deployment"/) }),
      {
        source: 'p.yaml',
        kind: 'NetworkPolicy',
        name: 'ip-block',
        namespace: 'default',
        message: 'NetworkPolicy default/ip-block: spec.policyTypes[0]: Unsupported value: "egress": supported values: "Ingress", "Egress"',
      },
    ]);
  });

  it('an invalid update keeps the previously accepted version, as the API server would', async () => {
    const good = 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ip-block}\nspec:\n  policyTypes: [Egress]\n';
    await open({ 'p.yaml': good });
    const reload = nextReload(store, 'p.yaml');
    await writeFile(join(dir, 'p.yaml'), good.replace('Egress', 'egress'));
    expect((await reload).changed).toBe(false);
    expect(store.get('NetworkPolicy', 'ip-block', 'default')?.spec.policyTypes).toEqual(['Egress']);
    expect(store.rejected()[0]?.message).toMatch(/Unsupported value: "egress".*\(the previously accepted version stays in effect\)$/);
  });

  it('duplicates: the first file by name wins, the other is refused naming both; removing the winner promotes it', async () => {
    await open({ 'b.yaml': NS('x', { from: 'b' }), 'a.yaml': `${NS('other')}---\n${NS('x', { from: 'a' })}` });
    expect(store.get('Namespace', 'x')?.metadata.labels).toEqual({ from: 'a' });
    expect(store.rejected()).toEqual([
      {
        source: 'b.yaml',
        kind: 'Namespace',
        name: 'x',
        message: 'Namespace x: duplicate: already defined in a.yaml (document 2), which wins; this copy in b.yaml (document 1) is ignored',
      },
    ]);
    const change = nextChange(store);
    await unlink(join(dir, 'a.yaml'));
    await change;
    expect(store.get('Namespace', 'x')?.metadata.labels).toEqual({ from: 'b' });
    expect(store.rejected()).toEqual([]);
  });

  it('duplicates inside one file: the first document wins', async () => {
    await open({ 'a.yaml': `${POD('p', 'one')}---\n${POD('p', 'two')}` });
    expect(store.get('Pod', 'p')?.metadata.labels).toEqual({ app: 'one' });
    expect(store.rejected()[0]?.message).toBe(
      'Pod default/p: duplicate: already defined in a.yaml (document 1), which wins; this copy in a.yaml (document 2) is ignored',
    );
  });

  it('logs each new refusal once, as "rejected: <message>", and each change', async () => {
    const lines: Array<{ level: string; obj: object; msg: string }> = [];
    const rec = (level: string) => (obj: object, msg: string) => lines.push({ level, obj, msg });
    await writeFile(join(dir, 'a.yaml'), NS('a'));
    store = new ManifestStore(dir, { info: rec('info'), warn: rec('warn'), error: rec('error') });
    await store.load();
    expect(lines.map((l) => [l.level, l.msg])).toEqual([['info', 'manifests changed']]);
    const np3 = 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ip-block}\nspec: {policyTypes: [egress]}\n';
    let reload = nextReload(store, 'p.yaml');
    await writeFile(join(dir, 'p.yaml'), np3);
    await reload;
    reload = nextReload(store, 'a.yaml');
    await writeFile(join(dir, 'a.yaml'), NS('a'));
    await reload;
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings).toEqual([
      {
        level: 'warn',
        obj: { source: 'p.yaml', kind: 'NetworkPolicy', name: 'ip-block', namespace: 'default' },
        msg: 'rejected: NetworkPolicy default/ip-block: spec.policyTypes[0]: Unsupported value: "egress": supported values: "Ingress", "Egress"',
      },
    ]);
  });

  it('close() stops watching: later writes are not read', async () => {
    await open({ 'a.yaml': NS('a') });
    await store.close();
    await writeFile(join(dir, 'b.yaml'), NS('b'));
    // Nothing can arrive once the watcher is closed; one macrotask turn is enough to show it.
    await new Promise((r) => setTimeout(r, 50));
    expect(nsNames()).toEqual(['a']);
    expect(changes).toBe(0);
  });

  it('load() fails for a missing directory, and cannot run twice', async () => {
    const missing = new ManifestStore(join(dir, 'nope'));
    await expect(missing.load()).rejects.toThrow(/ENOENT/);
    await open();
    await expect(store.load()).rejects.toThrow(/called when open/);
  });
});
