// Integration tests of how the real addon treats a netns path it is handed (CNI_NETNS): the
// asynchronous check inspectNetns, and the opening that runIn, exists, announce and deleteLink
// share, which must not wait on whatever the path names (a FIFO above all). Needs root, iproute2,
// mkfifo and mount. Creates one named netns, and in a fresh temporary directory a FIFO, a regular
// file, a symlink loop and a bind mount of this process's netns; afterAll removes them all.
// Calls that could block the JavaScript thread for good run in a child process with a timeout, so
// that a regression fails the test instead of hanging the test runner.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADDON_RELATIVE_PATH,
  findRepoRoot,
  isNativeSystemError,
  loadNative,
  type NativeOps,
  type NetnsInspection,
} from '../../native/index';

const id = randomBytes(3).toString('hex');
const NS = `ovt-chk-${id}`;
const NS_PATH = `/var/run/netns/${NS}`;
const FIFO_REASON = 'a FIFO, not a namespace file';

let native: NativeOps;
let dir = '';
/** Paths inside dir, set by beforeAll. */
let fifo = '';
let file = '';
/** A file with this process's netns bind-mounted over it, as `ip netns add` mounts a new one. */
let ownBind = '';
let mounted = false;
let nsCreated = false;
const children: ChildProcess[] = [];

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function requireTools(): void {
  if (process.getuid?.() !== 0) throw new Error('netns check tests need root (netns, mount)');
  for (const tool of ['ip', 'mkfifo', 'mount', 'umount']) {
    try {
      run('sh', ['-c', `command -v ${tool}`]);
    } catch {
      throw new Error(`netns check tests need ${tool} on PATH`);
    }
  }
}

/** What inspectNetns must report for a netns: the identity fs.stat sees. */
function netnsAt(p: string, own: boolean): NetnsInspection {
  const st = fs.statSync(p);
  return { kind: 'netns', dev: st.dev, ino: st.ino, own };
}

/** How p stands after waiting up to ms for it; the wait bounds a failure, it proves nothing. */
type Outcome<T> = { state: 'fulfilled'; value: T } | { state: 'pending' | 'rejected' };
async function within<T>(p: Promise<T>, ms: number): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome<T>>((resolve) => (timer = setTimeout(() => resolve({ state: 'pending' }), ms)));
  try {
    return await Promise.race([
      p.then((value) => ({ state: 'fulfilled' as const, value }), () => ({ state: 'rejected' as const })),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether some thread holds the FIFO open for reading, or waits in open() to: a non-blocking open
 * for writing succeeds exactly then (fifo(7)), and fails with ENXIO otherwise. Closes what it
 * opened, which also releases a reader stuck in open() (the safety net of a regression).
 */
function fifoHasReader(p: string): boolean {
  try {
    fs.closeSync(fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENXIO') return false;
    throw e;
  }
}

/**
 * A `sleep 30` child, run through prefix (e.g. `ip netns exec NS`); resolves with its pid once it
 * runs, i.e. once it is in its netns. afterAll kills it.
 */
async function startSleep(prefix: string[]): Promise<number> {
  const [cmd, ...args] = [...prefix, 'sh', '-c', 'echo ready; exec sleep 30'];
  const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`sleep exited early (${code}): ${out}`)));
  });
  if (child.pid === undefined) throw new Error('sleep did not start');
  return child.pid;
}

beforeAll(() => {
  requireTools();
  native = loadNative();
  run('ip', ['netns', 'add', NS]);
  nsCreated = true;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `ovt-chk-${id}-`));
  fifo = path.join(dir, 'fifo');
  run('mkfifo', [fifo]);
  file = path.join(dir, 'file');
  fs.writeFileSync(file, 'not a netns\n');
  fs.mkdirSync(path.join(dir, 'subdir'));
  fs.symlinkSync(NS_PATH, path.join(dir, 'link-to-ns'));
  fs.symlinkSync(path.join(dir, 'loop-b'), path.join(dir, 'loop-a'));
  fs.symlinkSync(path.join(dir, 'loop-a'), path.join(dir, 'loop-b'));
  ownBind = path.join(dir, 'own-netns');
  fs.writeFileSync(ownBind, '');
  run('mount', ['--bind', `/proc/${process.pid}/ns/net`, ownBind]);
  mounted = true;
});

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  if (mounted) run('umount', [ownBind]);
  if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
  if (nsCreated) run('ip', ['netns', 'del', NS]);
});

describe('inspectNetns: network namespaces', () => {
  it('reports a named netns by its identity, as not the daemon\'s own', async () => {
    await expect(native.inspectNetns(NS_PATH)).resolves.toEqual(netnsAt(NS_PATH, false));
    // Symlinks are followed, as setns callers expect.
    await expect(native.inspectNetns(path.join(dir, 'link-to-ns'))).resolves.toEqual(netnsAt(NS_PATH, false));
  });

  it('reports the process\'s own netns as own, however it is named', async () => {
    const own = netnsAt('/proc/self/ns/net', true);
    // Resolved on the worker thread, /proc/self is still this process.
    await expect(native.inspectNetns('/proc/self/ns/net')).resolves.toEqual(own);
    await expect(native.inspectNetns(`/proc/${process.pid}/ns/net`)).resolves.toEqual(own);
    await expect(native.inspectNetns(ownBind)).resolves.toEqual(own);
  });

  it('tells the netns of other processes apart by /proc/<pid>/ns/net', async () => {
    const here = await startSleep([]);
    const there = await startSleep(['ip', 'netns', 'exec', NS]);
    await expect(native.inspectNetns(`/proc/${here}/ns/net`)).resolves.toEqual(netnsAt('/proc/self/ns/net', true));
    await expect(native.inspectNetns(`/proc/${there}/ns/net`)).resolves.toEqual(netnsAt(NS_PATH, false));
  });

  it('keeps `own` right while the JavaScript thread is inside runIn', async () => {
    const [inNs, inOwn] = native.runIn(NS_PATH, () => {
      const queued = [native.inspectNetns(NS_PATH), native.inspectNetns(ownBind)];
      // Gives the pool thread time to inspect while this thread (the main thread, which
      // /proc/self/ns/net follows) is still in NS. Only a window for the race: if the worker runs
      // later, the test proves less, but does not fail.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      return queued;
    });
    await expect(inNs).resolves.toEqual(netnsAt(NS_PATH, false));
    await expect(inOwn).resolves.toEqual(netnsAt('/proc/self/ns/net', true));
  });
});

describe('inspectNetns: anything else', () => {
  it('resolves for a FIFO without waiting for a writer, while the event loop runs on', async () => {
    const ran: string[] = [];
    setImmediate(() => ran.push('immediate'));
    setTimeout(() => ran.push('timeout'), 0);
    const p = native.inspectNetns(fifo);
    let settled = false;
    void p.then(() => (settled = true));
    // The call came back with the answer still to come: the work is on a pool thread.
    await Promise.resolve();
    expect(settled).toBe(false);
    try {
      // More at once than the pool has threads: one of them waiting on the FIFO would hold the rest.
      const more = Array.from({ length: 16 }, () => native.inspectNetns(fifo));
      const all = await within(Promise.all([p, ...more]), 10_000);
      expect(all.state).toBe('fulfilled');
      for (const verdict of all.state === 'fulfilled' ? all.value : []) {
        expect(verdict).toEqual({ kind: 'not-netns', reason: FIFO_REASON });
      }
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(ran.sort()).toEqual(['immediate', 'timeout']);
    } finally {
      // Nothing ever opened the FIFO for reading, and nothing waits to.
      expect(fifoHasReader(fifo)).toBe(false);
    }
  });

  // at() because the paths in dir exist only once beforeAll has run.
  type Row = { desc: string; at: () => string; kind: 'missing' | 'not-netns'; reason: string };
  const ENOENT = 'No such file or directory';
  const ELOOP = 'Too many levels of symbolic links';
  const notNsFile = (what: string) => `${what}, not a namespace file`;
  const notNetNs = (what: string) => `${what}, not a network namespace`;
  const rows: Row[] = [
    { desc: 'a regular file', at: () => file, kind: 'not-netns', reason: notNsFile('a regular file') },
    { desc: 'a directory', at: () => `${dir}/subdir`, kind: 'not-netns', reason: notNsFile('a directory') },
    { desc: 'a device', at: () => '/dev/null', kind: 'not-netns', reason: notNsFile('a character device') },
    { desc: 'a mnt ns', at: () => '/proc/self/ns/mnt', kind: 'not-netns', reason: notNetNs('a mnt namespace') },
    { desc: 'a uts ns', at: () => '/proc/self/ns/uts', kind: 'not-netns', reason: notNetNs('a uts namespace') },
    { desc: 'a symlink loop', at: () => `${dir}/loop-a`, kind: 'not-netns', reason: ELOOP },
    { desc: 'a NUL byte', at: () => `${NS_PATH}\0x`, kind: 'not-netns', reason: 'the path contains a NUL byte' },
    { desc: 'a missing path', at: () => `${dir}/missing`, kind: 'missing', reason: ENOENT },
    { desc: 'a missing named netns', at: () => `/var/run/netns/ovt-chk-${id}-none`, kind: 'missing', reason: ENOENT },
    { desc: 'a file used as a directory', at: () => `${file}/x`, kind: 'missing', reason: 'Not a directory' },
    { desc: 'the empty path', at: () => '', kind: 'missing', reason: ENOENT },
  ];
  it.each(rows)('resolves $kind for $desc, and exists() says false', async ({ at, kind, reason }) => {
    await expect(native.inspectNetns(at())).resolves.toEqual({ kind, reason });
    expect(native.exists(at())).toBe(false);
  });

  const nonStrings = [42, undefined, null, { path: NS_PATH }];
  it.each(nonStrings)('rejects a non-string (%s) with a TypeError, without throwing', async (arg) => {
    const inspect = native.inspectNetns as (a: unknown) => Promise<NetnsInspection>;
    let p: Promise<NetnsInspection> | undefined;
    expect(() => (p = inspect(arg))).not.toThrow();
    await expect(p!).rejects.toThrow(TypeError);
    await expect(p!).rejects.toThrow('inspectNetns: argument 1 must be a string');
  });
});

describe('opening a netns path for setns', () => {
  const addonFile = path.join(findRepoRoot(), ADDON_RELATIVE_PATH);

  /** Runs script with `node -e`, args after it; a call that blocks has it killed after 10 s. */
  function runNode(script: string, args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(process.execPath, ['-e', script, ...args], { timeout: 10_000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\nstdout: ${stdout}\nstderr: ${stderr}`, { cause: error }));
        else resolve(stdout);
      });
    });
  }

  it('runIn, exists, announce and deleteLink refuse a FIFO at once instead of waiting for a writer', async () => {
    const script = `
      const native = require(${JSON.stringify(addonFile)});
      const fifo = process.argv[1];
      const out = { called: false };
      const start = performance.now();
      try {
        native.runIn(fifo, () => (out.called = true));
      } catch (e) {
        out.runIn = { message: e.message, code: e.code, syscall: e.syscall };
      }
      out.exists = native.exists(fifo);
      out.ms = performance.now() - start;
      Promise.allSettled([native.announce(fifo, []), native.deleteLink(fifo, 'lo')]).then((r) => {
        out.async = r.map((s) => s.status + ': ' + (s.reason && s.reason.message));
        console.log(JSON.stringify(out));
      });`;
    const out = JSON.parse(await runNode(script, [fifo])) as Record<string, unknown>;
    const refused = `setns(${fifo}): Invalid argument (not a network namespace)`;
    expect(out).toMatchObject({
      called: false,
      runIn: { message: refused, code: 'EINVAL', syscall: 'setns' },
      exists: false,
      async: [`rejected: ${refused}`, `rejected: ${refused}`],
    });
    // A bound on a failure, not a measurement: the two calls make a handful of system calls.
    expect(out.ms).toBeLessThan(1000);
    expect(fifoHasReader(fifo)).toBe(false);
  });

  it('enters a netns through any path to it: named, symlinked, bind-mounted, /proc/<pid>/ns/net', async () => {
    const ino = (p: string) => fs.statSync(p).ino;
    const inside = () => ino('/proc/thread-self/ns/net');
    const own = ino('/proc/self/ns/net');
    // Another process's: inside runIn, this process's /proc/<pid>/ns/net follows the main thread.
    const here = await startSleep([]);
    expect(native.runIn(NS_PATH, inside)).toBe(ino(NS_PATH));
    expect(native.runIn(path.join(dir, 'link-to-ns'), inside)).toBe(ino(NS_PATH));
    expect(native.runIn(NS_PATH, () => native.runIn(ownBind, inside))).toBe(own);
    expect(native.runIn(NS_PATH, () => native.runIn(`/proc/${here}/ns/net`, inside))).toBe(own);
    expect(native.exists(ownBind)).toBe(true);
    expect(native.exists(NS_PATH)).toBe(true);
  });

  it('keeps the errors runIn always threw for a missing path and another namespace type', () => {
    const missing = path.join(dir, 'missing');
    let caught: unknown;
    try {
      native.runIn(missing, () => 1);
    } catch (e) {
      caught = e;
    }
    expect(isNativeSystemError(caught)).toBe(true);
    expect(caught).toMatchObject({
      message: `setns(${missing}): No such file or directory`,
      code: 'ENOENT',
      syscall: 'open',
    });
    expect(() => native.runIn('/proc/self/ns/mnt', () => 1)).toThrow(
      'setns(/proc/self/ns/mnt): Invalid argument (not a network namespace)',
    );
    expect(() => native.runIn(file, () => 1)).toThrow(`setns(${file}): Invalid argument (not a network namespace)`);
  });
});
