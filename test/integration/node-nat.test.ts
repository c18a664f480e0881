// The node's NAT table (daemon/node/node-nat.ts) applied by the real nft to a network namespace
// of this run: it loads, it replaces itself atomically (a second apply with other node ports
// leaves exactly the new rules), it serves both families, it removes the IPv4-only table of
// earlier versions, and a bad spec is refused before nft runs.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { NAT_TABLE, NodeNat, nftScript, type NftRunner } from '../../daemon/node/node-nat';

const NS = `nnat-${randomBytes(3).toString('hex')}`;
const inNs: NftRunner = async (script) => {
  const r = spawnSync('ip', ['netns', 'exec', NS, 'nft', '-f', '-'], { input: script, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nft: ${r.stderr}`);
};
const table = (): string => execFileSync('ip', ['netns', 'exec', NS, 'nft', 'list', 'table', 'inet', NAT_TABLE], { encoding: 'utf8' });

beforeAll(() => { execFileSync('ip', ['netns', 'add', NS]); });
afterAll(() => { spawnSync('ip', ['netns', 'del', NS]); });

describe('node NAT table (real nft, a netns of this run)', () => {
  it('loads, then replaces itself: only the latest node ports remain', async () => {
    const nat = new NodeNat({ log: pino({ level: 'silent' }), run: inNs });
    await nat.apply({ podInterface: 'ovn0', nodePorts: [{ protocol: 'tcp', nodePort: 30080, clusterIp: '10.96.0.10', port: 80 }] });
    expect(table()).toMatch(/tcp dport 30080 dnat ip to 10\.96\.0\.10:80/);
    expect(table()).toMatch(/iifname "ovn0" oifname != "ovn0" masquerade/);
    expect(table()).toMatch(/oifname "ovn0" ct status dnat masquerade/);
    await nat.apply({ podInterface: 'ovn0', nodePorts: [{ protocol: 'udp', nodePort: 30053, clusterIp: '10.96.0.11', port: 53 }] });
    const now = table();
    expect(now).toMatch(/udp dport 30053 dnat ip to 10\.96\.0\.11:53/);
    expect(now).not.toMatch(/30080/);
    await nat.apply({ podInterface: 'ovn0', nodePorts: [] });
    expect(table()).not.toMatch(/dport/);
  });

  it('a dual-stack Service: each family\'s node port goes to its own ClusterIP; the old `ip` table goes', async () => {
    execFileSync('ip', ['netns', 'exec', NS, 'nft', 'add table ip ovnode']);
    const nat = new NodeNat({ log: pino({ level: 'silent' }), run: inNs });
    await nat.apply({ podInterface: 'ovn0', nodePorts: [
      { protocol: 'tcp', nodePort: 30081, clusterIp: '10.96.0.12', port: 80 },
      { protocol: 'tcp', nodePort: 30081, clusterIp: 'fd00:96::12', port: 80 },
    ] });
    const now = table();
    expect(now).toMatch(/meta nfproto ipv4 fib daddr type local tcp dport 30081 dnat ip to 10\.96\.0\.12:80/);
    expect(now).toMatch(/meta nfproto ipv6 fib daddr type local tcp dport 30081 dnat ip6 to \[fd00:96::12\]:80/);
    const tables = execFileSync('ip', ['netns', 'exec', NS, 'nft', 'list', 'tables'], { encoding: 'utf8' });
    expect(tables).not.toMatch(/table ip ovnode/);
    expect(tables).toMatch(/table inet ovnode/);
  });

  it('refuses an interface name nft would read as something else, and skips what is not an address', () => {
    expect(() => nftScript({ podInterface: 'ovn0"; flush ruleset', nodePorts: [] })).toThrow(/interface name/);
    const s = nftScript({ podInterface: 'ovn0', nodePorts: [{ protocol: 'tcp', nodePort: 30082, clusterIp: 'None', port: 80 }] });
    expect(s).not.toMatch(/30082/);
  });
});
