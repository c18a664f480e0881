// The SR-IOV part of a netconf (deviceID + sriov-cni's VF fields) and the PF-side settings an
// attachment gets from it and from the pod's annotations; the VF checkpoint's round trip.

import { describe, expect, it } from 'vitest';
import { parseNetConf } from '../../../../daemon/intent/netconf';
import { decodeVfCheckpoint, encodeVfCheckpoint, type VfCheckpoint } from '../../../../daemon/sriov/vf-checkpoint';
import { readVfRequest, vfSettingsFor } from '../../../../daemon/sriov/vf-request';
import type { PodObj } from '../../../../daemon/objects/types';

const conf = (extra: Record<string, unknown>): string => JSON.stringify({ cniVersion: '1.0.0', name: 'sriov', type: 'ovnode', ...extra });
const pod = (annotations: Record<string, string>): PodObj => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'n', labels: {}, annotations } } as unknown as PodObj);

describe('readVfRequest (through parseNetConf)', () => {
  it('takes deviceID top-level (Multus) or from runtimeConfig, canonical', () => {
    expect(parseNetConf(conf({ deviceID: '3b:00.2' })).vf).toEqual({ deviceId: '0000:3b:00.2' });
    expect(parseNetConf(conf({ runtimeConfig: { deviceID: '0000:3B:00.4' } })).vf).toEqual({ deviceId: '0000:3b:00.4' });
    expect(parseNetConf(conf({})).vf).toBeUndefined();
  });

  it('reads sriov-cni\'s VF fields', () => {
    expect(parseNetConf(conf({ deviceID: '0000:3b:00.2', vlan: 100, vlanQoS: 3, spoofchk: 'off', trust: 'on', link_state: 'disable', min_tx_rate: 10, max_tx_rate: 100 })).vf).toEqual({
      deviceId: '0000:3b:00.2', vlan: 100, qos: 3, spoofchk: false, trust: true, linkState: 'disable', minTxRate: 10, maxTxRate: 100,
    });
  });

  it.each([
    [{ deviceID: '../../etc' }, /"deviceID"/],
    [{ deviceID: 7 }, /"deviceID"/],
    [{ deviceID: '0000:3b:00.2', vlan: 4096 }, /"vlan" must be an integer from 0 to 4095/],
    [{ deviceID: '0000:3b:00.2', vlanQoS: 8 }, /"vlanQoS"/],
    [{ deviceID: '0000:3b:00.2', spoofchk: true }, /"spoofchk" must be "on" or "off"/],
    [{ deviceID: '0000:3b:00.2', link_state: 'up' }, /"link_state"/],
    [{ deviceID: '0000:3b:00.2', min_tx_rate: 200, max_tx_rate: 100 }, /must not exceed/],
  ])('refuses %j', (extra, msg) => {
    expect(() => parseNetConf(conf(extra))).toThrow(msg);
  });

  it('a DEL ignores bad VF fields (its ADD refused them) and bad deviceIDs', () => {
    expect(parseNetConf(conf({ deviceID: '0000:3b:00.2', vlan: 'x' }), { teardown: true }).vf).toEqual({ deviceId: '0000:3b:00.2' });
    expect(parseNetConf(conf({ deviceID: 'nonsense' }), { teardown: true }).vf).toBeUndefined();
  });
});

describe('vfSettingsFor', () => {
  const req = readVfRequest({ deviceID: '0000:3b:00.2', vlan: 10, spoofchk: 'on', max_tx_rate: 1000 }) as NonNullable<ReturnType<typeof readVfRequest>>;

  it('the attachment MAC always, the network\'s settings', () => {
    expect(vfSettingsFor(req, '0a:00:00:00:00:01', undefined, undefined)).toEqual({ mac: '0a:00:00:00:00:01', vlan: 10, qos: 0, spoofchk: true, minTxRate: 0, maxTxRate: 1000 });
  });

  it('the pod\'s vlan_id and egress_rate override the network\'s (cluster network: ovn.kubernetes.io/*)', () => {
    const s = vfSettingsFor(req, '0a:00:00:00:00:01', pod({ 'ovn.kubernetes.io/vlan_id': '200', 'ovn.kubernetes.io/egress_rate': '300' }), undefined);
    expect(s).toMatchObject({ vlan: 200, maxTxRate: 300 });
  });

  it('a secondary network reads its provider\'s annotations, not eth0\'s', () => {
    const p = pod({ 'ovn.kubernetes.io/vlan_id': '200', 'sriov.ns.ovn.kubernetes.io/vlan_id': '300' });
    expect(vfSettingsFor(req, 'm', p, 'sriov.ns.ovn').vlan).toBe(300);
  });

  it('a bad annotation is a clear error', () => {
    expect(() => vfSettingsFor(req, 'm', pod({ 'ovn.kubernetes.io/vlan_id': 'ten' }), undefined)).toThrow(/ovn.kubernetes.io\/vlan_id: "ten" is not an integer/);
  });
});

describe('VF checkpoint', () => {
  const c: VfCheckpoint = {
    vf: '0000:3b:00.2', pfPci: '0000:3b:00.0', pfNetdev: 'ens1f0', vfIndex: 0, representor: 'ens1f0_0', netdev: 'ens1f0v0',
    mac: '02:00:00:00:00:01', mtu: 1500, tempName: 'abcdefabcdef_v',
    settings: { mac: '00:00:00:00:00:00', vlan: 5, qos: 1, spoofchk: false, trust: true, linkState: 'disable', minTxRate: 1, maxTxRate: 2 },
  };

  it('round-trips', () => {
    expect(decodeVfCheckpoint(encodeVfCheckpoint(c))).toEqual(c);
    const { netdev: _n, mac: _m, mtu: _t, ...vfio } = c;
    expect(decodeVfCheckpoint(encodeVfCheckpoint(vfio))).toEqual(vfio);
  });

  it('anything unreadable is no checkpoint', () => {
    for (const t of [undefined, '', '{', 'null', '[]', '{"vf":1}', JSON.stringify({ ...c, vfIndex: 'x' })]) expect(decodeVfCheckpoint(t)).toBeUndefined();
  });
});
