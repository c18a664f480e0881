// Frames as the live-migration harness sends and watches them, each with a small python3 program
// of its own (raw AF_PACKET sockets; no tcpdump or scapy needed) run in a network namespace with
// nsenter: the RARPs a migrated guest announces itself with, a capture of RARPs, and a count of
// the IPv4 frames to one address arriving on an interface. No vitest here (the benchmark uses it).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's own python3 when there (PATH may lead to a pyenv shim, which depends on the caller's environment). */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
/** The guest's interface name, the default of these helpers. */
const IFNAME = 'eth0';

const RARP_SCRIPT = [
  'import socket, struct, sys, time',
  'ifname, mac, count = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), int(sys.argv[3])',
  // htype Ethernet, ptype IPv4, hlen 6, plen 4, opcode 3 (reverse request); no protocol addresses
  'arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 3) + mac + bytes(4) + mac + bytes(4)',
  'frame = b"\\xff" * 6 + mac + struct.pack("!H", 0x8035) + arp',
  'frame += bytes(max(0, 60 - len(frame)))',
  'print("ready", flush=True)',
  // Armed before the guest pauses, fired once it runs: no interpreter start-up in the downtime.
  'if sys.stdin.readline().strip() != "go": sys.exit(0)',
  's = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)',
  's.bind((ifname, 0))',
  'for i in range(count):',
  '    if i: time.sleep((50 + 100 * (i - 1)) / 1000)',
  '    s.send(frame)',
  '    print("%.3f" % (time.time() * 1000), flush=True)',
].join('\n');

/** RARP announcements made ready to go: fire() sends them and resolves with each send's time. */
export interface ArmedRarps { fire(): Promise<number[]>; cancel(): void }

/**
 * Prepares RARP "reverse request"s (opcode 3; sender and target hardware address = mac, protocol
 * addresses 0.0.0.0, broadcast) on `ifname` of the namespace at `path`, as QEMU announces a
 * migrated guest: one at once, the next after 50 ms, each later gap 100 ms longer (its announce-*
 * defaults). The interface need not exist before fire().
 */
export function armRarps(path: string, mac: string, count = 5, ifname = IFNAME): Promise<ArmedRarps> {
  const child = spawn('nsenter', [`--net=${path}`, '--', PYTHON, '-u', '-c', RARP_SCRIPT, ifname, mac, String(count)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr?.on('data', (b: Buffer) => { err += b.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (!out.startsWith('ready\n')) return;
      child.stdout?.off('data', onData);
      child.stdout?.on('data', (x: Buffer) => { out += x.toString(); });
      resolve({
        fire: async () => {
          child.stdin?.end('go\n');
          const code = await exited;
          if (code !== 0) throw new Error(`RARPs from ${ifname} in ${path} failed (${code}): ${err.trim()}`);
          return out.split('\n').slice(1).filter((l) => l.trim() !== '').map(Number);
        },
        cancel: () => { child.stdin?.end(); },
      });
    };
    child.stdout?.on('data', onData);
    void exited.then((code) => reject(new Error(`RARP sender in ${path} exited (${code}) before it was ready: ${err.trim()}`)));
  });
}

/** Sends RARPs now (armRarps, fired at once). */
export async function sendRarps(path: string, mac: string, count = 5, ifname = IFNAME): Promise<number[]> {
  return (await armRarps(path, mac, count, ifname)).fire();
}

/** A RARP frame as a capture saw it. */
export interface SeenRarp { dst: string; src: string; opcode: number; sha: string; tha: string; at: number }

const CAPTURE_SCRIPT = [
  'import json, select, socket, struct, sys, time',
  'mac = lambda b: ":".join("%02x" % x for x in b)',
  's = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8035))',
  's.bind((sys.argv[1], 0x8035))',
  'print("ready", flush=True)',
  'while True:',
  '    r, _, _ = select.select([s, sys.stdin], [], [])',
  '    if sys.stdin in r: break',
  '    d = s.recv(2048)',
  '    if len(d) < 42: continue',
  '    print(json.dumps({"dst": mac(d[0:6]), "src": mac(d[6:12]), "opcode": struct.unpack("!H", d[20:22])[0], "sha": mac(d[22:28]), "tha": mac(d[32:38]), "at": time.time() * 1000}), flush=True)',
].join('\n');

/**
 * Runs a python script in the namespace at `path` that prints one line when ready and stops when
 * its stdin closes; resolves once ready with stop(), which returns the output after that line and
 * the exit code. Rejects when the script exits before it was ready.
 */
function startWatcher(path: string, script: string, args: string[], what: string): Promise<{ stop(): Promise<{ lines: string[]; code: number | null; err: string }> }> {
  const child = spawn('nsenter', [`--net=${path}`, '--', PYTHON, '-u', '-c', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr?.on('data', (b: Buffer) => { err += b.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (b: Buffer) => {
      const first = out === '';
      out += b.toString();
      if (first) resolve({
        stop: async () => {
          child.stdin?.end();
          const code = await exited;
          return { lines: out.split('\n').slice(1), code, err: err.trim() };
        },
      });
    });
    void exited.then((code) => reject(new Error(`${what} in ${path} exited (${code}): ${err.trim()}`)));
  });
}

/**
 * Captures RARP frames (ethertype 0x8035) on `ifname` of the namespace at `path` until stop()
 * (an AF_PACKET socket of python's: no tcpdump needed on the host).
 */
export async function captureRarps(path: string, ifname: string): Promise<{ stop(): Promise<SeenRarp[]> }> {
  const w = await startWatcher(path, CAPTURE_SCRIPT, [ifname], `RARP capture on ${ifname}`);
  return { stop: async () => (await w.stop()).lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as SeenRarp) };
}

const COUNT_SCRIPT = [
  'import select, socket, sys',
  'ip = socket.inet_aton(sys.argv[2])',
  's = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))',
  's.bind((sys.argv[1], 0))',
  'print("ready", flush=True)',
  'n = 0',
  'while True:',
  '    r, _, _ = select.select([s, sys.stdin], [], [])',
  '    if sys.stdin in r: break',
  '    try: d, addr = s.recvfrom(65535)',
  '    except OSError: break',  // the interface went away (its pod was deleted)
  '    if addr[2] != socket.PACKET_OUTGOING and len(d) >= 34 and d[12:14] == b"\\x08\\x00" and d[30:34] == ip: n += 1',
  'print(n, flush=True)',
].join('\n');

/**
 * Counts the IPv4 frames addressed to `ip` that arrive on `ifname` of the namespace at `path`
 * until stop() (which resolves with the count).
 */
export async function countInbound(path: string, ifname: string, ip: string): Promise<{ stop(): Promise<number> }> {
  const w = await startWatcher(path, COUNT_SCRIPT, [ifname, ip], `frame counter on ${ifname}`);
  return {
    stop: async () => {
      const { lines, code, err } = await w.stop();
      const n = Number(lines[0]);
      if (code !== 0 || !Number.isInteger(n)) throw new Error(`frame counter on ${ifname} in ${path} failed (${code}): ${err}`);
      return n;
    },
  };
}
