// Port settings from pod annotations: the port_security line (with VIPs), switching it off,
// and QoS rules from the rate annotations.
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { PodObj } from '../../../../daemon/objects/types';
import { ANNOTATION, podQos, podVips, portSecurityEnabled, portSecurityLine } from '../../../../daemon/policy/port-settings';
import { pod, vip } from './helpers';

const MAC = '0a:58:0a:10:00:05';
const IPS = ['10.16.0.5', 'fd00:10:16::5'];
const annotated = (annotations: Record<string, string>): PodObj => pod('p', 'default', { annotations });

function storeWithVips(): MemoryStore {
  const store = new MemoryStore();
  store.apply(vip('vip-a', { subnet: 'ovn-default', v4ip: '10.16.0.100' }));
  store.apply(vip('vip-dual', { subnet: 'ovn-default', v4ip: '10.16.0.101', v6ip: 'fd00:10:16::101' }));
  store.apply(vip('cafe', { subnet: 'ovn-default', v4ip: '10.16.0.102' }));
  return store;
}

describe('portSecurityLine', () => {
  const cases: { desc: string; annotations: Record<string, string>; pod?: boolean; line: string[] }[] = [
    { desc: 'no annotation: MAC and IPs', annotations: {}, line: [`${MAC} 10.16.0.5 fd00:10:16::5`] },
    { desc: 'no Pod object: still on', annotations: {}, pod: false, line: [`${MAC} 10.16.0.5 fd00:10:16::5`] },
    { desc: 'port_security "false": none', annotations: { [ANNOTATION.portSecurity]: 'false' }, line: [] },
    { desc: 'port_security " False " (case, spaces): none', annotations: { [ANNOTATION.portSecurity]: ' False ' }, line: [] },
    { desc: 'port_security "true": on', annotations: { [ANNOTATION.portSecurity]: 'true' }, line: [`${MAC} 10.16.0.5 fd00:10:16::5`] },
    { desc: 'a Vip object by name adds its address', annotations: { [ANNOTATION.vip]: 'vip-a' }, line: [`${MAC} 10.16.0.5 fd00:10:16::5 10.16.0.100`] },
    { desc: 'a dual-stack Vip adds both addresses', annotations: { [ANNOTATION.vip]: 'vip-dual' }, line: [`${MAC} 10.16.0.5 fd00:10:16::5 10.16.0.101 fd00:10:16::101`] },
    { desc: 'a raw IP in the annotation is used as is', annotations: { [ANNOTATION.vip]: '10.16.0.200' }, line: [`${MAC} 10.16.0.5 fd00:10:16::5 10.16.0.200`] },
    { desc: 'names and IPs mixed, with spaces', annotations: { [ANNOTATION.vip]: ' vip-a , fd00:10:16::200 ' }, line: [`${MAC} 10.16.0.5 fd00:10:16::5 10.16.0.100 fd00:10:16::200`] },
    { desc: 'a VIP equal to the pod address is not repeated', annotations: { [ANNOTATION.vip]: '10.16.0.5,vip-a' }, line: [`${MAC} 10.16.0.5 fd00:10:16::5 10.16.0.100`] },
    { desc: 'a Vip whose name is hex-like resolves as the object', annotations: { [ANNOTATION.vip]: 'cafe' }, line: [`${MAC} 10.16.0.5 fd00:10:16::5 10.16.0.102`] },
    { desc: 'an unknown Vip name is ignored', annotations: { [ANNOTATION.vip]: 'vip-missing' }, line: [`${MAC} 10.16.0.5 fd00:10:16::5`] },
    // An unknown name made of hex digits must not end up in port_security as an "address".
    { desc: 'an unknown Vip name made of hex digits ("db", no object yet) is ignored', annotations: { [ANNOTATION.vip]: 'db' }, line: [`${MAC} 10.16.0.5 fd00:10:16::5`] },
    { desc: 'port security off wins over VIPs', annotations: { [ANNOTATION.portSecurity]: 'false', [ANNOTATION.vip]: 'vip-a' }, line: [] },
  ];
  it.each(cases)('$desc', ({ annotations, pod: hasPod, line }) => {
    expect(portSecurityLine(storeWithVips(), hasPod === false ? undefined : annotated(annotations), MAC, IPS)).toEqual(line);
  });

  it('portSecurityEnabled and podVips agree with the line', () => {
    const store = storeWithVips();
    expect(portSecurityEnabled(undefined)).toBe(true);
    expect(portSecurityEnabled(annotated({ [ANNOTATION.portSecurity]: 'false' }))).toBe(false);
    expect(podVips(store, undefined)).toEqual([]);
    expect(podVips(store, annotated({ [ANNOTATION.vip]: 'vip-dual,10.1.1.1' }))).toEqual(['10.16.0.101', 'fd00:10:16::101', '10.1.1.1']);
  });
});

describe('podQos', () => {
  const lsp = 'p.default';
  const cases: { desc: string; annotations: Record<string, string>; rules: Array<[string, string, number]> }[] = [
    { desc: 'no annotations: no rule', annotations: {}, rules: [] },
    { desc: 'egress rate: from-lport on inport, kbps = Mbit * 1000', annotations: { [ANNOTATION.egressRate]: '10' }, rules: [['from-lport', `inport == "${lsp}"`, 10000]] },
    { desc: 'ingress rate: to-lport on outport', annotations: { [ANNOTATION.ingressRate]: '5' }, rules: [['to-lport', `outport == "${lsp}"`, 5000]] },
    { desc: 'both rates, fractional Mbit rounded to kbit', annotations: { [ANNOTATION.egressRate]: '1.5', [ANNOTATION.ingressRate]: '0.0015' }, rules: [['from-lport', `inport == "${lsp}"`, 1500], ['to-lport', `outport == "${lsp}"`, 2]] },
    { desc: 'zero, negative, empty and junk rates: no rule', annotations: { [ANNOTATION.egressRate]: '0', [ANNOTATION.ingressRate]: 'fast' }, rules: [] },
    { desc: 'negative and blank', annotations: { [ANNOTATION.egressRate]: '-3', [ANNOTATION.ingressRate]: '  ' }, rules: [] },
  ];
  it.each(cases)('$desc', ({ annotations, rules }) => {
    const got = podQos(annotated(annotations), lsp);
    expect(got).toEqual(rules.map(([direction, match, kbps]) => ({ direction, priority: 2001, match, rate: kbps, burst: kbps, owner: `qos/${lsp}` })));
  });

  it('no Pod object: no rule', () => {
    expect(podQos(undefined, lsp)).toEqual([]);
  });
});
