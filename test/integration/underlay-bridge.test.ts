// The underlay bridge on the userspace datapath, with real OVS and real network namespaces: an
// "underlay" netns holding a Linux bridge, two "node" netns each with an eth1 veth'ed to it, one
// ovsdb-server + ovs-vswitchd per node (own directory). ensureUnderlayBridge runs in this process
// against each node: its netlink sockets are opened inside the node netns (Netns.runIn) and its
// /proc/sys reads and writes run there too. Then br-int with an internal port and a Geneve port
// to the peer's encap address: the internal ports ping each other through the tunnel, and the
// kernel stays quiet on eth1 (no second ARP reply, no ICMP port unreachable for UDP 6081).
// Addresses are private and exist only inside these namespaces.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNative, type NativeOps } from '../../native/index';
import { openRtnl, type Rtnl } from '../../daemon/kernel/rtnl';
import { OVS_MONITOR } from '../../daemon/node/monitors';
import {
  ensureUnderlayBridge, finishUnderlayBridge, openUnderlayKernel, prepareUnderlayBridge, releaseUnderlayBridge,
  UNDERLAY_BRIDGE, UNDERLAY_KEYS, type UnderlayBridgeDeps, type UnderlayKernel,
} from '../../daemon/node/underlay-bridge';
import { OvsdbClient } from '../../daemon/ovsdb/client';
import { asMap } from '../../daemon/ovsdb/values';
import { NetnsSet } from './harness/netns';
import { RealOvsdbServer } from './harness/ovsdb-server';

const VSWITCH_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
const UNDERLAY_NET = '10.253.0';
const OVERLAY_NET = '172.31.254';
/** A route through eth1 that is not the connected one: it must follow the address. */
const EXTRA_ROUTE = '10.254.1.0/24';

interface TestNode {
  n: 1 | 2;
  ns: string;
  nsPath: string;
  dir: string;
  db: RealOvsdbServer;
  ovs: OvsdbClient;
  rtnl: Rtnl;
  kernel: UnderlayKernel;
  deps: UnderlayBridgeDeps;
  /** Transactions that wrote something (select-only ones are reads). */
  writes: number;
  sysctlsBefore: string;
}

const netns = new NetnsSet();
const nodes: TestNode[] = [];
const dirs: string[] = [];
/** Undone in reverse order in afterAll, registered as each resource comes to exist. */
const cleanups: Array<() => unknown> = [];
let native: NativeOps;

const addrOf = (n: number): string => `${UNDERLAY_NET}.${n}`;
const sh = (ns: string, cmd: string[]): string => {
  const r = netns.exec(ns, cmd);
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} in ${ns}: ${r.status} ${r.stderr}`);
  return r.stdout;
};
const ipv4On = (node: TestNode, dev: string): string[] =>
  sh(node.ns, ['ip', '-4', '-o', 'addr', 'show', 'dev', dev]).split('\n').filter(Boolean).map((l) => l.split(/\s+/)[3] as string);
const routeDev = (node: TestNode, dst: string): string => /dev (\S+)/.exec(sh(node.ns, ['ip', '-4', 'route', 'show', dst]))?.[1] ?? '';
const sysctls = (node: TestNode): string =>
  ['rp_filter', 'arp_ignore'].map((k) => `${k}=${sh(node.ns, ['cat', `/proc/sys/net/ipv4/conf/eth1/${k}`]).trim()}`).join(',');
const ovsEnv = (dir: string): NodeJS.ProcessEnv => ({ ...process.env, OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir });

/** Udp NoPorts + Icmp OutDestUnreachs of a node netns: what the kernel does with stray Geneve. */
function kernelAnswers(node: TestNode): number {
  const lines = sh(node.ns, ['cat', '/proc/net/snmp']).split('\n');
  const counter = (proto: string, name: string): number => {
    const [head, values] = lines.filter((l) => l.startsWith(`${proto}:`)).map((l) => l.split(/\s+/));
    return Number(values?.[head?.indexOf(name) ?? -1] ?? NaN);
  };
  return counter('Udp', 'NoPorts') + counter('Icmp', 'OutDestUnreachs');
}

/** The pid of the ovs-vswitchd of this directory, when it runs (checked against its command line). */
function vswitchdPid(dir: string): number | undefined {
  const file = join(dir, 'vswitchd.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function startVswitchd(node: TestNode): void {
  const r = spawnSync('ip', ['netns', 'exec', node.ns, 'ovs-vswitchd', `unix:${node.db.socketPath}`, `--pidfile=${join(node.dir, 'vswitchd.pid')}`,
    `--log-file=${join(node.dir, 'vswitchd.log')}`, `--unixctl=${join(node.dir, 'vswitchd.ctl')}`, '--detach', '--no-chdir'], { env: ovsEnv(node.dir), encoding: 'utf8' });
  if (r.status !== 0 || vswitchdPid(node.dir) === undefined) throw new Error(`ovs-vswitchd did not start in ${node.ns}: ${r.stderr}`);
}

/** SIGTERM by pid, then waits until the process is gone or a zombie. */
async function stopVswitchd(dir: string): Promise<void> {
  const pid = vswitchdPid(dir);
  if (pid === undefined) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 300; i++) {
    const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
    if (stat === '' || / Z /.test(stat.slice(stat.lastIndexOf(')')))) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  process.kill(pid, 'SIGKILL');
}

function vsctl(node: TestNode, args: string[]): void {
  const r = spawnSync('ovs-vsctl', [`--db=unix:${node.db.socketPath}`, '--timeout=20', ...args], { env: ovsEnv(node.dir), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ovs-vsctl ${args.join(' ')}: ${r.stderr}`);
}

async function startNode(n: 1 | 2, underlay: string): Promise<TestNode> {
  const ns = netns.create(`n${n}`);
  const nsPath = netns.path(ns);
  // Created inside the underlay netns with the peer put straight into the node's: never in the host.
  sh(underlay, ['ip', 'link', 'add', `v${n}`, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', ns]);
  sh(underlay, ['ip', 'link', 'set', `v${n}`, 'master', 'br0', 'up']);
  sh(ns, ['ip', 'link', 'set', 'lo', 'up']);
  sh(ns, ['ip', 'addr', 'add', `${addrOf(n)}/24`, 'dev', 'eth1']);
  sh(ns, ['ip', 'link', 'set', 'eth1', 'up']);
  if (n === 1) sh(ns, ['ip', 'route', 'add', EXTRA_ROUTE, 'via', addrOf(2), 'dev', 'eth1']);
  const dir = mkdtempSync(join(tmpdir(), `${netns.prefix}-n${n}-`));
  dirs.push(dir);
  const db = new RealOvsdbServer(dir, VSWITCH_SCHEMA);
  cleanups.push(() => db.stop());
  await db.create();
  await db.start();
  const ovs = new OvsdbClient({ socketPath: db.socketPath, database: 'Open_vSwitch' });
  cleanups.push(() => ovs.close());
  await ovs.connect(AbortSignal.timeout(10_000));
  await ovs.monitor(OVS_MONITOR);
  await ovs.transact([{ op: 'insert', table: 'Open_vSwitch', row: {} }]);
  const rtnl = native.runIn(nsPath, () => openRtnl());
  cleanups.push(() => rtnl.close());
  const kernel = openUnderlayKernel((fn) => native.runIn(nsPath, fn));
  cleanups.push(() => kernel.close());
  const node: TestNode = {
    n, ns, nsPath, dir, db, ovs, rtnl, kernel, writes: 0, sysctlsBefore: '',
    deps: { ovs, rtnl, kernel, log: pino({ level: 'silent' }) },
  };
  node.sysctlsBefore = sysctls(node);
  const transact = ovs.transact.bind(ovs);
  ovs.transact = (ops) => {
    if (ops.some((o) => o.op !== 'select')) node.writes++;
    return transact(ops);
  };
  nodes.push(node);
  cleanups.push(() => stopVswitchd(dir));
  startVswitchd(node);
  return node;
}

/** What ensure is responsible for, to compare before and after a second call. */
async function snapshot(node: TestNode): Promise<unknown> {
  const [bridge] = await node.ovs.select('Bridge', [['name', '==', UNDERLAY_BRIDGE]]);
  const ifaces = await node.ovs.select('Interface', [], ['name', 'type', 'mtu_request']);
  return {
    bridge, ifaces: ifaces.map(({ _uuid, ...rest }) => ({ _uuid, ...rest })).sort((a, b) => a._uuid.localeCompare(b._uuid)),
    brPhy: ipv4On(node, UNDERLAY_BRIDGE), eth1: ipv4On(node, 'eth1'), routes: sh(node.ns, ['ip', '-4', 'route']), sysctls: sysctls(node),
  };
}

const ensure = (node: TestNode) => ensureUnderlayBridge(node.deps, { interface: 'eth1' }, AbortSignal.timeout(20_000));

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('underlay bridge integration tests need root (netns, OVS)');
  native = loadNative();
  const underlay = netns.create('u');
  sh(underlay, ['ip', 'link', 'add', 'br0', 'type', 'bridge']);
  sh(underlay, ['ip', 'link', 'set', 'br0', 'up']);
  await startNode(1, underlay);
  await startNode(2, underlay);
});

afterAll(async () => {
  for (const undo of cleanups.splice(0).reverse()) {
    try { await undo(); } catch { /* the rest still goes */ }
  }
  // Deleting the namespaces takes the veths, the bridge and the taps left by vswitchd with them.
  netns.removeAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('underlay bridge br-phy on the userspace datapath', () => {
  it('moves the address and its routes from eth1 to the br-phy tap, records them, and silences eth1', async () => {
    for (const node of nodes) {
      await expect(ensure(node)).resolves.toEqual({ encapIp: addrOf(node.n), mtu: 1500 });
      expect(ipv4On(node, UNDERLAY_BRIDGE)).toEqual([`${addrOf(node.n)}/24`]);
      expect(ipv4On(node, 'eth1')).toEqual([]);
      expect(sysctls(node)).toBe('rp_filter=1,arp_ignore=8');
      expect(node.writes).toBe(1); // the bridge, its two ports and the record: one transaction
      const [bridge] = await node.ovs.select('Bridge', [['name', '==', UNDERLAY_BRIDGE]]);
      expect(bridge?.datapath_type).toBe('netdev');
      expect(asMap(bridge?.other_config).hwaddr).toBe(sh(node.ns, ['cat', '/sys/class/net/eth1/address']).trim());
      expect(asMap(bridge?.external_ids)).toMatchObject({
        [UNDERLAY_KEYS.iface]: 'eth1', [UNDERLAY_KEYS.addresses]: `${addrOf(node.n)}/24`,
        [UNDERLAY_KEYS.routes]: node.n === 1 ? `${EXTRA_ROUTE} via ${addrOf(2)}` : '', [UNDERLAY_KEYS.sysctls]: node.sysctlsBefore,
      });
    }
    expect(routeDev(nodes[0] as TestNode, EXTRA_ROUTE)).toBe(UNDERLAY_BRIDGE);
  });

  it('is idempotent: a second call (the address now only on br-phy, as after a restart) writes nothing', async () => {
    for (const node of nodes) {
      const before = await snapshot(node);
      const writes = node.writes;
      await expect(ensure(node)).resolves.toEqual({ encapIp: addrOf(node.n), mtu: 1500 });
      expect(node.writes).toBe(writes);
      expect(await snapshot(node)).toEqual(before);
    }
  });

  it('carries Geneve between internal ports of br-int, the kernel answering nothing on eth1', async () => {
    for (const node of nodes) {
      const peer = 3 - node.n;
      vsctl(node, ['add-br', 'br-int', '--', 'set', 'bridge', 'br-int', 'datapath_type=netdev',
        '--', 'add-port', 'br-int', 'ip0', '--', 'set', 'interface', 'ip0', 'type=internal',
        '--', 'add-port', 'br-int', 'gnv0', '--', 'set', 'interface', 'gnv0', 'type=geneve', `options:remote_ip=${addrOf(peer)}`, 'options:key=flow']);
      sh(node.ns, ['ip', 'addr', 'add', `${OVERLAY_NET}.${node.n}/24`, 'dev', 'ip0']);
      sh(node.ns, ['ip', 'link', 'set', 'ip0', 'mtu', '1400', 'up']);
    }
    const [n1, n2] = nodes as [TestNode, TestNode];
    expect(netns.ping(n1.ns, `${OVERLAY_NET}.2`)).toBe(true);
    const answers = nodes.map(kernelAnswers);
    const tunnelled = netns.exec(n1.ns, ['ping', '-c', '5', '-i', '0.2', '-W', '1', `${OVERLAY_NET}.2`]);
    expect(tunnelled.stdout).toContain(' 0% packet loss');
    const underlay = netns.exec(n1.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '1', addrOf(2)]);
    expect(underlay.stdout).toContain(' 0% packet loss');
    expect(underlay.stdout).not.toContain('DUP');
    // One reply per request: only vswitchd's br-phy answers, not the kernel on eth1 as well.
    expect(sh(n1.ns, ['arping', '-c', '2', '-I', UNDERLAY_BRIDGE, addrOf(2)])).toContain('Received 2 response(s)');
    expect(nodes.map(kernelAnswers)).toEqual(answers);

    // Control: with eth1's sysctls as they were, the kernel answers Geneve with port unreachable.
    for (const node of nodes) for (const kv of node.sysctlsBefore.split(',')) {
      const [k, v] = kv.split('=') as [string, string];
      node.kernel.writeSysctl(`net/ipv4/conf/eth1/${k}`, v);
    }
    netns.exec(n1.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '1', `${OVERLAY_NET}.2`]);
    expect(kernelAnswers(n2)).toBeGreaterThan(answers[1] as number);
    // ensure puts the guard back, still without writing to OVSDB.
    const writes = nodes.map((n) => n.writes);
    for (const node of nodes) await ensure(node);
    expect(nodes.map((n) => n.writes)).toEqual(writes);
    const quiet = nodes.map(kernelAnswers);
    expect(netns.exec(n1.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '1', `${OVERLAY_NET}.2`]).stdout).toContain(' 0% packet loss');
    expect(nodes.map(kernelAnswers)).toEqual(quiet);
  });

  it('after a restart that lost the br-phy tap, finds the address in the record (prepare before vswitchd, finish after)', async () => {
    const n2 = nodes[1] as TestNode;
    await stopVswitchd(n2.dir);
    // What start.ts does with leftover taps of a switch it does not adopt.
    await n2.rtnl.deleteLink(UNDERLAY_BRIDGE);
    expect(ipv4On(n2, 'eth1')).toEqual([]);
    const plan = await prepareUnderlayBridge(n2.deps, { interface: 'eth1', freshSwitch: true });
    expect(plan.encapIp).toBe(addrOf(2));
    startVswitchd(n2);
    await finishUnderlayBridge(n2.deps, plan, AbortSignal.timeout(20_000));
    expect(ipv4On(n2, UNDERLAY_BRIDGE)).toEqual([`${addrOf(2)}/24`]);
    expect(netns.ping((nodes[0] as TestNode).ns, `${OVERLAY_NET}.2`)).toBe(true);
  });

  it('release puts the address, its routes and the sysctls back on eth1 and removes br-phy', async () => {
    for (const node of nodes) {
      await releaseUnderlayBridge(node.deps, { interface: 'eth1' });
      expect(ipv4On(node, 'eth1')).toEqual([`${addrOf(node.n)}/24`]);
      expect(sysctls(node)).toBe(node.sysctlsBefore);
      expect(await node.ovs.select('Bridge', [['name', '==', UNDERLAY_BRIDGE]])).toEqual([]);
      expect(await node.rtnl.getLink(UNDERLAY_BRIDGE)).toBeUndefined();
    }
    const n1 = nodes[0] as TestNode;
    expect(routeDev(n1, EXTRA_ROUTE)).toBe('eth1');
    const plain = netns.exec(n1.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '1', addrOf(2)]);
    expect(plain.stdout).toContain(' 0% packet loss');
    expect(plain.stdout).not.toContain('DUP');
  });
});
