import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { clientNodeLoaded, loadKubeConnection } from '../../../../../daemon/sources/kube/config';
import { KubeConfigError } from '../../../../../daemon/sources/kube/errors';
import { HttpKubeApi } from '../../../../../daemon/sources/kube/http-api';
import { FakeApiServer } from '../../../../fakes/fake-apiserver';

// A throw-away PKI: a CA, the fake apiserver's certificate for 127.0.0.1, and a client
// certificate, made with openssl into a temporary directory.
let dir: string;
const pem = (name: string): string => readFileSync(join(dir, name), 'utf8');

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function issue(name: string, subject: string, ext: string): void {
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-out', `${name}.crt`, '-extfile', `${name}.ext`);
}

// A tripwire, not a fake: every credential form in this file must resolve without the library
// (its import alone costs ~77 MB of RSS). Exec and auth-provider users are in config-plugin.test.ts.
vi.mock('@kubernetes/client-node', () => {
  throw new Error('@kubernetes/client-node was imported by a path that must not need it');
});

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ovnode-kubeconfig-'));
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=ovnode-test-ca');
  issue('server', '/CN=fake-apiserver', 'subjectAltName=IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n');
  issue('client', '/CN=system:node:test-node/O=system:nodes', 'extendedKeyUsage=clientAuth\n');
  // A server certificate for a name only, as an API server reached through an address it does not list.
  issue('named', '/CN=named-apiserver', 'subjectAltName=DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n');
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  expect(clientNodeLoaded(), 'a common credential form imported @kubernetes/client-node').toBe(false);
});

async function tlsServer(opts: { requireClientCert?: boolean; tokens?: Set<string>; cert?: string } = {}): Promise<FakeApiServer> {
  const cert = opts.cert ?? 'server';
  const server = await FakeApiServer.start({
    tls: { key: pem(`${cert}.key`), cert: pem(`${cert}.crt`), ca: pem('ca.crt'), requireClientCert: opts.requireClientCert ?? false },
    ...(opts.tokens ? { tokens: opts.tokens } : {}),
  });
  cleanups.push(() => server.close());
  return server;
}

function kubeconfig(name: string, cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  const file = join(dir, name);
  const yaml = `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: ${JSON.stringify(cluster)}
users:
- name: test
  user: ${JSON.stringify(user)}
contexts:
- name: test
  context: { cluster: test, user: test, namespace: ovnode }
current-context: test
`;
  writeFileSync(file, yaml);
  return file;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function getNamespaces(api: HttpKubeApi): Promise<number> {
  return (await api.request({ method: 'GET', path: '/api/v1/namespaces' })).status;
}

describe('loadKubeConnection from a kubeconfig file', () => {
  it('authenticates with a client certificate (relative paths) and verifies the server against the CA', async () => {
    const server = await tlsServer({ requireClientCert: true });
    const file = kubeconfig('cert.yaml', { server: server.url, 'certificate-authority-data': b64(pem('ca.crt')) }, { 'client-certificate': 'client.crt', 'client-key': 'client.key' });
    const conn = await loadKubeConnection({ kubeconfig: file });
    expect(conn.server.href).toBe(`${server.url}/`);
    expect(conn.namespace).toBe('ovnode');
    const api = new HttpKubeApi(conn);
    cleanups.push(() => api.close());
    expect(await getNamespaces(api)).toBe(200);
    expect(server.requests[0]?.clientCN).toBe('system:node:test-node');
    expect(server.requests[0]?.authorization).toBeUndefined();
  });

  it('refuses a server whose certificate the configured CA did not sign', async () => {
    const server = await tlsServer();
    const other = mkdtempSync(join(tmpdir(), 'ovnode-otherca-'));
    cleanups.push(() => rmSync(other, { recursive: true, force: true }));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(other, 'k'), '-out', join(other, 'c'), '-days', '1', '-subj', '/CN=other'], { stdio: 'ignore' });
    const file = kubeconfig('wrong-ca.yaml', { server: server.url, 'certificate-authority': join(other, 'c') }, { token: 'x' });
    const api = new HttpKubeApi(await loadKubeConnection({ kubeconfig: file }));
    cleanups.push(() => api.close());
    await expect(getNamespaces(api)).rejects.toThrow(/certificate/);
  });

  it('sends a bearer token, and re-reads a token file once the credentials are older than refreshMs', async () => {
    const tokens = new Set(['t1', 't2']);
    const server = await tlsServer({ tokens });
    writeFileSync(join(dir, 'token-file'), 't1');
    const file = kubeconfig('token-file.yaml', { server: server.url, 'certificate-authority': 'ca.crt' }, { tokenFile: join(dir, 'token-file') });
    let now = 1_000_000;
    const conn = await loadKubeConnection({ kubeconfig: file, refreshMs: 60_000, now: () => now });
    const api = new HttpKubeApi(conn);
    cleanups.push(() => api.close());
    expect(await getNamespaces(api)).toBe(200);
    writeFileSync(join(dir, 'token-file'), 't2');
    expect(await getNamespaces(api)).toBe(200); // still fresh: the cached token
    now += 60_001;
    expect(await getNamespaces(api)).toBe(200);
    expect(server.requests.map((r) => r.authorization)).toEqual(['Bearer t1', 'Bearer t1', 'Bearer t2']);
  });

  it('takes --context over current-context, and says which context is missing', async () => {
    const server = await tlsServer({ tokens: new Set(['ctx-token']) });
    const file = join(dir, 'contexts.yaml');
    writeFileSync(file, `apiVersion: v1
kind: Config
clusters:
- name: unreachable
  cluster: { server: "https://127.0.0.1:1", certificate-authority: ca.crt }
- name: fake
  cluster: { server: "${server.url}", certificate-authority: ca.crt }
users:
- name: a
  user: { token: unused }
- name: b
  user: { token: ctx-token }
contexts:
- name: default
  context: { cluster: unreachable, user: a }
- name: other
  context: { cluster: fake, user: b, namespace: elsewhere }
current-context: default
`);
    const conn = await loadKubeConnection({ kubeconfig: file, context: 'other' });
    expect(conn.namespace).toBe('elsewhere');
    const api = new HttpKubeApi(conn);
    cleanups.push(() => api.close());
    expect(await getNamespaces(api)).toBe(200);
    expect(server.requests[0]?.authorization).toBe('Bearer ctx-token');
    await expect(loadKubeConnection({ kubeconfig: file, context: 'nope' })).rejects.toThrow(/no context named nope/);
  });

  it('accepts an http server when insecure-skip-tls-verify says so (a local proxy)', async () => {
    const server = await FakeApiServer.start();
    cleanups.push(() => server.close());
    const file = kubeconfig('http.yaml', { server: server.url, 'insecure-skip-tls-verify': true }, {});
    const api = new HttpKubeApi(await loadKubeConnection({ kubeconfig: file }));
    cleanups.push(() => api.close());
    expect(await getNamespaces(api)).toBe(200);
  });

  it('refuses what it cannot honour, with the reason', async () => {
    await expect(loadKubeConnection({ kubeconfig: join(dir, 'missing.yaml') })).rejects.toBeInstanceOf(KubeConfigError);
    const proxied = kubeconfig('proxy.yaml', { server: 'https://10.0.0.1', 'proxy-url': 'http://proxy:3128' }, { token: 'x' });
    await expect(loadKubeConnection({ kubeconfig: proxied })).rejects.toThrow(/proxy-url/);
  });
});

/** A kubeconfig from literal YAML, in the test's directory (relative paths resolve there). */
function writeConfig(name: string, yaml: string): string {
  const file = join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

/** A plain http server that answers 200 and keeps each request's headers. */
async function headerServer(): Promise<{ url: string; seen: IncomingHttpHeaders[] }> {
  const seen: IncomingHttpHeaders[] = [];
  const srv = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"kind":"NamespaceList","items":[]}');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => {
    srv.closeAllConnections();
    srv.close(() => r());
  }));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen };
}

describe('loadKubeConnection from a kubeconfig file, without @kubernetes/client-node', () => {
  it('authenticates with client-certificate-data and client-key-data', async () => {
    const server = await tlsServer({ requireClientCert: true });
    const file = kubeconfig('cert-data.yaml', { server: server.url, 'certificate-authority-data': b64(pem('ca.crt')) }, {
      'client-certificate-data': b64(pem('client.crt')), 'client-key-data': b64(pem('client.key')),
    });
    const api = new HttpKubeApi(await loadKubeConnection({ kubeconfig: file }));
    cleanups.push(() => api.close());
    expect(await getNamespaces(api)).toBe(200);
    expect(server.requests[0]?.clientCN).toBe('system:node:test-node');
  });

  it('without the client certificate, the server that requires one answers 401', async () => {
    const server = await tlsServer({ requireClientCert: true });
    const file = kubeconfig('no-cert.yaml', { server: server.url, 'certificate-authority': 'ca.crt' }, {});
    const api = new HttpKubeApi(await loadKubeConnection({ kubeconfig: file }));
    cleanups.push(() => api.close());
    expect(await getNamespaces(api)).toBe(401);
  });

  it('verifies the server certificate against tls-server-name instead of the address', async () => {
    const server = await tlsServer({ cert: 'named', tokens: new Set(['n']) });
    const plain = kubeconfig('named-plain.yaml', { server: server.url, 'certificate-authority': 'ca.crt' }, { token: 'n' });
    const api1 = new HttpKubeApi(await loadKubeConnection({ kubeconfig: plain }));
    cleanups.push(() => api1.close());
    await expect(getNamespaces(api1)).rejects.toThrow(/altnames|certificate/i);
    const named = kubeconfig('named.yaml', { server: server.url, 'certificate-authority': 'ca.crt', 'tls-server-name': 'kubernetes.default.svc' }, { token: 'n' });
    const api2 = new HttpKubeApi(await loadKubeConnection({ kubeconfig: named }));
    cleanups.push(() => api2.close());
    expect(await getNamespaces(api2)).toBe(200);
  });

  it('skips server verification with insecure-skip-tls-verify, and refuses it next to a CA', async () => {
    const server = await tlsServer({ tokens: new Set(['i']) });
    const file = kubeconfig('insecure.yaml', { server: server.url, 'insecure-skip-tls-verify': true }, { token: 'i' });
    const conn = await loadKubeConnection({ kubeconfig: file });
    expect((await conn.credentials()).tls.rejectUnauthorized).toBe(false);
    const api = new HttpKubeApi(conn);
    cleanups.push(() => api.close());
    expect(await getNamespaces(api)).toBe(200);
    // Without it the same server is refused (its CA is not in the system store).
    const strict = kubeconfig('strict.yaml', { server: server.url }, { token: 'i' });
    const api2 = new HttpKubeApi(await loadKubeConnection({ kubeconfig: strict }));
    cleanups.push(() => api2.close());
    await expect(getNamespaces(api2)).rejects.toThrow(/certificate/);
    const both = kubeconfig('insecure-ca.yaml', { server: server.url, 'insecure-skip-tls-verify': true, 'certificate-authority': 'ca.crt' }, {});
    await expect(loadKubeConnection({ kubeconfig: both })).rejects.toThrow(/insecure-ca\.yaml: cluster "test" insecure-skip-tls-verify: set together with a certificate-authority/);
  });

  it('reads a tokenFile relative to the kubeconfig, without its newline; an inline token wins over it', async () => {
    const server = await tlsServer({ tokens: new Set(['from-file', 'inline']) });
    writeFileSync(join(dir, 'rel-token'), 'from-file\n');
    const file = kubeconfig('token-rel.yaml', { server: server.url, 'certificate-authority': 'ca.crt' }, { tokenFile: 'rel-token' });
    const api = new HttpKubeApi(await loadKubeConnection({ kubeconfig: file }));
    cleanups.push(() => api.close());
    expect(await getNamespaces(api)).toBe(200);
    expect(server.requests[0]?.authorization).toBe('Bearer from-file');
    const both = kubeconfig('token-both.yaml', { server: server.url, 'certificate-authority': 'ca.crt' }, { token: 'inline', tokenFile: 'rel-token' });
    expect((await (await loadKubeConnection({ kubeconfig: both })).credentials()).headers.Authorization).toBe('Bearer inline');
  });

  it('keeps the last good credentials when a refresh fails, and tries again 5 s later', async () => {
    writeFileSync(join(dir, 'flaky-token'), 'one');
    const file = kubeconfig('flaky.yaml', { server: 'https://127.0.0.1:1', 'certificate-authority': 'ca.crt' }, { tokenFile: 'flaky-token' });
    let now = 5_000_000;
    const conn = await loadKubeConnection({ kubeconfig: file, refreshMs: 60_000, now: () => now });
    const auth = async (): Promise<string | undefined> => (await conn.credentials()).headers.Authorization;
    expect(await auth()).toBe('Bearer one');
    unlinkSync(join(dir, 'flaky-token'));
    now += 60_001;
    expect(await auth()).toBe('Bearer one');
    writeFileSync(join(dir, 'flaky-token'), 'two');
    now += 4_000;
    expect(await auth()).toBe('Bearer one'); // the retry is not due yet
    now += 1_001;
    expect(await auth()).toBe('Bearer two');
    writeFileSync(join(dir, 'flaky-token'), 'three');
    conn.invalidate(); // as after a 401: resolved again at once
    expect(await auth()).toBe('Bearer three');
  });

  it('sends basic auth; a password that looks like a number is kept as written', async () => {
    const server = await FakeApiServer.start();
    cleanups.push(() => server.close());
    const file = writeConfig('basic.yaml', `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: ${server.url}
users:
- name: u
  user:
    username: admin
    password: 0123
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`);
    const conn = await loadKubeConnection({ kubeconfig: file });
    expect(conn.namespace).toBeUndefined();
    const api = new HttpKubeApi(conn);
    cleanups.push(() => api.close());
    expect(await getNamespaces(api)).toBe(200);
    expect(server.requests[0]?.authorization).toBe(`Basic ${b64('admin:0123')}`);
  });

  it('sends the impersonation headers client-go sends', async () => {
    const srv = await headerServer();
    const file = kubeconfig('impersonate.yaml', { server: srv.url }, {
      token: 'admin-token', as: 'system:node:n1', 'as-uid': 'u-1', 'as-groups': ['system:nodes'], 'as-user-extra': { 'scopes.example.com/a%b': ['read'] },
    });
    const api = new HttpKubeApi(await loadKubeConnection({ kubeconfig: file }));
    cleanups.push(() => api.close());
    expect(await getNamespaces(api)).toBe(200);
    expect(srv.seen[0]).toMatchObject({
      authorization: 'Bearer admin-token',
      'impersonate-user': 'system:node:n1',
      'impersonate-uid': 'u-1',
      'impersonate-group': 'system:nodes',
      'impersonate-extra-scopes.example.com%2fa%25b': 'read',
    });
  });

  it('a scheme-less server is https once a CA is configured, http otherwise (client-go)', async () => {
    const withCa = kubeconfig('noscheme-ca.yaml', { server: '127.0.0.1:6443', 'certificate-authority': 'ca.crt' }, {});
    expect((await loadKubeConnection({ kubeconfig: withCa })).server.href).toBe('https://127.0.0.1:6443/');
    const bare = kubeconfig('noscheme.yaml', { server: 'localhost:8080' }, {});
    expect((await loadKubeConnection({ kubeconfig: bare })).server.href).toBe('http://localhost:8080/');
  });

  it('refuses a malformed kubeconfig, naming the file and the field', async () => {
    const refuse = async (name: string, yaml: string, pattern: RegExp, context?: string): Promise<void> => {
      const file = writeConfig(name, yaml);
      const err = await loadKubeConnection({ kubeconfig: file, ...(context !== undefined ? { context } : {}) }).then(() => undefined, (e: unknown) => e);
      expect(err, name).toBeInstanceOf(KubeConfigError);
      expect((err as Error).message, name).toContain(file);
      expect((err as Error).message, name).toMatch(pattern);
    };
    const doc = (cluster: string, user: string, extra = ''): string => `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: ${cluster}
users:
- name: u
  user: ${user}
contexts:
- name: x
  context: {cluster: c, user: u}
${extra}current-context: x
`;
    const ca = '{server: "https://127.0.0.1:6443", certificate-authority: ca.crt}';
    await refuse('e-no-current.yaml', doc(ca, '{}').replace('current-context: x\n', ''), /current-context: not set/);
    await refuse('e-missing-current.yaml', doc(ca, '{}').replace('current-context: x', 'current-context: gone'), /no context named gone/);
    await refuse('e-missing-flag.yaml', doc(ca, '{}'), /no context named other/, 'other');
    await refuse('e-missing-cluster.yaml', doc(ca, '{}').replace('{cluster: c, user: u}', '{cluster: nope, user: u}'), /context "x" cluster: no cluster named nope/);
    await refuse('e-missing-user.yaml', doc(ca, '{}').replace('{cluster: c, user: u}', '{cluster: c, user: ghost}'), /context "x" user: no user named ghost/);
    await refuse('e-no-server.yaml', doc('{certificate-authority: ca.crt}', '{}'), /cluster "c" server: missing/);
    await refuse('e-bad-server.yaml', doc('{server: "ftp://x"}', '{}'), /cluster "c" server: ftp:\/\/x is neither https nor http/);
    await refuse('e-proxy.yaml', doc('{server: "https://10.0.0.1", proxy-url: "http://proxy:3128"}', '{token: x}'), /cluster "c" proxy-url/);
    await refuse('e-bad-ca-b64.yaml', doc('{server: "https://10.0.0.1", certificate-authority-data: "not base64!"}', '{}'), /cluster "c" certificate-authority-data: not valid base64/);
    await refuse('e-bad-key-b64.yaml', doc(ca, `{client-certificate: client.crt, client-key-data: "${b64(pem('client.key')).slice(1)}"}`), /user "u" client-key-data: not valid base64/);
    await refuse('e-ca-unreadable.yaml', doc('{server: "https://10.0.0.1", certificate-authority: no-such-ca.crt}', '{}'), /cluster "c" certificate-authority: cannot read .*no-such-ca\.crt/);
    await refuse('e-cert-unreadable.yaml', doc(ca, '{client-certificate: missing.crt, client-key: client.key}'), /user "u" client-certificate: cannot read .*missing\.crt/);
    await refuse('e-token-unreadable.yaml', doc(ca, '{tokenFile: missing-token}'), /user "u" tokenFile: cannot read .*missing-token: ENOENT/);
    writeFileSync(join(dir, 'empty-token'), '\n');
    await refuse('e-token-empty.yaml', doc(ca, '{tokenFile: empty-token}'), /user "u" tokenFile: .*empty-token is empty/);
    await refuse('e-ca-not-pem.yaml', doc(`{server: "https://10.0.0.1", certificate-authority-data: "${b64('hello')}"}`, '{}'), /cluster "c" certificate-authority-data: not a PEM certificate/);
    await refuse('e-cert-no-key.yaml', doc(ca, '{client-certificate: client.crt}'), /user "u" client-key: missing/);
    await refuse('e-cert-twice.yaml', doc(ca, `{client-certificate: client.crt, client-certificate-data: "${b64(pem('client.crt'))}", client-key: client.key}`), /user "u" client-certificate-data: set together with client-certificate/);
    await refuse('e-wrong-key.yaml', doc(ca, '{client-certificate: client.crt, client-key: server.key}'), /user "u" client-key .*server\.key: not the key of the client certificate/);
    await refuse('e-token-basic.yaml', doc(ca, '{token: t, username: a, password: b}'), /user "u": both a token and a username\/password/);
    await refuse('e-groups-no-user.yaml', doc(ca, '{token: t, as-groups: [g]}'), /user "u" as: missing/);
    await refuse('e-two-groups.yaml', doc(ca, '{token: t, as: a, as-groups: [g1, g2]}'), /user "u" as-groups: more than one value/);
    await refuse('e-insecure-type.yaml', doc('{server: "https://10.0.0.1", insecure-skip-tls-verify: "yes please"}', '{}'), /cluster "c" insecure-skip-tls-verify: not true or false/);
    await refuse('e-dup.yaml', doc(ca, '{}').replace('users:\n', 'users:\n- name: u\n  user: {}\n'), /users\[1\]\.name: u is defined twice/);
    await refuse('e-yaml.yaml', 'clusters: [\n', /not valid YAML/);
  });
});

describe('loadKubeConnection in-cluster', () => {
  function serviceAccount(token: string): string {
    const sa = mkdtempSync(join(tmpdir(), 'ovnode-sa-'));
    cleanups.push(() => rmSync(sa, { recursive: true, force: true }));
    writeFileSync(join(sa, 'token'), token);
    writeFileSync(join(sa, 'ca.crt'), pem('ca.crt'));
    writeFileSync(join(sa, 'namespace'), 'kube-system\n');
    return sa;
  }

  it('uses the service account token and CA, and re-reads a rotated token after a 401', async () => {
    const tokens = new Set(['first']);
    const server = await tlsServer({ tokens });
    const sa = serviceAccount('first');
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(server.port) };
    const conn = await loadKubeConnection({ env, serviceAccountDir: sa });
    expect(conn.server.href).toBe(`https://127.0.0.1:${server.port}/`);
    expect(conn.namespace).toBe('kube-system');
    const api = new HttpKubeApi(conn);
    cleanups.push(() => api.close());
    expect(await getNamespaces(api)).toBe(200);

    // kubelet rotates the bound token; the old one stops being accepted.
    writeFileSync(join(sa, 'token'), 'second');
    tokens.add('second');
    tokens.delete('first');
    expect(await getNamespaces(api)).toBe(200);
    expect(server.requests.map((r) => r.authorization)).toEqual(['Bearer first', 'Bearer first', 'Bearer second']);
  });

  it('picks up a rotated token at the next refresh, without its trailing newline, and a rotated CA', async () => {
    const tokens = new Set(['first', 'second']);
    const server = await tlsServer({ tokens });
    const sa = serviceAccount('first\n');
    let now = 2_000_000;
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(server.port) };
    const conn = await loadKubeConnection({ env, serviceAccountDir: sa, refreshMs: 60_000, now: () => now });
    const api = new HttpKubeApi(conn);
    cleanups.push(() => api.close());
    expect(await getNamespaces(api)).toBe(200);
    writeFileSync(join(sa, 'token'), 'second\n');
    expect(await getNamespaces(api)).toBe(200); // still fresh
    now += 60_001;
    expect(await getNamespaces(api)).toBe(200);
    expect(server.requests.map((r) => r.authorization)).toEqual(['Bearer first', 'Bearer first', 'Bearer second']);
    const before = (await conn.credentials()).tlsId;
    writeFileSync(join(sa, 'ca.crt'), `${pem('ca.crt')}${pem('server.crt')}`);
    now += 60_001;
    const after = await conn.credentials();
    expect(after.tlsId).not.toBe(before);
    expect(after.tls.ca?.toString()).toContain(pem('server.crt').trim());
  });

  it('keeps the last token while the file is briefly gone', async () => {
    const sa = serviceAccount('kept');
    let now = 3_000_000;
    const conn = await loadKubeConnection({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: sa, now: () => now });
    unlinkSync(join(sa, 'token'));
    now += 60_001;
    expect((await conn.credentials()).headers).toEqual({ Authorization: 'Bearer kept' });
  });

  it('brackets an IPv6 service host', async () => {
    const sa = serviceAccount('t');
    const conn = await loadKubeConnection({ env: { KUBERNETES_SERVICE_HOST: 'fd00:10:96::1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: sa });
    expect(conn.server.href).toBe('https://[fd00:10:96::1]/');
  });

  it('says what is missing outside a cluster', async () => {
    await expect(loadKubeConnection({ env: {} })).rejects.toThrow(/KUBERNETES_SERVICE_HOST.*--kubeconfig/);
    const empty = mkdtempSync(join(tmpdir(), 'ovnode-sa-'));
    cleanups.push(() => rmSync(empty, { recursive: true, force: true }));
    mkdirSync(join(empty, 'sub'));
    await expect(loadKubeConnection({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: join(empty, 'sub') }))
      .rejects.toThrow(/token is missing/);
  });
});
