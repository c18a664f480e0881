// ServicesController end to end on fakes: Services and EndpointSlices from the fake API server
// (list + watch, label selectors), the NB a FakeOvsdbServer with the real schema read through a
// real OvsdbClient and its monitor cache. Start resolves with the rows written; changes to
// slices, Services and switches follow; a restart on an unchanged cluster writes nothing.
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NB_MONITOR } from '../../../../daemon/node/monitors';
import { OvsdbClient } from '../../../../daemon/ovsdb/client';
import type { Operation } from '../../../../daemon/ovsdb/types';
import { asArray, asMap, ovsMap, type Row } from '../../../../daemon/ovsdb/values';
import { ServicesController, type PassReport } from '../../../../daemon/services/controller';
import { servicesNbMonitor } from '../../../../daemon/services/nb-monitor';
import type { NodePortRule } from '../../../../daemon/services/types';
import type { KubeRequest, KubeResponse } from '../../../../daemon/sources/kube/api';
import { staticConnection } from '../../../../daemon/sources/kube/config';
import { HttpKubeApi } from '../../../../daemon/sources/kube/http-api';
import type { KubeStreamRequest, KubeStreamResponse } from '../../../../daemon/sources/kube/stream';
import { FakeApiServer, type FakeResource } from '../../../fakes/fake-apiserver';
import { FakeOvsdbServer, loadSchema, NB_SCHEMA_PATH } from '../../../fakes/fake-ovsdb-server';

const log = pino({ level: 'silent' });
const NB_SCHEMA = loadSchema(NB_SCHEMA_PATH);
const LS = 'Logical_Switch';
const LB = 'Load_Balancer';
const NODE = ['192.168.10.11'];

const SERVICES: FakeResource = { prefix: '/api/v1', plural: 'services', kind: 'Service', namespaced: true };
const slicesAt = (version: string): FakeResource => ({ prefix: `/apis/discovery.k8s.io/${version}`, plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true });

/** The fake API server, with the discovery group document it does not serve itself. */
class Api {
  readonly http: HttpKubeApi;
  constructor(server: FakeApiServer, private readonly versions: string[]) {
    this.http = new HttpKubeApi(staticConnection(server.url), { requestTimeoutMs: 5_000 });
  }

  request<T = unknown>(req: KubeRequest): Promise<KubeResponse<T>> {
    if (req.path !== '/apis/discovery.k8s.io') return this.http.request<T>(req);
    const versions = this.versions.map((version) => ({ groupVersion: `discovery.k8s.io/${version}`, version }));
    return Promise.resolve({ status: 200, body: { kind: 'APIGroup', name: 'discovery.k8s.io', versions } as T });
  }

  stream(req: KubeStreamRequest): Promise<KubeStreamResponse> {
    return this.http.stream(req);
  }
}

// ---- objects as the API serves them ----

const service = (name: string, spec: Record<string, unknown>, labels: Record<string, string> = {}): Record<string, unknown> =>
  ({ metadata: { name, namespace: 'default', labels }, spec: { type: 'ClusterIP', ...spec } });

function slice(name: string, svc: string, ips: Array<[string, boolean]>, port = 8080, extraLabels: Record<string, string> = {}): Record<string, unknown> {
  return {
    metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': svc, ...extraLabels } },
    addressType: 'IPv4',
    endpoints: ips.map(([ip, ready]) => ({ addresses: [ip], conditions: { ready }, topology: { 'kubernetes.io/hostname': 'node1' } })),
    ports: [{ name: 'http', protocol: 'TCP', port }],
  };
}

// ---- the NB ----

function topology(): Operation[] {
  const ls = (name: string, cidrs: string): Operation => ({ op: 'insert', table: LS, row: { name, external_ids: ovsMap({ 'ovnode:owner': 'ovnode', 'ovnode:cidrs': cidrs }) } });
  return [ls('ovn-default', '10.16.0.0/16'), ls('join', '100.64.0.0/16'), { op: 'insert', table: 'Logical_Router', row: { name: 'ovn-cluster' } }];
}

interface Env {
  server: FakeApiServer;
  api: Api;
  fake: FakeOvsdbServer;
  nb: OvsdbClient;
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function env(opts: { versions?: string[]; monitor?: 'daemon' | 'own-lb' } = {}): Promise<Env> {
  const versions = opts.versions ?? ['v1beta1'];
  const server = await FakeApiServer.start({ resources: [SERVICES, slicesAt(versions[0] as string)] });
  cleanups.push(() => server.close());
  const api = new Api(server, versions);
  cleanups.push(() => api.http.close());
  const fake = await FakeOvsdbServer.start({ database: 'OVN_Northbound', schema: NB_SCHEMA });
  cleanups.push(() => fake.close());
  fake.apply(topology());
  const nb = await nbClient(fake, opts.monitor ?? 'daemon');
  return { server, api, fake, nb };
}

/**
 * An NB client as the daemon would have it: 'daemon' monitors servicesNbMonitor(NB_MONITOR)
 * (Load_Balancer included); 'own-lb' only the switch and router columns, leaving Load_Balancer to
 * the controller.
 */
async function nbClient(fake: FakeOvsdbServer, monitor: 'daemon' | 'own-lb'): Promise<OvsdbClient> {
  const nb = new OvsdbClient({ socketPath: fake.socketPath, database: 'OVN_Northbound', reconnectDelayMs: 5 });
  cleanups.push(() => nb.close());
  await nb.connect();
  await nb.monitor(monitor === 'daemon'
    ? servicesNbMonitor(NB_MONITOR)
    : { [LS]: { columns: ['name', 'external_ids', 'load_balancer'] }, Logical_Router: { columns: ['name', 'load_balancer'] } });
  return nb;
}

function controller(e: Pick<Env, 'api' | 'nb'>, passes: PassReport[] = []): ServicesController {
  const c = new ServicesController({ api: e.api, nb: e.nb, nodeAddresses: () => NODE, log, retry: { initialMs: 5, maxMs: 20 }, onPass: (p) => passes.push(p) });
  cleanups.push(() => c.stop());
  return c;
}

const lbRows = (fake: FakeOvsdbServer): Row[] => fake.rows(LB);
const vipsOf = (fake: FakeOvsdbServer, name: string): Record<string, unknown> | undefined => {
  const row = lbRows(fake).find((r) => r.name === name);
  return row ? asMap(row.vips) : undefined;
};
function lbsOf(fake: FakeOvsdbServer, table: string, name: string): string[] {
  const row = fake.rows(table).find((r) => r.name === name);
  const names = new Map(lbRows(fake).map((r) => [r._uuid, r.name as string]));
  return asArray<string>(row?.load_balancer).map((u) => names.get(u) ?? `?${u}`).sort();
}
const transacts = (fake: FakeOvsdbServer): number => fake.requests.filter((r) => r.method === 'transact').length;

function seed(server: FakeApiServer): void {
  server.create('services', service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }));
  server.create('services', service('np', { type: 'NodePort', clusterIP: '10.96.0.11', sessionAffinity: 'ClientIP', ports: [{ name: 'http', port: 80, nodePort: 30080 }] }));
  server.create('services', service('headless', { clusterIP: 'None', ports: [{ name: 'http', port: 80 }] }));
  server.create('services', service('other-proxy', { clusterIP: '10.96.0.12', ports: [{ name: 'http', port: 80 }] }, { 'service.kubernetes.io/service-proxy-name': 'foo' }));
  server.create('endpointslices', slice('web-1', 'web', [['10.16.0.5', true], ['10.16.0.6', false]]));
  server.create('endpointslices', slice('np-1', 'np', [['10.16.0.7', true]], 9090));
  server.create('endpointslices', slice('headless-1', 'headless', [['10.16.0.8', true]], 8080, { 'service.kubernetes.io/headless': '' }));
}

describe('ServicesController', () => {
  it('resolves start once both watches listed and the first pass wrote the rows (Kubernetes 1.20: v1beta1)', async () => {
    const e = await env();
    seed(e.server);
    const passes: PassReport[] = [];
    const c = controller(e, passes);
    await c.start(AbortSignal.timeout(10_000));
    expect(c.endpointSliceVersion).toBe('v1beta1');
    expect(e.server.requests.some((r) => r.path === '/apis/discovery.k8s.io/v1beta1/endpointslices')).toBe(true);
    expect(lbRows(e.fake).map((r) => r.name).sort()).toEqual(['Service_default/np_TCP', 'Service_default/web_TCP']);
    expect(vipsOf(e.fake, 'Service_default/web_TCP')).toEqual({ '10.96.0.10:80': '10.16.0.5:8080' });
    expect(vipsOf(e.fake, 'Service_default/np_TCP')).toEqual({ '10.96.0.11:80': '10.16.0.7:9090', '192.168.10.11:30080': '10.16.0.7:9090' });
    expect(asMap(lbRows(e.fake).find((r) => r.name === 'Service_default/np_TCP')?.options)).toEqual({ reject: 'true', affinity_timeout: '10800' });
    for (const [table, name] of [[LS, 'ovn-default'], [LS, 'join'], ['Logical_Router', 'ovn-cluster']] as const) {
      expect(lbsOf(e.fake, table, name)).toEqual(['Service_default/np_TCP', 'Service_default/web_TCP']);
    }
    expect(c.nodePortRules()).toEqual([{ protocol: 'tcp', nodePort: 30080, clusterIp: '10.96.0.11', port: 80 }]);
    expect(passes[0]).toMatchObject({ ok: true, full: true, ops: 5 });
  });

  it('writes nothing on a restart when nothing changed, with the controller monitoring Load_Balancer itself', async () => {
    const e = await env({ monitor: 'own-lb' });
    seed(e.server);
    const first = controller(e);
    await first.start();
    expect(lbRows(e.fake)).toHaveLength(2);
    await first.stop();

    // A new daemon: a new NB session and a new controller.
    const nb = await nbClient(e.fake, 'own-lb');
    const before = transacts(e.fake);
    const passes: PassReport[] = [];
    await controller({ api: e.api, nb }, passes).start();
    expect(passes).toEqual([expect.objectContaining({ ok: true, full: true, ops: 0 })]);
    expect(transacts(e.fake)).toBe(before);
  });

  it('follows slices, Services, node ports and new switches', async () => {
    const e = await env();
    seed(e.server);
    const c = controller(e);
    const nodePorts: NodePortRule[][] = [];
    c.onNodePorts((rules) => nodePorts.push([...rules]));
    await c.start();

    // An endpoint becomes ready, the other one not.
    e.server.replace('endpointslices', slice('web-1', 'web', [['10.16.0.5', false], ['10.16.0.6', true]]));
    await vi.waitFor(() => expect(vipsOf(e.fake, 'Service_default/web_TCP')).toEqual({ '10.96.0.10:80': '10.16.0.6:8080' }));
    // Nothing ready: the VIP stays, without backends.
    e.server.remove('endpointslices', 'default', 'web-1');
    await vi.waitFor(() => expect(vipsOf(e.fake, 'Service_default/web_TCP')).toEqual({ '10.96.0.10:80': '' }));

    // A NodePort Service more: rows and node-port rules.
    e.server.create('services', service('np2', { type: 'NodePort', clusterIP: '10.96.0.13', ports: [{ name: 'dns', protocol: 'UDP', port: 53, nodePort: 30053 }] }));
    await vi.waitFor(() => expect(vipsOf(e.fake, 'Service_default/np2_UDP')).toEqual({ '10.96.0.13:53': '', '192.168.10.11:30053': '' }));
    await vi.waitFor(() => expect(nodePorts.at(-1)).toEqual([
      { protocol: 'udp', nodePort: 30053, clusterIp: '10.96.0.13', port: 53 },
      { protocol: 'tcp', nodePort: 30080, clusterIp: '10.96.0.11', port: 80 },
    ]));

    // A switch created later gets every row.
    e.fake.apply([{ op: 'insert', table: LS, row: { name: 'blue', external_ids: ovsMap({ 'ovnode:cidrs': '10.18.0.0/24' }) } }]);
    await vi.waitFor(() => expect(lbsOf(e.fake, LS, 'blue')).toEqual(['Service_default/np2_UDP', 'Service_default/np_TCP', 'Service_default/web_TCP']));

    // A Service deleted: its rows go, from every switch too.
    e.server.remove('services', 'default', 'web');
    await vi.waitFor(() => expect(vipsOf(e.fake, 'Service_default/web_TCP')).toBeUndefined());
    expect(lbsOf(e.fake, LS, 'ovn-default')).toEqual(['Service_default/np2_UDP', 'Service_default/np_TCP']);
    expect(lbsOf(e.fake, LS, 'blue')).toEqual(['Service_default/np2_UDP', 'Service_default/np_TCP']);

    // A row deleted behind the controller's back comes back.
    e.fake.apply([{ op: 'delete', table: LB, where: [['name', '==', 'Service_default/np_TCP']] }]);
    await vi.waitFor(() => expect(lbsOf(e.fake, LS, 'join')).toEqual(['Service_default/np2_UDP', 'Service_default/np_TCP']));
  });

  it('uses discovery.k8s.io/v1 where the server serves it', async () => {
    const e = await env({ versions: ['v1', 'v1beta1'] });
    e.server.create('services', service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] }));
    e.server.create('endpointslices', {
      ...slice('web-1', 'web', []),
      endpoints: [{ addresses: ['10.16.0.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'node1' },
        { addresses: ['10.16.0.6'], conditions: { ready: false, serving: true, terminating: true }, nodeName: 'node1' }],
    });
    const c = controller(e);
    await c.start();
    expect(c.endpointSliceVersion).toBe('v1');
    expect(vipsOf(e.fake, 'Service_default/web_TCP')).toEqual({ '10.96.0.10:80': '10.16.0.5:8080' });
  });

  it('retries a failed pass until the NB takes it', async () => {
    const e = await env();
    seed(e.server);
    e.fake.failNextTransaction();
    const passes: PassReport[] = [];
    await controller(e, passes).start();
    // Failed, then everything again; a pass after that (the NB echoing the write) has nothing to do.
    expect(passes[0]).toMatchObject({ ok: false, full: true });
    expect(passes[1]).toMatchObject({ ok: true, full: true, ops: 5 });
    expect(passes.slice(2).every((p) => p.ok && p.ops === 0 && !p.full)).toBe(true);
    expect(lbRows(e.fake)).toHaveLength(2);
  });

  it('rejects start when its signal aborts first', async () => {
    const e = await env();
    e.server.inject({ hang: true, times: 10, match: (r) => r.path.endsWith('/services') });
    const ac = new AbortController();
    const started = controller(e).start(ac.signal);
    setTimeout(() => ac.abort(new Error('start-up timed out')), 50);
    await expect(started).rejects.toThrow('start-up timed out');
  });
});
