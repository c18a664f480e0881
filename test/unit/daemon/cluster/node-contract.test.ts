// The cross-node contract on Node annotations: what a node publishes reads back as the same peer;
// every way a peer's annotations can be unreadable says why, and nothing half-read is used.
import { describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, NODE_ANNOTATION, contractAnnotations, parseNodeContract } from '../../../../daemon/cluster/node-contract';

const good = contractAnnotations({ chassisId: 'node2', encapIp: '10.250.0.12', zone: 'node2' });

describe('node contract annotations', () => {
  it('round-trips what a node publishes, IPv6 encap included', () => {
    expect(good[NODE_ANNOTATION.version]).toBe(String(CONTRACT_VERSION));
    expect(parseNodeContract('node2', good)).toEqual({ ok: true, peer: { node: 'node2', chassisId: 'node2', encapIp: '10.250.0.12', zone: 'node2' } });
    const v6 = contractAnnotations({ chassisId: 'n-3.example', encapIp: 'fd00::3', zone: 'z' });
    expect(parseNodeContract('n3', v6)).toMatchObject({ ok: true, peer: { encapIp: 'fd00::3' } });
  });

  it('reads a newer peer that says its annotations hold for this version\'s readers, ignoring keys it does not know (a rolling update, old node reading new)', () => {
    const newer = { ...good, [NODE_ANNOTATION.version]: String(CONTRACT_VERSION + 1), [NODE_ANNOTATION.minReader]: String(CONTRACT_VERSION), 'ovnode.io/some-later-key': 'x' };
    expect(parseNodeContract('node2', newer)).toEqual({ ok: true, peer: { node: 'node2', chassisId: 'node2', encapIp: '10.250.0.12', zone: 'node2' } });
  });

  it('publishes the oldest version whose readers understand it, and reads a peer of the version before without one (new node reading old)', () => {
    expect(good[NODE_ANNOTATION.minReader]).toBe('1');
    const older = Object.fromEntries(Object.entries(good).filter(([k]) => k !== NODE_ANNOTATION.minReader));
    expect(parseNodeContract('node2', older)).toMatchObject({ ok: true });
  });

  it.each([
    ['no contract at all', {}, /no ovnode contract/],
    ['a newer version its readers must understand (min-reader = it)', { ...good, [NODE_ANNOTATION.version]: String(CONTRACT_VERSION + 1), [NODE_ANNOTATION.minReader]: String(CONTRACT_VERSION + 1) }, /contract version 2 \(readable from version 2\) is not one this daemon reads \(1; upgrade this node\)/],
    ['a newer version without a min-reader (as if it changed everything)', { ...good, [NODE_ANNOTATION.version]: String(CONTRACT_VERSION + 1), [NODE_ANNOTATION.minReader]: undefined }, /contract version 2 \(readable from version 2\)/],
    ['a version that is not a number', { ...good, [NODE_ANNOTATION.version]: 'v1' }, /contract version "v1" is not a version number/],
    ['a min-reader above the version', { ...good, [NODE_ANNOTATION.minReader]: String(CONTRACT_VERSION + 1) }, /contract-min-reader "2" is not a version number up to the contract version 1/],
    ['a chassis id with a space', { ...good, [NODE_ANNOTATION.chassis]: 'node 2' }, /not a valid chassis id/],
    ['no chassis id', { ...good, [NODE_ANNOTATION.chassis]: '' }, /not a valid chassis id/],
    ['an encap address that is not an IP', { ...good, [NODE_ANNOTATION.encapIp]: 'node2.example' }, /is not an IP address/],
    ['an empty zone', { ...good, [NODE_ANNOTATION.zone]: '' }, /zone is empty/],
  ])('refuses %s', (_what, annotations, reason) => {
    const defined = Object.fromEntries(Object.entries(annotations).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const parsed = parseNodeContract('node2', defined);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toMatch(reason);
  });
});
