// The IPClaim object (ipclaims.ovnode.io/v1, cluster-scoped): the only shared IPAM state. A
// claim of kind `block` gives its node a range to allocate from; a claim of kind `address` asks the
// node owning the block around one address for that address. The apiserver's name uniqueness is
// the lock: names derive from subnet + range (names.ts), so two nodes claiming the same range
// collide on create.

export const CLAIM_GROUP = 'ovnode.io';
export const CLAIM_VERSION = 'v1';
export const CLAIM_API_VERSION = `${CLAIM_GROUP}/${CLAIM_VERSION}`;
export const CLAIM_KIND = 'IPClaim';
export const CLAIM_PLURAL = 'ipclaims';
/** Collection path of the cluster-scoped resource. */
export const CLAIMS_PATH = `/apis/${CLAIM_GROUP}/${CLAIM_VERSION}/${CLAIM_PLURAL}`;

export type ClaimKind = 'block' | 'address';
export type ClaimPhase = 'Pending' | 'Bound' | 'Refused';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface IPClaimSpec {
  /** Subnet (logical switch) name. */
  subnet: string;
  /** The block (e.g. 10.16.0.64/26) or the single address (/32, /128), canonical text. */
  cidr: string;
  /** Block: the node allocating in it. Address: the node asking for it. */
  node: string;
  kind: ClaimKind;
  /** Address claims: the pod asking, "namespace/name" (informational). */
  pod?: string;
}

export interface IPClaimStatus {
  phase: ClaimPhase;
  reason?: string;
}

export interface IPClaim {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    ownerReferences?: OwnerReference[];
    [key: string]: unknown;
  };
  spec: IPClaimSpec;
  status?: IPClaimStatus;
}

/** An address claim's phase; one without a status is Pending (its requester writes no status). */
export function phaseOf(c: IPClaim): ClaimPhase {
  return c.status?.phase ?? 'Pending';
}

/** The Node the garbage collector ties a claim to. */
export interface NodeRef {
  name: string;
  uid: string;
}
