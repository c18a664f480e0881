// The container image (scripts/build-image.sh): it builds, a rebuild gives the same bytes and
// reuses the cached root filesystem; the docker-archive's manifest, config and layer digests agree;
// unpacked, its node, ovnoded, OVS/OVN tools, ip and the native addon run in a chroot; the daemon
// from the image comes up in a network namespace of the test's own (embedded OVS/OVN on the
// userspace datapath), serves CNI STATUS through the image's own CNI executable, and SIGTERM leaves
// no process, namespace or mount behind; a private containerd imports the archive as
// ovnode:<version>.
//
// Every chroot runs in a private mount namespace (unshare --mount) that gets /dev, /proc and /sys:
// the mounts die with the last process inside, and the test checks that none is left on the host.
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsSet } from './harness/netns';
import { REPO } from './harness/paths';

const BUILD_SCRIPT = join(REPO, 'scripts', 'build-image.sh');
const ARCHIVE = join(REPO, 'build', 'images', 'ovnode.tar');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const TAG = `ovnode:${VERSION}`;
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface BuildRun { out: string; seconds: number; rootfs: string; app: string; archiveSha: string }

let work: string;
let rootfs: string;
let unpacked: string;
const builds: BuildRun[] = [];
/** Processes this file started and must be gone at the end (killed by pid in afterAll otherwise). */
const started = new Set<number>();
const netns = new NetnsSet();
/** The daemon's state dir, inside the image root. */
const STATE = `/tmp/${netns.prefix}-state`;

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file).on('data', (b) => h.update(b)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}

async function buildImage(): Promise<BuildRun> {
  const t0 = Date.now();
  const r = spawnSync('bash', [BUILD_SCRIPT], { encoding: 'utf8', timeout: 15 * 60_000, cwd: REPO });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`scripts/build-image.sh failed (${r.status ?? r.signal}):\n${out}`);
  const rootfsDiff = /rootfs sha256:([0-9a-f]{64})/.exec(out)?.[1];
  const appDiff = /app +sha256:([0-9a-f]{64})/.exec(out)?.[1];
  if (!rootfsDiff || !appDiff) throw new Error(`build-image.sh printed no layer digests:\n${out}`);
  return { out, seconds: (Date.now() - t0) / 1000, rootfs: rootfsDiff, app: appDiff, archiveSha: await sha256File(ARCHIVE) };
}

/** Mounts /dev, /proc and /sys into $1 (private mount namespace) and execs the rest in a chroot. */
const CHROOT_SCRIPT = `set -e
r=$1; shift
mount --rbind /dev "$r/dev"
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
exec chroot "$r" /usr/bin/env -i PATH=${IMAGE_PATH} HOME=/root "$@"`;

function chrootArgv(argv: string[]): string[] {
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', CHROOT_SCRIPT, 'sh', rootfs, ...argv];
}

function inChroot(argv: string[], input?: string, extraEnv: string[] = []): SpawnSyncReturns<string> {
  const [cmd, ...args] = chrootArgv(extraEnv.length > 0 ? ['/usr/bin/env', ...extraEnv, ...argv] : argv);
  return spawnSync(cmd as string, args, { encoding: 'utf8', timeout: 60_000, ...(input !== undefined ? { input } : {}) });
}

function expectOk(r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status ?? r.signal}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Host mount table entries at or below `dir`. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Live (non-zombie) processes whose command line mentions `needle`, or whose root is `root`. */
function processesOf(needle: string, root: string): Array<{ pid: number; comm: string }> {
  const out: Array<{ pid: number; comm: string }> = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      const cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      let inRoot = false;
      try { inRoot = readlinkSync(`/proc/${e}/root`) === root; } catch { /* kernel thread or gone */ }
      if (cmdline.includes(needle) || inRoot) out.push({ pid: Number(e), comm: readFileSync(`/proc/${e}/comm`, 'utf8').trim() });
    } catch { /* exited meanwhile */ }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Everything `child` writes to stdout and stderr, for as long as it runs. */
function collect(child: ChildProcess): { text: string } {
  const log = { text: '' };
  const add = (b: Buffer): void => { log.text += b.toString(); };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return log;
}

/** Resolves with the first stdout/stderr line of `child` containing `needle`; rejects on exit or after `ms`. */
function waitForLine(child: ChildProcess, needle: string, ms: number, log: { text: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    let partial = '';
    const onData = (b: Buffer): void => {
      partial += b.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      const hit = lines.find((l) => l.includes(needle));
      if (hit !== undefined) { done(); resolve(hit); }
    };
    const onExit = (code: number | null, sig: string | null): void => {
      done();
      reject(new Error(`exited (${code ?? sig}) before "${needle}":\n${log.text.slice(-4000)}`));
    };
    const timer = setTimeout(() => { done(); reject(new Error(`no "${needle}" within ${ms} ms:\n${log.text.slice(-4000)}`)); }, ms);
    const done = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL after `ms`; resolves with the exit code (or the signal's name). */
function terminate(child: ChildProcess, ms: number): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', (code, sig) => { clearTimeout(timer); resolve(code ?? sig ?? -1); });
    child.kill('SIGTERM');
  });
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the image test needs root (chroot, mounts, network namespaces)');
  work = mkdtempSync(join(tmpdir(), `${netns.prefix}-image-`));
  rootfs = join(work, 'rootfs');
  unpacked = join(work, 'archive');
  builds.push(await buildImage());
  builds.push(await buildImage());
  mkdirSync(unpacked);
  mkdirSync(rootfs);
  expectOk(spawnSync('tar', ['-xf', ARCHIVE, '-C', unpacked], { encoding: 'utf8' }), 'unpacking the archive');
  const manifest = JSON.parse(readFileSync(join(unpacked, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
  for (const layer of manifest[0]?.Layers ?? []) {
    expectOk(spawnSync('tar', ['-xpf', join(unpacked, layer), '-C', rootfs, '--numeric-owner'], { encoding: 'utf8' }), `unpacking ${layer}`);
  }
  console.log(`image builds: ${builds.map((b) => `${b.seconds.toFixed(1)} s`).join(', then ')}; ` +
    `archive ${(statSync(ARCHIVE).size / 1048576).toFixed(1)} MiB`);
}, 30 * 60_000);

afterAll(async () => {
  // After a failure: what the test started, and anything still running inside the image root
  // (the daemon's OVS/OVN programs run in a session of their own).
  const leftovers = [...started, ...(rootfs ? processesOf(STATE, rootfs).map((p) => p.pid) : [])];
  for (const pid of leftovers) {
    if (alive(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }
  netns.removeAll();
  if (work) {
    // Nothing should be mounted here (private mount namespaces); if something is, detach it
    // rather than delete through it.
    for (const m of mountsUnder(work).reverse()) spawnSync('umount', ['-l', m]);
    rmSync(work, { recursive: true, force: true });
  }
});

describe('build', () => {
  it('a rebuild reuses the cached rootfs and gives byte-identical layers and archive', () => {
    const [first, second] = builds as [BuildRun, BuildRun];
    expect(second.out).toMatch(/rootfs sha256:[0-9a-f]{64} \(cached/);
    expect(second.rootfs).toBe(first.rootfs);
    expect(second.app).toBe(first.app);
    expect(second.archiveSha).toBe(first.archiveSha);
    expect(second.out).toContain(`archive: ${ARCHIVE}`);
    expect(second.out).toMatch(/built in \d+(\.\d)? s/);
  });

  it('manifest.json, the config and the layers agree on every digest', async () => {
    const manifest = JSON.parse(readFileSync(join(unpacked, 'manifest.json'), 'utf8')) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
    expect(manifest).toHaveLength(1);
    const m = manifest[0]!;
    expect(m.RepoTags).toEqual([TAG]);
    const configHex = /^([0-9a-f]{64})\.json$/.exec(m.Config)?.[1];
    expect(configHex, `config file name ${m.Config}`).toBeDefined();
    expect(await sha256File(join(unpacked, m.Config))).toBe(configHex);
    const config = JSON.parse(readFileSync(join(unpacked, m.Config), 'utf8')) as {
      architecture: string; os: string; rootfs: { type: string; diff_ids: string[] };
      config: { Env: string[]; Cmd: string[]; WorkingDir: string }; history: unknown[];
    };
    expect(config.os).toBe('linux');
    expect(config.architecture).toBe(process.arch === 'x64' ? 'amd64' : process.arch);
    expect(config.rootfs.type).toBe('layers');
    expect(m.Layers).toHaveLength(2);
    expect(config.rootfs.diff_ids).toHaveLength(2);
    expect(config.history).toHaveLength(2);
    for (const [i, layer] of m.Layers.entries()) {
      const hex = await sha256File(join(unpacked, layer));
      expect(layer).toBe(`${hex}/layer.tar`);
      expect(config.rootfs.diff_ids[i]).toBe(`sha256:${hex}`);
    }
    expect(config.rootfs.diff_ids).toEqual([`sha256:${builds[0]!.rootfs}`, `sha256:${builds[0]!.app}`]);
    expect(config.config.Env).toContain(`PATH=${IMAGE_PATH}`);
    expect(config.config.Cmd).toEqual(['/usr/local/bin/ovnoded', '--help']);
    expect(config.config.WorkingDir).toBe('/');
    // Every entry of every tar (the archive and both layers): owner 0, mtime 0.
    for (const t of [ARCHIVE, ...m.Layers.map((l) => join(unpacked, l))]) {
      const listing = expectOk(spawnSync('tar', ['--numeric-owner', '--full-time', '-tvf', t], { encoding: 'utf8', maxBuffer: 256 << 20, env: { ...process.env, TZ: 'UTC' } }), `listing ${t}`);
      const odd = listing.split('\n').filter(Boolean).filter((l) => !/^\S+ 0\/0 +\d+ 1970-01-01 00:00:00 /.test(l));
      expect(odd.slice(0, 5), `entries of ${t} not owned by 0/0 or not at mtime 0`).toEqual([]);
    }
  });

  it('the rootfs has what OVS and the daemon need, and no development-only npm package', () => {
    for (const p of ['/etc/passwd', '/etc/group', '/usr/share/openvswitch/vswitch.ovsschema', '/usr/share/ovn/ovn-nb.ovsschema',
      '/usr/share/ovn/ovn-sb.ovsschema', '/opt/ovnode/build/native/Release/ovnode_native.node', '/opt/ovnode/dist/bin/ovnode',
      '/opt/ovnode/package.json', '/usr/local/bin/node']) {
      expect(existsSync(join(rootfs, p)), p).toBe(true);
    }
    expect(readFileSync(join(rootfs, 'etc/passwd'), 'utf8')).toMatch(/^root:x:0:0:/);
    expect(readlinkSync(join(rootfs, 'var/run'))).toMatch(/^(\.\.)?\/run$/);
    expect(statSync(join(rootfs, 'tmp')).mode & 0o7777).toBe(0o1777);
    expect(statSync(join(rootfs, 'run')).isDirectory()).toBe(true);
    for (const dev of ['vitest', 'typescript', 'esbuild', 'cmake-js']) {
      expect(existsSync(join(rootfs, 'opt/ovnode/node_modules', dev)), `dev dependency ${dev} in the image`).toBe(false);
    }
    expect(existsSync(join(rootfs, 'usr/share/man'))).toBe(false);
  });
});

describe('in a chroot of the image', () => {
  afterAll(() => {
    expect(mountsUnder(rootfs)).toEqual([]);
  });

  it('node, ovnoded, ovsdb-tool, ovn-controller and ip run', () => {
    expect(expectOk(inChroot(['node', '--version']), 'node --version').trim()).toBe(process.version);
    expect(expectOk(inChroot(['ovnoded', '--help']), 'ovnoded --help')).toMatch(/Usage: ovnoded/);
    expect(expectOk(inChroot(['ovsdb-tool', '--version']), 'ovsdb-tool --version')).toMatch(/Open vSwitch/);
    expect(expectOk(inChroot(['ovn-controller', '--version']), 'ovn-controller --version')).toMatch(/ovn-controller/);
    expect(expectOk(inChroot(['ovs-vswitchd', '--version']), 'ovs-vswitchd --version')).toMatch(/Open vSwitch/);
    expect(expectOk(inChroot(['ip', '-V']), 'ip -V')).toMatch(/iproute2/);
    expect(mountsUnder(rootfs)).toEqual([]);
  });

  it('the native addon loads from /opt/ovnode as the daemon loads it, and works', () => {
    const script = `const n = require('/opt/ovnode/dist/native/index.js');
      const ops = n.loadNative();
      console.log(JSON.stringify({ root: n.findRepoRoot(), self: ops.exists('/proc/self/ns/net'), notNs: ops.exists('/etc/passwd') }));`;
    const r = JSON.parse(expectOk(inChroot(['node', '-e', script]), 'loading the native addon')) as Record<string, unknown>;
    expect(r).toEqual({ root: '/opt/ovnode', self: true, notNs: false });
  });
});

describe('the daemon from the image', () => {
  it('comes up in a fresh netns, serves STATUS, and SIGTERM leaves no process, netns or mount', async () => {
    const ns = netns.create('img');
    const nsIno = statSync(netns.path(ns)).ino;
    const state = STATE;
    const daemon = spawn('ip', ['netns', 'exec', ns, ...chrootArgv(['/usr/local/bin/ovnoded', 'run', '--embedded', '--state-dir', state,
      '--socket', `${state}/s.sock`, '--metrics-address', ''])], { stdio: ['ignore', 'pipe', 'pipe'] });
    started.add(daemon.pid as number);
    const log = collect(daemon);
    let programs: Array<{ pid: number; comm: string }> = [];
    try {
      const ready = await waitForLine(daemon, '"msg":"ovnoded ready"', 120_000, log);
      expect(JSON.parse(ready)).toMatchObject({ msg: 'ovnoded ready' });
      programs = processesOf(state, rootfs).filter((p) => p.pid !== daemon.pid);
      for (const p of programs) started.add(p.pid);
      expect(new Set(programs.map((p) => p.comm))).toEqual(new Set(['ovsdb-server', 'ovn-northd', 'ovs-vswitchd', 'ovn-controller']));
      expect(programs.filter((p) => p.comm === 'ovsdb-server')).toHaveLength(3);
      // The image's own CNI executable, against the daemon's socket.
      const status = inChroot(['/usr/local/bin/ovnode'], JSON.stringify({ cniVersion: '1.1.0', name: 'net1', type: 'ovnode', daemonSocket: `${state}/s.sock` }),
        ['CNI_COMMAND=STATUS', 'CNI_PATH=/opt/ovnode/dist/bin']);
      expect(status.status, `STATUS: ${status.stdout}${status.stderr}`).toBe(0);
      expect(status.stdout.trim()).toBe('');
    } finally {
      const code = await terminate(daemon, 30_000);
      expect(code, `ovnoded exit after SIGTERM; log:\n${log.text.slice(-3000)}`).toBe(0);
    }
    expect(log.text).toContain('"msg":"stopped"');
    expect(log.text).toContain('"signal":"SIGTERM"');
    expect(programs.filter((p) => alive(p.pid)), 'programs of the daemon still running').toEqual([]);
    expect(processesOf(state, rootfs), 'processes in the image root or of its state dir').toEqual([]);
    expect(alive(daemon.pid as number)).toBe(false);
    // Nothing holds the namespace any more: no process has it as its netns.
    const holders = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).filter((e) => {
      try { return statSync(`/proc/${e}/ns/net`).ino === nsIno; } catch { return false; }
    });
    expect(holders, 'processes still in the test netns').toEqual([]);
    netns.remove(ns);
    expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).not.toContain(ns);
    expect(existsSync(netns.path(ns))).toBe(false);
    expect(mountsUnder(rootfs)).toEqual([]);
    expect(mountsUnder(netns.path(ns))).toEqual([]);
  }, 300_000);
});

describe('containerd', () => {
  it('a private containerd imports the archive as ovnode:<version>', async () => {
    for (const bin of ['containerd', 'ctr']) {
      if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) {
        throw new Error(`${bin} is not installed (apt-get install containerd; scripts/lab/install-lab-deps.sh installs it)`);
      }
    }
    const dir = join(work, 'containerd');
    mkdirSync(dir);
    const sock = join(dir, 'c.sock');
    writeFileSync(join(dir, 'config.toml'), [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",',
      '  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]',
      '[grpc]', `  address = "${sock}"`,
      '[ttrpc]', `  address = "${sock}.ttrpc"`,
      '[debug]', '  address = ""',
      '[metrics]', '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]', `  path = "${dir}/opt"`,
      '',
    ].join('\n'));
    const ctrd = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    started.add(ctrd.pid as number);
    const log = collect(ctrd);
    try {
      await waitForLine(ctrd, 'containerd successfully booted', 60_000, log);
      const ctr = (...args: string[]): string =>
        expectOk(spawnSync('ctr', ['--address', sock, '-n', 'k8s.io', ...args], { encoding: 'utf8', timeout: 300_000 }), `ctr ${args.join(' ')}`);
      ctr('images', 'import', ARCHIVE);
      const refs = ctr('images', 'ls', '-q').split('\n').filter(Boolean);
      expect(refs.filter((r) => r === TAG || r.endsWith(`/${TAG}`)), `refs: ${refs.join(', ')}`).toHaveLength(1);
      expect(ctr('images', 'check')).toMatch(new RegExp(`${TAG.replace(/\./g, '\\.')}\\s.*complete`));
    } finally {
      const code = await terminate(ctrd, 20_000);
      expect(code, `containerd exit; log:\n${log.text.slice(-3000)}`).not.toBe('SIGKILL');
    }
    expect(alive(ctrd.pid as number)).toBe(false);
    expect(mountsUnder(dir)).toEqual([]);
  }, 600_000);
});
