// FAKE apiserver for the ipclaims.ovnode.io resource only, and FAKE watch caches of it, for unit
// tests of cluster IPAM without a cluster. It models what the claim logic relies on:
// - create is create-if-absent (409 AlreadyExists), the object gets a uid and a resourceVersion;
// - delete honours a uid precondition (409 on mismatch, 404 when absent);
// - status patches honour uid and resourceVersion preconditions (409) and touch only the status;
// - deleting a Node garbage-collects the claims whose ownerReferences name its uid;
// - requests take a seeded random time before and after they apply (concurrent requests from
//   several nodes interleave), and can be made to fail before or after applying (reply lost);
// - each cache (one per simulated node) receives the events of one ordered stream, each after a
//   seeded random watch latency, never reordered; it can be stalled to model a dead watch.
// The real apiserver and reflector live elsewhere (sources/kube); this one exists so that
// interleavings can be produced on demand and API calls counted.

import type { KubeApi, KubeRequest, KubeResponse } from '../../../../../daemon/sources/kube/api';
import { isDnsSubdomain } from '../../../../../daemon/ipam/claims/names';
import type { ClaimCache, ClaimEvent, ClaimEventType } from '../../../../../daemon/ipam/claims/store';
import { CLAIMS_PATH, type IPClaim } from '../../../../../daemon/ipam/claims/types';
import { seededRandom } from '../../../../support/seeded-random';

/** mulberry32: small seeded PRNG, so a failing interleaving can be replayed by its seed. */
export const seededRng = seededRandom;

export interface FakeApiOptions {
  rng?: () => number;
  /** Request latency before and after the change applies, ms (uniform in [0, max]). */
  requestJitterMs?: number;
  /** Watch latency per event, ms (uniform in [0, max]), per cache. */
  watchJitterMs?: number;
}

type Fault = { method?: string; when: 'before' | 'after' };

function sleep(ms: number): Promise<void> {
  return ms <= 0 ? new Promise((r) => setImmediate(r)) : new Promise((r) => setTimeout(r, ms));
}

function status(code: number, reason: string, message: string): KubeResponse {
  return { status: code, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message } };
}

export class FakeClaimsApiServer implements KubeApi {
  readonly requests: KubeRequest[] = [];
  private readonly objects = new Map<string, IPClaim>();
  private readonly caches = new Set<FakeClaimsCache>();
  private readonly faults: Fault[] = [];
  private rv = 1;
  private uidSeq = 0;
  readonly rng: () => number;
  readonly requestJitterMs: number;
  readonly watchJitterMs: number;

  constructor(opts: FakeApiOptions = {}) {
    this.rng = opts.rng ?? seededRng(1);
    this.requestJitterMs = opts.requestJitterMs ?? 2;
    this.watchJitterMs = opts.watchJitterMs ?? 3;
  }

  /** Requests made so far (optionally of one method). */
  count(method?: string): number {
    return method === undefined ? this.requests.length : this.requests.filter((r) => r.method === method).length;
  }

  /** The next request (of that method) fails with a transport error, before or after applying. */
  failNext(fault: Fault): void { this.faults.push(fault); }

  objectsNow(): IPClaim[] { return [...this.objects.values()].map((o) => structuredClone(o)); }

  /** A cache following this server, as one node's reflector would. */
  watch(): FakeClaimsCache {
    const c = new FakeClaimsCache(this, [...this.objects.values()].map((o) => structuredClone(o)));
    this.caches.add(c);
    return c;
  }

  unwatch(c: FakeClaimsCache): void { this.caches.delete(c); }

  /** The garbage collector after a Node object was deleted. */
  deleteNode(uid: string): string[] {
    const gone: string[] = [];
    for (const o of [...this.objects.values()]) {
      if (o.metadata.ownerReferences?.some((r) => r.kind === 'Node' && r.uid === uid)) {
        this.objects.delete(o.metadata.name);
        this.emit('DELETED', { ...o, metadata: { ...o.metadata, resourceVersion: String(++this.rv) } });
        gone.push(o.metadata.name);
      }
    }
    return gone;
  }

  /** Deletes an object as a person with kubectl would (no precondition). */
  forceDelete(name: string): boolean {
    const o = this.objects.get(name);
    if (!o) return false;
    this.objects.delete(name);
    this.emit('DELETED', { ...o, metadata: { ...o.metadata, resourceVersion: String(++this.rv) } });
    return true;
  }

  async request<T = unknown>(req: KubeRequest): Promise<KubeResponse<T>> {
    this.requests.push(structuredClone({ ...req, signal: undefined }));
    const fi = this.faults.findIndex((f) => f.method === undefined || f.method === req.method);
    const fault = fi >= 0 ? this.faults.splice(fi, 1)[0] : undefined;
    await sleep(this.rng() * this.requestJitterMs);
    if (fault?.when === 'before') throw new Error('fake apiserver: connection reset before the request was applied');
    const res = this.apply(req);
    await sleep(this.rng() * this.requestJitterMs);
    if (fault?.when === 'after') throw new Error('fake apiserver: connection reset after the request was applied');
    return res as KubeResponse<T>;
  }

  private apply(req: KubeRequest): KubeResponse {
    if (!req.path.startsWith(CLAIMS_PATH)) return status(404, 'NotFound', `fake apiserver serves only ${CLAIMS_PATH}`);
    const rest = req.path.slice(CLAIMS_PATH.length).split('/').filter((p) => p !== '').map(decodeURIComponent);
    const [name, sub] = rest;
    if (req.method === 'POST' && rest.length === 0) return this.create(req.body as IPClaim);
    if (name === undefined) return status(405, 'MethodNotAllowed', `${req.method} on the collection`);
    const cur = this.objects.get(name);
    if (req.method === 'GET' && sub === undefined) return cur ? { status: 200, body: structuredClone(cur) } : status(404, 'NotFound', `ipclaims "${name}" not found`);
    if (req.method === 'DELETE' && sub === undefined) {
      if (!cur) return status(404, 'NotFound', `ipclaims "${name}" not found`);
      const pre = (req.body as { preconditions?: { uid?: string; resourceVersion?: string } } | undefined)?.preconditions;
      if (pre?.uid !== undefined && pre.uid !== cur.metadata.uid) {
        return status(409, 'Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`);
      }
      if (pre?.resourceVersion !== undefined && pre.resourceVersion !== cur.metadata.resourceVersion) {
        return status(409, 'Conflict', 'Precondition failed: resourceVersion');
      }
      this.objects.delete(name);
      const last = { ...cur, metadata: { ...cur.metadata, resourceVersion: String(++this.rv) } };
      this.emit('DELETED', last);
      return { status: 200, body: structuredClone(last) };
    }
    if (req.method === 'PATCH' && sub === 'status') {
      if (!cur) return status(404, 'NotFound', `ipclaims "${name}" not found`);
      if ((req.contentType ?? 'application/merge-patch+json') !== 'application/merge-patch+json') return status(415, 'UnsupportedMediaType', 'fake: merge patch only');
      const patch = req.body as { metadata?: { uid?: string; resourceVersion?: string }; status?: Record<string, unknown> };
      if (patch.metadata?.uid !== undefined && patch.metadata.uid !== cur.metadata.uid) {
        return status(409, 'Conflict', `Precondition failed: UID in precondition: ${patch.metadata.uid}, UID in object meta: ${cur.metadata.uid}`);
      }
      if (patch.metadata?.resourceVersion !== undefined && patch.metadata.resourceVersion !== cur.metadata.resourceVersion) {
        return status(409, 'Conflict', 'Operation cannot be fulfilled on ipclaims: the object has been modified; please apply your changes to the latest version and try again');
      }
      const next = structuredClone(cur);
      const st: Record<string, unknown> = { ...(next.status ?? {}) };
      for (const [k, v] of Object.entries(patch.status ?? {})) { if (v === null) delete st[k]; else st[k] = v; }
      next.status = st as unknown as IPClaim['status'];
      next.metadata.resourceVersion = String(++this.rv);
      this.objects.set(name, next);
      this.emit('MODIFIED', next);
      return { status: 200, body: structuredClone(next) };
    }
    return status(405, 'MethodNotAllowed', `fake apiserver: ${req.method} ${req.path}`);
  }

  private create(body: IPClaim): KubeResponse {
    const name = body?.metadata?.name;
    if (typeof name !== 'string' || !isDnsSubdomain(name)) return status(422, 'Invalid', `metadata.name: Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 subdomain must ...`);
    if (body.apiVersion !== 'ovnode.io/v1' || body.kind !== 'IPClaim') return status(400, 'BadRequest', 'wrong apiVersion/kind');
    if (this.objects.has(name)) return status(409, 'AlreadyExists', `ipclaims.ovnode.io "${name}" already exists`);
    const obj = structuredClone(body);
    obj.metadata.uid = `uid-${++this.uidSeq}`;
    obj.metadata.resourceVersion = String(++this.rv);
    obj.metadata.creationTimestamp = new Date().toISOString();
    // The status subresource: a create never sets the status.
    delete obj.status;
    this.objects.set(name, obj);
    this.emit('ADDED', obj);
    return { status: 201, body: structuredClone(obj) };
  }

  private emit(type: ClaimEventType, obj: IPClaim): void {
    for (const c of this.caches) c.enqueue({ type, claim: structuredClone(obj) });
  }
}

/** One node's view: a FAKE of the reflector-backed cache, in event order, late by the watch latency. */
export class FakeClaimsCache implements ClaimCache {
  private readonly view = new Map<string, IPClaim>();
  private readonly listeners = new Set<(ev: ClaimEvent) => void>();
  private readonly queue: Array<{ due: number; ev: ClaimEvent }> = [];
  private lastDue = 0;
  private timer: NodeJS.Timeout | undefined;
  private stalled = false;
  private readonly syncedPromise: Promise<void>;
  delivered = 0;

  constructor(private readonly server: FakeClaimsApiServer, initial: IPClaim[]) {
    for (const o of initial) this.view.set(o.metadata.name, o);
    this.syncedPromise = sleep(server.rng() * server.watchJitterMs);
  }

  get(name: string): IPClaim | undefined {
    const o = this.view.get(name);
    return o && structuredClone(o);
  }

  list(): IPClaim[] { return [...this.view.values()].map((o) => structuredClone(o)); }

  onChange(listener: (ev: ClaimEvent) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }

  synced(): Promise<void> { return this.syncedPromise; }

  /** Holds every event back until resume() (a watch that hangs). */
  stall(): void { this.stalled = true; }
  resume(): void { this.stalled = false; this.pump(); }

  /** Stops following the server (the node's process ended). */
  close(): void {
    this.server.unwatch(this);
    if (this.timer) clearTimeout(this.timer);
    this.queue.length = 0;
    this.listeners.clear();
  }

  enqueue(ev: ClaimEvent): void {
    const due = Math.max(Date.now() + this.server.rng() * this.server.watchJitterMs, this.lastDue);
    this.lastDue = due;
    this.queue.push({ due, ev });
    this.pump();
  }

  private pump(): void {
    if (this.timer || this.stalled || this.queue.length === 0) return;
    const wait = Math.max(0, (this.queue[0] as { due: number }).due - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      while (!this.stalled && this.queue.length > 0 && (this.queue[0] as { due: number }).due <= Date.now()) {
        const { ev } = this.queue.shift() as { ev: ClaimEvent };
        if (ev.type === 'DELETED') this.view.delete(ev.claim.metadata.name);
        else this.view.set(ev.claim.metadata.name, ev.claim);
        this.delivered++;
        for (const l of [...this.listeners]) l(structuredClone(ev));
      }
      this.pump();
    }, wait);
  }
}
