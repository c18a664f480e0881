// ConntrackFlusher with a scripted unixctl and real IPAM pools: a released address is held from
// the DEL's turn until its flush succeeded (no ADD can get it in between), a failed flush keeps
// it held for the reconcile loop's retry, and nothing is flushed for an address someone else has.
// flushCalls: both directions, original and reply tuples, and IPv6 only with a protocol (OVS
// 3.1.0 aborts on a tuple flush that reaches an ICMPv6 entry).
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { SubnetRegistry } from '../../../../daemon/ipam/registry';
import { Metrics } from '../../../../daemon/metrics';
import { ConntrackFlusher, CT_FLUSH_HOLDER, flushCalls } from '../../../../daemon/ovs/conntrack';
import { UnixctlCommandError, UnixctlTimeoutError, type UnixctlCall, type UnixctlOutcome } from '../../../../daemon/ovs/unixctl';

const log = pino({ level: 'silent' });

function registry(): SubnetRegistry {
  const r = new SubnetRegistry('ovn-default');
  r.add({ name: 'ovn-default', cidrs: ['10.16.0.0/16', 'fd00:10:16::/64'] });
  return r;
}

const NCONNS = { method: 'dpctl/ct-get-nconns' };

/**
 * A unixctl whose callAll answers flushes with `reply` (or throws it) and ct-get-nconns with the
 * next of `counts` (the last one repeats; none: the command is unknown, as on a datapath without
 * it); batches are recorded; `gate` delays the answer.
 */
class ScriptedUnixctl {
  readonly batches: UnixctlCall[][] = [];
  reply: 'ok' | Error | ((c: UnixctlCall) => UnixctlOutcome) = 'ok';
  counts: number[] = [];
  gate: Promise<void> | undefined;

  async callAll(calls: readonly UnixctlCall[]): Promise<UnixctlOutcome[]> {
    this.batches.push([...calls]);
    await this.gate;
    const r = this.reply;
    if (r instanceof Error) throw r;
    return calls.map((c): UnixctlOutcome => {
      if (c.method === NCONNS.method) {
        const n = this.counts.length > 1 ? this.counts.shift() : this.counts[0];
        return n === undefined ? { ok: false, error: new UnixctlCommandError('/x.ctl', c.method, [], 'unknown command') } : { ok: true, result: `${n}\n` };
      }
      return r === 'ok' ? { ok: true, result: '' } : r(c);
    });
  }
}

/** The flush calls of a batch, without the counts around them. */
const flushesOf = (batch: UnixctlCall[] | undefined): UnixctlCall[] => (batch ?? []).filter((c) => c.method !== NCONNS.method);

async function counter(m: Metrics, name: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await m.registry.getSingleMetric(name)?.get())?.values ?? []) out[String(v.labels.outcome ?? '')] = v.value;
  return out;
}

function setup() {
  const subnets = registry();
  const pool = subnets.get('ovn-default');
  const unixctl = new ScriptedUnixctl();
  const metrics = new Metrics();
  const flusher = new ConntrackFlusher({ unixctl, subnets, log, metrics, maxAttempts: 3 });
  return { subnets, pool, unixctl, metrics, flusher };
}

describe('flushCalls', () => {
  it('IPv4: source and destination, original and reply tuple (empty original = reply only)', () => {
    expect(flushCalls('10.16.0.5').map((c) => c.params)).toEqual([
      ['ct_nw_src=10.16.0.5'], ['', 'ct_nw_src=10.16.0.5'], ['ct_nw_dst=10.16.0.5'], ['', 'ct_nw_dst=10.16.0.5'],
    ]);
    expect(new Set(flushCalls('10.16.0.5').map((c) => c.method))).toEqual(new Set(['dpctl/flush-conntrack']));
  });

  it('IPv6: every match names a protocol, never ICMPv6 (58)', () => {
    const params = flushCalls('fd00:10:16::5').map((c) => (c.params ?? []).filter(Boolean)[0] as string);
    expect(params).toHaveLength(12);
    for (const p of params) expect(p).toMatch(/^ct_ipv6_(src|dst)=fd00:10:16::5,ct_nw_proto=(6|17|132)$/);
    expect(params.join(' ')).not.toMatch(/proto=58/);
  });

  it('refuses what is not an address', () => {
    expect(() => flushCalls('10.16.0.5/16')).toThrow(TypeError);
  });
});

describe('ConntrackFlusher', () => {
  it('holds a released address from the release until its flush answered, then frees it', async () => {
    const { pool, unixctl, flusher, metrics } = setup();
    pool.reserve('10.16.0.5', 'a.ns|sb1');
    pool.release('a.ns|sb1');
    let open!: () => void;
    unixctl.gate = new Promise((r) => { open = r; });
    const done = flusher.released(['10.16.0.5']);
    // Same turn as the release: an ADD asking for it now is refused, one allocating skips it.
    expect(pool.ownerOf('10.16.0.5')).toBe(CT_FLUSH_HOLDER);
    expect(() => pool.reserve('10.16.0.5', 'c.ns|sb3')).toThrow(/in use/);
    open();
    await done;
    expect(pool.ownerOf('10.16.0.5')).toBeUndefined();
    expect(unixctl.batches).toHaveLength(1);
    expect(unixctl.batches[0]).toEqual([NCONNS, ...flushCalls('10.16.0.5'), NCONNS]);
    expect(flusher.pendingCount).toBe(0);
    expect(await counter(metrics, 'ovnode_conntrack_flushes_total')).toEqual({ ok: 1 });
  });

  it('a failed flush does not throw, keeps the address held and pending; the retry frees it', async () => {
    const { pool, unixctl, flusher, metrics } = setup();
    unixctl.reply = new UnixctlTimeoutError('/x.ctl', 1000, 0, 4);
    await expect(flusher.released(['10.16.0.7', 'fd00:10:16::7'])).resolves.toBeUndefined();
    expect(pool.ownerOf('10.16.0.7')).toBe(CT_FLUSH_HOLDER);
    expect(pool.ownerOf('fd00:10:16::7')).toBe(CT_FLUSH_HOLDER);
    expect(flusher.pendingCount).toBe(2);
    expect(await counter(metrics, 'ovnode_conntrack_flushes_total')).toEqual({ failed: 2 });
    expect(pool.allocate('d.ns|sb4', 4)).not.toBe('10.16.0.7');

    unixctl.reply = 'ok';
    expect(await flusher.retryPending()).toEqual({ flushed: 2, failed: 0, abandoned: 0 });
    expect(pool.ownerOf('10.16.0.7')).toBeUndefined();
    expect(flusher.pendingCount).toBe(0);
    expect(await flusher.retryPending()).toEqual({ flushed: 0, failed: 0, abandoned: 0 });
    expect(unixctl.batches).toHaveLength(2);
  });

  it('a command error fails only its address', async () => {
    const { pool, unixctl, flusher } = setup();
    unixctl.reply = (c) => ((c.params ?? []).some((p) => p.includes('10.16.0.9'))
      ? { ok: false, error: new UnixctlCommandError("/x.ctl", c.method, c.params ?? [], "nope") }
      : { ok: true, result: '' });
    await flusher.released(['10.16.0.8', '10.16.0.9']);
    expect(pool.ownerOf('10.16.0.8')).toBeUndefined();
    expect(pool.ownerOf('10.16.0.9')).toBe(CT_FLUSH_HOLDER);
    expect(flusher.pendingCount).toBe(1);
  });

  it('gives an address back unflushed after maxAttempts, counted as abandoned', async () => {
    const { pool, unixctl, flusher, metrics } = setup();
    unixctl.reply = new Error('vswitchd wedged');
    await flusher.released(['10.16.0.10']);
    await flusher.retryPending();
    expect(pool.ownerOf('10.16.0.10')).toBe(CT_FLUSH_HOLDER);
    expect(await flusher.retryPending()).toEqual({ flushed: 0, failed: 0, abandoned: 1 });
    expect(pool.ownerOf('10.16.0.10')).toBeUndefined();
    expect(flusher.pendingCount).toBe(0);
    expect(await counter(metrics, 'ovnode_conntrack_flushes_total')).toEqual({ failed: 2, abandoned: 1 });
  });

  it('never flushes an address another holder has: at release, or when the hold was lost before a retry', async () => {
    const { pool, unixctl, flusher } = setup();
    pool.reserve('10.16.0.11', 'other.ns|sb9');
    await flusher.released(['10.16.0.11']);
    expect(unixctl.batches).toHaveLength(0);
    expect(pool.ownerOf('10.16.0.11')).toBe('other.ns|sb9');

    unixctl.reply = new Error('down');
    await flusher.released(['10.16.0.12']);
    // The pool lost the hold (e.g. the subnet was reshaped) and handed the address out.
    pool.releaseIp('10.16.0.12', CT_FLUSH_HOLDER);
    pool.reserve('10.16.0.12', 'new.ns|sb10');
    unixctl.reply = 'ok';
    expect(await flusher.retryPending()).toEqual({ flushed: 0, failed: 0, abandoned: 1 });
    expect(unixctl.batches).toHaveLength(1);
    expect(pool.ownerOf('10.16.0.12')).toBe('new.ns|sb10');
  });

  it('an address outside every pool is flushed (nobody can be given it)', async () => {
    const { unixctl, flusher } = setup();
    await flusher.released(['192.168.7.7']);
    expect(flushesOf(unixctl.batches[0])).toEqual(flushCalls('192.168.7.7'));
  });

  it('repeats the pass while the table still shrank (OVS 3.1 skips entries in one pass), at most 12 times', async () => {
    const { unixctl, flusher } = setup();
    // before/after counts per pass: 20000 -> 8000, 8000 -> 4000, 4000 -> 4000 (nothing left of ours).
    unixctl.counts = [20_000, 8_000, 8_000, 4_000, 4_000, 4_000];
    await flusher.released(['10.16.0.20']);
    expect(unixctl.batches).toHaveLength(3);
    for (const b of unixctl.batches) expect(flushesOf(b)).toEqual(flushCalls('10.16.0.20'));

    const capped = setup();
    capped.unixctl.counts = Array.from({ length: 100 }, (_, i) => 10_000 - i);
    await capped.flusher.released(['10.16.0.21']);
    expect(capped.unixctl.batches).toHaveLength(12);
    expect(capped.pool.ownerOf('10.16.0.21')).toBeUndefined();
  });

  it('without a connection count (ct-get-nconns unsupported) it makes one pass and succeeds', async () => {
    const { unixctl, flusher, pool } = setup();
    await flusher.released(['10.16.0.22']);
    expect(unixctl.batches).toHaveLength(1);
    expect(pool.ownerOf('10.16.0.22')).toBeUndefined();
    expect(flusher.pendingCount).toBe(0);
  });
});

describe('ConntrackFlusher.whenFlushed (DEL does not wait for the flush; a static-address ADD does)', () => {
  it('resolves only once the flush of that address answered, and at once for other addresses', async () => {
    const { pool, unixctl, flusher } = setup();
    let open: () => void = () => undefined;
    unixctl.gate = new Promise<void>((r) => { open = r; });
    pool.reserve('10.16.0.5', 'a.ns|sb1');
    pool.release('a.ns|sb1');
    const flushing = flusher.released(['10.16.0.5']);
    let waited = false;
    const waiter = flusher.whenFlushed(['10.16.0.5']).then(() => { waited = true; });
    await flusher.whenFlushed(['10.16.0.9']);
    expect(waited).toBe(false);
    expect(pool.ownerOf('10.16.0.5')).toBe(CT_FLUSH_HOLDER);
    open();
    await waiter;
    await flushing;
    expect(pool.ownerOf('10.16.0.5')).toBeUndefined();
    pool.reserve('10.16.0.5', 'c.ns|sb3');
  });
});

describe('ConntrackFlusher.whenAllFlushed (a full subnet waits for addresses that are only being flushed)', () => {
  it('counts the addresses being flushed and resolves when all are done', async () => {
    const { pool, unixctl, flusher } = setup();
    let open: () => void = () => undefined;
    unixctl.gate = new Promise<void>((r) => { open = r; });
    for (const ip of ['10.16.0.5', '10.16.0.6']) { pool.reserve(ip, `${ip}|sb`); pool.release(`${ip}|sb`); }
    void flusher.released(['10.16.0.5']);
    void flusher.released(['10.16.0.6']);
    expect(flusher.flushing).toBe(2);
    let done = false;
    const all = flusher.whenAllFlushed().then(() => { done = true; });
    await Promise.resolve();
    expect(done).toBe(false);
    open();
    await all;
    expect(flusher.flushing).toBe(0);
  });
});
