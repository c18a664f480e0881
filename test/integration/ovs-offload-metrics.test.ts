// registerOffloadMetrics against a real, private ovs-vswitchd on the userspace (netdev) datapath,
// which offloads nothing: the offload gauges must be there and say 0 offloaded flows while the
// flows that a ping between two namespaces leaves in the datapath count as non-offloaded. Then
// vswitchd is stopped: a scrape must still resolve, and the error counter must count it.
//
// Each "world" is: a switch netns running ovs-vswitchd (a netdev datapath creates its tap device
// there, so it cannot clash with anything in the root netns), its own ovsdb-server, database,
// control socket, pid files and logs in a temp dir (harness/private-vswitchd.ts), and two client netns whose veths are ports of
// br0. Processes are stopped by pid, namespaces and directories removed, even when a test fails.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerOffloadMetrics } from '../../daemon/ovs/offload-stats';
import { UnixctlClient } from '../../daemon/ovs/unixctl';
import { NetnsSet } from './harness/netns';
import { PrivateVswitchd, VSWITCH_SCHEMA } from './harness/private-vswitchd';

const log = pino({ level: 'silent' });

function requireTools(): void {
  const missing = [VSWITCH_SCHEMA, '/usr/sbin/ovs-vswitchd', '/usr/sbin/ovsdb-server', '/usr/bin/ovs-vsctl', '/usr/bin/ping'].filter((p) => !existsSync(p));
  if (missing.length > 0) throw new Error(`offload metrics integration test needs openvswitch-switch and iputils-ping; missing: ${missing.join(', ')}`);
  if (process.getuid?.() !== 0) throw new Error('offload metrics integration test needs root (network namespaces, OVS)');
}

class World {
  readonly netns = new NetnsSet();
  readonly sw = `${this.netns.prefix}-sw`;
  readonly a = `${this.netns.prefix}-a`;
  readonly b = `${this.netns.prefix}-b`;
  readonly ovs = new PrivateVswitchd({ netns: this.sw, dirPrefix: 'ovnode-offload-it-' });
  readonly ctl = this.ovs.ctlSocket;

  /** ovsdb-server, ovs-vswitchd (in the switch netns), br0 (netdev) with a veth per client netns. */
  async start(otherConfig: Record<string, string> = {}): Promise<void> {
    const p = this.netns.prefix;
    // Created here, not in the constructor, so that destroy() (the World is registered first)
    // also removes what a failed start left behind.
    this.netns.create('sw');
    this.netns.create('a');
    this.netns.create('b');
    for (const [side, ns, ip] of [['a', this.a, '10.78.0.1/24'], ['b', this.b, '10.78.0.2/24']] as const) {
      execFileSync('ip', ['link', 'add', `${p}${side}0`, 'type', 'veth', 'peer', 'name', `${p}${side}1`]);
      execFileSync('ip', ['link', 'set', `${p}${side}0`, 'netns', ns]);
      execFileSync('ip', ['link', 'set', `${p}${side}1`, 'netns', this.sw]);
      execFileSync('ip', ['-n', ns, 'link', 'set', `${p}${side}0`, 'name', 'eth0']);
      execFileSync('ip', ['-n', ns, 'addr', 'add', ip, 'dev', 'eth0']);
      execFileSync('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      execFileSync('ip', ['-n', this.sw, 'link', 'set', `${p}${side}1`, 'up']);
    }
    await this.ovs.start(otherConfig);
    // Waits until vswitchd has applied it (no --no-wait): the datapath and ports exist after.
    await this.ovs.vsctl('add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev', 'fail-mode=standalone',
      '--', 'add-port', 'br0', `${p}a1`, '--', 'add-port', 'br0', `${p}b1`);
  }

  /** SIGTERM by pid, as a crash or a restart would leave the control socket unanswered. */
  stopVswitchd(): Promise<void> {
    return this.ovs.stopVswitchd();
  }

  vswitchdLog(): string {
    return this.ovs.logTail();
  }

  async destroy(): Promise<void> {
    await this.ovs.destroy();
    this.netns.removeAll();
  }
}

/** The value of one sample of a Prometheus text, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ? m[2].split(',') : [];
    if (want.length === have.length && want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return undefined;
}

const worlds: World[] = [];
async function newWorld(otherConfig?: Record<string, string>): Promise<World> {
  const w = new World();
  worlds.push(w);
  try {
    await w.start(otherConfig);
  } catch (e) {
    throw new Error(`private OVS did not start: ${(e as Error).message}\n${w.vswitchdLog()}`, { cause: e });
  }
  return w;
}

beforeAll(requireTools);
afterEach(async () => { for (const w of worlds.splice(0)) await w.destroy(); });
afterAll(async () => { for (const w of worlds.splice(0)) await w.destroy(); });

describe('offload metrics from a real ovs-vswitchd (userspace datapath)', () => {
  it('0 offloaded flows, >0 non-offloaded after a ping; after vswitchd stops a scrape resolves and counts an error', async () => {
    const w = await newWorld();
    const registry = new Registry();
    registerOffloadMetrics({ registry, socketPath: w.ctl, log, timeoutMs: 2_000 });

    expect(w.netns.ping(w.a, '10.78.0.2'), `ping through br0 failed\n${w.vswitchdLog()}`).toBe(true);
    const text = await registry.metrics();
    const flows = (type: string): number | undefined => sample(text, 'ovnode_ovs_offload_flows', { datapath: 'ovs-netdev', type });
    expect(sample(text, 'ovnode_ovs_offload_up')).toBe(1);
    expect(flows('offloaded')).toBe(0);
    expect(flows('partially_offloaded')).toBe(0);
    expect(flows('non_offloaded')).toBeGreaterThan(0);
    // Every flow of the userspace datapath is held by the "ovs" layer, none by tc or dpdk.
    expect(sample(text, 'ovnode_ovs_offload_flows_by_layer', { datapath: 'ovs-netdev', layer: 'ovs' })).toBe(flows('non_offloaded'));
    expect(text).not.toMatch(/^ovnode_ovs_offload_flows_by_layer\{[^}]*layer="(tc|dpdk)"/m);
    // hw-offload is off: offload-stats-show answers EINVAL, which is "no stats", not an error.
    expect(sample(text, 'ovnode_ovs_offload_stats_available', { datapath: 'ovs-netdev' })).toBe(0);
    expect(sample(text, 'ovnode_ovs_offload_unparsed_lines', { datapath: 'ovs-netdev', command: 'dump-flows' })).toBe(0);
    for (const reason of ['unavailable', 'timeout', 'protocol', 'command', 'internal']) {
      expect(sample(text, 'ovnode_ovs_offload_scrape_errors_total', { reason }), reason).toBe(0);
    }

    await w.stopVswitchd();
    const after = await registry.metrics(); // must resolve, not throw
    expect(sample(after, 'ovnode_ovs_offload_scrape_errors_total', { reason: 'unavailable' })).toBe(1);
    expect(sample(after, 'ovnode_ovs_offload_up')).toBe(0);
    expect(after).not.toMatch(/^ovnode_ovs_offload_flows\{/m);
    expect(after).not.toMatch(/^ovnode_ovs_offload_stats_available\{/m);
    await expect(registry.metrics()).resolves.toContain('ovnode_ovs_offload_scrape_errors_total{reason="unavailable"} 2');
  });

  it('hw-offload=true: the offload threads table is read (0 inserted), one unixctl connection per scrape', async () => {
    const w = await newWorld({ 'hw-offload': 'true', 'n-offload-threads': '2' });
    const client = new UnixctlClient(w.ctl, { timeoutMs: 2_000 });
    let connections = 0;
    const registry = new Registry();
    registerOffloadMetrics({ registry, log, unixctl: (calls, o) => { connections++; return client.callAll(calls, o); } });

    expect(w.netns.ping(w.a, '10.78.0.2'), `ping through br0 failed\n${w.vswitchdLog()}`).toBe(true);
    await registry.metrics(); // the first scrape learns the datapath: 2 connections
    expect(connections).toBe(2);
    const text = await registry.metrics();
    expect(connections).toBe(3);

    expect(sample(text, 'ovnode_ovs_offload_stats_available', { datapath: 'ovs-netdev' })).toBe(1);
    for (const thread of ['total', '0', '1']) {
      expect(sample(text, 'ovnode_ovs_offload_inserted_flows', { datapath: 'ovs-netdev', thread }), thread).toBe(0);
      expect(sample(text, 'ovnode_ovs_offload_queued', { datapath: 'ovs-netdev', thread }), thread).toBeGreaterThanOrEqual(0);
    }
    expect(sample(text, 'ovnode_ovs_offload_inserted_flows', { datapath: 'ovs-netdev', thread: '2' })).toBeUndefined();
    expect(sample(text, 'ovnode_ovs_offload_latency_seconds', { datapath: 'ovs-netdev', thread: 'total', stat: 'cma_mean' })).toBeGreaterThanOrEqual(0);
    expect(sample(text, 'ovnode_ovs_offload_unparsed_lines', { datapath: 'ovs-netdev', command: 'offload-stats-show' })).toBe(0);
    // Nothing reaches hardware: AF_PACKET ports have no flow API.
    expect(sample(text, 'ovnode_ovs_offload_flows', { datapath: 'ovs-netdev', type: 'offloaded' })).toBe(0);
    expect(sample(text, 'ovnode_ovs_offload_flows', { datapath: 'ovs-netdev', type: 'non_offloaded' })).toBeGreaterThan(0);
    expect(sample(text, 'ovnode_ovs_offload_scrape_errors_total', { reason: 'command' })).toBe(0);
  });
});
