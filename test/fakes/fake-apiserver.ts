// FakeApiServer: a Kubernetes API server in memory for unit tests of the client layer
// (daemon/sources/kube). It models what the client relies on, with the apiserver's own answers:
// one global resourceVersion counter; list with limit/continue over a consistent snapshot
// (continue tokens expire with compaction: 410 Expired); watch from a resourceVersion replaying
// the event history, label/field selectors with the ADDED/DELETED a selector change implies,
// bookmarks, timeoutSeconds; a compaction point below which a watch gets 410 (as an ERROR event
// in a 200 stream, as the apiserver usually answers, or as a 410 answer); create (409
// AlreadyExists), get (404), update and merge-patch (409 Conflict on a stale resourceVersion;
// no-op writes change nothing), the status subresource, delete with uid/resourceVersion
// preconditions; bearer tokens and TLS client certificates. And faults a real server cannot be
// made to produce on demand: restart() drops every connection and refuses new ones for a while,
// dropWatches() cuts streams, inject() answers the next requests with an error or never.
//
// Not modelled: graceful deletion and finalizers, generateName, strategic merge (treated as a
// merge patch), JSON patch (415), server-side apply, resourceVersionMatch, watch-cache lag.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

export interface FakeResource {
  /** `/api/v1` or `/apis/GROUP/VERSION`. */
  prefix: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  /** Has a status subresource: writes to the object keep its status, writes to /status only change it. */
  status?: boolean;
}

export const FAKE_RESOURCES: Record<string, FakeResource> = {
  namespaces: { prefix: '/api/v1', plural: 'namespaces', kind: 'Namespace', namespaced: false, status: true },
  pods: { prefix: '/api/v1', plural: 'pods', kind: 'Pod', namespaced: true, status: true },
  nodes: { prefix: '/api/v1', plural: 'nodes', kind: 'Node', namespaced: false, status: true },
  networkpolicies: { prefix: '/apis/networking.k8s.io/v1', plural: 'networkpolicies', kind: 'NetworkPolicy', namespaced: true },
  subnets: { prefix: '/apis/kubeovn.io/v1', plural: 'subnets', kind: 'Subnet', namespaced: false, status: true },
};

export interface FakeApiServerOptions {
  resources?: FakeResource[];
  /** How a watch from a compacted resourceVersion is refused (default 'event'). */
  goneAs?: 'event' | 'status';
  /** Events kept for watches; older ones are compacted away (default: all). */
  historyLimit?: number;
  /** Serve https with these; `requireClientCert` answers 401 to a client without a certificate the CA signed. */
  tls?: { key: Buffer | string; cert: Buffer | string; ca?: Buffer | string; requireClientCert?: boolean };
  /** Accepted bearer tokens; absent: no token is checked. */
  tokens?: ReadonlySet<string>;
}

export interface FakeRequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  watch: boolean;
  authorization?: string;
  /** Subject CN of the client certificate, when one was presented and verified. */
  clientCN?: string;
}

export interface FakeFault {
  /** Answer with this status and a Status body; absent with `hang`: never answer. */
  status?: number;
  retryAfterSeconds?: number;
  hang?: boolean;
  /** How many requests it applies to (default 1). */
  times?: number;
  match?: (req: FakeRequestRecord) => boolean;
}

type Obj = Record<string, unknown> & { metadata: Meta };
interface Meta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  labels?: Record<string, string>;
  [k: string]: unknown;
}
export type FakeEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
interface HistoryEvent { rv: number; resource: FakeResource; type: FakeEventType; obj: Obj; old?: Obj }
interface Snapshot { rv: number; items: Obj[] }
interface Watcher {
  resource: FakeResource;
  namespace: string | undefined;
  match: (o: Obj) => boolean;
  res: http.ServerResponse;
  bookmarks: boolean;
  timer?: NodeJS.Timeout;
}
interface Answer { status: number; body: unknown }
interface Target { resource: FakeResource; namespace?: string; name?: string; subresource?: string }

/** An answer other than 2xx from one of the direct helpers (create, patch, ...). */
export class FakeApiError extends Error {
  constructor(readonly status: number, readonly body: unknown) {
    super(`fake apiserver answered ${status}: ${(body as { message?: string }).message ?? ''}`);
  }
}

export class FakeApiServer {
  readonly requests: FakeRequestRecord[] = [];
  readonly #opts: FakeApiServerOptions;
  readonly #resources: FakeResource[];
  readonly #store = new Map<string, Map<string, Obj>>();
  readonly #history: HistoryEvent[] = [];
  readonly #snapshots = new Map<string, Snapshot>();
  readonly #watchers = new Set<Watcher>();
  readonly #sockets = new Set<Socket>();
  readonly #hung = new Set<http.ServerResponse>();
  readonly #faults: Array<FakeFault & { left: number }> = [];
  readonly #requestWaiters = new Set<{ pred: (r: FakeRequestRecord) => boolean; resolve: (r: FakeRequestRecord) => void }>();
  readonly #idleWaiters: Array<() => void> = [];
  #server: http.Server | undefined;
  #port = 0;
  #rv = 1000;
  #compactedRv = 0;
  #snapshotSeq = 0;
  #accepted = 0;

  private constructor(opts: FakeApiServerOptions) {
    this.#opts = opts;
    this.#resources = opts.resources ?? Object.values(FAKE_RESOURCES);
    for (const r of this.#resources) this.#store.set(r.plural, new Map());
  }

  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(opts);
    await s.#listen(0);
    return s;
  }

  get url(): string {
    return `${this.#opts.tls ? 'https' : 'http'}://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** The last resourceVersion handed out. */
  get resourceVersion(): number {
    return this.#rv;
  }

  get compactedResourceVersion(): number {
    return this.#compactedRv;
  }

  /** TCP connections accepted so far (keep-alive reuse shows as fewer connections than requests). */
  get connectionsAccepted(): number {
    return this.#accepted;
  }

  get openWatches(): number {
    return this.#watchers.size;
  }

  // ---- direct access, as another client writing to the same cluster -------------------------

  create(plural: string, obj: Record<string, unknown>): Obj {
    const r = this.#resource(plural);
    const ns = r.namespaced ? ((obj.metadata as Meta | undefined)?.namespace ?? 'default') : undefined;
    return unwrap(this.#create({ resource: r, ...(ns !== undefined ? { namespace: ns } : {}) }, obj));
  }

  /** Replaces an object (uid and creation kept); with metadata.resourceVersion set it must be current. */
  replace(plural: string, obj: Record<string, unknown>): Obj {
    const r = this.#resource(plural);
    const meta = obj.metadata as Meta;
    return unwrap(this.#update(this.#target(r, meta.namespace, meta.name), obj));
  }

  patch(plural: string, namespace: string | undefined, name: string, patch: unknown, subresource?: 'status'): Obj {
    const t = this.#target(this.#resource(plural), namespace, name, subresource);
    return unwrap(this.#patch(t, patch, 'application/merge-patch+json'));
  }

  remove(plural: string, namespace: string | undefined, name: string): Obj {
    return unwrap(this.#delete(this.#target(this.#resource(plural), namespace, name), undefined));
  }

  get(plural: string, namespace: string | undefined, name: string): Obj | undefined {
    const r = this.#resource(plural);
    const o = this.#objects(r).get(keyOf(r.namespaced ? (namespace ?? 'default') : undefined, name));
    return o === undefined ? undefined : structuredClone(o);
  }

  /** Current objects of a resource, sorted by namespace/name. */
  items(plural: string): Obj[] {
    return sorted([...this.#objects(this.#resource(plural)).values()]).map((o) => structuredClone(o));
  }

  /** The change history still held (not compacted) for a resource, oldest first. */
  history(plural: string): Array<{ type: FakeEventType; key: string; rv: number }> {
    const r = this.#resource(plural);
    return this.#history.filter((e) => e.resource === r).map((e) => ({ type: e.type, key: keyOf(e.obj.metadata.namespace, e.obj.metadata.name), rv: e.rv }));
  }

  /** Resolves with the first request from now on that matches, once the fake has handled it (a watch: registered). */
  nextRequest(pred: (r: FakeRequestRecord) => boolean): Promise<FakeRequestRecord> {
    return new Promise((resolve) => this.#requestWaiters.add({ pred, resolve }));
  }

  /** Resolves once no watch is open. */
  watchesClosed(): Promise<void> {
    if (this.#watchers.size === 0) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  // ---- faults and time --------------------------------------------------------------------------

  /** Forgets history up to `rv` (default: now): watches from older versions and older continue tokens get 410. */
  compact(rv = this.#rv): void {
    this.#compactedRv = Math.max(this.#compactedRv, rv);
    while (this.#history.length > 0 && (this.#history[0] as HistoryEvent).rv <= this.#compactedRv) this.#history.shift();
  }

  /** A BOOKMARK at the current resourceVersion to every watch that asked for bookmarks. */
  bookmark(): void {
    for (const w of this.#watchers) {
      if (!w.bookmarks) continue;
      const apiVersion = w.resource.prefix.replace(/^\/apis?\//, '');
      write(w, { type: 'BOOKMARK', object: { kind: w.resource.kind, apiVersion, metadata: { resourceVersion: String(this.#rv) } } });
    }
  }

  /** Ends every open watch with an ERROR event carrying a Status of this code (as the apiserver does for a storage error). */
  watchError(code: number): void {
    for (const w of [...this.#watchers]) {
      this.#unwatch(w);
      write(w, { type: 'ERROR', object: status(code, code === 410 ? 'Expired' : 'InternalError', 'injected by the test') });
      w.res.end();
    }
  }

  /** Cuts every open watch: `clean` ends the streams properly (as timeoutSeconds does), else the sockets are destroyed. */
  dropWatches(opts: { clean?: boolean } = {}): void {
    for (const w of [...this.#watchers]) {
      this.#unwatch(w);
      if (opts.clean) w.res.end();
      else w.res.socket?.destroy();
    }
  }

  /** The next matching requests get `fault` instead of an answer. */
  inject(fault: FakeFault): void {
    this.#faults.push({ ...fault, left: fault.times ?? 1 });
  }

  /**
   * Drops every connection and refuses new ones for `downMs`, then listens again on the same
   * port. Objects, history and continue snapshots survive, as etcd does. Resolves once serving.
   */
  async restart(opts: { downMs?: number } = {}): Promise<void> {
    await this.#shutdown();
    await new Promise((r) => setTimeout(r, opts.downMs ?? 100));
    await this.#listen(this.#port);
  }

  async close(): Promise<void> {
    await this.#shutdown();
  }

  // ---- HTTP ---------------------------------------------------------------------------------------

  #listen(port: number): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) send(res, { status: 500, body: status(500, 'InternalError', String(err)) });
        else res.destroy();
      });
    };
    const tls = this.#opts.tls;
    const server = tls
      ? https.createServer({ key: tls.key, cert: tls.cert, ...(tls.ca ? { ca: tls.ca } : {}), requestCert: tls.requireClientCert ?? false, rejectUnauthorized: false }, handler)
      : http.createServer(handler);
    server.keepAliveTimeout = 60_000;
    server.on('connection', (s: Socket) => {
      this.#accepted++;
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        this.#port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  async #shutdown(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const w of [...this.#watchers]) this.#unwatch(w);
    this.#hung.clear();
    if (!server) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    server.closeAllConnections();
    await closed;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    const method = req.method ?? 'GET';
    const record: FakeRequestRecord = { method, path: url.pathname, query, watch: query.watch === 'true' || query.watch === '1' };
    if (req.headers.authorization !== undefined) record.authorization = req.headers.authorization;
    const sock = req.socket as TLSSocket;
    if (this.#opts.tls && sock.authorized) {
      const cn = sock.getPeerCertificate()?.subject?.CN;
      if (typeof cn === 'string') record.clientCN = cn;
    }
    this.requests.push(record);
    const body = await readBody(req);
    try {
      this.#dispatch(req, res, url, record, body);
    } finally {
      // After the dispatch: a watch is registered (and has replayed its history) by then.
      for (const w of [...this.#requestWaiters]) {
        if (!w.pred(record)) continue;
        this.#requestWaiters.delete(w);
        w.resolve(record);
      }
    }
  }

  #dispatch(req: http.IncomingMessage, res: http.ServerResponse, url: URL, record: FakeRequestRecord, body: Buffer): void {
    const { method, query } = record;
    const sock = req.socket as TLSSocket;

    const fault = this.#faults.find((f) => f.left > 0 && (!f.match || f.match(record)));
    if (fault) {
      fault.left--;
      if (fault.hang || fault.status === undefined) {
        this.#hung.add(res);
        return;
      }
      const headers: Record<string, string> = fault.retryAfterSeconds !== undefined ? { 'Retry-After': String(fault.retryAfterSeconds) } : {};
      const st = status(fault.status, fault.status === 429 ? 'TooManyRequests' : 'InternalError', 'injected by the test');
      if (fault.retryAfterSeconds !== undefined) st.details = { retryAfterSeconds: fault.retryAfterSeconds };
      send(res, { status: fault.status, body: st }, headers);
      return;
    }
    if (this.#opts.tls?.requireClientCert && !sock.authorized) {
      send(res, { status: 401, body: status(401, 'Unauthorized', 'Unauthorized') });
      return;
    }
    if (this.#opts.tokens) {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (token === undefined || !this.#opts.tokens.has(token)) {
        send(res, { status: 401, body: status(401, 'Unauthorized', 'Unauthorized') });
        return;
      }
    }

    const target = this.#route(url.pathname);
    if (!target) {
      send(res, { status: 404, body: status(404, 'NotFound', `the server could not find the requested resource (${url.pathname})`) });
      return;
    }
    let parsed: unknown;
    if (body.length > 0) {
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        send(res, { status: 400, body: status(400, 'BadRequest', 'request body is not JSON') });
        return;
      }
    }
    const isCollection = target.name === undefined;
    if (isCollection && method === 'GET' && record.watch) return this.#watch(target, query, res);
    if (isCollection && method === 'GET') return send(res, this.#list(target, query));
    if (isCollection && method === 'POST') return send(res, this.#create(target, parsed));
    if (!isCollection && method === 'GET') return send(res, this.#getAnswer(target));
    if (!isCollection && method === 'PUT') return send(res, this.#update(target, parsed));
    if (!isCollection && method === 'PATCH') return send(res, this.#patch(target, parsed, req.headers['content-type'] ?? ''));
    if (!isCollection && method === 'DELETE' && target.subresource === undefined) return send(res, this.#delete(target, parsed));
    send(res, { status: 405, body: status(405, 'MethodNotAllowed', `${method} is not supported on ${url.pathname}`) });
  }

  #route(pathname: string): Target | undefined {
    for (const r of this.#resources) {
      if (!pathname.startsWith(`${r.prefix}/`)) continue;
      const seg = pathname.slice(r.prefix.length + 1).split('/').filter((s) => s !== '');
      if (r.namespaced && seg[0] === 'namespaces' && seg[2] === r.plural && seg.length >= 3 && seg.length <= 5) {
        const t: Target = { resource: r, namespace: seg[1] as string };
        if (seg[3] !== undefined) t.name = seg[3];
        if (seg[4] !== undefined) t.subresource = seg[4];
        if (t.subresource === undefined || (t.subresource === 'status' && r.status)) return t;
      }
      if (seg[0] === r.plural && seg.length <= 3) {
        if (r.namespaced && seg.length > 1) continue;
        const t: Target = { resource: r };
        if (seg[1] !== undefined) t.name = seg[1];
        if (seg[2] !== undefined) t.subresource = seg[2];
        if (t.subresource === undefined || (t.subresource === 'status' && r.status)) return t;
      }
    }
    return undefined;
  }

  // ---- operations ------------------------------------------------------------------------------

  #list(t: Target, query: Record<string, string>): Answer {
    let snapshot: Snapshot;
    let offset = 0;
    if (query.continue) {
      const [id, off] = Buffer.from(query.continue, 'base64url').toString().split(':');
      const found = this.#snapshots.get(id ?? '');
      if (!found || found.rv < this.#compactedRv) {
        return { status: 410, body: status(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.') };
      }
      snapshot = found;
      offset = Number(off);
    } else {
      const match = this.#matcher(t, query);
      if (!match.ok) return match.answer;
      snapshot = { rv: this.#rv, items: sorted([...this.#objects(t.resource).values()].filter(match.fn)) };
    }
    const limit = Number(query.limit ?? 0);
    const end = limit > 0 ? Math.min(snapshot.items.length, offset + limit) : snapshot.items.length;
    const metadata: Record<string, unknown> = { resourceVersion: String(snapshot.rv) };
    if (end < snapshot.items.length) {
      let id = query.continue ? Buffer.from(query.continue, 'base64url').toString().split(':')[0] : undefined;
      if (id === undefined) {
        id = String(++this.#snapshotSeq);
        this.#snapshots.set(id, snapshot);
      }
      metadata.continue = Buffer.from(`${id}:${end}`).toString('base64url');
      metadata.remainingItemCount = snapshot.items.length - end;
    }
    const apiVersion = t.resource.prefix.replace(/^\/apis?\//, '');
    // As the apiserver writes a list: items without kind and apiVersion.
    const items = snapshot.items.slice(offset, end).map(({ kind: _k, apiVersion: _a, ...rest }) => rest);
    return { status: 200, body: { kind: `${t.resource.kind}List`, apiVersion, metadata, items } };
  }

  #watch(t: Target, query: Record<string, string>, res: http.ServerResponse): void {
    const match = this.#matcher(t, query);
    if (!match.ok) return send(res, match.answer);
    const from = query.resourceVersion;
    const rv = from === undefined || from === '' || from === '0' ? undefined : Number(from);
    if (rv !== undefined && (!Number.isFinite(rv) || rv < this.#compactedRv)) {
      const gone = status(410, 'Expired', `too old resource version: ${from} (${this.#compactedRv})`);
      if (this.#opts.goneAs === 'status') return send(res, { status: 410, body: gone });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(`${JSON.stringify({ type: 'ERROR', object: gone })}\n`);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = { resource: t.resource, namespace: t.namespace, match: match.fn, res, bookmarks: query.allowWatchBookmarks === 'true' };
    if (rv === undefined) {
      for (const o of sorted([...this.#objects(t.resource).values()])) if (this.#visible(w, o)) write(w, { type: 'ADDED', object: o });
    } else {
      for (const ev of this.#history) if (ev.rv > rv && ev.resource === t.resource) this.#deliver(w, ev);
    }
    this.#watchers.add(w);
    const seconds = Number(query.timeoutSeconds ?? 0);
    if (seconds > 0) {
      w.timer = setTimeout(() => {
        this.#unwatch(w);
        res.end();
      }, seconds * 1000);
    }
    res.once('close', () => this.#unwatch(w));
  }

  #getAnswer(t: Target): Answer {
    const cur = this.#objects(t.resource).get(keyOf(t.namespace, t.name as string));
    return cur ? { status: 200, body: cur } : notFound(t);
  }

  #create(t: Target, body: unknown): Answer {
    if (!isObj(body) || !isObj(body.metadata) || typeof body.metadata.name !== 'string' || body.metadata.name === '') {
      return { status: 422, body: status(422, 'Invalid', 'metadata.name: Required value: name is required') };
    }
    const meta = body.metadata as Record<string, unknown>;
    if (t.namespace !== undefined && meta.namespace !== undefined && meta.namespace !== t.namespace) {
      return { status: 400, body: status(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request') };
    }
    const objects = this.#objects(t.resource);
    const key = keyOf(t.namespace, meta.name as string);
    if (objects.has(key)) {
      const st = status(409, 'AlreadyExists', `${t.resource.plural} "${String(meta.name)}" already exists`);
      st.details = { name: meta.name, kind: t.resource.plural };
      return { status: 409, body: st };
    }
    const obj = structuredClone(body) as Obj;
    obj.kind = t.resource.kind;
    obj.apiVersion = t.resource.prefix.replace(/^\/apis?\//, '');
    obj.metadata = { ...obj.metadata, uid: randomUUID(), creationTimestamp: new Date().toISOString(), generation: 1, resourceVersion: '' };
    if (t.namespace !== undefined) obj.metadata.namespace = t.namespace;
    else delete obj.metadata.namespace;
    if (t.resource.status) delete obj.status;
    this.#commit(t.resource, 'ADDED', obj, undefined);
    return { status: 201, body: obj };
  }

  #update(t: Target, body: unknown): Answer {
    const cur = this.#objects(t.resource).get(keyOf(t.namespace, t.name as string));
    if (!cur) return notFound(t);
    if (!isObj(body)) return { status: 400, body: status(400, 'BadRequest', 'body is not an object') };
    const rv = (body.metadata as Meta | undefined)?.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== cur.metadata.resourceVersion) return conflict(t);
    return this.#write(t, cur, body as Obj);
  }

  #patch(t: Target, patch: unknown, contentType: string): Answer {
    if (contentType.startsWith('application/json-patch+json')) {
      return { status: 415, body: status(415, 'UnsupportedMediaType', 'the fake apiserver applies merge patches only') };
    }
    const cur = this.#objects(t.resource).get(keyOf(t.namespace, t.name as string));
    if (!cur) return notFound(t);
    if (!isObj(patch)) return { status: 400, body: status(400, 'BadRequest', 'a merge patch is a JSON object') };
    const rv = isObj(patch.metadata) ? patch.metadata.resourceVersion : undefined;
    if (typeof rv === 'string' && rv !== cur.metadata.resourceVersion) return conflict(t);
    return this.#write(t, cur, mergePatch(structuredClone(cur), patch) as Obj);
  }

  /** The shared tail of update and patch: identity and subresource rules, then a commit if anything changed. */
  #write(t: Target, cur: Obj, wanted: Obj): Answer {
    const next = structuredClone(wanted);
    next.kind = cur.kind;
    next.apiVersion = cur.apiVersion;
    const { uid, creationTimestamp, namespace, name, generation } = cur.metadata;
    next.metadata = { ...(isObj(next.metadata) ? next.metadata : {}), uid, creationTimestamp, name, resourceVersion: cur.metadata.resourceVersion } as Meta;
    if (namespace !== undefined) next.metadata.namespace = namespace;
    if (t.subresource === 'status') {
      const onlyStatus = structuredClone(cur);
      if (next.status === undefined) delete onlyStatus.status;
      else onlyStatus.status = next.status;
      return this.#commitIfChanged(t, cur, onlyStatus);
    }
    if (t.resource.status) {
      if (cur.status === undefined) delete next.status;
      else next.status = cur.status;
    }
    next.metadata.generation = JSON.stringify(next.spec) === JSON.stringify(cur.spec) ? generation : Number(generation ?? 0) + 1;
    return this.#commitIfChanged(t, cur, next);
  }

  #commitIfChanged(t: Target, cur: Obj, next: Obj): Answer {
    if (JSON.stringify(next) === JSON.stringify(cur)) return { status: 200, body: cur };
    this.#commit(t.resource, 'MODIFIED', next, cur);
    return { status: 200, body: next };
  }

  #delete(t: Target, body: unknown): Answer {
    const objects = this.#objects(t.resource);
    const key = keyOf(t.namespace, t.name as string);
    const cur = objects.get(key);
    if (!cur) return notFound(t);
    const pre = isObj(body) && isObj(body.preconditions) ? body.preconditions : {};
    if (typeof pre.uid === 'string' && pre.uid !== cur.metadata.uid) {
      return { status: 409, body: status(409, 'Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`) };
    }
    if (typeof pre.resourceVersion === 'string' && pre.resourceVersion !== cur.metadata.resourceVersion) {
      return {
        status: 409,
        body: status(409, 'Conflict', `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${cur.metadata.resourceVersion}`),
      };
    }
    const gone = structuredClone(cur);
    this.#commit(t.resource, 'DELETED', gone, cur);
    return { status: 200, body: gone };
  }

  #commit(resource: FakeResource, type: FakeEventType, obj: Obj, old: Obj | undefined): void {
    this.#rv++;
    obj.metadata.resourceVersion = String(this.#rv);
    const objects = this.#objects(resource);
    const key = keyOf(obj.metadata.namespace, obj.metadata.name);
    if (type === 'DELETED') objects.delete(key);
    else objects.set(key, obj);
    const ev: HistoryEvent = { rv: this.#rv, resource, type, obj, ...(old ? { old } : {}) };
    this.#history.push(ev);
    const limit = this.#opts.historyLimit;
    if (limit !== undefined && this.#history.length > limit) this.compact((this.#history[this.#history.length - limit - 1] as HistoryEvent).rv);
    for (const w of this.#watchers) if (w.resource === resource) this.#deliver(w, ev);
  }

  /** One history event as this watcher sees it: a selector change turns MODIFIED into ADDED or DELETED. */
  #deliver(w: Watcher, ev: HistoryEvent): void {
    const now = ev.type !== 'DELETED' && this.#visible(w, ev.obj);
    const before = ev.old !== undefined && this.#visible(w, ev.old);
    if (ev.type === 'DELETED') {
      if (before) write(w, { type: 'DELETED', object: ev.obj });
    } else if (now && before) {
      write(w, { type: 'MODIFIED', object: ev.obj });
    } else if (now) {
      write(w, { type: 'ADDED', object: ev.obj });
    } else if (before) {
      write(w, { type: 'DELETED', object: ev.obj });
    }
  }

  #visible(w: Watcher, o: Obj): boolean {
    return (w.namespace === undefined || o.metadata.namespace === w.namespace) && w.match(o);
  }

  #unwatch(w: Watcher): void {
    if (w.timer) clearTimeout(w.timer);
    this.#watchers.delete(w);
    if (this.#watchers.size === 0) for (const r of this.#idleWaiters.splice(0)) r();
  }

  #matcher(t: Target, query: Record<string, string>): { ok: true; fn: (o: Obj) => boolean } | { ok: false; answer: Answer } {
    try {
      const labels = parseLabelSelector(query.labelSelector ?? '');
      const fields = parseFieldSelector(query.fieldSelector ?? '');
      const ns = t.namespace;
      return { ok: true, fn: (o) => (ns === undefined || o.metadata.namespace === ns) && labels(o.metadata.labels ?? {}) && fields(o) };
    } catch (err) {
      return { ok: false, answer: { status: 400, body: status(400, 'BadRequest', (err as Error).message) } };
    }
  }

  #target(r: FakeResource, namespace: string | undefined, name: string, subresource?: string): Target {
    const t: Target = { resource: r, name };
    if (r.namespaced) t.namespace = namespace ?? 'default';
    if (subresource !== undefined) t.subresource = subresource;
    return t;
  }

  #resource(plural: string): FakeResource {
    const r = this.#resources.find((x) => x.plural === plural);
    if (!r) throw new Error(`fake apiserver: no resource ${plural}`);
    return r;
  }

  #objects(r: FakeResource): Map<string, Obj> {
    return this.#store.get(r.plural) as Map<string, Obj>;
  }
}

// ---- helpers -------------------------------------------------------------------------------------

function keyOf(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

function sorted(objs: Obj[]): Obj[] {
  return objs.sort((a, b) => {
    const ka = keyOf(a.metadata.namespace, a.metadata.name);
    const kb = keyOf(b.metadata.namespace, b.metadata.name);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function status(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function notFound(t: Target): Answer {
  const st = status(404, 'NotFound', `${t.resource.plural} "${String(t.name)}" not found`);
  st.details = { name: t.name, kind: t.resource.plural };
  return { status: 404, body: st };
}

function conflict(t: Target): Answer {
  return {
    status: 409,
    body: status(409, 'Conflict', `Operation cannot be fulfilled on ${t.resource.plural} "${String(t.name)}": the object has been modified; please apply your changes to the latest version and try again`),
  };
}

function unwrap(a: Answer): Obj {
  if (a.status >= 300) throw new FakeApiError(a.status, a.body);
  return structuredClone(a.body) as Obj;
}

function send(res: http.ServerResponse, a: Answer, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(a.body);
  res.writeHead(a.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function write(w: Watcher, event: unknown): void {
  if (!w.res.writableEnded && !w.res.destroyed) w.res.write(`${JSON.stringify(event)}\n`);
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** RFC 7386. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return patch;
  const out: Record<string, unknown> = isObj(target) ? target : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`, comma-separated (all must hold). */
function parseLabelSelector(sel: string): (labels: Record<string, string>) => boolean {
  const terms: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of sel) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '') terms.push(cur);
  const tests = terms.map((raw): ((l: Record<string, string>) => boolean) => {
    const term = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term))) {
      const [, key, op, list] = m as unknown as [string, string, string, string];
      const values = new Set(list.split(',').map((v) => v.trim()));
      return op === 'in' ? (l) => l[key] !== undefined && values.has(l[key]) : (l) => l[key] === undefined || !values.has(l[key]);
    }
    if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(term))) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
    }
    if ((m = /^!([\w./-]+)$/.exec(term))) {
      const key = (m as unknown as [string, string])[1];
      return (l) => l[key] === undefined;
    }
    if (/^[\w./-]+$/.test(term)) return (l) => l[term] !== undefined;
    throw new Error(`unable to parse requirement: ${term}`);
  });
  return (labels) => tests.every((t) => t(labels));
}

/** `path=value`, `path==value`, `path!=value` over dotted paths (metadata.name, spec.nodeName, ...). */
function parseFieldSelector(sel: string): (o: Obj) => boolean {
  const tests = sel.split(',').filter((t) => t.trim() !== '').map((term): ((o: Obj) => boolean) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(term.trim());
    if (!m) throw new Error(`invalid field selector: ${term}`);
    const [, path, op, value] = m as unknown as [string, string, string, string];
    const get = (o: Obj): string => {
      let v: unknown = o;
      for (const p of path.split('.')) v = isObj(v) ? v[p] : undefined;
      return v === undefined || v === null ? '' : String(v);
    };
    return op === '!=' ? (o) => get(o) !== value : (o) => get(o) === value;
  });
  return (o) => tests.every((t) => t(o));
}
