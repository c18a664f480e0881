// Reachability matrices on the lab cluster, measured with real packets from inside the pods.
//
// The tables (expected matrices written as text, the comparison and its printout) are the
// integration harness's, so a seed's matrix reads the same in the embedded and the cluster tests.
// What differs is the measurement: here one `kubectl exec` per source pod runs a small busybox
// script that probes every target at once (ICMP: `ping -c1 -W1`; TCP: an HTTP/1.0 GET to the
// test pod's httpd on 8080 through `nc -w1`, ok when the page "ok" comes back) and prints one
// line per probe. The sources run concurrently: a whole matrix costs a handful of kubectl
// processes, not one per pair, which matters on a 2-core machine. A failed probe is tried again
// (`tries`) so that a "no" is never one lost packet.
//
// TCP from a given source port is the exception: busybox's small nc takes `-p` only when it
// listens (a client binds an ephemeral port whatever -p says), so those connections are made by
// the host's netcat-openbsd (scripts/install-deps.sh) run inside the pod's network namespace
// (nsenter, found by the namespace's inode), one after another per source.

import { expect } from 'vitest';
import { checkMatrix, onlyColumns, type ExpectedMatrix, type Proto, type Reach } from '../../integration/harness/matrix';
import { kubectl, run } from './lab';
import { podNetnsPath } from './pods';

export { checkMatrix, matrix, onlyColumns, uniform, withCells, type ExpectedMatrix, type Proto, type Reach } from '../../integration/harness/matrix';
export { podAddress, podNetnsPath } from './pods';

/** Where a probe goes: a pod or another address (a gateway). */
export interface Target { alias: string; ip: string }

/** A pod that starts probes (and can be a target). */
export interface Peer extends Target { namespace: string; pod: string }

/** The TCP port of testPod()'s HTTP server. */
export const HTTP_PORT = 8080;

export interface ProbeOptions {
  /** Probe ICMP (default true). */
  icmp?: boolean;
  /** Probe TCP to HTTP_PORT (default true). */
  tcp?: boolean;
  /** TCP from this local port (host's nc in the pod's netns): one connection after another per source. */
  tcpSrcPort?: number;
  /** ICMP-only targets every source pings too (not pods: nothing is served there). */
  icmpOnly?: Target[];
  /** Attempts before a probe counts as failed (default 2). */
  tries?: number;
}

/** Target aliases and addresses go into a shell script: keep them to harmless characters. */
function safe(s: string): string {
  if (!/^[A-Za-z0-9_.:-]+$/.test(s)) throw new Error(`unsafe alias or address for a probe script: ${JSON.stringify(s)}`);
  return s;
}

/** The busybox script one source runs: one "R <proto> <alias> ok|no [detail]" line per probe. */
export function probeScript(targets: Target[], opts: ProbeOptions = {}): string {
  const tries = opts.tries ?? 2;
  const lines = [
    `icmp() { n=0; while [ $n -lt ${tries} ]; do ping -c 1 -W 1 "$2" >/dev/null 2>&1 && { echo "R icmp $1 ok"; return; }; n=$((n+1)); done; echo "R icmp $1 no ping $2 got no reply"; }`,
    // The server closes after its answer (HTTP/1.0), so nc ends by itself; the page's last line is "ok".
    `tcp() { n=0; r=; while [ $n -lt ${tries} ]; do r=$(printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 1 "$2" ${HTTP_PORT} 2>&1 | tail -n 1); [ "$r" = ok ] && { echo "R tcp $1 ok"; return; }; n=$((n+1)); done; echo "R tcp $1 no $2:${HTTP_PORT}: $r"; }`,
  ];
  if (opts.icmp ?? true) {
    for (const t of [...targets, ...(opts.icmpOnly ?? [])]) lines.push(`icmp ${safe(t.alias)} ${safe(t.ip)} &`);
  }
  if (opts.tcp ?? true) {
    for (const t of targets) lines.push(`tcp ${safe(t.alias)} ${safe(t.ip)} &`);
  }
  lines.push('wait');
  return lines.join('\n');
}

/**
 * Every source probes every target but itself (and the ICMP-only targets), all sources at once.
 * A source whose kubectl exec fails yields failed probes carrying kubectl's message.
 */
export async function measureReachability(sources: Peer[], targets: Target[], opts: ProbeOptions = {}): Promise<Reach[]> {
  if (opts.tcpSrcPort !== undefined) {
    const srcPort = opts.tcpSrcPort;
    const [inPod, fromPort] = await Promise.all([
      opts.icmp ?? true ? measureReachability(sources, targets, { ...opts, tcp: false, tcpSrcPort: undefined }) : Promise.resolve([]),
      opts.tcp ?? true ? Promise.all(sources.map((s) => tcpFromPort(s, targets.filter((t) => t.alias !== s.alias), srcPort, opts.tries ?? 2))) : Promise.resolve([]),
    ]);
    return [...inPod, ...fromPort.flat()];
  }
  const perSource = await Promise.all(sources.map(async (s): Promise<Reach[]> => {
    const mine = targets.filter((t) => t.alias !== s.alias);
    const r = await kubectl(['exec', '-n', s.namespace, s.pod, '--', 'sh', '-c', probeScript(mine, opts)], { timeoutMs: 90_000 });
    const out: Reach[] = [];
    for (const line of r.stdout.split('\n')) {
      const m = /^R (icmp|tcp) (\S+) (ok|no)\s*(.*)$/.exec(line.trim());
      if (!m) continue;
      out.push({ from: s.alias, to: m[2] as string, proto: m[1] as Proto, ok: m[3] === 'ok', ...(m[3] === 'no' ? { detail: m[4] || 'failed' } : {}) });
    }
    if (r.code !== 0) {
      // Whatever was not reported failed, and the matrix printout says why.
      const why = `kubectl exec in ${s.namespace}/${s.pod} failed (${r.code}): ${r.stderr.trim().slice(0, 300)}`;
      const seen = new Set(out.map((e) => `${e.proto}>${e.to}`));
      const wanted: Array<[Proto, Target]> = [
        ...((opts.icmp ?? true) ? [...mine, ...(opts.icmpOnly ?? [])].map((t): [Proto, Target] => ['icmp', t]) : []),
        ...((opts.tcp ?? true) ? mine.map((t): [Proto, Target] => ['tcp', t]) : []),
      ];
      for (const [proto, t] of wanted) if (!seen.has(`${proto}>${t.alias}`)) out.push({ from: s.alias, to: t.alias, proto, ok: false, detail: why });
    }
    return out;
  }));
  return perSource.flat();
}

/** HTTP GETs from `from` to every target, each from local port `srcPort`, one after another. */
async function tcpFromPort(from: Peer, targets: Target[], srcPort: number, tries: number): Promise<Reach[]> {
  const netns = await podNetnsPath(from);
  const out: Reach[] = [];
  for (const t of targets) {
    let detail = '';
    let ok = false;
    // nc waits 2 s: a loaded 2-core machine (the whole lab on it) can take over a second to set up a first flow.
    for (let i = 0, busy = 0; i < tries && !ok; i++) {
      const r = await run(['nsenter', `--net=${netns}`, 'nc', '-n', '-w', '2', '-p', String(srcPort), t.ip, String(HTTP_PORT)],
        { input: 'GET /index.html HTTP/1.0\r\n\r\n', timeoutMs: 10_000 });
      // The previous connection's socket may still hold the port for a moment (LAST_ACK): not a try.
      if (/Address already in use/.test(r.stderr) && busy++ < 50) { i -= 1; await new Promise((res) => setTimeout(res, 100)); continue; }
      ok = r.stdout.trim().split('\n').pop() === 'ok';
      if (!ok) detail = `tcp ${t.ip}:${HTTP_PORT} from port ${srcPort}: exit ${r.code} ${r.stderr.trim()}`;
    }
    out.push({ from: from.alias, to: t.alias, proto: 'tcp', ok, ...(ok ? {} : { detail }) });
  }
  return out;
}

export interface MatrixExpectation {
  icmp?: ExpectedMatrix;
  tcp?: ExpectedMatrix;
}

/**
 * Measures (sources x targets, ICMP-only targets for ICMP) and asserts every expected cell, allowed
 * and denied; prints both tables. `expected.tcp` defaults to the ICMP table without the ICMP-only
 * columns; a protocol without a table (and no default) is not measured.
 */
export async function expectMatrix(what: string, sources: Peer[], targets: Target[], expected: MatrixExpectation, opts: ProbeOptions = {}): Promise<void> {
  const { icmp, tcp } = withTcpDefault(expected, opts);
  const t0 = Date.now();
  const measured = await measureReachability(sources, targets, { ...opts, icmp: !!icmp && (opts.icmp ?? true), tcp: !!tcp && (opts.tcp ?? true) });
  const checks = [
    ...(icmp && (opts.icmp ?? true) ? [{ proto: 'icmp' as Proto, c: checkMatrix(measured, icmp, 'icmp', 'ICMP') }] : []),
    ...(tcp && (opts.tcp ?? true) ? [{ proto: 'tcp' as Proto, c: checkMatrix(measured, tcp, 'tcp', opts.tcpSrcPort !== undefined ? `TCP:${opts.tcpSrcPort}` : 'TCP') }] : []),
  ];
  console.log(`${what} (measured in ${Date.now() - t0} ms)\n${checks.map((k) => k.c.pretty).join('\n\n')}`);
  for (const k of checks) expect(k.c.actual, `${what}, ${k.proto.toUpperCase()}:\n${k.c.pretty}`).toBe(k.c.expected);
}

/** `expected` with its TCP table defaulted to the ICMP table without the ICMP-only columns. */
function withTcpDefault(expected: MatrixExpectation, opts: ProbeOptions): MatrixExpectation {
  const icmpOnly = opts.icmpOnly ?? [];
  const icmp = expected.icmp;
  const tcp = expected.tcp ?? (icmp ? onlyColumns(icmp, icmp.cols.filter((c) => !icmpOnly.some((t) => t.alias === c))) : undefined);
  return { ...(icmp ? { icmp } : {}), ...(tcp ? { tcp } : {}) };
}

/**
 * A run of changes over one set of pods, made one after another: each step makes a change
 * through the API, waits on one pair whose outcome the change flips (ICMP if one does, else TCP)
 * and prints how long that took, then asserts the whole matrix, allowed and denied pairs alike.
 */
export class MatrixSequence {
  private last: MatrixExpectation = {};

  constructor(private readonly sources: () => Peer[], private readonly targets: () => Target[], private readonly opts: ProbeOptions = {}) {}

  /** Asserts the matrix as it is now. */
  async expect(what: string, expected: MatrixExpectation): Promise<void> {
    const full = withTcpDefault(expected, this.opts);
    await expectMatrix(what, this.sources(), this.targets(), full, this.opts);
    this.last = full;
  }

  /** Makes `change`, waits for it to reach the datapath, asserts the matrix. */
  async change(what: string, change: () => Promise<void>, expected: MatrixExpectation): Promise<void> {
    const full = withTcpDefault(expected, this.opts);
    const since = Date.now();
    await change();
    const flips: Array<{ proto: Proto; cell: ReturnType<typeof changedCell> }> = [
      { proto: 'icmp', cell: this.last.icmp && full.icmp ? changedCell(this.last.icmp, full.icmp) : undefined },
      { proto: 'tcp', cell: this.last.tcp && full.tcp ? changedCell(this.last.tcp, full.tcp) : undefined },
    ];
    const flip = flips.find((f) => f.cell);
    if (flip?.cell) {
      const { from, to, ok } = flip.cell;
      const src = this.sources().find((p) => p.alias === from);
      const dst = [...this.targets(), ...(this.opts.icmpOnly ?? [])].find((t) => t.alias === to);
      if (!src || !dst) throw new Error(`${what}: no pod or target named ${src ? to : from}`);
      const ms = await waitForReach(src, dst, flip.proto, ok, since, what);
      console.log(`${what}: ${flip.proto} ${from} -> ${to} ${ok ? 'passes' : 'is dropped'}, seen ${ms} ms after the change was started`);
    } else {
      console.log(`${what}: no pair changes its outcome; measuring at once`);
    }
    await this.expect(what, full);
  }
}

/** One probe's outcome now (a single attempt). */
export async function probeOnce(from: Peer, to: Target, proto: Proto): Promise<boolean> {
  const m = await measureReachability([from], [to], { icmp: proto === 'icmp', tcp: proto === 'tcp', tries: 1 });
  return m.some((e) => e.proto === proto && e.to === to.alias && e.ok);
}

/**
 * A cell whose expected outcome differs between two tables, to watch for a change to reach the
 * datapath; undefined when the tables agree everywhere.
 */
export function changedCell(before: ExpectedMatrix, after: ExpectedMatrix): { from: string; to: string; ok: boolean } | undefined {
  for (const [k, ok] of after.cells) {
    if (before.cells.has(k) && before.cells.get(k) !== ok) {
      const [from, to] = k.split('>') as [string, string];
      return { from, to, ok };
    }
  }
  return undefined;
}

/**
 * After `change` was made through the API: waits until `from -> to` over `proto` gives `ok`
 * (one probe at a time, each a fresh kubectl exec), and returns how long that took from `since`.
 * "Not ok" must hold on two probes in a row, so one lost packet does not count.
 */
export async function waitForReach(from: Peer, to: Target, proto: Proto, ok: boolean, since: number, what: string, timeoutMs = 30_000): Promise<number> {
  let streak = 0;
  for (;;) {
    const got = await probeOnce(from, to, proto);
    streak = got === ok ? streak + 1 : 0;
    if (streak >= (ok ? 1 : 2)) return Date.now() - since;
    if (Date.now() - since > timeoutMs) {
      throw new Error(`${what}: ${proto} ${from.alias} -> ${to.alias} (${to.ip}) still ${got ? 'passes' : 'fails'} ${timeoutMs} ms after the change`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
