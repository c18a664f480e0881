// Where the API server is and how to authenticate to it: in-cluster (the pod's service account)
// or a kubeconfig file (--kubeconfig). @kubernetes/client-node's KubeConfig parses the file and
// resolves every credential form it knows (client certificates, tokens, token files, exec and
// OIDC plugins, basic auth); this module turns its answer into what http-api.ts needs: the server
// URL, TLS material for one keep-alive agent, and request headers.
//
// Credentials are resolved again after `refreshMs` (and at once after a 401): kubelet rewrites a
// bound service account token well before it expires, and a kubeconfig's certificate or token
// file may be rotated the same way, so a value read once at start would stop working.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, join } from 'node:path';
// Type-only: erased from the output, so it costs nothing at run time (see loadClientNode).
import type { KubeConfig } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { parse as parseYaml } from 'yaml';
import { KubeConfigError } from './errors';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConfigSource {
  /** A kubeconfig file (`--kubeconfig`); absent means in-cluster. */
  kubeconfig?: string;
  /** A context of that file other than its current-context. */
  context?: string;
  /** In-cluster: where KUBERNETES_SERVICE_HOST/PORT are read (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** In-cluster: the directory holding token, ca.crt and namespace (default SERVICE_ACCOUNT_DIR). */
  serviceAccountDir?: string;
  /** Credentials older than this are resolved again before the next request (default 60 s, as client-go). */
  refreshMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** TLS settings for the agent; absent fields keep Node's defaults (system CAs, verification on). */
export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  pfx?: Buffer;
  passphrase?: string;
  servername?: string;
  rejectUnauthorized?: boolean;
}

export interface KubeCredentials {
  tls: TlsMaterial;
  /** Authorization and, when configured, Impersonate-User. */
  headers: Readonly<Record<string, string>>;
  /** Equal whenever the TLS material is: the HTTP layer rebuilds its agent only when this changes. */
  tlsId: string;
}

/** What the HTTP layer connects with. */
export interface KubeConnection {
  /** Base URL of the API server (https; http for tests and a local `kubectl proxy`). */
  readonly server: URL;
  /** The context's namespace, or the service account's; undefined if neither says. */
  readonly namespace: string | undefined;
  /** Credentials for the next request; cheap while they are fresh. */
  credentials(): Promise<KubeCredentials>;
  /** The server refused them (401): the next credentials() resolves everything again. */
  invalidate(): void;
}

type ClientNode = typeof import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } });

let clientNode: Promise<ClientNode> | undefined;

/**
 * @kubernetes/client-node 1.x is an ES module and this project compiles to CommonJS (module
 * node16). TypeScript refuses a static import of an ES module from CommonJS (TS1479) because it
 * would emit require(), which only Node >= 20.19 accepts for ES modules; a dynamic import() is
 * kept as import() in node16 output and works everywhere. It also defers the library's cost
 * (about 60 MB of RSS and most of a second, measured on Node 20) to cluster mode: the embedded
 * mode never loads it.
 */
function loadClientNode(): Promise<ClientNode> {
  clientNode ??= import('@kubernetes/client-node');
  return clientNode;
}

/** Reads the configuration now (so a bad one fails at start) and returns a connection that keeps its credentials fresh. */
export async function loadKubeConnection(source: KubeConfigSource = {}): Promise<KubeConnection> {
  const { KubeConfig } = await loadClientNode();
  const load = source.kubeconfig !== undefined ? () => fromFile(new KubeConfig(), source) : () => ({ kc: inCluster(new KubeConfig(), source) });
  const first = load().kc;
  const cluster = first.getCurrentCluster();
  if (!cluster) throw new KubeConfigError('kubeconfig: the current context names no cluster');
  if (cluster.proxyUrl) {
    throw new KubeConfigError(`kubeconfig: cluster ${cluster.name} uses proxy-url ${cluster.proxyUrl}, which ovnoded does not support`);
  }
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch {
    throw new KubeConfigError(`kubeconfig: cluster ${cluster.name} has an invalid server URL ${JSON.stringify(cluster.server)}`);
  }
  if (server.protocol !== 'https:' && server.protocol !== 'http:') {
    throw new KubeConfigError(`kubeconfig: cluster ${cluster.name} server ${cluster.server} is neither https nor http`);
  }
  const namespace = first.getContextObject(first.getCurrentContext())?.namespace ?? undefined;
  const connection = new RefreshingConnection(server, namespace, load, source);
  await connection.credentials();
  return connection;
}

/** A connection with fixed credentials: tests, or an http URL of a local proxy that adds its own. */
export function staticConnection(server: string | URL, creds: Partial<Pick<KubeCredentials, 'tls' | 'headers'>> = {}): KubeConnection {
  const tls = creds.tls ?? {};
  const fixed: KubeCredentials = { tls, headers: creds.headers ?? {}, tlsId: tlsIdOf(tls) };
  return {
    server: new URL(server),
    namespace: undefined,
    credentials: () => Promise.resolve(fixed),
    invalidate: () => {},
  };
}

/** A parsed configuration, and the kubeconfig `tokenFile` client-node leaves unread. */
interface Loaded {
  kc: KubeConfig;
  tokenFile?: string;
}

function fromFile(kc: KubeConfig, source: KubeConfigSource): Loaded {
  const file = source.kubeconfig as string;
  try {
    kc.loadFromFile(file);
  } catch (err) {
    throw new KubeConfigError(`kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (source.context !== undefined) {
    if (!kc.getContextObject(source.context)) throw new KubeConfigError(`kubeconfig ${file}: no context named ${source.context}`);
    kc.setCurrentContext(source.context);
  }
  const tokenFile = tokenFileOf(file, kc.getCurrentUser()?.name);
  return tokenFile === undefined ? { kc } : { kc, tokenFile };
}

/**
 * The user's `tokenFile` (kubeconfig v1's camel-case key, which client-go reads and re-reads).
 * client-node 1.x only knows a `token-file` key, and reads it once; a relative path is relative
 * to the kubeconfig file, as for certificates.
 */
function tokenFileOf(file: string, userName: string | undefined): string | undefined {
  if (userName === undefined) return undefined;
  const doc = parseYaml(readFileSync(file, 'utf8')) as { users?: Array<{ name?: string; user?: { tokenFile?: unknown } }> } | null;
  const path = doc?.users?.find((u) => u.name === userName)?.user?.tokenFile;
  if (typeof path !== 'string' || path === '') return undefined;
  return isAbsolute(path) ? path : join(dirname(file), path);
}

// KubeConfig.loadFromCluster reads process.env and fixed paths; this is the same construction
// with both injectable, always over https (the service's port is TLS in every real cluster).
function inCluster(kc: KubeConfig, source: KubeConfigSource): KubeConfig {
  const env = source.env ?? process.env;
  const dir = source.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
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
  const hostPart = isIPv6(host) ? `[${host}]` : host;
  kc.loadFromClusterAndUser(
    { name: 'in-cluster', server: `https://${hostPart}:${port}`, caFile, skipTLSVerify: false },
    // The tokenFile auth provider re-reads the file; a fresh KubeConfig per refresh makes it do so now.
    { name: 'service-account', authProvider: { name: 'tokenFile', config: { tokenFile } } },
  );
  const nsFile = join(dir, 'namespace');
  if (existsSync(nsFile)) {
    const ns = readFileSync(nsFile, 'utf8').trim();
    const ctx = kc.getContextObject(kc.getCurrentContext());
    if (ctx && ns) kc.contexts = [{ ...ctx, namespace: ns }];
  }
  return kc;
}

class RefreshingConnection implements KubeConnection {
  readonly #load: () => Loaded;
  readonly #refreshMs: number;
  readonly #now: () => number;
  #current: { creds: KubeCredentials; at: number } | undefined;
  #pending: Promise<KubeCredentials> | undefined;
  #stale = false;

  constructor(readonly server: URL, readonly namespace: string | undefined, load: () => Loaded, source: KubeConfigSource) {
    this.#load = load;
    this.#refreshMs = source.refreshMs ?? 60_000;
    this.#now = source.now ?? Date.now;
  }

  credentials(): Promise<KubeCredentials> {
    const cur = this.#current;
    if (cur && !this.#stale && this.#now() - cur.at < this.#refreshMs) return Promise.resolve(cur.creds);
    this.#pending ??= this.#resolve().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  invalidate(): void {
    this.#stale = true;
  }

  async #resolve(): Promise<KubeCredentials> {
    this.#stale = false;
    try {
      const creds = await resolveCredentials(this.#load());
      this.#current = { creds, at: this.#now() };
      return creds;
    } catch (err) {
      // A file caught mid-rotation: what worked a minute ago is the best guess; try again soon.
      const prev = this.#current;
      if (!prev) throw err instanceof KubeConfigError ? err : new KubeConfigError(`credentials: ${(err as Error).message}`, { cause: err });
      prev.at = this.#now() - this.#refreshMs + Math.min(this.#refreshMs, 5_000);
      return prev.creds;
    }
  }
}

async function resolveCredentials({ kc, tokenFile }: Loaded): Promise<KubeCredentials> {
  const opts: RequestOptions = { headers: {} };
  // Resolves files, tokens and plugins; the agent it also builds is discarded: http-api.ts keeps
  // one keep-alive agent of its own. (It refuses an http server unless insecure-skip-tls-verify.)
  await kc.applyToHTTPSOptions(opts);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (v === undefined) continue;
    headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  // As client-go: an inline token wins over tokenFile; a file's trailing newline is not part of it.
  if (headers.Authorization === undefined && tokenFile !== undefined) headers.Authorization = `Bearer ${readFileSync(tokenFile, 'utf8')}`;
  if (headers.Authorization !== undefined) headers.Authorization = headers.Authorization.trim();
  const tls: TlsMaterial = {};
  if (opts.ca !== undefined) tls.ca = asBuffer(opts.ca);
  if (opts.cert !== undefined) tls.cert = asBuffer(opts.cert);
  if (opts.key !== undefined) tls.key = asBuffer(opts.key);
  if (opts.pfx !== undefined) tls.pfx = asBuffer(opts.pfx);
  if (typeof opts.passphrase === 'string') tls.passphrase = opts.passphrase;
  if (typeof opts.servername === 'string') tls.servername = opts.servername;
  if (typeof opts.rejectUnauthorized === 'boolean') tls.rejectUnauthorized = opts.rejectUnauthorized;
  return { tls, headers, tlsId: tlsIdOf(tls) };
}

function asBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'string') return Buffer.from(v);
  throw new KubeConfigError('kubeconfig: TLS material given in a form ovnoded does not handle (a list of certificates)');
}

function tlsIdOf(tls: TlsMaterial): string {
  const h = createHash('sha256');
  for (const k of ['ca', 'cert', 'key', 'pfx', 'passphrase', 'servername', 'rejectUnauthorized'] as const) {
    const v = tls[k];
    h.update(`${k}:`);
    h.update(Buffer.isBuffer(v) ? v : String(v));
    h.update(';');
  }
  return h.digest('hex');
}
