// One subnet's share of the cluster's address space on this node, and this node's part in
// arbitrating the rest. The rules (DESIGN.md, "IPAM without a central allocator"):
//
// - Dynamic addresses come only from blocks this node owns: a `block` claim with spec.node = this
//   node that this node's cache has SHOWN. The cache is one ordered watch stream, so seeing our
//   own create means having seen every claim change before it (an address another owner bound in
//   that block before it was released, for instance); until then the block is not used at all.
// - A static address is decided by the owner of its block: this node, locally in its pool; nobody,
//   then this node claims that block first; another node, through an `address` claim that the
//   owner binds (holding the address in its pool from then on) or refuses.
// - Every decision is made synchronously against the pool, so two requests on one node can never
//   both win; across nodes the apiserver's unique names are the lock.
// - Nothing is called on the API when an address is released; address claims follow the pool
//   (PoolObserver), empty blocks are given back by sweep() after a while.

import type { Logger } from 'pino';
import { IpamError, TryAgainLaterError } from '../../../common/errors';
import { contains, formatIp, parseCidr, parseIp, type Family } from '../cidr';
import { parsePortHolder, type AllocateOptions, type PoolAllocator, type SubnetPool, type ValueRange } from '../pool';
import { BlockGeometry, DEFAULT_BLOCK_PREFIX, type Block } from './blocks';
import { MAX_PORT_KEY } from '../../cluster/tunnel-keys';
import { addressClaimName, blockClaimName } from './names';
import type { ClaimEvent, ClaimStore } from './store';
import { phaseOf, type IPClaim, type IPClaimStatus, type NodeRef } from './types';

/** Pool holder of an address this node bound to another node's address claim. */
export const CLAIM_HOLDER_PREFIX = 'claim:';
export function claimHolder(name: string): string { return `${CLAIM_HOLDER_PREFIX}${name}`; }

export interface ClaimsConfig {
  /** Block prefix length per family (default /26 and /122); must be the same on every node. */
  blockPrefix: Record<Family, number>;
  /** Claim another block ahead when fewer free addresses than this are left in the owned blocks. */
  lowWater: number;
  /** Longest wait of one request for a block claim or an arbitration. */
  waitMs: number;
  /** An owned block empty for this long is given back by sweep(). */
  releaseAfterMs: number;
  /** How long a create answered "exists" keeps a block off the candidates if the cache does not show it. */
  takenTtlMs: number;
  /** First delay between retries of background writes (doubles, at most 5 tries per round). */
  retryMs: number;
  /** Which pool holders are pods that must be covered by a block or an address claim. */
  isPodHolder: (holder: string) => boolean;
  now: () => number;
}

export const DEFAULT_CLAIMS_CONFIG: ClaimsConfig = {
  blockPrefix: { ...DEFAULT_BLOCK_PREFIX },
  lowWater: 16,
  waitMs: 10_000,
  releaseAfterMs: 300_000,
  takenTtlMs: 30_000,
  retryMs: 200,
  isPodHolder: (h) => parsePortHolder(h) !== undefined,
  now: () => Date.now(),
};

/** What a subnet's allocator needs from the node-wide manager. */
export interface ClaimsContext {
  store: ClaimStore;
  node: () => NodeRef;
  log: Logger;
  config: ClaimsConfig;
  /** Resolves once the manager started (cache synced and followed). */
  ready: () => Promise<void>;
}

type BlockState = 'claiming' | 'unseen' | 'usable' | 'releasing';

interface OwnedBlock {
  block: Block;
  name: string;
  state: BlockState;
  uid?: string;
  emptySince?: number;
}

interface FamilyState {
  geo: BlockGeometry;
  /** This node's blocks by index, in every state. */
  owned: Map<bigint, OwnedBlock>;
  /** The search for one more block (dynamic capacity) in flight. */
  claiming?: Promise<FindResult>;
  /** The last search found the subnet full; no search ahead until a block claim goes away. */
  fullSeen: boolean;
  /** Block names a create found taken that the cache did not show yet, until when. */
  taken: Map<string, number>;
}

type FindResult = 'claimed' | 'full' | 'timeout' | 'retry';

type Ownership =
  | { kind: 'mine'; entry: OwnedBlock }
  | { kind: 'other'; node: string | undefined }
  | { kind: 'none' };

const MAX_CANDIDATES = 1n << 20n;
/** The CRD's limit on status.reason. */
const MAX_REASON = 1024;

export class SubnetClaims implements PoolAllocator {
  readonly name: string;
  private readonly fams = new Map<Family, FamilyState>();
  /** This subnet's claims as the cache shows them. */
  private readonly claims = new Map<string, IPClaim>();
  /** Block claims of other nodes that are not blocks of our geometry (another block size). */
  private readonly odd = new Map<string, IPClaim>();
  /** Arbitrations made (address claims of others in our blocks) whose status write is not seen yet. */
  private readonly decisions = new Map<string, { uid: string; status: IPClaimStatus }>();
  /** Address claim names a reserve() of ours is working on (never deleted from under it). */
  private readonly reserving = new Map<string, number>();
  /** Deletes of our address claims in flight. */
  private readonly deleting = new Map<string, Promise<void>>();
  /** uids of blocks we released: the cache may still show them for a while; never adopt them again. */
  private readonly released = new Set<string>();
  private readonly waiters = new Set<() => void>();
  private active = false;
  private closed = false;

  constructor(readonly pool: SubnetPool, private readonly ctx: ClaimsContext) {
    this.name = pool.name;
    // From now on the pool hands out dynamic addresses only from blocks this node owns.
    for (const f of pool.families) pool.setAllocatable(f, []);
    pool.setObserver({ freed: (ip, holder) => this.onFreed(ip, holder) });
  }

  private get me(): string { return this.ctx.node().name; }
  private get cfg(): ClaimsConfig { return this.ctx.config; }

  // ---- lifecycle (called by the manager) ---------------------------------------------------

  /** Takes the cache's view (the manager just synced), adopts our blocks, arbitrates, repairs. */
  activate(all: IPClaim[]): void {
    this.claims.clear();
    for (const c of all) if (c.spec?.subnet === this.name) this.claims.set(c.metadata.name, c);
    this.active = true;
    for (const f of this.pool.families) this.family(f);
    this.indexOdd();
    for (const c of this.claims.values()) if (c.spec.kind === 'block' && c.spec.node === this.me) this.adopt(c);
    for (const c of this.claims.values()) if (c.spec.kind === 'address') this.onAddressClaim(c);
    // The pool was rebuilt from the NB: what no pod holds any more was left by a crash.
    this.dropUnheld();
    this.repair();
    this.notify();
  }

  /** Stops following the cache; the pool goes back to unrestricted only if asked (it is being dropped). */
  close(): void {
    this.closed = true;
    this.active = false;
    this.pool.setObserver(undefined);
    this.notify();
  }

  onEvent(ev: ClaimEvent): void {
    const c = ev.claim;
    if (this.closed || c.spec?.subnet !== this.name) return;
    for (const f of this.pool.families) this.family(f); // a reshaped pool has blocks of its new range
    const name = c.metadata.name;
    for (const fs of this.fams.values()) fs.taken.delete(name);
    if (ev.type === 'DELETED') {
      const known = this.claims.get(name);
      if (known && known.metadata.uid === c.metadata.uid) { this.claims.delete(name); this.odd.delete(name); }
      if (c.spec.kind === 'block') {
        for (const fs of this.fams.values()) fs.fullSeen = false;
        this.onBlockDeleted(c);
      } else this.onAddressClaimDeleted(c);
    } else {
      this.claims.set(name, c);
      if (this.isOdd(c)) this.odd.set(name, c); else this.odd.delete(name);
      if (c.spec.kind === 'block') {
        if (c.spec.node === this.me) this.adopt(c);
      } else this.onAddressClaim(c);
    }
    this.notify();
  }

  // ---- ADD path ----------------------------------------------------------------------------

  async allocate(holder: string, family: Family, opts: AllocateOptions = {}): Promise<string> {
    const deadline = this.cfg.now() + this.cfg.waitMs;
    await this.whenReady(deadline, opts.signal);
    for (;;) {
      const fs = this.family(family);
      const ip = this.pool.tryAllocate(holder, family);
      if (ip !== undefined) { this.prefetch(fs); return ip; }
      this.checkWait(deadline, opts.signal, `an address block of subnet ${this.name}`);
      const outcome = await this.race(this.moreCapacity(fs), deadline, opts.signal);
      if (outcome === 'full') {
        const last = this.pool.tryAllocate(holder, family);
        if (last !== undefined) return last;
        throw new IpamError(this.fullMessage(fs));
      }
    }
  }

  async reserve(ip: string, holder: string, opts: AllocateOptions = {}): Promise<void> {
    const deadline = this.cfg.now() + this.cfg.waitMs;
    let parsed: { family: Family; value: bigint };
    try { parsed = parseIp(ip); } catch (e) { throw new IpamError(`requested IP ${JSON.stringify(ip)} is not an IP address`, { cause: e }); }
    if (!this.pool.covers(ip)) { this.pool.reserve(ip, holder); return; } // throws the pool's "outside" error
    await this.whenReady(deadline, opts.signal);
    const name = addressClaimName(this.name, ip);
    // A delete of our earlier claim on it finishes first: the owner then decides afresh.
    while (this.deleting.has(name)) await this.deleting.get(name);
    this.reserving.set(name, (this.reserving.get(name) ?? 0) + 1);
    const before = this.pool.ownerOf(ip);
    const attempt: { createdUid?: string } = {};
    let heldHere = false;
    const undoLocal = (): void => {
      if (!heldHere || this.pool.ownerOf(ip) !== holder) return;
      if (before === undefined || before === holder) this.pool.releaseIp(ip, holder);
      else this.pool.restore(ip, before);
    };
    try {
      for (;;) {
        const fs = this.family(parsed.family);
        const idx = fs.geo.indexOf(parsed.value);
        const own = this.ownership(fs, idx);
        if (own.kind === 'mine') {
          if (own.entry.state === 'usable') {
            // Our block: the pool is the whole truth (foreign claims bound here hold their address).
            this.pool.reserve(ip, holder);
            heldHere = true;
            return;
          }
          this.checkWait(deadline, opts.signal, `block ${own.entry.block.cidr.text} of subnet ${this.name}`);
          await this.waitChange(deadline, opts.signal);
          continue;
        }
        if (own.kind === 'none') {
          this.checkWait(deadline, opts.signal, `block ${fs.geo.block(idx).cidr.text} of subnet ${this.name}`);
          await this.race(this.claimBlock(fs, idx), deadline, opts.signal);
          continue;
        }
        // Another node's block: ask it. Held here first, so no other request of this node takes it meanwhile.
        this.pool.reserve(ip, holder);
        heldHere = true;
        const outcome = await this.askOwner(fs, idx, ip, name, deadline, opts, attempt);
        if (outcome === 'bound') return;
        // 'moved': the block changed hands while we asked; decide again from the top.
      }
    } catch (e) {
      undoLocal();
      // Our claim goes unless another holder here (a pod holding it already) still needs it;
      // the one we created is ours even if the cache does not show it yet.
      if (this.pool.ownerOf(ip) === undefined) await this.dropMine(name, attempt.createdUid);
      throw e;
    } finally {
      const n = (this.reserving.get(name) ?? 1) - 1;
      if (n > 0) this.reserving.set(name, n); else this.reserving.delete(name);
    }
  }

  /** Our address claim for ip, created if needed, until its owner binds or refuses it. */
  private async askOwner(fs: FamilyState, idx: bigint, ip: string, name: string, deadline: number,
    opts: AllocateOptions, attempt: { createdUid?: string }): Promise<'bound' | 'moved'> {
    // Canonical text, so that every node writes the same spec for the same address.
    const value = parseIp(ip).value;
    const cidr = `${formatIp(fs.geo.family, value)}/${fs.geo.family === 4 ? 32 : 128}`;
    let created: IPClaim | undefined;
    let createdSeen = false;
    for (;;) {
      const cached = this.claims.get(name);
      if (created && cached?.metadata.uid === created.metadata.uid) createdSeen = true;
      // Our create counts until the cache shows it; once shown, the cache alone (it may be gone).
      const c = cached ?? (createdSeen ? undefined : created);
      if (c && !this.isClaimFor(c, cidr)) throw new IpamError(`requested IP ${ip}: claim name ${name} belongs to another claim (${c.spec.subnet} ${c.spec.cidr})`);
      if (c && c.spec.node !== this.me) {
        const pod = c.spec.pod ? ` for pod ${c.spec.pod}` : '';
        if (phaseOf(c) === 'Bound') throw new IpamError(`requested IP ${ip} is already claimed by node ${c.spec.node}${pod}`);
        // Another node's request in progress: it will be bound (then ours fails) or refused and deleted.
        this.checkWait(deadline, opts.signal, `the claim of node ${c.spec.node} on ${ip}${pod}`);
        await this.waitChange(deadline, opts.signal);
        continue;
      }
      if (c) {
        const phase = phaseOf(c);
        if (phase === 'Bound') return 'bound';
        if (phase === 'Refused') {
          const owner = this.ownership(fs, idx);
          const by = owner.kind === 'other' && owner.node ? `node ${owner.node}` : 'the block owner';
          throw new IpamError(`requested IP ${ip} was refused by ${by}: ${c.status?.reason ?? 'no reason given'}`);
        }
        const own = this.ownership(fs, idx);
        if (own.kind === 'none') {
          // The owner gave the block up (or was lost) before deciding: nobody will; start over.
          await this.dropMine(name, c.metadata.uid);
          return 'moved';
        }
        if (own.kind === 'mine' && own.entry.state === 'usable') this.onAddressClaim(c);
        this.checkWait(deadline, opts.signal, `node ${own.kind === 'other' ? own.node ?? '?' : this.me} to decide on ${ip}`);
        await this.waitChange(deadline, opts.signal);
        continue;
      }
      this.checkWait(deadline, opts.signal, `a claim on ${ip}`);
      const spec = { subnet: this.name, cidr, node: this.me, kind: 'address' as const, ...(opts.pod ? { pod: opts.pod } : {}) };
      const res = await this.ctx.store.create(spec, this.ctx.node(), opts.signal);
      if (res.created) { created = res.claim; createdSeen = false; attempt.createdUid = res.claim.metadata.uid; }
      // Exists: the cache will show whose it is; until it does, wait.
      else if (!this.claims.has(name)) await this.waitChange(deadline, opts.signal);
    }
  }

  // ---- blocks ------------------------------------------------------------------------------

  private family(f: Family): FamilyState {
    const cidr = this.pool.cidr(f);
    if (!cidr) throw new IpamError(`subnet ${this.name} has no IPv${f} range`);
    let fs = this.fams.get(f);
    if (fs && fs.geo.subnet.text === cidr.text) return fs;
    // New, or the Subnet's range changed: blocks are those of the new range.
    // The family whose offsets key the switch's ports across nodes gives out only keyed addresses.
    const keyFamily: Family = this.pool.cidr(4) ? 4 : 6;
    const keyed = f === keyFamily ? BigInt(MAX_PORT_KEY) + 1n : undefined;
    fs = { geo: new BlockGeometry(cidr, this.cfg.blockPrefix[f], keyed), owned: new Map(), taken: new Map(), fullSeen: false };
    this.fams.set(f, fs);
    this.indexOdd();
    if (this.active) for (const c of this.claims.values()) if (c.spec.kind === 'block' && c.spec.node === this.me) this.adopt(c);
    this.applyAllowed(fs);
    return fs;
  }

  /** Who owns block idx, as far as this node knows now. */
  private ownership(fs: FamilyState, idx: bigint): Ownership {
    const entry = fs.owned.get(idx);
    if (entry) return { kind: 'mine', entry };
    const block = fs.geo.block(idx);
    const name = blockClaimName(this.name, block.cidr);
    const c = this.claims.get(name);
    if (c && c.spec.kind === 'block' && c.spec.cidr === block.cidr.text) {
      if (c.spec.node !== this.me) return { kind: 'other', node: c.spec.node };
      if (!this.released.has(c.metadata.uid ?? '')) { this.adopt(c); const e = fs.owned.get(idx); if (e) return { kind: 'mine', entry: e }; }
      return { kind: 'other', node: undefined }; // our released block, its deletion not seen yet
    }
    if (c) return { kind: 'other', node: c.spec.node }; // a foreign object under that name: never ours
    // A block claimed with another block size (misconfigured node) still covers its addresses.
    for (const o of this.odd.values()) {
      const r = claimRange(o);
      if (r && r.family === fs.geo.family && r.lo <= block.hi && r.hi >= block.lo) return { kind: 'other', node: o.spec.node };
    }
    const until = fs.taken.get(name);
    if (until !== undefined && until > this.cfg.now()) return { kind: 'other', node: undefined };
    return { kind: 'none' };
  }

  private isOdd(c: IPClaim): boolean {
    if (c.spec.kind !== 'block' || c.spec.node === this.me) return false;
    const r = claimRange(c);
    const fs = r ? this.fams.get(r.family) : undefined;
    return r !== undefined && fs !== undefined && !fs.geo.isBlock([r.lo, r.hi]);
  }

  private indexOdd(): void {
    this.odd.clear();
    for (const c of this.claims.values()) if (this.isOdd(c)) this.odd.set(c.metadata.name, c);
  }

  /** A block claim of ours the cache shows: usable from now on. */
  private adopt(c: IPClaim): void {
    const r = claimRange(c);
    if (!r || c.metadata.uid === undefined || this.released.has(c.metadata.uid)) return;
    const fs = this.fams.get(r.family);
    if (!fs) return;
    if (!fs.geo.isBlock([r.lo, r.hi])) {
      this.ctx.log.warn({ step: 'ipam', subnet: this.name, claim: c.metadata.name, cidr: c.spec.cidr, blockPrefix: fs.geo.prefix }, 'this node owns a block of another size: not used');
      return;
    }
    const idx = fs.geo.indexOf(r.lo);
    let entry = fs.owned.get(idx);
    if (entry && entry.state === 'usable' && entry.uid === c.metadata.uid) return;
    if (entry?.state === 'releasing') return;
    if (!entry) {
      entry = { block: fs.geo.block(idx), name: c.metadata.name, state: 'usable' };
      fs.owned.set(idx, entry);
    }
    entry.uid = c.metadata.uid;
    entry.state = 'usable';
    this.applyAllowed(fs);
    this.arbitrateIn(fs, entry);
  }

  /** Bound claims in a block that just became usable are held from now on; pending ones get our decision. */
  private arbitrateIn(fs: FamilyState, entry: OwnedBlock): void {
    for (const a of [...this.claims.values()]) {
      if (a.spec.kind !== 'address') continue;
      const ar = claimRange(a);
      if (ar && ar.family === fs.geo.family && ar.lo >= entry.block.lo && ar.lo <= entry.block.hi) this.onAddressClaim(a);
    }
  }

  private onBlockDeleted(c: IPClaim): void {
    const uid = c.metadata.uid ?? '';
    if (this.released.delete(uid)) return;
    if (c.spec.node !== this.me) return;
    const r = claimRange(c);
    const fs = r ? this.fams.get(r.family) : undefined;
    if (!r || !fs || !fs.geo.isBlock([r.lo, r.hi])) return;
    const idx = fs.geo.indexOf(r.lo);
    const entry = fs.owned.get(idx);
    if (!entry || entry.state === 'releasing' || (entry.uid !== undefined && entry.uid !== uid)) return;
    if (entry.state === 'claiming') return; // our create is in flight: its answer decides
    // Lost from under us (our Node object deleted, or a person deleted the claim).
    fs.owned.delete(idx);
    this.applyAllowed(fs);
    const held = this.pool.heldIn(fs.geo.family, entry.block.lo, entry.block.hi);
    for (const h of held) if (h.holder.startsWith(CLAIM_HOLDER_PREFIX)) this.pool.releaseIp(h.ip, h.holder);
    const pods = held.filter((h) => this.cfg.isPodHolder(h.holder));
    this.ctx.log.warn({ step: 'ipam', subnet: this.name, block: entry.block.cidr.text, podsInBlock: pods.length }, 'block claim of this node deleted; not allocating from it any more');
    if (pods.length > 0) queueMicrotask(() => this.repair());
  }

  /**
   * Claims block idx (create-if-absent) and waits until the cache shows it: 'usable', or 'taken'
   * (another node has it), or 'timeout' (the cache did not show our create in time).
   */
  private async claimBlock(fs: FamilyState, idx: bigint): Promise<'usable' | 'taken' | 'timeout'> {
    let entry = fs.owned.get(idx);
    if (!entry) {
      const block = fs.geo.block(idx);
      entry = { block, name: blockClaimName(this.name, block.cidr), state: 'claiming' };
      fs.owned.set(idx, entry);
      const mine = entry;
      let res: Awaited<ReturnType<ClaimStore['create']>>;
      try {
        res = await this.ctx.store.create({ subnet: this.name, cidr: block.cidr.text, node: this.me, kind: 'block' }, this.ctx.node());
      } catch (e) {
        // Maybe created, maybe not: if it was, the cache will show it as ours and we adopt it.
        if (fs.owned.get(idx) === mine && mine.state === 'claiming') fs.owned.delete(idx);
        this.notify();
        throw e;
      }
      if (!res.created) {
        if (fs.owned.get(idx) === mine && mine.state === 'claiming') {
          fs.owned.delete(idx);
          if (!this.claims.has(mine.name)) fs.taken.set(mine.name, this.cfg.now() + this.cfg.takenTtlMs);
        }
        this.notify();
        return mine.state === 'usable' && fs.owned.get(idx) === mine ? 'usable' : 'taken';
      }
      if (mine.state === 'claiming') { mine.uid = res.claim.metadata.uid; mine.state = 'unseen'; }
    }
    const e = entry;
    const ok = await this.waitUntil(() => (e.state === 'usable' || fs.owned.get(idx) !== e ? true : undefined), this.cfg.now() + this.cfg.waitMs);
    return ok && fs.owned.get(idx) === e && e.state === 'usable' ? 'usable' : fs.owned.get(idx) === e ? 'timeout' : 'taken';
  }

  /** Joins or starts the search for one more block of the family. */
  private moreCapacity(fs: FamilyState): Promise<FindResult> {
    if (!fs.claiming) {
      fs.claiming = this.findBlock(fs)
        .then((r) => { fs.fullSeen = r === 'full'; return r; })
        .finally(() => { fs.claiming = undefined; });
    }
    return fs.claiming;
  }

  private async findBlock(fs: FamilyState): Promise<FindResult> {
    // A create not yet seen in the cache: wait for it instead of claiming block after block
    // while the watch is slow.
    for (const e of fs.owned.values()) {
      if (e.state === 'unseen' || e.state === 'claiming') {
        const idx = e.block.index;
        const r = await this.claimBlock(fs, idx);
        return r === 'usable' ? 'claimed' : r === 'timeout' ? 'timeout' : 'retry';
      }
    }
    const start = fs.geo.startIndex(this.me);
    const limit = fs.geo.count < MAX_CANDIDATES ? fs.geo.count : MAX_CANDIDATES;
    for (let k = 0n; k < limit; k++) {
      const idx = (start + k) % fs.geo.count;
      if (this.ownership(fs, idx).kind !== 'none') continue;
      const b = fs.geo.block(idx);
      if (this.pool.capacity(fs.geo.family, [[b.lo, b.hi]]).free <= 0n) continue;
      const r = await this.claimBlock(fs, idx);
      if (r === 'usable') return 'claimed';
      if (r === 'timeout') return 'timeout';
    }
    return 'full';
  }

  /** Claims ahead in the background when the owned blocks run low. */
  private prefetch(fs: FamilyState): void {
    if (fs.claiming || fs.fullSeen || this.closed) return;
    if (this.freeUsable(fs) >= BigInt(this.cfg.lowWater)) return;
    this.moreCapacity(fs).catch((e: unknown) => this.ctx.log.warn({ step: 'ipam', subnet: this.name, err: String(e) }, 'claiming an address block ahead failed'));
  }

  private usableRanges(fs: FamilyState): ValueRange[] {
    return [...fs.owned.values()].filter((e) => e.state === 'usable').map((e): ValueRange => [e.block.lo, e.block.hi]);
  }

  private freeUsable(fs: FamilyState): bigint {
    return this.pool.capacity(fs.geo.family, this.usableRanges(fs)).free;
  }

  private applyAllowed(fs: FamilyState): void {
    if (this.pool.cidr(fs.geo.family)) this.pool.setAllocatable(fs.geo.family, this.usableRanges(fs));
  }

  private fullMessage(fs: FamilyState): string {
    const nodes = new Set<string>();
    for (const c of this.claims.values()) if (c.spec.kind === 'block') nodes.add(c.spec.node);
    for (const e of fs.owned.values()) if (e.state === 'usable') nodes.add(this.me);
    const list = [...nodes].sort();
    return `subnet ${this.name} is full for node ${this.me}: no free IPv${fs.geo.family} address in this node's blocks and no ` +
      `/${fs.geo.prefix} block of ${fs.geo.subnet.text} left to claim (${fs.geo.count} block${fs.geo.count === 1n ? '' : 's'}, held by ` +
      `${list.length > 8 ? `${list.slice(0, 8).join(', ')} and ${list.length - 8} more` : list.join(', ') || 'nobody'}); ` +
      `a larger subnet or a smaller block size is needed`;
  }

  // ---- arbitration -------------------------------------------------------------------------

  /** An address claim appeared or changed: act if its block is ours and usable. */
  private onAddressClaim(c: IPClaim): void {
    const r = claimRange(c);
    if (!r || r.lo !== r.hi) return;
    const fs = this.fams.get(r.family);
    if (!fs || !contains(fs.geo.subnet, { family: r.family, value: r.lo })) return;
    const entry = fs.owned.get(fs.geo.indexOf(r.lo));
    if (!entry || entry.state !== 'usable') return;
    const name = c.metadata.name;
    const uid = c.metadata.uid ?? '';
    const ip = c.spec.cidr.split('/')[0] as string;
    const holder = claimHolder(name);
    const phase = phaseOf(c);
    if (c.spec.node === this.me) {
      // Our own request landed in our own block (the block changed hands while we asked): our
      // pool already holds the address for the pod that asked, if it still wants it.
      if (phase !== 'Pending') return;
      const owner = this.pool.ownerOf(ip);
      if (owner !== undefined && !owner.startsWith(CLAIM_HOLDER_PREFIX)) this.decide(name, uid, { phase: 'Bound' });
      else if (!this.reserving.has(name)) void this.dropMine(name);
      return;
    }
    if (phase === 'Bound') {
      // Bound (by us, or by the block's previous owner): held for as long as the claim exists.
      const owner = this.pool.ownerOf(ip);
      if (owner === holder) return;
      if (owner === undefined) { try { this.pool.reserve(ip, holder); } catch { /* network / gateway: never handed out anyway */ } return; }
      this.ctx.log.error({ step: 'ipam', subnet: this.name, ip, claim: name, node: c.spec.node, localHolder: owner }, 'address bound to another node is also held on this node');
      return;
    }
    if (phase === 'Refused') return;
    const done = this.decisions.get(name);
    if (done && done.uid === uid) return;
    const owner = this.pool.ownerOf(ip);
    let status: IPClaimStatus;
    if (owner === holder) status = { phase: 'Bound' };
    else if (owner !== undefined) status = { phase: 'Refused', reason: `${ip} is in use on node ${this.me} (${describeHolder(owner)})` };
    else {
      try {
        this.pool.reserve(ip, holder);
        status = { phase: 'Bound' };
      } catch (e) {
        status = { phase: 'Refused', reason: e instanceof Error ? e.message : String(e) };
      }
    }
    this.decide(name, uid, status);
  }

  private decide(name: string, uid: string, status: IPClaimStatus): void {
    const done = this.decisions.get(name);
    if (done && done.uid === uid) return;
    if (status.reason !== undefined && status.reason.length > MAX_REASON) status = { ...status, reason: `${status.reason.slice(0, MAX_REASON - 3)}...` };
    this.decisions.set(name, { uid, status });
    void this.writeStatus(name, uid, status);
  }

  private async writeStatus(name: string, uid: string, status: IPClaimStatus): Promise<void> {
    let delay = this.cfg.retryMs;
    for (let attempt = 1; attempt <= 5; attempt++) {
      const c = this.claims.get(name);
      if (this.closed || !c || c.metadata.uid !== uid || phaseOf(c) !== 'Pending') break;
      try {
        // At the version decided on: a claim that moved on meanwhile is not overwritten.
        const pre = c.metadata.resourceVersion === undefined ? { uid } : { uid, resourceVersion: c.metadata.resourceVersion };
        await this.ctx.store.patchStatus(name, pre, status);
        break; // 'gone' or 'conflict': the cache's DELETED event releases what we held
      } catch (e) {
        this.ctx.log.warn({ step: 'ipam', subnet: this.name, claim: name, phase: status.phase, attempt, err: String(e) }, 'writing an address claim decision failed');
        if (attempt === 5) { this.forget(name, uid); return; }
        await sleep(delay);
        delay *= 2;
      }
    }
    // Kept until the cache shows the new status, so an echo of the old one is not decided again.
    setTimeout(() => this.forget(name, uid), this.cfg.waitMs).unref?.();
  }

  private forget(name: string, uid: string): void {
    if (this.decisions.get(name)?.uid === uid) this.decisions.delete(name);
  }

  private onAddressClaimDeleted(c: IPClaim): void {
    const name = c.metadata.name;
    if (this.decisions.get(name)?.uid === c.metadata.uid) this.decisions.delete(name);
    const ip = c.spec.cidr?.split('/')[0];
    if (ip && this.pool.covers(ip) && this.pool.ownerOf(ip) === claimHolder(name)) this.pool.releaseIp(ip, claimHolder(name));
  }

  // ---- our address claims follow the pool ----------------------------------------------------

  private onFreed(ip: string, holder: string): void {
    if (holder.startsWith(CLAIM_HOLDER_PREFIX)) return;
    // After the current turn: a DEL's conntrack flush takes the address over in the same turn,
    // and the claim then waits for that holder to let go too.
    queueMicrotask(() => {
      if (this.closed || this.pool.ownerOf(ip) !== undefined) return;
      const name = addressClaimName(this.name, ip);
      const c = this.claims.get(name);
      if (c && c.spec.node === this.me && !this.reserving.has(name)) void this.dropMine(name);
    });
  }

  /**
   * Deletes our address claim of that name (the one the cache shows, or the one with knownUid
   * that we created), retrying in the background.
   */
  private dropMine(name: string, knownUid?: string): Promise<void> {
    const running = this.deleting.get(name);
    if (running) return running;
    const c = this.claims.get(name);
    const uid = knownUid ?? (c && c.spec.node === this.me ? c.metadata.uid : undefined);
    if (uid === undefined) return Promise.resolve();
    const p = (async () => {
      let delay = this.cfg.retryMs;
      for (let attempt = 1; attempt <= 5; attempt++) {
        try {
          await this.ctx.store.delete(name, uid);
          return;
        } catch (e) {
          this.ctx.log.warn({ step: 'ipam', subnet: this.name, claim: name, attempt, err: String(e) }, 'deleting an address claim failed');
          if (attempt === 5) return; // sweep() tries again
          await sleep(delay);
          delay *= 2;
        }
      }
    })().finally(() => { this.deleting.delete(name); this.notify(); });
    this.deleting.set(name, p);
    return p;
  }

  // ---- sweep: leftovers, repair, empty blocks -------------------------------------------------

  /**
   * Periodic housekeeping: decisions that failed to be written are made again, our claims that
   * nothing holds any more are deleted, pods' addresses outside our blocks get a claim again,
   * and blocks empty for releaseAfterMs are given back (keeping lowWater free addresses).
   */
  async sweep(): Promise<void> {
    if (!this.active || this.closed) return;
    this.dropUnheld();
    for (const c of [...this.claims.values()]) if (c.spec.kind === 'address') this.onAddressClaim(c);
    this.repair();
    const now = this.cfg.now();
    const releases: Promise<void>[] = [];
    for (const f of this.pool.families) {
      const fs = this.family(f);
      for (const e of fs.owned.values()) {
        if (e.state !== 'usable') continue;
        if (!this.isEmpty(fs, e)) { e.emptySince = undefined; continue; }
        e.emptySince ??= now;
        if (now - e.emptySince < this.cfg.releaseAfterMs) continue;
        const cap = this.pool.capacity(f, [[e.block.lo, e.block.hi]]).total;
        if (this.freeUsable(fs) - cap < BigInt(this.cfg.lowWater)) continue;
        releases.push(this.releaseBlock(fs, e));
      }
    }
    await Promise.all(releases);
  }

  /** Our address claims that no holder of our pool needs (a crash between the two, a lost delete). */
  private dropUnheld(): void {
    for (const c of [...this.claims.values()]) {
      if (c.spec.kind !== 'address' || c.spec.node !== this.me || this.reserving.has(c.metadata.name)) continue;
      const ip = c.spec.cidr.split('/')[0] as string;
      if (this.pool.covers(ip) && this.pool.ownerOf(ip) === undefined) void this.dropMine(c.metadata.name);
    }
  }

  /** Nothing allocated in the block and no address claim (of any phase) inside it. */
  private isEmpty(fs: FamilyState, e: OwnedBlock): boolean {
    if (this.pool.heldIn(fs.geo.family, e.block.lo, e.block.hi).length > 0) return false;
    for (const c of this.claims.values()) {
      if (c.spec.kind !== 'address') continue;
      const r = claimRange(c);
      if (r && r.family === fs.geo.family && r.lo >= e.block.lo && r.lo <= e.block.hi) return false;
    }
    return true;
  }

  private async releaseBlock(fs: FamilyState, e: OwnedBlock): Promise<void> {
    // Out of the pool's reach before the delete is sent: no allocation can land in it meanwhile.
    e.state = 'releasing';
    this.applyAllowed(fs);
    const uid = e.uid;
    if (uid === undefined || !this.isEmpty(fs, e)) { e.state = 'usable'; this.applyAllowed(fs); return; }
    this.released.add(uid);
    try {
      const r = await this.ctx.store.delete(e.name, uid);
      this.ctx.log.info({ step: 'ipam', subnet: this.name, block: e.block.cidr.text, result: r }, 'empty address block released');
      if (fs.owned.get(e.block.index) === e) fs.owned.delete(e.block.index);
      if (r !== 'deleted') this.released.delete(uid);
    } catch (err) {
      this.released.delete(uid);
      this.ctx.log.warn({ step: 'ipam', subnet: this.name, block: e.block.cidr.text, err: String(err) }, 'releasing an empty address block failed');
      e.state = 'usable';
      e.emptySince = undefined;
      this.applyAllowed(fs);
      // Claims that arrived while it was being released were not decided: they are now.
      this.arbitrateIn(fs, e);
    } finally {
      this.notify();
    }
  }

  /**
   * Addresses our pods hold outside our blocks without a claim of ours (a block lost with our
   * Node object, a crash between a claim's deletion and the pool's): claim the block when nobody
   * has it, otherwise ask its owner, who binds or refuses (a refusal means two pods share the
   * address: logged as an error, the pod keeps running).
   */
  private repair(): void {
    if (!this.active || this.closed) return;
    for (const { ip, holder } of this.pool.held()) {
      if (!this.cfg.isPodHolder(holder)) continue;
      const { family, value } = parseIp(ip);
      const fs = this.fams.get(family);
      if (!fs || !contains(fs.geo.subnet, { family, value })) continue;
      const idx = fs.geo.indexOf(value);
      const own = this.ownership(fs, idx);
      if (own.kind === 'mine') continue;
      const name = addressClaimName(this.name, ip);
      if (this.reserving.has(name)) continue;
      const c = this.claims.get(name);
      if (c && c.spec.node === this.me) {
        if (phaseOf(c) === 'Refused') this.ctx.log.error({ step: 'ipam', subnet: this.name, ip, holder, reason: c.status?.reason }, 'address of a pod on this node was refused by its block owner: it is in use twice');
        continue;
      }
      if (c) {
        this.ctx.log.error({ step: 'ipam', subnet: this.name, ip, holder, claimedBy: c.spec.node }, 'address of a pod on this node is claimed by another node');
        continue;
      }
      this.ctx.log.warn({ step: 'ipam', subnet: this.name, ip, holder, block: fs.geo.block(idx).cidr.text }, 'address of a pod on this node has no claim: claiming it again');
      if (own.kind === 'none') {
        this.claimBlock(fs, idx).catch((e: unknown) => this.ctx.log.warn({ step: 'ipam', subnet: this.name, err: String(e) }, 'claiming a block back failed'));
      } else {
        const cidr = `${formatIp(family, value)}/${family === 4 ? 32 : 128}`;
        this.ctx.store.create({ subnet: this.name, cidr, node: this.me, kind: 'address' }, this.ctx.node())
          .catch((e: unknown) => this.ctx.log.warn({ step: 'ipam', subnet: this.name, err: String(e) }, 'claiming an address back failed'));
      }
    }
  }

  // ---- waiting -------------------------------------------------------------------------------

  private notify(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  /** Resolves at the next change of claims or blocks, at the deadline, or when the signal aborts. */
  private waitChange(deadline: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, deadline - this.cfg.now()));
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private async waitUntil(probe: () => true | undefined, deadline: number, signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      if (probe()) return true;
      if (this.cfg.now() >= deadline || signal?.aborted || this.closed) return false;
      await this.waitChange(deadline, signal);
    }
  }

  /** p, unless the deadline or the signal comes first (then what checkWait throws). */
  private async race<T>(p: Promise<T>, deadline: number, signal?: AbortSignal): Promise<T | 'timeout'> {
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const stop = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - this.cfg.now()));
      onAbort = () => resolve('timeout');
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([p, stop]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  private checkWait(deadline: number, signal: AbortSignal | undefined, what: string): void {
    if (this.closed) throw new TryAgainLaterError(`subnet ${this.name} is no longer served by cluster IPAM`);
    if (signal?.aborted) throw new TryAgainLaterError(`request ended while waiting for ${what}`);
    if (this.cfg.now() >= deadline) throw new TryAgainLaterError(`timed out after ${this.cfg.waitMs} ms waiting for ${what}`);
  }

  private async whenReady(deadline: number, signal?: AbortSignal): Promise<void> {
    if (this.active) return;
    if (this.closed) this.checkWait(deadline, signal, '');
    await this.race(this.ctx.ready(), deadline, signal);
    if (!this.active) this.checkWait(deadline, signal, 'the IP claims cache to sync');
    if (!this.active) throw new TryAgainLaterError(`the IP claims of subnet ${this.name} are not followed yet`);
  }

  private isClaimFor(c: IPClaim, cidr: string): boolean {
    const want = claimRange({ spec: { cidr } } as IPClaim);
    const got = claimRange(c);
    return c.spec.subnet === this.name && c.spec.kind === 'address' && got !== undefined && want !== undefined
      && got.family === want.family && got.lo === want.lo && got.hi === want.hi;
  }

  /** For tests and status: the blocks this node owns, by state. */
  blocks(): Array<{ cidr: string; state: BlockState }> {
    const out: Array<{ cidr: string; state: BlockState }> = [];
    for (const fs of this.fams.values()) for (const e of fs.owned.values()) out.push({ cidr: e.block.cidr.text, state: e.state });
    return out.sort((a, b) => a.cidr.localeCompare(b.cidr));
  }
}

/** The range a claim covers, if its spec parses. */
export function claimRange(c: IPClaim): { family: Family; lo: bigint; hi: bigint } | undefined {
  try {
    const cidr = parseCidr(c.spec.cidr);
    const bits = cidr.family === 4 ? 32 : 128;
    return { family: cidr.family, lo: cidr.network, hi: cidr.network + (1n << BigInt(bits - cidr.prefix)) - 1n };
  } catch {
    return undefined;
  }
}

function describeHolder(holder: string): string {
  if (holder.startsWith(CLAIM_HOLDER_PREFIX)) return `claim ${holder.slice(CLAIM_HOLDER_PREFIX.length)}`;
  return parsePortHolder(holder)?.lspName ?? holder;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref?.());
}

