// The credentials ovnoded resolves itself, read again at every refresh so that rotated files are
// picked up: the pod's service account (token, CA) and a kubeconfig user's client certificate,
// bearer token, token file or username/password, plus impersonation headers. What client-go
// checks when it builds its transport is checked here too (a certificate must parse and match
// its key, a token file must not be empty), so that a broken file fails at start with its name.

import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import type { KubeCredentials, TlsMaterial } from './config';
import { KubeConfigError } from './errors';
import type { FileOrData, Impersonation, KubeconfigSelection } from './kubeconfig-file';

export interface InClusterTarget {
  readonly server: URL;
  readonly namespace: string | undefined;
  readonly tokenFile: string;
  readonly caFile: string;
}

/** Where the API server is, from the service's env and the mounted service account; read once. */
export function inClusterTarget(env: Readonly<Record<string, string | undefined>>, dir: string): InClusterTarget {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubeConfigError('not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset; pass --kubeconfig');
  }
  const tokenFile = join(dir, 'token');
  const caFile = join(dir, 'ca.crt');
  for (const f of [tokenFile, caFile]) {
    if (!existsSync(f)) throw new KubeConfigError(`in-cluster: ${f} is missing (is a service account token mounted?)`);
  }
  // Always https: the service's port is TLS in every real cluster.
  const raw = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  let server: URL;
  try {
    server = new URL(raw);
  } catch {
    throw new KubeConfigError(`in-cluster: KUBERNETES_SERVICE_HOST/PORT make no URL: ${raw}`);
  }
  const nsFile = join(dir, 'namespace');
  const ns = existsSync(nsFile) ? readFileSync(nsFile, 'utf8').trim() : '';
  return { server, namespace: ns === '' ? undefined : ns, tokenFile, caFile };
}

/** The service account's token (kubelet rewrites it well before it expires) and CA, read now. */
export function inClusterCredentials(target: InClusterTarget): KubeCredentials {
  const token = readToken(target.tokenFile, 'in-cluster');
  const ca = readFile(target.caFile, 'in-cluster');
  checkCa(ca, `in-cluster: ${target.caFile}`);
  return withTlsId({ ca }, { Authorization: `Bearer ${token}` });
}

/** A kubeconfig user without an exec or auth-provider plugin (readKubeconfig checked the combinations). */
export function kubeconfigCredentials(sel: KubeconfigSelection): KubeCredentials {
  const { cluster, user } = sel;
  const prefix = `kubeconfig ${sel.file}:`;
  const cw = `${prefix} cluster "${cluster.name}"`;
  const uw = `${prefix} user "${user.name ?? ''}"`;
  const tls: TlsMaterial = {};
  if (cluster.ca !== undefined) {
    tls.ca = material(cluster.ca, cw, 'certificate-authority');
    checkCa(tls.ca, fieldName(cw, cluster.ca, 'certificate-authority'));
  }
  if (cluster.insecureSkipTlsVerify) tls.rejectUnauthorized = false;
  if (cluster.tlsServerName !== undefined) tls.servername = cluster.tlsServerName;
  if (user.clientCertificate !== undefined && user.clientKey !== undefined) {
    tls.cert = material(user.clientCertificate, uw, 'client-certificate');
    tls.key = material(user.clientKey, uw, 'client-key');
    checkKeyPair(tls.cert, tls.key, fieldName(uw, user.clientCertificate, 'client-certificate'), fieldName(uw, user.clientKey, 'client-key'));
  }
  const headers: Record<string, string> = {};
  // As client-go: an inline token wins over tokenFile, which is read again at every refresh.
  if (user.token !== undefined) headers.Authorization = `Bearer ${headerValue(user.token.trim(), `${uw} token`)}`;
  else if (user.tokenFile !== undefined) headers.Authorization = `Bearer ${readToken(user.tokenFile, `${uw} tokenFile`)}`;
  else if (user.basic !== undefined) headers.Authorization = `Basic ${Buffer.from(`${user.basic.username}:${user.basic.password}`).toString('base64')}`;
  if (user.impersonate !== undefined) Object.assign(headers, impersonationHeaders(user.impersonate));
  return withTlsId(tls, headers);
}

export function impersonationHeaders(imp: Impersonation): Record<string, string> {
  const h: Record<string, string> = { 'Impersonate-User': imp.user };
  if (imp.uid !== undefined) h['Impersonate-Uid'] = imp.uid;
  if (imp.group !== undefined) h['Impersonate-Group'] = imp.group;
  for (const [k, v] of imp.extra) h[`Impersonate-Extra-${headerKeyEscape(k)}`] = v;
  for (const [k, v] of Object.entries(h)) headerValue(v, `impersonation header ${k}`);
  return h;
}

export function withTlsId(tls: TlsMaterial, headers: Record<string, string>): KubeCredentials {
  return { tls, headers, tlsId: tlsIdOf(tls) };
}

export function tlsIdOf(tls: TlsMaterial): string {
  const h = createHash('sha256');
  for (const k of ['ca', 'cert', 'key', 'pfx', 'passphrase', 'servername', 'rejectUnauthorized'] as const) {
    const v = tls[k];
    h.update(`${k}:`);
    h.update(Buffer.isBuffer(v) ? v : String(v));
    h.update(';');
  }
  return h.digest('hex');
}

function fieldName(where: string, m: FileOrData, key: string): string {
  return 'file' in m ? `${where} ${key} ${m.file}` : `${where} ${key}-data`;
}

function material(m: FileOrData, where: string, key: string): Buffer {
  return 'file' in m ? readFile(m.file, `${where} ${key}`) : m.data;
}

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    // Node's message ends with ", open '<path>'", which the message already names.
    const reason = (err as Error).message.replace(/, \w+ '.*'$/, '');
    throw new KubeConfigError(`${what}: cannot read ${path}: ${reason}`, { cause: err });
  }
}

/** client-go's file token source: surrounding white space is not part of the token; empty is an error. */
function readToken(path: string, what: string): string {
  const token = readFile(path, what).toString('utf8').trim();
  if (token === '') throw new KubeConfigError(`${what}: ${path} is empty`);
  return headerValue(token, what);
}

/** Node refuses such a header on every request; better said once, here, with the field. */
function headerValue(v: string, what: string): string {
  if (/[^\t\x20-\x7e\x80-\xff]/.test(v)) throw new KubeConfigError(`${what}: holds characters an HTTP header cannot carry`);
  return v;
}

function checkCa(ca: Buffer, what: string): void {
  try {
    // The first certificate of the bundle; enough to tell a CA file from something else.
    new X509Certificate(ca);
  } catch (err) {
    throw new KubeConfigError(`${what}: not a PEM certificate (${(err as Error).message})`, { cause: err });
  }
}

function checkKeyPair(cert: Buffer, key: Buffer, certWhat: string, keyWhat: string): void {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new KubeConfigError(`${certWhat}: not a PEM certificate (${(err as Error).message})`, { cause: err });
  }
  let k: ReturnType<typeof createPrivateKey>;
  try {
    k = createPrivateKey(key);
  } catch (err) {
    throw new KubeConfigError(`${keyWhat}: not an unencrypted PEM private key (${(err as Error).message})`, { cause: err });
  }
  if (!x509.checkPrivateKey(k)) throw new KubeConfigError(`${keyWhat}: not the key of the client certificate`);
}

/**
 * client-go's escaping of an Impersonate-Extra-<key>: bytes outside an HTTP token, and `%`,
 * become %XX (the API server unescapes them).
 */
function headerKeyEscape(key: string): string {
  let out = '';
  for (const b of Buffer.from(key, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /^[A-Za-z0-9!#$&'*+\-.^_`|~]$/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
