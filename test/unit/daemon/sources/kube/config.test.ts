import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConnection } from '../../../../../daemon/sources/kube/config';
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

beforeAll(async () => {
  // The library's first load takes most of a second (more on a busy machine): not a test's time.
  await import('@kubernetes/client-node');
  dir = mkdtempSync(join(tmpdir(), 'ovnode-kubeconfig-'));
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=ovnode-test-ca');
  issue('server', '/CN=fake-apiserver', 'subjectAltName=IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n');
  issue('client', '/CN=system:node:test-node/O=system:nodes', 'extendedKeyUsage=clientAuth\n');
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tlsServer(opts: { requireClientCert?: boolean; tokens?: Set<string> } = {}): Promise<FakeApiServer> {
  const server = await FakeApiServer.start({
    tls: { key: pem('server.key'), cert: pem('server.crt'), ca: pem('ca.crt'), requireClientCert: opts.requireClientCert ?? false },
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
