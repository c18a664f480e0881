// npm run bench:sriov: ADD latency of a pod on an SR-IOV VF (the FAKE NIC of the tests: a fake
// switchdev sysfs tree whose VF netdev and representor are a real veth pair, PF settings recorded
// by the daemon's FakeNic) beside a veth pod's ADD on the same daemon, and beside the kernel's
// cost of moving a netdev into a network namespace measured alone (the addon's moveLink, what
// the VF ADD does on top of a veth ADD's work), all in one run inside a node netns of its own.
// Target: VF ADD p50 <= veth ADD p50 + move p50 + 2 ms.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadNative } from '../native/index';
import { FakeNicOnNode } from '../test/integration/harness/fake-nic';
import { runAsNode } from './bench-node-netns';

const REPO = resolve(__dirname, '..', '..');
const SHIM_DIR = join(REPO, 'dist', 'bin');
const CNITOOL = join(REPO, 'build', 'tools', 'cnitool');
const N = Number(process.env.BENCH_N ?? 30);
const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};
const since = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
let interrupted = false;

function cnitool(dir: string, cmd: string, net: string, netns: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(CNITOOL, [cmd, net, netns], { env: { ...env, NETCONFPATH: dir, CNI_PATH: SHIM_DIR }, encoding: 'utf8' });
  const ms = since(t0);
  if (r.status !== 0) throw new Error(`${net} ${cmd} failed: ${r.stdout}${r.stderr}`);
  return ms;
}

/** ADD+DEL cycles of one network, each in a fresh pod netns; the first cycle warms caches. */
function cycles(dir: string, net: string, prefix: string): number[] {
  const adds: number[] = [];
  for (let i = 0; i <= N && !interrupted; i++) {
    const pod = `${prefix}${i}`;
    execFileSync('ip', ['netns', 'add', pod]);
    try {
      const add = cnitool(dir, 'add', net, `/var/run/netns/${pod}`);
      cnitool(dir, 'del', net, `/var/run/netns/${pod}`);
      if (i > 0) adds.push(add);
    } finally {
      spawnSync('ip', ['netns', 'del', pod]);
    }
  }
  if (interrupted) throw new Error('interrupted');
  return adds;
}

/** The kernel's move of a netdev into a netns (and its renames, MAC, MTU), alone, through the addon. */
async function moves(nodeNs: string, prefix: string): Promise<number[]> {
  const native = loadNative();
  const out: number[] = [];
  const link = `${prefix}mv`;
  execFileSync('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', `${prefix}mvp`]);
  try {
    for (let i = 0; i <= N && !interrupted; i++) {
      const pod = `${prefix}m${i}`;
      execFileSync('ip', ['netns', 'add', pod]);
      try {
        const t0 = process.hrtime.bigint();
        await native.moveLink({ fromNetns: `/var/run/netns/${nodeNs}`, ifName: link, toNetns: `/var/run/netns/${pod}`, tempName: `${prefix}tmp`, name: 'eth0', mac: '0a:58:0a:10:00:05', mtu: 1400 });
        const ms = since(t0);
        await native.moveLink({ fromNetns: `/var/run/netns/${pod}`, ifName: 'eth0', toNetns: `/var/run/netns/${nodeNs}`, tempName: `${prefix}tmp`, name: link });
        if (i > 0) out.push(ms);
      } finally {
        spawnSync('ip', ['netns', 'del', pod]);
      }
    }
  } finally {
    spawnSync('ip', ['link', 'del', link]);
  }
  return out;
}

function startDaemon(stateDir: string, sysfsRoot: string): Promise<{ stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [join(SHIM_DIR, 'ovnoded'), 'run', '--embedded', '--state-dir', stateDir,
    '--socket', join(stateDir, 'run', 'ovnoded.sock'), '--node-name', 'bench', '--metrics-address', '', '--log-level', process.env.BENCH_LOG_LEVEL ?? 'warn',
    '--sriov-sysfs-root', sysfsRoot, '--sriov-fake-nic', '--hw-offload'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolveStart, reject) => {
    let out = '';
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (process.env.BENCH_LOG_LEVEL) process.stderr.write(b);
      if (out.includes('ovnoded ready')) resolveStart({ stop: () => new Promise((r) => { child.once('exit', () => r()); child.kill('SIGTERM'); }) });
    });
    child.once('exit', (c) => reject(new Error(`daemon exited ${c}: ${out}`)));
  });
}

async function inner(): Promise<void> {
  const nodeNs = process.env.OVNODE_BENCH_INNER as string;
  const prefix = nodeNs.slice(-4);
  const tmp = mkdtempSync(join(tmpdir(), 'ovbench-sriov-'));
  const nic = await FakeNicOnNode.create({ nodeNs, numVfs: 1 });
  try {
    const stateDir = join(tmp, 'state');
    const socket = join(stateDir, 'run', 'ovnoded.sock');
    const vethDir = join(tmp, 'veth');
    const vfDir = join(tmp, 'vf');
    for (const d of [vethDir, vfDir]) execFileSync('mkdir', ['-p', d]);
    writeFileSync(join(vethDir, '10-veth.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'vethbench', plugins: [{ type: 'ovnode', daemonSocket: socket }] }));
    // deviceID top-level, where Multus puts the device plugin's allocation.
    writeFileSync(join(vfDir, '10-vf.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'vfbench', plugins: [{ type: 'ovnode', daemonSocket: socket, deviceID: nic.vf(0).pci }] }));
    const daemon = await startDaemon(stateDir, nic.root);
    try {
      const move = await moves(nodeNs, prefix);
      const veth = cycles(vethDir, 'vethbench', `${prefix}e`);
      const vf = cycles(vfDir, 'vfbench', `${prefix}f`);
      report({ veth, vf, move });
    } finally {
      await daemon.stop();
    }
  } finally {
    nic.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}

function report(r: { veth: number[]; vf: number[]; move: number[] }): void {
  const f = (x: number): string => x.toFixed(2).padStart(9);
  const row = (name: string, xs: number[]): string => `${name.padEnd(44)}${f(pct(xs, 50))}${f(pct(xs, 90))}${f(Math.max(...xs))}`;
  console.log(`\nSR-IOV VF ADD (fake NIC) vs veth ADD, same daemon, ${r.vf.length} ADD+DEL cycles each through cnitool; netdev move alone (moveLink)\n`);
  console.log(`${'metric (ms)'.padEnd(44)}${'p50'.padStart(9)}${'p90'.padStart(9)}${'max'.padStart(9)}`);
  console.log(row('veth ADD (reference)', r.veth));
  console.log(row('VF ADD', r.vf));
  console.log(row('netdev move into a netns, alone', r.move));
  const budget = pct(r.veth, 50) + pct(r.move, 50) + 2;
  const ok = pct(r.vf, 50) <= budget;
  console.log(`\ntargets:\n  ${ok ? 'MET   ' : 'MISSED'} VF ADD p50 <= veth ADD p50 + move p50 + 2 ms      ${pct(r.vf, 50).toFixed(2)} <= ${budget.toFixed(2)}`);
}

if (process.env.OVNODE_BENCH_INNER) {
  const stop = (): void => { interrupted = true; };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  inner().catch((e) => { console.error(e); process.exitCode = 1; });
} else {
  runAsNode(__filename, 'ovsriov', env);
}
