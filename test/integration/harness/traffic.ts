// Traffic between test namespaces: TCP transfers through `nc` (netcat-openbsd) and negative
// reachability checks. Only namespaces the test created are involved; processes are started and
// ended by pid.

import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetnsSet } from './netns';

export interface TransferResult {
  sentBytes: number;
  receivedBytes: number;
  sentSha256: string;
  receivedSha256: string;
  /** Exit status of the sending nc (0 = everything written and the connection shut down). */
  clientStatus: number;
  clientStderr: string;
  /** Exit status of the listening nc, or null when it had to be killed. */
  serverStatus: number | null;
  serverStderr: string;
  elapsedMs: number;
}

export interface TransferOptions {
  /** Namespace that sends the data (the nc client). */
  from: string;
  /** Namespace that listens (the nc server). */
  to: string;
  /** Address of `to` as seen from `from`. */
  toIp: string;
  port?: number;
  bytes?: number;
  timeoutMs?: number;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** True once a TCP socket listens on `port` inside `ns`. */
export function isListening(netns: NetnsSet, ns: string, port: number): boolean {
  const r = netns.exec(ns, ['ss', '-ltnH', `sport = :${port}`]);
  return r.status === 0 && r.stdout.trim() !== '';
}

/**
 * Sends `bytes` random bytes from `from` to `to` over TCP with nc, and returns what was sent and
 * what arrived (size and SHA-256). Never throws for network failures: the caller asserts.
 */
export async function tcpTransfer(netns: NetnsSet, o: TransferOptions): Promise<TransferResult> {
  const port = o.port ?? 5000 + Math.floor(Math.random() * 20000);
  const bytes = o.bytes ?? 1024 * 1024;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const dir = mkdtempSync(join(tmpdir(), 'ovt-tcp-'));
  const inFile = join(dir, 'in.bin');
  const outFile = join(dir, 'out.bin');
  const data = randomBytes(bytes);
  writeFileSync(inFile, data);
  const started = Date.now();

  // Server: nc -l writes what it receives to outFile and exits on the peer's EOF.
  const server = spawn('ip', ['netns', 'exec', o.to, 'sh', '-c', `exec nc ${o.toIp.includes(':') ? '-6 ' : ''}-l ${port} > '${outFile}' < /dev/null`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let serverStderr = '';
  server.stderr?.on('data', (b: Buffer) => { serverStderr += b.toString(); });
  const serverExit = new Promise<number | null>((resolve) => {
    if (server.exitCode !== null) resolve(server.exitCode);
    server.once('exit', (code) => resolve(code));
  });
  try {
    const listenDeadline = Date.now() + 5_000;
    while (!isListening(netns, o.to, port)) {
      if (server.exitCode !== null || Date.now() > listenDeadline) {
        throw new Error(`nc did not listen on ${o.to}:${port} (exit ${server.exitCode}): ${serverStderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    // Client: -N shuts the socket down once stdin is exhausted, -w bounds connect/idle time.
    const wSec = Math.max(1, Math.floor(timeoutMs / 1000 / 2));
    const client = spawnSync('ip', ['netns', 'exec', o.from, 'sh', '-c', `exec nc -N -w ${wSec} ${o.toIp} ${port} < '${inFile}'`],
      { encoding: 'utf8', timeout: timeoutMs });
    let timer: NodeJS.Timeout | undefined;
    const serverStatus = await Promise.race([
      serverExit,
      new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), 5_000); }),
    ]);
    clearTimeout(timer);
    const received = existsSync(outFile) ? readFileSync(outFile) : Buffer.alloc(0);
    return {
      sentBytes: bytes,
      receivedBytes: received.length,
      sentSha256: sha256(data),
      receivedSha256: sha256(received),
      clientStatus: client.status ?? -1,
      clientStderr: client.stderr ?? '',
      serverStatus,
      serverStderr,
      elapsedMs: Date.now() - started,
    };
  } finally {
    if (server.exitCode === null && server.signalCode === null && server.pid !== undefined) {
      try { process.kill(server.pid, 'SIGKILL'); } catch { /* gone */ }
      await serverExit;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** True when NO ping from `from` to `ip` succeeds in `tries` attempts (1 s each). */
export function unreachable(netns: NetnsSet, from: string, ip: string, tries = 2, extra: string[] = []): boolean {
  for (let i = 0; i < tries; i++) {
    if (netns.exec(from, ['ping', '-c', '1', '-W', '1', ...extra, ip]).status === 0) return false;
  }
  return true;
}

/** One ping with extra options (e.g. ['-I', srcIp]); true on a reply. */
export function pingWith(netns: NetnsSet, from: string, ip: string, extra: string[], tries = 3): boolean {
  for (let i = 0; i < tries; i++) {
    if (netns.exec(from, ['ping', '-c', '1', '-W', '1', ...extra, ip]).status === 0) return true;
  }
  return false;
}

/** Flushes the neighbour cache of every namespace given (so stale ARP entries prove nothing). */
export function flushNeighbours(netns: NetnsSet, ...namespaces: string[]): void {
  for (const ns of namespaces) netns.exec(ns, ['ip', 'neigh', 'flush', 'all']);
}

export interface LinkState { mac: string; mtu: number; addrs: string[] }

/** eth0 (or `ifName`) inside `ns`: MAC, MTU and IPv4 addresses as "a.b.c.d/len". */
export function linkState(netns: NetnsSet, ns: string, ifName = 'eth0'): LinkState | undefined {
  const r = netns.exec(ns, ['ip', '-j', 'addr', 'show', 'dev', ifName]);
  if (r.status !== 0) return undefined;
  const [l] = JSON.parse(r.stdout) as Array<{ address: string; mtu: number; addr_info: Array<{ family: string; local: string; prefixlen: number }> }>;
  if (!l) return undefined;
  return {
    mac: l.address,
    mtu: l.mtu,
    addrs: l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
  };
}

