// Users whose credentials come from a plugin go through @kubernetes/client-node, imported only for
// them. Its own file: config.test.ts asserts that nothing there imports the library, and module
// state (the lazily imported library) is per test file.

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clientNodeLoaded, loadKubeConnection } from '../../../../../daemon/sources/kube/config';
import { HttpKubeApi } from '../../../../../daemon/sources/kube/http-api';
import { FakeApiServer } from '../../../../fakes/fake-apiserver';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ovnode-kubeconfig-exec-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('loadKubeConnection with an exec credential plugin', () => {
  it('runs the plugin through @kubernetes/client-node, sends its token, and runs it again at the next refresh', async () => {
    const server = await FakeApiServer.start({ tokens: new Set(['exec-1', 'exec-2']) });
    cleanups.push(() => server.close());
    // A real plugin: prints an ExecCredential whose token is whatever the file holds now.
    const tokenFile = join(dir, 'plugin-token');
    writeFileSync(tokenFile, 'exec-1');
    const plugin = join(dir, 'plugin.sh');
    writeFileSync(plugin, `#!/bin/sh
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\\n' "$(cat '${tokenFile}')"
`);
    chmodSync(plugin, 0o755);
    const file = join(dir, 'exec.yaml');
    writeFileSync(file, `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "${server.url}", insecure-skip-tls-verify: true}
users:
- name: u
  user:
    as: system:admin
    as-groups: [system:masters]
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ${plugin}
      interactiveMode: Never
contexts:
- name: x
  context: {cluster: c, user: u, namespace: plugged}
current-context: x
`);
    expect(clientNodeLoaded()).toBe(false);
    let now = 1_000_000;
    const conn = await loadKubeConnection({ kubeconfig: file, refreshMs: 60_000, now: () => now });
    expect(clientNodeLoaded()).toBe(true);
    expect(conn.namespace).toBe('plugged');
    expect((await conn.credentials()).headers).toMatchObject({
      Authorization: 'Bearer exec-1', 'Impersonate-User': 'system:admin', 'Impersonate-Group': 'system:masters',
    });
    const api = new HttpKubeApi(conn);
    cleanups.push(() => api.close());
    expect((await api.request({ method: 'GET', path: '/api/v1/namespaces' })).status).toBe(200);
    writeFileSync(tokenFile, 'exec-2');
    now += 60_001;
    expect((await api.request({ method: 'GET', path: '/api/v1/namespaces' })).status).toBe(200);
    expect(server.requests.map((r) => r.authorization)).toEqual(['Bearer exec-1', 'Bearer exec-2']);
  }, 30_000); // includes the library's first import: most of a second, more on a busy machine
});
