// Conntrack state of addresses a DEL released, flushed before anyone else can get them: an
// established entry of a deleted pod would otherwise match the next pod that gets its address,
// e.g. let its packets pass as "replies" through a policy that drops new connections.
//
// ovs-vswitchd owns conntrack on the userspace datapath (and forwards the flush to the kernel's
// on the system datapath), so the flush goes to its unixctl socket: no process is spawned.

import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { SubnetRegistry } from '../ipam/registry';
import type { Metrics } from '../metrics';
import type { UnixctlCall, UnixctlClient, UnixctlError, UnixctlOutcome } from './unixctl';

/** IPAM holder of an address whose flush has not succeeded yet: nobody can be given it meanwhile. */
export const CT_FLUSH_HOLDER = 'ovnode:conntrack-flush';

// OVS 3.1.0 aborts ovs-vswitchd when a tuple flush reaches an ICMPv6 entry (measured: partial
// and exact tuples alike; IPv4 ICMP is fine). An IPv6 match therefore always names a protocol
// other than ICMPv6, which the server checks before it looks at the entry's ICMP fields.
// ICMPv6 entries are left to expire (30 s after the last reply, userspace defaults).
const V6_PROTOCOLS = [6 /* tcp */, 17 /* udp */, 132 /* sctp */];

/**
 * dpctl/flush-conntrack calls that remove every entry (all zones: a partial tuple without zone=
 * is matched against the whole table) in which `ip` is the source or destination of the
 * original or of the reply direction; the reply side matters with NAT (a load balancer's backend
 * appears only there). No datapath argument: OVS 3.1 parses one given before a tuple as a tuple
 * ("field netdev@ovs-netdev missing value"), so vswitchd picks the only datapath itself (and,
 * without the kernel module, logs "failed to enumerate system datapaths" for each call).
 */
export function flushCalls(ip: string): UnixctlCall[] {
  const family = isIP(ip);
  if (family === 0) throw new TypeError(`flushCalls: not an IP address: ${JSON.stringify(ip)}`);
  const matches = family === 4
    ? [`ct_nw_src=${ip}`, `ct_nw_dst=${ip}`]
    : ['ct_ipv6_src', 'ct_ipv6_dst'].flatMap((f) => V6_PROTOCOLS.map((p) => `${f}=${ip},ct_nw_proto=${p}`));
  // An empty original tuple makes the next argument the reply tuple (ovs-vswitchd(8)).
  return matches.flatMap((m) => [
    { method: 'dpctl/flush-conntrack', params: [m] },
    { method: 'dpctl/flush-conntrack', params: ['', m] },
  ]);
}

export interface ConntrackFlusherOptions {
  unixctl: Pick<UnixctlClient, 'callAll'>;
  subnets: SubnetRegistry;
  log: Logger;
  metrics: Metrics;
  /** Deadline of one flush batch (it runs on the DEL path). */
  timeoutMs?: number;
  /** After this many failed attempts an address is given back unflushed (logged as an error). */
  maxAttempts?: number;
}

export interface RetryReport { flushed: number; failed: number; abandoned: number }

const DEFAULT_TIMEOUT_MS = 1_000;
const DEFAULT_MAX_ATTEMPTS = 20;
const MAX_PASSES = 12;
const NCONNS: UnixctlCall = { method: 'dpctl/ct-get-nconns' };

/** The connection count of a ct-get-nconns outcome; NaN when there is none. */
function entries(o: UnixctlOutcome | undefined): number {
  return o?.ok && /^\s*\d+\s*$/.test(o.result) ? Number(o.result) : Number.NaN;
}

export class ConntrackFlusher {
  /** Addresses whose flush failed, with the number of attempts so far; held under CT_FLUSH_HOLDER. */
  private readonly pending = new Map<string, number>();
  /** Flushes under way, by address. */
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(private readonly opts: ConntrackFlusherOptions) {}

  get pendingCount(): number { return this.pending.size; }

  /**
   * Flushes the conntrack state of addresses a DEL has just released. Call it in the same
   * synchronous turn as the release: the addresses are taken back into IPAM (held by
   * CT_FLUSH_HOLDER) before the first await, so no ADD can get one until its flush succeeded.
   * A failed flush keeps the address held for retryPending(). Never throws: DEL must not fail
   * for this. Callers need not wait: the address stays held until the flush is done, and an ADD
   * that asks for one of these addresses waits for it (whenFlushed).
   */
  released(ips: readonly string[]): Promise<void> {
    const held = ips.filter((ip) => this.hold(ip));
    if (held.length === 0) return Promise.resolve();
    const done = this.flush(held.map((ip) => ({ ip, attempt: 1 }))).then(() => undefined, (e: unknown) => {
      this.opts.log.error({ step: 'conntrack', ips: held, err: e }, 'conntrack flush failed unexpectedly');
    });
    for (const ip of held) this.inFlight.set(ip, done);
    void done.finally(() => { for (const ip of held) if (this.inFlight.get(ip) === done) this.inFlight.delete(ip); });
    return done;
  }

  /** Resolves once no flush of these addresses is in flight (a static-address ADD waits here). */
  async whenFlushed(ips: readonly string[]): Promise<void> {
    await Promise.all(ips.map((ip) => this.inFlight.get(ip)));
  }

  /** Addresses whose flush is under way (held, about to be free again). */
  get flushing(): number { return this.inFlight.size; }

  /** Resolves once every flush under way has finished. */
  async whenAllFlushed(): Promise<void> {
    await Promise.all([...new Set(this.inFlight.values())]);
  }

  /** Retries the flushes that failed (the reconcile loop calls it on every run). */
  async retryPending(): Promise<RetryReport> {
    const report: RetryReport = { flushed: 0, failed: 0, abandoned: 0 };
    const due: Array<{ ip: string; attempt: number }> = [];
    for (const [ip, attempts] of this.pending) {
      if (!this.stillHeld(ip)) {
        // The pool no longer says it is ours (subnet reshaped or removed): someone may use the
        // address now, and their connections must not be flushed.
        this.pending.delete(ip);
        this.opts.metrics.conntrackFlushes.inc({ outcome: 'abandoned' });
        this.opts.log.warn({ step: 'conntrack', ip }, 'address no longer held for its conntrack flush; flush abandoned');
        report.abandoned++;
        continue;
      }
      due.push({ ip, attempt: attempts + 1 });
    }
    if (due.length === 0) return report;
    const outcome = await this.flush(due);
    report.flushed += outcome.flushed;
    report.failed += outcome.failed;
    report.abandoned += outcome.abandoned;
    return report;
  }

  /** Takes the address back into IPAM; false when another holder has it (then it is theirs). */
  private hold(ip: string): boolean {
    const pools = this.opts.subnets.all().filter((p) => p.covers(ip));
    if (pools.some((p) => { const o = p.ownerOf(ip); return o !== undefined && o !== CT_FLUSH_HOLDER; })) return false;
    for (const pool of pools) {
      // Reserved addresses (gateway, network) are refused: nobody can be given those anyway.
      try { pool.reserve(ip, CT_FLUSH_HOLDER); } catch { /* see above */ }
    }
    return true;
  }

  private stillHeld(ip: string): boolean {
    const owners = this.opts.subnets.all().filter((p) => p.covers(ip)).map((p) => p.ownerOf(ip));
    // Outside every pool nobody can be given the address: flushing it hurts no one.
    if (owners.length === 0) return true;
    return owners.every((o) => o === undefined || o === CT_FLUSH_HOLDER) && owners.includes(CT_FLUSH_HOLDER);
  }

  private unhold(ip: string): void {
    for (const pool of this.opts.subnets.all()) if (pool.covers(ip)) pool.releaseIp(ip, CT_FLUSH_HOLDER);
  }

  private async flush(items: Array<{ ip: string; attempt: number }>): Promise<RetryReport> {
    const { log, metrics } = this.opts;
    const report: RetryReport = { flushed: 0, failed: 0, abandoned: 0 };
    const plans = items.map((item) => ({ ...item, calls: flushCalls(item.ip) }));
    const started = process.hrtime.bigint();
    const deadline = Date.now() + (this.opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const errors = new Map<string, UnixctlError | Error>();
    const calls = [NCONNS, ...plans.flatMap((p) => p.calls), NCONNS];
    let passes = 0;
    // OVS 3.1's partial flush deletes while it iterates the table, and the table shrinking under
    // it makes one pass skip entries: measured, each pass over an address with 20000 entries left
    // half of them. Passes repeat while the table still shrank (counted around each pass).
    for (;;) {
      passes++;
      let outcomes: UnixctlOutcome[];
      try {
        outcomes = await this.opts.unixctl.callAll(calls, { timeoutMs: Math.max(1, deadline - Date.now()) });
      } catch (e) {
        for (const p of plans) errors.set(p.ip, e as Error);
        break;
      }
      let at = 1;
      for (const p of plans) {
        const bad = outcomes.slice(at, at + p.calls.length).find((o) => !o.ok);
        at += p.calls.length;
        if (bad && !bad.ok && !errors.has(p.ip)) errors.set(p.ip, bad.error);
      }
      const removed = entries(outcomes[0]) - entries(outcomes[outcomes.length - 1]);
      // No count (a datapath without ct-get-nconns, e.g. the kernel's, which does not skip): one pass.
      if (errors.size > 0 || !(removed > 0) || passes >= MAX_PASSES) break;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics.conntrackFlushDuration.observe({ outcome: errors.size === 0 ? 'ok' : 'error' }, seconds);
    const flushed: string[] = [];
    for (const { ip, attempt } of plans) {
      const err = errors.get(ip);
      if (!err) {
        this.pending.delete(ip);
        this.unhold(ip);
        metrics.conntrackFlushes.inc({ outcome: 'ok' });
        flushed.push(ip);
        report.flushed++;
      } else if (attempt >= (this.opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS)) {
        this.pending.delete(ip);
        this.unhold(ip);
        metrics.conntrackFlushes.inc({ outcome: 'abandoned' });
        log.error({ step: 'conntrack', ip, attempt, err }, 'conntrack flush kept failing; address released with its conntrack state');
        report.abandoned++;
      } else {
        this.pending.set(ip, attempt);
        metrics.conntrackFlushes.inc({ outcome: 'failed' });
        log.warn({ step: 'conntrack', ip, attempt, err }, 'conntrack flush failed; address held until a retry succeeds');
        report.failed++;
      }
    }
    if (flushed.length > 0) log.debug({ step: 'conntrack', ips: flushed, passes, ms: seconds * 1000 }, 'conntrack flushed');
    return report;
  }
}
