// The seam between claim logic and the Kubernetes API: writes go through KubeApi (api.ts), reads
// come from a cache kept by a list + watch (the sources/kube reflector, adapted to ClaimCache).
// Nothing here blocks an ADD on the API except the writes the claim logic chooses to make.

import { TryAgainLaterError } from '../../../common/errors';
import type { KubeApi, KubeStatus } from '../../sources/kube/api';
import { claimName } from './names';
import { CLAIM_API_VERSION, CLAIM_KIND, CLAIMS_PATH, type IPClaim, type IPClaimSpec, type IPClaimStatus, type NodeRef } from './types';

export type ClaimEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ClaimEvent {
  type: ClaimEventType;
  /** The object after the change (for DELETED: its last known state). */
  claim: IPClaim;
}

/**
 * A read-only view of every IPClaim, kept by ONE ordered list + watch (a reflector): events reach
 * listeners in resourceVersion order, synchronously after the view changed, and a re-list shows
 * up as the ADDED / MODIFIED / DELETED events that turn the old view into the new one. The claim
 * logic relies on the order: once a node sees its own create, it has seen everything before it.
 */
export interface ClaimCache {
  get(name: string): IPClaim | undefined;
  list(): IPClaim[];
  /** Returns the function that unsubscribes. */
  onChange(listener: (ev: ClaimEvent) => void): () => void;
  /** Resolves once the first full list is in. */
  synced(): Promise<void>;
}

export interface Precondition {
  uid: string;
  resourceVersion?: string;
}

export interface WaitOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

/** What a node writes, and what it reads back. */
export interface ClaimStore extends ClaimCache {
  /** Create-if-absent. `created: false` when an object of that name exists (HTTP 409). */
  create(spec: IPClaimSpec, owner: NodeRef, signal?: AbortSignal): Promise<{ created: true; claim: IPClaim } | { created: false }>;
  /** Delete with a uid precondition: `conflict` when the name now belongs to another object. */
  delete(name: string, uid: string, signal?: AbortSignal): Promise<'deleted' | 'gone' | 'conflict'>;
  /**
   * Sets the status of the object with that uid (and, when given, still at that resourceVersion):
   * `conflict` when it changed meanwhile.
   */
  patchStatus(name: string, pre: Precondition, status: IPClaimStatus, signal?: AbortSignal): Promise<'patched' | 'gone' | 'conflict'>;
  /**
   * Resolves with probe()'s first value other than undefined, checked now and after every cache
   * change; undefined when the timeout passes or the signal aborts first.
   */
  waitFor<T>(probe: () => T | undefined, opts: WaitOptions): Promise<T | undefined>;
}

/** The API refused or could not be reached; the caller may retry (CNI code 11 on an ADD). */
export class ClaimApiError extends TryAgainLaterError {
  constructor(readonly op: string, readonly status: number | undefined, message: string, cause?: unknown) {
    super(`IP claim ${op} failed${status === undefined ? '' : ` (HTTP ${status})`}: ${message}`, cause === undefined ? {} : { cause });
  }
}

/** waitFor over any cache: the probe runs now and after each event. */
export function waitOnCache<T>(cache: Pick<ClaimCache, 'onChange'>, probe: () => T | undefined, opts: WaitOptions): Promise<T | undefined> {
  const now = probe();
  if (now !== undefined || opts.signal?.aborted || opts.timeoutMs <= 0) return Promise.resolve(now);
  return new Promise((resolve) => {
    const finish = (v: T | undefined): void => {
      clearTimeout(timer);
      unsubscribe();
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(v);
    };
    const onAbort = (): void => finish(undefined);
    const unsubscribe = cache.onChange(() => {
      const v = probe();
      if (v !== undefined) finish(v);
    });
    const timer = setTimeout(() => finish(undefined), opts.timeoutMs);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Builds the object a create sends. */
export function newClaim(spec: IPClaimSpec, owner: NodeRef): IPClaim {
  return {
    apiVersion: CLAIM_API_VERSION,
    kind: CLAIM_KIND,
    metadata: {
      name: claimName(spec.subnet, spec.kind, spec.cidr),
      // Not a controller reference and no blockOwnerDeletion (which needs update on nodes/finalizers):
      // the reference exists only so the garbage collector deletes the claim with its Node.
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: owner.name, uid: owner.uid }],
    },
    spec,
  };
}

export interface KubeClaimStoreOptions {
  /**
   * The CRD declares the status subresource (status written through `/status`, ignored on the
   * main resource). Default true.
   */
  statusSubresource?: boolean;
}

export class KubeClaimStore implements ClaimStore {
  private readonly statusSubresource: boolean;

  constructor(private readonly api: KubeApi, private readonly cache: ClaimCache, opts: KubeClaimStoreOptions = {}) {
    this.statusSubresource = opts.statusSubresource ?? true;
  }

  get(name: string): IPClaim | undefined { return this.cache.get(name); }
  list(): IPClaim[] { return this.cache.list(); }
  onChange(listener: (ev: ClaimEvent) => void): () => void { return this.cache.onChange(listener); }
  synced(): Promise<void> { return this.cache.synced(); }
  waitFor<T>(probe: () => T | undefined, opts: WaitOptions): Promise<T | undefined> { return waitOnCache(this.cache, probe, opts); }

  async create(spec: IPClaimSpec, owner: NodeRef, signal?: AbortSignal): Promise<{ created: true; claim: IPClaim } | { created: false }> {
    const body = newClaim(spec, owner);
    const res = await this.call('create', { method: 'POST', path: CLAIMS_PATH, body, ...(signal ? { signal } : {}) });
    if (res.status === 409) return { created: false };
    if (res.status >= 200 && res.status < 300) return { created: true, claim: res.body as IPClaim };
    throw failure('create', res);
  }

  async delete(name: string, uid: string, signal?: AbortSignal): Promise<'deleted' | 'gone' | 'conflict'> {
    const res = await this.call('delete', {
      method: 'DELETE',
      path: `${CLAIMS_PATH}/${encodeURIComponent(name)}`,
      body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid } },
      ...(signal ? { signal } : {}),
    });
    if (res.status === 404) return 'gone';
    if (res.status === 409) return 'conflict';
    if (res.status >= 200 && res.status < 300) return 'deleted';
    throw failure('delete', res);
  }

  async patchStatus(name: string, pre: Precondition, status: IPClaimStatus, signal?: AbortSignal): Promise<'patched' | 'gone' | 'conflict'> {
    const path = `${CLAIMS_PATH}/${encodeURIComponent(name)}${this.statusSubresource ? '/status' : ''}`;
    // uid and resourceVersion in a merge patch are preconditions: the apiserver answers 409 when
    // the name now belongs to another object or the object changed since it was read.
    const metadata: Record<string, string> = { uid: pre.uid };
    if (pre.resourceVersion !== undefined) metadata.resourceVersion = pre.resourceVersion;
    const res = await this.call('status patch', {
      method: 'PATCH',
      path,
      contentType: 'application/merge-patch+json',
      body: { metadata, status: { phase: status.phase, reason: status.reason ?? null } },
      ...(signal ? { signal } : {}),
    });
    if (res.status === 404) return 'gone';
    if (res.status === 409) return 'conflict';
    if (res.status >= 200 && res.status < 300) return 'patched';
    throw failure('status patch', res);
  }

  private async call(op: string, req: Parameters<KubeApi['request']>[0]): Promise<{ status: number; body: unknown }> {
    try {
      return await this.api.request(req);
    } catch (e) {
      throw new ClaimApiError(op, undefined, e instanceof Error ? e.message : String(e), e);
    }
  }
}

function failure(op: string, res: { status: number; body: unknown }): ClaimApiError {
  const st = (typeof res.body === 'object' && res.body !== null ? res.body : {}) as KubeStatus;
  return new ClaimApiError(op, res.status, st.message ?? st.reason ?? 'unexpected answer');
}
