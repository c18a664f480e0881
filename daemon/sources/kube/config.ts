// Where the API server is and how to authenticate to it: in-cluster (the pod's service account)
// or a kubeconfig file (--kubeconfig). This module turns either into what http-api.ts needs: the
// server URL, TLS material for one keep-alive agent, and request headers.
//
// The common credential forms are resolved here without @kubernetes/client-node, whose import
// alone costs ~77 MB of RSS (measured: node 39 MB -> 116 MB) against a 150 MB budget: the
// service account (credentials.ts), and a kubeconfig user's client certificate, token, tokenFile
// or username/password (kubeconfig-file.ts reads the file with client-go's rules). Only a user
// with an `exec` credential plugin or an `auth-provider` (oidc, gcp, azure, ...) needs the
// library, and only then is it imported.
//
// Credentials are resolved again after `refreshMs` (and at once after a 401): kubelet rewrites a
// bound service account token well before it expires, and a kubeconfig's certificate or token
// file may be rotated the same way, so a value read once at start would stop working.

import type { RequestOptions } from 'node:https';
import { impersonationHeaders, inClusterCredentials, inClusterTarget, kubeconfigCredentials, tlsIdOf, withTlsId } from './credentials';
import { KubeConfigError } from './errors';
import { readKubeconfig, type KubeconfigSelection } from './kubeconfig-file';

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
 * kept as import() in node16 output and works everywhere. It also keeps the library's cost out of
 * every configuration that does not need a credential plugin.
 */
function loadClientNode(): Promise<ClientNode> {
  clientNode ??= import('@kubernetes/client-node');
  return clientNode;
}

/** Whether this process has imported @kubernetes/client-node (only exec / auth-provider users need it). */
export function clientNodeLoaded(): boolean {
  return clientNode !== undefined;
}

/** Reads the configuration now (so a bad one fails at start) and returns a connection that keeps its credentials fresh. */
export async function loadKubeConnection(source: KubeConfigSource = {}): Promise<KubeConnection> {
  let server: URL;
  let namespace: string | undefined;
  let resolve: () => Promise<KubeCredentials>;
  const file = source.kubeconfig;
  if (file !== undefined) {
    const first = readKubeconfig(file, source.context);
    server = first.cluster.server;
    namespace = first.namespace;
    // The file is read again at every refresh: its user may have been rewritten with new material.
    resolve = async () => {
      const sel = readKubeconfig(file, source.context);
      return sel.user.plugin !== undefined ? viaClientNode(sel) : kubeconfigCredentials(sel);
    };
  } else {
    const target = inClusterTarget(source.env ?? process.env, source.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
    server = target.server;
    namespace = target.namespace;
    resolve = async () => inClusterCredentials(target);
  }
  const connection = new RefreshingConnection(server, namespace, resolve, source);
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

class RefreshingConnection implements KubeConnection {
  readonly #resolveNow: () => Promise<KubeCredentials>;
  readonly #refreshMs: number;
  readonly #now: () => number;
  #current: { creds: KubeCredentials; at: number } | undefined;
  #pending: Promise<KubeCredentials> | undefined;
  #stale = false;

  constructor(readonly server: URL, readonly namespace: string | undefined, resolve: () => Promise<KubeCredentials>, source: KubeConfigSource) {
    this.#resolveNow = resolve;
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
      const creds = await this.#resolveNow();
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

/**
 * An exec or auth-provider user: @kubernetes/client-node loads the same file and runs the plugin
 * (a fresh KubeConfig each time, so a plugin runs again at every refresh). The agent it also
 * builds is discarded: http-api.ts keeps one keep-alive agent of its own. (It refuses an http
 * server unless insecure-skip-tls-verify.)
 */
async function viaClientNode(sel: KubeconfigSelection): Promise<KubeCredentials> {
  const { KubeConfig } = await loadClientNode();
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(sel.file);
  } catch (err) {
    throw new KubeConfigError(`kubeconfig ${sel.file}: ${(err as Error).message}`, { cause: err });
  }
  kc.setCurrentContext(sel.context);
  const opts: RequestOptions = { headers: {} };
  await kc.applyToHTTPSOptions(opts);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (v === undefined) continue;
    headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  if (headers.Authorization !== undefined) headers.Authorization = headers.Authorization.trim();
  // client-node sends Impersonate-User only; the same headers as for every other user.
  if (sel.user.impersonate !== undefined) Object.assign(headers, impersonationHeaders(sel.user.impersonate));
  const tls: TlsMaterial = {};
  if (opts.ca !== undefined) tls.ca = asBuffer(opts.ca);
  if (opts.cert !== undefined) tls.cert = asBuffer(opts.cert);
  if (opts.key !== undefined) tls.key = asBuffer(opts.key);
  if (opts.pfx !== undefined) tls.pfx = asBuffer(opts.pfx);
  if (typeof opts.passphrase === 'string') tls.passphrase = opts.passphrase;
  if (typeof opts.servername === 'string') tls.servername = opts.servername;
  if (typeof opts.rejectUnauthorized === 'boolean') tls.rejectUnauthorized = opts.rejectUnauthorized;
  return withTlsId(tls, headers);
}

function asBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'string') return Buffer.from(v);
  throw new KubeConfigError('kubeconfig: TLS material given in a form ovnoded does not handle (a list of certificates)');
}
