// Desired Load_Balancer rows from projected Services and slices: VIPs per cluster IP and node
// address, backends matched by port name, only ready endpoints of the VIP's family, empty
// backends kept (rejected), affinity, and the node-port rules handed to the kernel.
import { describe, expect, it } from 'vitest';
import { desiredLoadBalancers, nodePortRules, serviceLoadBalancers } from '../../../../daemon/services/desired';
import { SliceIndex } from '../../../../daemon/services/slice-index';
import type { ServiceSlim, SliceSlim } from '../../../../daemon/services/types';

const NODE = ['192.168.10.11', 'fd00:192::11'];

const service = (name: string, s: Partial<ServiceSlim> = {}): ServiceSlim =>
  ({ namespace: 'default', name, clusterIPs: ['10.96.0.10'], ports: [{ name: 'http', protocol: 'tcp', port: 80 }], nodePorts: false, ...s });

const slice = (s: Partial<SliceSlim> = {}): SliceSlim =>
  ({ service: 'default/web', family: 4, ports: [{ name: 'http', protocol: 'tcp', port: 8080 }], ready: ['10.16.0.5', '10.16.0.6'], ...s });

describe('serviceLoadBalancers', () => {
  it('gives a ClusterIP Service one row per protocol, VIP to the ready endpoints on the target port, reject on', () => {
    expect(serviceLoadBalancers(service('web'), [slice()], NODE)).toEqual([{
      name: 'Service_default/web_TCP', protocol: 'tcp', service: 'default/web',
      vips: { '10.96.0.10:80': '10.16.0.5:8080,10.16.0.6:8080' }, options: { reject: 'true' },
    }]);
  });

  it('matches slice ports by name: each Service port gets its own target; the unnamed port matches the unnamed one', () => {
    const svc = service('web', { ports: [
      { name: 'http', protocol: 'tcp', port: 80 }, { name: 'https', protocol: 'tcp', port: 443 }, { name: 'dns', protocol: 'udp', port: 53 },
    ] });
    const s = slice({ ports: [
      { name: 'https', protocol: 'tcp', port: 8443 }, { name: 'http', protocol: 'tcp', port: 8080 }, { name: 'dns', protocol: 'udp', port: 5353 },
      { name: 'http', protocol: 'udp', port: 9999 },
    ] });
    expect(serviceLoadBalancers(svc, [s], [])).toEqual([
      { name: 'Service_default/web_TCP', protocol: 'tcp', service: 'default/web', options: { reject: 'true' },
        vips: { '10.96.0.10:80': '10.16.0.5:8080,10.16.0.6:8080', '10.96.0.10:443': '10.16.0.5:8443,10.16.0.6:8443' } },
      { name: 'Service_default/web_UDP', protocol: 'udp', service: 'default/web', options: { reject: 'true' },
        vips: { '10.96.0.10:53': '10.16.0.5:5353,10.16.0.6:5353' } },
    ]);
    const unnamed = service('web', { ports: [{ name: '', protocol: 'tcp', port: 80 }] });
    expect(serviceLoadBalancers(unnamed, [slice({ ports: [{ name: '', protocol: 'tcp', port: 3000 }] })], [])[0]?.vips)
      .toEqual({ '10.96.0.10:80': '10.16.0.5:3000,10.16.0.6:3000' });
    // A named slice port is not the unnamed Service port's.
    expect(serviceLoadBalancers(unnamed, [slice()], [])[0]?.vips).toEqual({ '10.96.0.10:80': '' });
  });

  it('merges slices, without duplicates (an endpoint moving between slices), sorted', () => {
    const a = slice({ ready: ['10.16.0.9', '10.16.0.5'] });
    const b = slice({ ready: ['10.16.0.5', '10.16.0.7'] });
    expect(serviceLoadBalancers(service('web'), [a, b], [])[0]?.vips).toEqual({ '10.96.0.10:80': '10.16.0.5:8080,10.16.0.7:8080,10.16.0.9:8080' });
  });

  it('keeps a VIP with nothing ready, with no backend, so that OVN rejects', () => {
    expect(serviceLoadBalancers(service('web'), [slice({ ready: [] })], [])[0]?.vips).toEqual({ '10.96.0.10:80': '' });
    expect(serviceLoadBalancers(service('web'), [], [])).toEqual([
      { name: 'Service_default/web_TCP', protocol: 'tcp', service: 'default/web', vips: { '10.96.0.10:80': '' }, options: { reject: 'true' } },
    ]);
  });

  it('adds a VIP per node address of the Service\'s families on the node port for NodePort Services', () => {
    const svc = service('web', { nodePorts: true, ports: [{ name: 'http', protocol: 'tcp', port: 80, nodePort: 30080 }, { name: 'plain', protocol: 'tcp', port: 81 }] });
    const s = slice({ ports: [{ name: 'http', protocol: 'tcp', port: 8080 }, { name: 'plain', protocol: 'tcp', port: 8081 }] });
    expect(serviceLoadBalancers(svc, [s], [...NODE, '192.168.10.11'])[0]?.vips).toEqual({
      '10.96.0.10:80': '10.16.0.5:8080,10.16.0.6:8080',
      '192.168.10.11:30080': '10.16.0.5:8080,10.16.0.6:8080',
      '10.96.0.10:81': '10.16.0.5:8081,10.16.0.6:8081',
    });
  });

  it('serves both families of a dual-stack Service, each VIP with the backends of its family, IPv6 in brackets', () => {
    const svc = service('web', { clusterIPs: ['10.96.0.10', 'fd00:10:96::10'], nodePorts: true, ports: [{ name: 'http', protocol: 'tcp', port: 80, nodePort: 30080 }] });
    const v4 = slice({ ready: ['10.16.0.5'] });
    const v6 = slice({ family: 6, ready: ['fd00:10:16::5', 'fd00:10:16::6'] });
    expect(serviceLoadBalancers(svc, [v4, v6], NODE)[0]?.vips).toEqual({
      '10.96.0.10:80': '10.16.0.5:8080',
      '[fd00:10:96::10]:80': '[fd00:10:16::5]:8080,[fd00:10:16::6]:8080',
      '192.168.10.11:30080': '10.16.0.5:8080',
      '[fd00:192::11]:30080': '[fd00:10:16::5]:8080,[fd00:10:16::6]:8080',
    });
    // An IPv6-only Service has no IPv4 backends even if an IPv4 slice exists.
    const v6only = service('web', { clusterIPs: ['fd00:10:96::10'] });
    expect(serviceLoadBalancers(v6only, [v4], NODE)[0]?.vips).toEqual({ '[fd00:10:96::10]:80': '' });
  });

  it('sets affinity_timeout for ClientIP affinity', () => {
    expect(serviceLoadBalancers(service('web', { affinityTimeoutSeconds: 10800 }), [slice()], [])[0]?.options)
      .toEqual({ reject: 'true', affinity_timeout: '10800' });
  });

  it('gives a Service without ports no row', () => {
    expect(serviceLoadBalancers(service('web', { ports: [] }), [slice()], NODE)).toEqual([]);
  });

  it('gives a headless Service (no cluster IP) no row, even with ready endpoints and node ports', () => {
    const headless = service('web', { clusterIPs: [], nodePorts: true, ports: [{ name: 'http', protocol: 'tcp', port: 80, nodePort: 30080 }] });
    expect(serviceLoadBalancers(headless, [slice()], NODE)).toEqual([]);
    expect(desiredLoadBalancers({ services: [headless], slicesOf: () => [slice()], nodeAddresses: NODE })).toEqual([]);
  });
});

describe('desiredLoadBalancers', () => {
  it('takes every Service with its own slices, sorted by row name', () => {
    const index = new SliceIndex();
    index.apply({ type: 'ADDED', key: 'default/web-1', object: slice(), fromList: true });
    index.apply({ type: 'ADDED', key: 'kube-system/dns-1', object: slice({ service: 'kube-system/dns', ports: [{ name: 'dns', protocol: 'udp', port: 53 }], ready: ['10.16.0.2'] }), fromList: true });
    const desired = desiredLoadBalancers({
      services: [service('web'), { ...service('dns', { ports: [{ name: 'dns', protocol: 'udp', port: 53 }] }), namespace: 'kube-system', clusterIPs: ['10.96.0.3'] }, service('idle', { clusterIPs: ['10.96.0.20'] })],
      slicesOf: (k) => index.of(k),
      nodeAddresses: NODE,
    });
    expect(desired.map((d) => [d.name, d.vips])).toEqual([
      ['Service_default/idle_TCP', { '10.96.0.20:80': '' }],
      ['Service_default/web_TCP', { '10.96.0.10:80': '10.16.0.5:8080,10.16.0.6:8080' }],
      ['Service_kube-system/dns_UDP', { '10.96.0.3:53': '10.16.0.2:53' }],
    ]);
  });
});

describe('SliceIndex', () => {
  it('follows a slice across updates, a relabel to another Service and its deletion', () => {
    const index = new SliceIndex();
    expect(index.apply({ type: 'ADDED', key: 'default/s1', object: slice(), fromList: true })).toEqual(['default/web']);
    const moved = slice({ service: 'default/api' });
    expect(index.apply({ type: 'MODIFIED', key: 'default/s1', object: moved, old: slice(), fromList: false })).toEqual(['default/web', 'default/api']);
    expect(index.of('default/web')).toEqual([]);
    expect(index.of('default/api')).toEqual([moved]);
    expect(index.apply({ type: 'DELETED', key: 'default/s1', object: moved, old: moved, fromList: false })).toEqual(['default/api']);
    expect(index.services).toBe(0);
  });
});

describe('nodePortRules', () => {
  it('lists node port to cluster IP and port for NodePort Services only, per cluster IP, sorted', () => {
    const rules = nodePortRules([
      service('web', { nodePorts: true, clusterIPs: ['10.96.0.10', 'fd00:10:96::10'], ports: [
        { name: 'http', protocol: 'tcp', port: 80, nodePort: 30080 }, { name: 'q', protocol: 'udp', port: 53, nodePort: 30053 }, { name: 'x', protocol: 'tcp', port: 9 },
      ] }),
      service('internal', { ports: [{ name: 'http', protocol: 'tcp', port: 80, nodePort: 31000 }] }),
    ]);
    expect(rules).toEqual([
      { protocol: 'udp', nodePort: 30053, clusterIp: '10.96.0.10', port: 53 },
      { protocol: 'udp', nodePort: 30053, clusterIp: 'fd00:10:96::10', port: 53 },
      { protocol: 'tcp', nodePort: 30080, clusterIp: '10.96.0.10', port: 80 },
      { protocol: 'tcp', nodePort: 30080, clusterIp: 'fd00:10:96::10', port: 80 },
    ]);
  });
});
