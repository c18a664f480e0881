// Reads a kubeconfig file (clientcmd's v1 Config) and picks the context ovnoded uses, with
// client-go's rules: --context over current-context; relative paths are relative to the file's
// directory; `-data` fields are standard base64; a `-data` field and its file form together, a
// certificate without a key, a token together with a username, or insecure-skip-tls-verify with
// a CA are refused, as kubectl refuses them. Whatever is wrong is reported with the file and the
// field, at start, not as a 401 an hour later.
//
// Users with an `exec` credential plugin or an `auth-provider` are only recognised here: their
// credentials come from @kubernetes/client-node (config.ts), which costs ~80 MB of RSS to load.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument, visit } from 'yaml';
import { KubeConfigError } from './errors';

/** A file to read, or the bytes a `-data` field held. */
export type FileOrData = { readonly file: string } | { readonly data: Buffer };

export interface KubeconfigCluster {
  readonly name: string;
  readonly server: URL;
  readonly ca?: FileOrData;
  readonly insecureSkipTlsVerify: boolean;
  readonly tlsServerName?: string;
}

/** Impersonation as client-go sends it: Impersonate-User, -Uid, -Group and -Extra-<key>. */
export interface Impersonation {
  readonly user: string;
  readonly uid?: string;
  readonly group?: string;
  readonly extra: ReadonlyArray<readonly [key: string, value: string]>;
}

export interface KubeconfigUser {
  /** Absent when the context names no user (anonymous, as client-go). */
  readonly name?: string;
  /** Credentials only @kubernetes/client-node resolves; the fields below are then not read. */
  readonly plugin?: 'exec' | 'auth-provider';
  readonly clientCertificate?: FileOrData;
  readonly clientKey?: FileOrData;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly basic?: { readonly username: string; readonly password: string };
  readonly impersonate?: Impersonation;
}

export interface KubeconfigSelection {
  /** The kubeconfig file, as given. */
  readonly file: string;
  /** The context in use (--context, or current-context). */
  readonly context: string;
  readonly namespace: string | undefined;
  readonly cluster: KubeconfigCluster;
  readonly user: KubeconfigUser;
}

type Obj = Record<string, unknown>;

/** Reads `file` and resolves the context `context` (default: the file's current-context). */
export function readKubeconfig(file: string, context?: string): KubeconfigSelection {
  const r = new FieldReader(file, dirname(resolve(file)));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new KubeConfigError(`kubeconfig ${file}: cannot read it: ${(err as Error).message.replace(/, \w+ '.*'$/, '')}`, { cause: err });
  }
  const doc = r.parse(text);

  const clusters = r.named(doc, 'clusters', 'cluster');
  const users = r.named(doc, 'users', 'user');
  const contexts = r.named(doc, 'contexts', 'context');
  const contextName = context ?? r.str(doc, 'current-context', 'current-context');
  if (contextName === undefined) throw r.error('current-context', 'not set, and no --context given');
  const ctx = contexts.get(contextName);
  if (ctx === undefined) throw r.error(`context "${contextName}"`, `no context named ${contextName}`);

  const where = `context "${contextName}"`;
  const clusterName = r.str(ctx, 'cluster', where);
  if (clusterName === undefined) throw r.error(`${where} cluster`, 'not set');
  const clusterObj = clusters.get(clusterName);
  if (clusterObj === undefined) throw r.error(`${where} cluster`, `no cluster named ${clusterName}`);
  const userName = r.str(ctx, 'user', where);
  let userObj: Obj = {};
  if (userName !== undefined) {
    const u = users.get(userName);
    // client-go would go on anonymously; a daemon that then sees 403s everywhere helps nobody.
    if (u === undefined) throw r.error(`${where} user`, `no user named ${userName}`);
    userObj = u;
  }
  const user = r.user(userName, userObj);
  const cluster = r.cluster(clusterName, clusterObj, user.clientCertificate !== undefined);
  return { file, context: contextName, namespace: r.str(ctx, 'namespace', where), cluster, user };
}

class FieldReader {
  constructor(readonly file: string, readonly dir: string) {}

  error(field: string, message: string): KubeConfigError {
    return new KubeConfigError(`kubeconfig ${this.file}: ${field}: ${message}`);
  }

  parse(text: string): Obj {
    const doc = parseDocument(text, { uniqueKeys: true });
    if (doc.errors.length > 0) throw new KubeConfigError(`kubeconfig ${this.file}: not valid YAML: ${doc.errors[0]?.message ?? ''}`);
    // Every kubeconfig field is a string or a boolean. Go reads `password: 0123` as the string
    // "0123"; the YAML 1.2 core schema would make it the number 123.
    visit(doc, {
      Scalar(_key, node) {
        if (typeof node.value === 'number' && typeof node.source === 'string') node.value = node.source;
      },
    });
    const js: unknown = doc.toJS();
    if (js === null || js === undefined) return {};
    if (!isObj(js)) throw new KubeConfigError(`kubeconfig ${this.file}: not a kubeconfig (the document is not a mapping)`);
    return js;
  }

  /** clusters / users / contexts: a list of {name, <inner>}; a name given twice is refused, as client-go does. */
  named(doc: Obj, list: string, inner: string): Map<string, Obj> {
    const out = new Map<string, Obj>();
    const items = doc[list];
    if (items === undefined || items === null) return out;
    if (!Array.isArray(items)) throw this.error(list, 'not a list');
    items.forEach((item: unknown, i) => {
      const where = `${list}[${i}]`;
      if (!isObj(item)) throw this.error(where, 'not a mapping');
      const name = this.str(item, 'name', where);
      if (name === undefined) throw this.error(`${where}.name`, 'missing');
      if (out.has(name)) throw this.error(`${where}.name`, `${name} is defined twice`);
      const body = item[inner];
      if (body !== undefined && body !== null && !isObj(body)) throw this.error(`${inner} "${name}"`, 'not a mapping');
      out.set(name, (body as Obj | null | undefined) ?? {});
    });
    return out;
  }

  /** A string field; empty means unset, as for Go's zero value. */
  str(obj: Obj, key: string, where: string): string | undefined {
    const v = obj[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw this.error(fieldOf(where, key), 'not a string');
    return v;
  }

  bool(obj: Obj, key: string, where: string): boolean {
    const v = obj[key];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw this.error(fieldOf(where, key), 'not true or false');
    return v;
  }

  /** A `-data` field: standard base64 (Go's encoding/json []byte), line breaks allowed. */
  data(obj: Obj, key: string, where: string): Buffer | undefined {
    const v = this.str(obj, key, where);
    if (v === undefined) return undefined;
    const s = v.replace(/[\r\n]/g, '');
    // Buffer.from(s, 'base64') skips what it does not understand; Go does not.
    if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw this.error(fieldOf(where, key), 'not valid base64');
    return Buffer.from(s, 'base64');
  }

  path(obj: Obj, key: string, where: string): string | undefined {
    const v = this.str(obj, key, where);
    return v === undefined ? undefined : resolve(this.dir, v);
  }

  /** `<key>` (a file) or `<key>-data`, not both. */
  fileOrData(obj: Obj, key: string, where: string): FileOrData | undefined {
    const file = this.path(obj, key, where);
    const data = this.data(obj, `${key}-data`, where);
    if (file !== undefined && data !== undefined) throw this.error(fieldOf(where, `${key}-data`), `set together with ${key}; give one of them`);
    if (data !== undefined) return { data };
    return file === undefined ? undefined : { file };
  }

  cluster(name: string, c: Obj, clientCert: boolean): KubeconfigCluster {
    const where = `cluster "${name}"`;
    const proxy = this.str(c, 'proxy-url', where);
    if (proxy !== undefined) throw this.error(fieldOf(where, 'proxy-url'), `${proxy}: ovnoded does not support an API server behind a proxy`);
    const raw = this.str(c, 'server', where);
    if (raw === undefined) throw this.error(fieldOf(where, 'server'), 'missing');
    const ca = this.fileOrData(c, 'certificate-authority', where);
    const insecure = this.bool(c, 'insecure-skip-tls-verify', where);
    if (insecure && ca !== undefined) {
      throw this.error(fieldOf(where, 'insecure-skip-tls-verify'), 'set together with a certificate-authority, which client-go refuses too');
    }
    // client-go: a server without a scheme is https when anything about TLS is configured.
    const withScheme = raw.includes('://') ? raw : `${ca !== undefined || clientCert || insecure ? 'https' : 'http'}://${raw}`;
    let server: URL;
    try {
      server = new URL(withScheme);
    } catch {
      throw this.error(fieldOf(where, 'server'), `${JSON.stringify(raw)} is not a URL`);
    }
    if (server.protocol !== 'https:' && server.protocol !== 'http:') throw this.error(fieldOf(where, 'server'), `${raw} is neither https nor http`);
    const tlsServerName = this.str(c, 'tls-server-name', where);
    return {
      name,
      server,
      insecureSkipTlsVerify: insecure,
      ...(ca !== undefined ? { ca } : {}),
      ...(tlsServerName !== undefined ? { tlsServerName } : {}),
    };
  }

  user(name: string | undefined, u: Obj): KubeconfigUser {
    const where = `user "${name ?? ''}"`;
    const impersonate = this.impersonation(u, where);
    const common = { ...(name !== undefined ? { name } : {}), ...(impersonate !== undefined ? { impersonate } : {}) };
    const hasExec = u.exec !== undefined && u.exec !== null;
    const hasProvider = u['auth-provider'] !== undefined && u['auth-provider'] !== null;
    if (hasExec || hasProvider) return { ...common, plugin: hasExec ? 'exec' : 'auth-provider' };

    const clientCertificate = this.fileOrData(u, 'client-certificate', where);
    const clientKey = this.fileOrData(u, 'client-key', where);
    // client-go ignores a key without a certificate; a certificate without a key cannot work.
    if (clientCertificate !== undefined && clientKey === undefined) throw this.error(fieldOf(where, 'client-key'), 'missing (client-certificate is set)');
    const token = this.str(u, 'token', where);
    const tokenFile = this.path(u, 'tokenFile', where);
    const username = this.str(u, 'username', where);
    const password = this.str(u, 'password', where);
    if (username === undefined && password !== undefined) throw this.error(fieldOf(where, 'username'), 'missing (password is set)');
    if (username !== undefined && (token !== undefined || tokenFile !== undefined)) {
      throw this.error(where, `both a ${token !== undefined ? 'token' : 'tokenFile'} and a username/password: only one authentication method is allowed`);
    }
    return {
      ...common,
      ...(clientCertificate !== undefined && clientKey !== undefined ? { clientCertificate, clientKey } : {}),
      ...(token !== undefined ? { token } : {}),
      ...(tokenFile !== undefined ? { tokenFile } : {}),
      ...(username !== undefined ? { basic: { username, password: password ?? '' } } : {}),
    };
  }

  impersonation(u: Obj, where: string): Impersonation | undefined {
    const user = this.str(u, 'as', where);
    const uid = this.str(u, 'as-uid', where);
    const groups = this.strings(u['as-groups'], fieldOf(where, 'as-groups'));
    const extraObj = u['as-user-extra'];
    const extra: Array<[string, string]> = [];
    if (extraObj !== undefined && extraObj !== null) {
      if (!isObj(extraObj)) throw this.error(fieldOf(where, 'as-user-extra'), 'not a mapping');
      for (const [k, v] of Object.entries(extraObj)) {
        const values = this.strings(v, `${fieldOf(where, 'as-user-extra')}.${k}`);
        if (values.length > 1) throw this.error(`${fieldOf(where, 'as-user-extra')}.${k}`, oneHeaderOnly);
        if (values[0] !== undefined) extra.push([k, values[0]]);
      }
    }
    if (user === undefined) {
      if (uid !== undefined || groups.length > 0 || extra.length > 0) throw this.error(fieldOf(where, 'as'), 'missing (as-uid, as-groups or as-user-extra need a user to impersonate)');
      return undefined;
    }
    if (groups.length > 1) throw this.error(fieldOf(where, 'as-groups'), oneHeaderOnly);
    return { user, extra, ...(uid !== undefined ? { uid } : {}), ...(groups[0] !== undefined ? { group: groups[0] } : {}) };
  }

  strings(v: unknown, field: string): string[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every((s): s is string => typeof s === 'string')) throw this.error(field, 'not a list of strings');
    return v;
  }
}

// Each group is a header line of its own for the API server (it does not split on commas), and
// KubeCredentials carries one value per header.
const oneHeaderOnly = 'more than one value; ovnoded sends one value per impersonation header';

function fieldOf(where: string, key: string): string {
  return `${where} ${key}`;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
