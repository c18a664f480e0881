// Dual stack on the real datapath: a node started with an IPv4,IPv6 subnet pair gives each pod
// both families (addresses, default routes, port security), through libcni's cnitool.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetConfDir, cnitool } from './harness/cni';
import { lsps } from './harness/inspect';
import { NetnsSet } from './harness/netns';
import { TestNode } from './harness/node';
import { requireArtefacts } from './harness/paths';
import { pingWith, tcpTransfer, unreachable } from './harness/traffic';

const SUBNET = '10.16.0.0/16,fd00:10:16::/64';

describe('dual-stack subnet (real OVS/OVN userspace datapath)', () => {
  const netns = new NetnsSet();
  let node: TestNode;
  const conf = new NetConfDir(`${netns.prefix}-ds`);
  const pods: Record<string, { ns: string; v4: string; v6: string }> = {};

  beforeAll(async () => {
    requireArtefacts();
    node = new TestNode({ netns, name: 'ds', subnet: SUBNET });
    await node.start();
    conf.write({ socket: node.socket });
    for (const name of ['a', 'b']) {
      const ns = netns.create(name);
      const r = cnitool({ command: 'add', conf, netnsPath: netns.path(ns) });
      expect(r.status, r.stderr).toBe(0);
      const ips = (JSON.parse(r.stdout) as { ips: Array<{ address: string }> }).ips.map((i) => i.address.split('/')[0] as string);
      pods[name] = { ns, v4: ips.find((i) => !i.includes(':')) as string, v6: ips.find((i) => i.includes(':')) as string };
    }
  });

  afterAll(async () => {
    for (const p of Object.values(pods)) cnitool({ command: 'del', conf, netnsPath: netns.path(p.ns) });
    await node?.destroy();
    netns.removeAll();
    conf.cleanup();
  });

  it('gives each pod one address per family, a default route per family, and port security on both', () => {
    const a = pods.a as { ns: string; v4: string; v6: string };
    expect(a.v4).toMatch(/^10\.16\./);
    expect(a.v6).toMatch(/^fd00:10:16::/);
    const routes6 = netns.exec(a.ns, ['ip', '-6', 'route', 'show', 'default']).stdout;
    expect(routes6).toContain('via fd00:10:16::1');
    const port = lsps(node).find((l) => l.addresses.includes(a.v6));
    expect(port?.addresses).toContain(a.v4);
  });

  it('pods reach each other and the gateway over IPv6 and IPv4', () => {
    const { a, b } = pods as Record<string, { ns: string; v4: string; v6: string }>;
    expect(netns.ping(a!.ns, b!.v6)).toBe(true);
    expect(netns.ping(b!.ns, a!.v6)).toBe(true);
    expect(netns.ping(a!.ns, 'fd00:10:16::1')).toBe(true);
    expect(netns.ping(a!.ns, b!.v4)).toBe(true);
  });

  it('carries TCP over IPv6', async () => {
    const { a, b } = pods as Record<string, { ns: string; v4: string; v6: string }>;
    const t = await tcpTransfer(netns, { from: a!.ns, to: b!.ns, toIp: b!.v6, bytes: 512 * 1024 });
    expect(t.receivedBytes).toBe(t.sentBytes);
    expect(t.receivedSha256).toBe(t.sentSha256);
  });

  it('drops IPv6 traffic from an address the port does not own', () => {
    const { a, b } = pods as Record<string, { ns: string; v4: string; v6: string }>;
    const spoof = 'fd00:10:16::beef';
    expect(netns.exec(a!.ns, ['ip', '-6', 'addr', 'add', `${spoof}/64`, 'dev', 'eth0', 'nodad']).status).toBe(0);
    try {
      expect(unreachable(netns, a!.ns, b!.v6, 2, ['-I', spoof])).toBe(true);
      // Positive control: its own address still works (source chosen explicitly: with two
      // addresses on one prefix the kernel may pick either).
      expect(pingWith(netns, a!.ns, b!.v6, ['-I', a!.v6])).toBe(true);
    } finally {
      netns.exec(a!.ns, ['ip', '-6', 'addr', 'del', `${spoof}/64`, 'dev', 'eth0']);
    }
  });
});
