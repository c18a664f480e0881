// A traffic probe for the live-migration tests and benchmark: from a client pod's network
// namespace (entered from the host with nsenter, the pod's own interface and port), one process
// sends an ICMP echo request to the target every `intervalMs` (20 ms: what ping -i 0.02 does,
// each request carrying a 64-bit sequence number and its send time) and, over one TCP connection
// to the target's echo server, a write of the next 64-bit sequence number at the same pace, and
// reads the echo back, checking that every number comes back once and in order. It reports each
// event as a line (sends, replies, echoes, a TCP error) with its wall-clock time; stats() turns
// the lines of a time window into: longest gap between consecutive ping replies, pings lost,
// longest gap in the TCP echoes, whether the connection is still alive and nothing was lost.
//
// Event lines (times: ms since the epoch, the host's clock, shared with Date.now()):
//   R <t>                       connected, sending from now on
//   S <pingSeq> <tcpSent> <t>   ping <pingSeq> sent; <tcpSent> TCP numbers written so far
//   P <pingSeq> <sentT> <t>     reply to ping <pingSeq>
//   T <n> <t>                   TCP number <n> came back (in order)
//   E <reason> <t>              the TCP connection failed (reset, EOF, out-of-order or corrupt data)
//   F <pings> <tcpSent> <tcpEchoed> <t>   stopped (after a drain period); final counts

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PYTHON } from './frames';

const PROBE = String.raw`
import os, select, socket, struct, sys, threading, time
ip, port, interval, drain = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000
now = lambda: "%.3f" % (time.time() * 1000)
def emit(line):
    sys.stdout.write(line + "\n"); sys.stdout.flush()
stop = threading.Event()
def control():
    # "stop" ends the run; so does the parent going away (stdin closes).
    for line in sys.stdin:
        if line.strip() == "stop": break
    stop.set()
threading.Thread(target=control, daemon=True).start()
def checksum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
ident = os.getpid() & 0xffff
icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
icmp.setblocking(False)
tcp = socket.create_connection((ip, port), timeout=10)
tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
tcp.setblocking(False)
tcp_ok, out, inbuf, written, echoed = True, b"", b"", 0, 0
seq, next_t, drain_until = 0, time.monotonic(), None
def tcp_fail(reason):
    global tcp_ok
    tcp_ok = False
    emit("E %s %s" % (reason, now()))
emit("R " + now())
while True:
    t = time.monotonic()
    if drain_until is None and stop.is_set(): drain_until = t + drain
    if drain_until is None and t >= next_t:
        sent = time.time() * 1000
        body = struct.pack("!Qd", seq, sent)
        head = struct.pack("!BBHHH", 8, 0, 0, ident, seq & 0xffff)
        try: icmp.sendto(struct.pack("!BBHHH", 8, 0, checksum(head + body), ident, seq & 0xffff) + body, (ip, 0))
        except OSError: pass  # no route (yet): counted as sent and lost
        if tcp_ok:
            out += struct.pack("!Q", written); written += 1
        emit("S %d %d %.3f" % (seq, written, sent))
        seq += 1
        # On schedule, but no burst to catch up after a stall of this process.
        next_t = max(next_t + interval, t)
    if tcp_ok and out:
        try:
            n = tcp.send(out); out = out[n:]
        except BlockingIOError: pass
        except OSError as e: tcp_fail("send:" + (e.strerror or str(e)).replace(" ", "_"))
    if drain_until is not None and t >= drain_until:
        emit("F %d %d %d %s" % (seq, written, echoed, now())); break
    wait = (drain_until if drain_until is not None else next_t) - time.monotonic()
    ready, _, _ = select.select([icmp] + ([tcp] if tcp_ok else []), [], [], max(0.0, min(wait, interval)))
    if icmp in ready:
        while True:
            try: data, addr = icmp.recvfrom(2048)
            except BlockingIOError: break
            h = (data[0] & 0x0f) * 4
            if len(data) < h + 24 or addr[0] != ip: continue
            typ, _, _, rid, _ = struct.unpack("!BBHHH", data[h:h + 8])
            if typ != 0 or rid != ident: continue
            n, sent = struct.unpack("!Qd", data[h + 8:h + 24])
            emit("P %d %.3f %s" % (n, sent, now()))
    if tcp_ok and tcp in ready:
        try:
            data = tcp.recv(65536)
            if not data: tcp_fail("eof")
            inbuf += data
        except BlockingIOError: pass
        except OSError as e: tcp_fail("recv:" + (e.strerror or str(e)).replace(" ", "_"))
        while tcp_ok and len(inbuf) >= 8:
            (n,) = struct.unpack("!Q", inbuf[:8]); inbuf = inbuf[8:]
            if n != echoed: tcp_fail("out-of-order:expected_%d_got_%d" % (echoed, n)); break
            echoed += 1
            emit("T %d %s" % (n, now()))
`;

/** What the probe saw in a time window [fromMs, toMs] (wall-clock, Date.now()). */
export interface ProbeStats {
  fromMs: number;
  toMs: number;
  /** Pings sent in the window. */
  pingsSent: number;
  /** Of those, the ones never answered. */
  pingsLost: number;
  /** Replies beyond the first to one ping, arrived in the window: something besides the target answered. */
  duplicates: number;
  /** Longest time without a ping reply: between consecutive replies, the window's edges included. */
  longestGapMs: number;
  /** When that gap began. */
  longestGapFrom: number;
  /** Longest time without a TCP echo, likewise (TCP retransmission backoff shows here). */
  tcpLongestGapMs: number;
  tcpEchoed: number;
  /** The connection had no error (reset, EOF, out-of-order data) up to the window's end. */
  tcpAlive: boolean;
  tcpError: string | undefined;
}

/** The probe's end: totals over its whole run. */
export interface ProbeSummary {
  pingsSent: number;
  pingsAnswered: number;
  tcpWritten: number;
  tcpEchoed: number;
  tcpError: string | undefined;
  /** No error and every number written came back, in order: no byte lost. */
  tcpIntact: boolean;
}

export interface ProbeOptions {
  /** The client's network namespace (/proc/<pid>/ns/net of a pod: podNetnsPath()). */
  clientNetns: string;
  target: string;
  port: number;
  intervalMs?: number;
  /** After stop(): how long late replies and echoes are still awaited. */
  drainMs?: number;
}

/** The longest stretch without an event in [from, to], from sorted event times. */
function longestGap(times: number[], from: number, to: number): { ms: number; at: number } {
  let prev = from;
  let best = { ms: 0, at: from };
  for (const t of times) {
    if (t < from) continue;
    if (t > to) break;
    if (t - prev > best.ms) best = { ms: t - prev, at: prev };
    prev = t;
  }
  if (to - prev > best.ms) best = { ms: to - prev, at: prev };
  return best;
}

export class TrafficProbe {
  /** Send time of each ping, by sequence number. */
  private readonly sent: number[] = [];
  /** Reply time of each answered ping, by sequence number (the first reply). */
  private readonly replies = new Map<number, number>();
  /** Reply times in arrival order. */
  private readonly replyTimes: number[] = [];
  /** Arrival times of second and later replies to one ping (two hosts answered for the address). */
  private readonly duplicateTimes: number[] = [];
  private readonly echoTimes: number[] = [];
  private tcpError: { reason: string; at: number } | undefined;
  private final: { pings: number; written: number; echoed: number } | undefined;
  private stderr = '';
  private readonly exited: Promise<number | null>;
  private waiters: Array<() => void> = [];

  private constructor(private readonly child: ChildProcess, readonly opts: Required<ProbeOptions>) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => { this.wake(); resolve(code); }));
    child.stderr?.on('data', (b: Buffer) => { this.stderr += b.toString(); });
  }

  /** Starts the probe; resolves once its TCP connection is up and it sends. */
  static async start(o: ProbeOptions): Promise<TrafficProbe> {
    const opts: Required<ProbeOptions> = { intervalMs: 20, drainMs: 2000, ...o };
    const child = spawn('nsenter', [`--net=${opts.clientNetns}`, '--', PYTHON, '-u', '-c', PROBE, opts.target, String(opts.port), String(opts.intervalMs), String(opts.drainMs)],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    const probe = new TrafficProbe(child, opts);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`probe to ${opts.target}:${opts.port} not connected within 15 s: ${probe.stderr.trim()}`)); }, 15_000);
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      lines.on('line', (line) => {
        if (line.startsWith('R ')) { clearTimeout(timer); resolve(); }
        probe.onLine(line);
      });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`probe to ${opts.target}:${opts.port} exited (${code}): ${probe.stderr.trim()}`)); });
    });
    return probe;
  }

  private onLine(line: string): void {
    const [kind, a, b, c] = line.split(' ');
    switch (kind) {
      case 'S': this.sent[Number(a)] = Number(c); break;
      case 'P': {
        const n = Number(a);
        if (!this.replies.has(n)) { this.replies.set(n, Number(c)); this.replyTimes.push(Number(c)); } else this.duplicateTimes.push(Number(c));
        break;
      }
      case 'T': this.echoTimes.push(Number(b)); break;
      case 'E': this.tcpError ??= { reason: String(a), at: Number(b) }; break;
      case 'F': this.final = { pings: Number(a), written: Number(b), echoed: Number(c) }; break;
      default: break;
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private nextEvent(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => { clearTimeout(timer); resolve(); });
    });
  }

  get running(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }

  /**
   * Resolves once `pings` ping replies and `echoes` TCP echoes arrived after `sinceMs` (traffic
   * flows); rejects after timeoutMs, or when the TCP connection failed and echoes were wanted.
   */
  async waitFlowing(opts: { sinceMs?: number; pings?: number; echoes?: number; timeoutMs?: number } = {}): Promise<void> {
    const since = opts.sinceMs ?? Date.now();
    const end = Date.now() + (opts.timeoutMs ?? 30_000);
    const count = (xs: number[]): number => xs.length - firstAtOrAfter(xs, since);
    for (;;) {
      const p = count(this.replyTimes);
      const e = count(this.echoTimes);
      if (p >= (opts.pings ?? 5) && e >= (opts.echoes ?? 5)) return;
      if ((opts.echoes ?? 5) > 0 && this.tcpError) throw new Error(`probe: TCP connection failed (${this.tcpError.reason}); ${p} ping replies since`);
      if (!this.running) throw new Error(`probe exited: ${this.stderr.trim()}`);
      if (Date.now() > end) throw new Error(`probe: traffic to ${this.opts.target} not flowing: ${p} ping replies and ${e} TCP echoes in ${Date.now() - since} ms`);
      await this.nextEvent(Math.max(1, Math.min(1000, end - Date.now())));
    }
  }

  /**
   * The window [fromMs, toMs]; waits first until `lateMs` after its end, so that replies to its
   * last pings are in (a ping unanswered by then counts as lost).
   */
  async stats(fromMs: number, toMs: number, lateMs = 1000): Promise<ProbeStats> {
    const wait = toMs + lateMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    let pingsSent = 0;
    let pingsLost = 0;
    this.sent.forEach((t, n) => {
      if (t < fromMs || t > toMs) return;
      pingsSent += 1;
      if (!this.replies.has(n)) pingsLost += 1;
    });
    const gap = longestGap(this.replyTimes, fromMs, toMs);
    const tcpGap = longestGap(this.echoTimes, fromMs, toMs);
    const err = this.tcpError && this.tcpError.at <= toMs ? this.tcpError : undefined;
    const tcpEchoed = this.echoTimes.filter((t) => t >= fromMs && t <= toMs).length;
    const duplicates = this.duplicateTimes.filter((t) => t >= fromMs && t <= toMs).length;
    return { fromMs, toMs, pingsSent, pingsLost, duplicates, longestGapMs: gap.ms, longestGapFrom: gap.at, tcpLongestGapMs: tcpGap.ms, tcpEchoed, tcpAlive: !err, tcpError: err?.reason };
  }

  /** The TCP connection's failure so far, if any. */
  get tcpFailure(): string | undefined { return this.tcpError?.reason; }

  /** When it failed (Date.now() clock). */
  get tcpFailedAt(): number | undefined { return this.tcpError?.at; }

  /** Stops sending, waits drainMs for what is in flight, and returns the totals. */
  async stop(): Promise<ProbeSummary> {
    if (this.running) {
      this.child.stdin?.write('stop\n');
      const kill = setTimeout(() => this.child.kill('SIGKILL'), this.opts.drainMs + 10_000);
      await this.exited;
      clearTimeout(kill);
    }
    const f = this.final;
    const written = f?.written ?? this.sent.length;
    const echoed = f?.echoed ?? this.echoTimes.length;
    return {
      pingsSent: f?.pings ?? this.sent.length,
      pingsAnswered: this.replies.size,
      tcpWritten: written,
      tcpEchoed: echoed,
      tcpError: this.tcpError?.reason ?? (f ? undefined : `probe ended without its final counts: ${this.stderr.trim()}`),
      tcpIntact: !!f && !this.tcpError && echoed === written,
    };
  }

  /** Ends the probe at once (clean-up after a failure). */
  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

/** Index of the first element >= t in a sorted array. */
function firstAtOrAfter(xs: number[], t: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((xs[mid] as number) < t) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/** One line per window, for logs. */
export function describeStats(s: ProbeStats): string {
  return `${((s.toMs - s.fromMs) / 1000).toFixed(1)} s window: longest ping gap ${s.longestGapMs.toFixed(0)} ms, ${s.pingsLost}/${s.pingsSent} pings lost, ${s.duplicates ? `${s.duplicates} DUPLICATE replies, ` : ''}`
    + `longest TCP gap ${s.tcpLongestGapMs.toFixed(0)} ms, ${s.tcpEchoed} echoes, TCP ${s.tcpAlive ? 'alive' : `FAILED (${s.tcpError})`}`;
}
