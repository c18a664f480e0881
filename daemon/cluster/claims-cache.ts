// The IPClaim watch as the claim logic reads it: one ordered list + watch of every claim in the
// cluster, kept whole (claims are small and few: one per block, one per foreign static address).

import type { ClaimCache, ClaimEvent } from '../ipam/claims/store';
import { CLAIMS_PATH, type IPClaim } from '../ipam/claims/types';
import type { KubeApi } from '../sources/kube/api';
import { KubeCache } from '../sources/kube/cache';
import { Reflector, type KubeLogger } from '../sources/kube/reflector';
import type { KubeStreamApi } from '../sources/kube/stream';

function projectClaim(raw: Record<string, unknown>): IPClaim | undefined {
  const meta = raw.metadata as IPClaim['metadata'] | undefined;
  if (!meta || typeof meta.name !== 'string' || typeof raw.spec !== 'object' || raw.spec === null) return undefined;
  const claim: IPClaim = {
    apiVersion: 'ovnode.io/v1', kind: 'IPClaim',
    metadata: { name: meta.name, uid: meta.uid, resourceVersion: meta.resourceVersion, creationTimestamp: meta.creationTimestamp, ownerReferences: meta.ownerReferences },
    spec: raw.spec as IPClaim['spec'],
  };
  if (typeof raw.status === 'object' && raw.status !== null) claim.status = raw.status as IPClaim['status'];
  return claim;
}

export class WatchedClaims implements ClaimCache {
  private readonly reflector: Reflector<IPClaim>;
  private readonly cache: KubeCache<IPClaim>;

  constructor(api: KubeApi & KubeStreamApi, log: KubeLogger) {
    this.reflector = new Reflector<IPClaim>({ api, path: CLAIMS_PATH, project: projectClaim, log });
    this.cache = new KubeCache(this.reflector, { log });
  }

  start(): void { this.reflector.start(); }
  get(name: string): IPClaim | undefined { return this.cache.get(name); }
  list(): IPClaim[] { return this.cache.list(); }
  onChange(listener: (ev: ClaimEvent) => void): () => void {
    return this.cache.onChange((e) => listener({ type: e.type, claim: e.object }));
  }
  synced(): Promise<void> { return this.cache.whenSynced(); }

  async stop(): Promise<void> {
    this.cache.close();
    await this.reflector.stop();
  }
}
