// The node's NAT table (daemon/node/node-nat.ts) applied by the real nft to a network namespace
// of this run: it loads, it replaces itself atomically (a second apply with other node ports
// leaves exactly the new rules), and a bad spec is refused before nft runs.
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
const table = (): string => execFileSync('ip', ['netns', 'exec', NS, 'nft', 'list', 'table', 'ip', NAT_TABLE], { encoding: 'utf8' });

beforeAll(() => { execFileSync('ip', ['netns', 'add', NS]); });
afterAll(() => { spawnSync('ip', ['netns', 'del', NS]); });

describe('node NAT table (real nft, a netns of this run)', () => {
  it('loads, then replaces itself: only the latest node ports remain', async () => {
    const nat = new NodeNat({ log: pino({ level: 'silent' }), run: inNs });
    await nat.apply({ podInterface: 'ovn0', nodePorts: [{ protocol: 'tcp', nodePort: 30080, clusterIp: '10.96.0.10', port: 80 }] });
    expect(table()).toMatch(/tcp dport 30080 dnat to 10\.96\.0\.10:80/);
    expect(table()).toMatch(/iifname "ovn0" oifname != "ovn0" masquerade/);
    expect(table()).toMatch(/oifname "ovn0" ct status dnat masquerade/);
    await nat.apply({ podInterface: 'ovn0', nodePorts: [{ protocol: 'udp', nodePort: 30053, clusterIp: '10.96.0.11', port: 53 }] });
    const now = table();
    expect(now).toMatch(/udp dport 30053 dnat to 10\.96\.0\.11:53/);
    expect(now).not.toMatch(/30080/);
    await nat.apply({ podInterface: 'ovn0', nodePorts: [] });
    expect(table()).not.toMatch(/dport/);
  });

  it('refuses an interface name nft would read as something else, and skips non-IPv4 ClusterIPs', () => {
    expect(() => nftScript({ podInterface: 'ovn0"; flush ruleset', nodePorts: [] })).toThrow(/interface name/);
    const s = nftScript({ podInterface: 'ovn0', nodePorts: [{ protocol: 'tcp', nodePort: 30081, clusterIp: 'fd00::10', port: 80 }] });
    expect(s).not.toMatch(/30081/);
  });
});
