// The underlay's objects: ProviderNetwork, Vlan and Subnet.spec.vlan / logicalGateway. Manifests
// shaped like Kube-OVN's underlay guide (docs/start/underlay.en.md: a provider network with a
// default NIC, per-node NICs and a node selector; a Vlan on it; a Subnet bound to the Vlan, with
// and without the logical gateway) parse and validate; every bad field is refused with a message
// naming it; both stores (the manifests directory, the Kubernetes watch) serve the objects.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeStore } from '../../../../daemon/cluster/kube-store';
import { ManifestStore } from '../../../../daemon/objects/manifest-store';
import { parseManifest } from '../../../../daemon/objects/parse';
import type { KubeObject, ProviderNetworkObj, SubnetObj, VlanObj } from '../../../../daemon/objects/types';
import { validateObject } from '../../../../daemon/objects/validate';
import { interfaceNameErrors } from '../../../../daemon/objects/validate-underlay';
import { staticConnection } from '../../../../daemon/sources/kube/config';
import { HttpKubeApi } from '../../../../daemon/sources/kube/http-api';
import { FAKE_RESOURCES, FakeApiServer } from '../../../fakes/fake-apiserver';
import { runRow, type Body, type Row } from './validate-helpers';

const PROVIDER_NETWORK = `
apiVersion: kubeovn.io/v1
kind: ProviderNetwork
metadata:
  name: physnet1
spec:
  defaultInterface: eth1
  customInterfaces:
    - interface: ens4f0
      nodes:
        - worker-b
        - worker-c
  excludeNodes:
    - control-0
  nodeSelector:
    matchLabels:
      net.example.org/underlay: "yes"
    matchExpressions:
      - key: kubernetes.io/hostname
        operator: In
        values: [worker-a, worker-b, worker-c]
`;

const VLANS = `
apiVersion: kubeovn.io/v1
kind: Vlan
metadata:
  name: vlan100
spec:
  id: 100
  provider: physnet1
---
# Untagged: the provider network's native VLAN.
apiVersion: kubeovn.io/v1
kind: Vlan
metadata:
  name: native
spec:
  id: 0
  provider: physnet1
`;

const SUBNETS = `
apiVersion: kubeovn.io/v1
kind: Subnet
metadata:
  name: rack-a
spec:
  protocol: IPv4
  cidrBlock: 192.168.100.0/24
  gateway: 192.168.100.254
  excludeIps:
    - 192.168.100.1..192.168.100.20
  vlan: vlan100
  disableGatewayCheck: false
---
apiVersion: kubeovn.io/v1
kind: Subnet
metadata:
  name: rack-b
spec:
  protocol: IPv4
  cidrBlock: 172.30.0.0/16
  gateway: 172.30.0.1
  vlan: native
  logicalGateway: true
`;

/** Every document of `text` parsed and validated; fails the test on any refusal. */
function accept(text: string): KubeObject[] {
  const parsed = parseManifest(text, 'underlay.yaml');
  expect(parsed.rejected).toEqual([]);
  return parsed.objects.map((raw) => {
    const r = validateObject(raw);
    expect(r.ok ? '' : r.rejected.message).toBe('');
    return (r as { ok: true; object: KubeObject }).object;
  });
}

describe("Kube-OVN's underlay manifests", () => {
  it('a ProviderNetwork with a default NIC, per-node NICs, excluded nodes and a node selector', () => {
    const [pn] = accept(PROVIDER_NETWORK) as ProviderNetworkObj[];
    expect(pn).toEqual({
      kind: 'ProviderNetwork',
      metadata: { name: 'physnet1', namespace: '', labels: {}, annotations: {} },
      spec: {
        defaultInterface: 'eth1',
        customInterfaces: [{ interface: 'ens4f0', nodes: ['worker-b', 'worker-c'] }],
        excludeNodes: ['control-0'],
        nodeSelector: {
          matchLabels: { 'net.example.org/underlay': 'yes' },
          matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['worker-a', 'worker-b', 'worker-c'] }],
        },
      },
    });
  });

  it('the smallest ProviderNetwork: a default NIC only; lists default to empty, no selector', () => {
    const [pn] = accept('apiVersion: kubeovn.io/v1\nkind: ProviderNetwork\nmetadata: {name: net1}\nspec: {defaultInterface: eth1}\n') as ProviderNetworkObj[];
    expect(pn?.spec).toEqual({ defaultInterface: 'eth1', customInterfaces: [], excludeNodes: [] });
  });

  it('Vlans: a tagged one and an untagged one (id 0) on the provider network', () => {
    const vlans = accept(VLANS) as VlanObj[];
    expect(vlans.map((v) => [v.kind, v.metadata.name, v.spec])).toEqual([
      ['Vlan', 'vlan100', { id: 100, provider: 'physnet1' }],
      ['Vlan', 'native', { id: 0, provider: 'physnet1' }],
    ]);
  });

  it('Subnets on a Vlan: the physical router as gateway by default, OVN with logicalGateway', () => {
    const [a, b] = accept(SUBNETS) as SubnetObj[];
    expect(a?.spec).toMatchObject({ cidrBlock: '192.168.100.0/24', gateway: '192.168.100.254', vlan: 'vlan100', logicalGateway: false });
    expect(b?.spec).toMatchObject({ cidrBlock: '172.30.0.0/16', vlan: 'native', logicalGateway: true });
  });

  it('an overlay Subnet has no vlan and logicalGateway false', () => {
    const [s] = accept('apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {name: s}\nspec: {cidrBlock: 10.16.0.0/24, vlan: ""}\n') as SubnetObj[];
    expect(s?.spec.logicalGateway).toBe(false);
    expect('vlan' in (s?.spec ?? {})).toBe(false);
  });

  it('another apiVersion is refused by name', () => {
    const r = parseManifest('apiVersion: kubeovn.io/v1beta1\nkind: Vlan\nmetadata: {name: v}\nspec: {id: 1, provider: p}\n', 'v.yaml');
    expect(r.rejected.map((x) => x.message)).toEqual(['document 1: no matches for kind "Vlan" in version "kubeovn.io/v1beta1": use apiVersion kubeovn.io/v1']);
  });
});

describe('interfaceNameErrors', () => {
  it('accepts what the kernel accepts and refuses the rest', () => {
    // IFNAMSIZ counts bytes: seven two-byte letters and one more fit, eight do not.
    for (const ok of ['eth0', 'ens4f0', 'enp0s31f6', 'bond0.100', 'a', 'x'.repeat(15), 'eth-1_2@x', `${'é'.repeat(7)}0`]) expect(interfaceNameErrors(ok), ok).toEqual([]);
    for (const bad of ['x'.repeat(16), 'eth0/1', 'eth0:1', 'eth 0', 'eth\t0', '.', '..', 'é'.repeat(8)]) {
      expect(interfaceNameErrors(bad).length, bad).toBeGreaterThan(0);
    }
  });
});

const pn = (spec: Body, name = 'net1'): Body => ({ metadata: { name }, spec: { defaultInterface: 'eth1', ...spec } });
const vlan = (spec: Body): Body => ({ metadata: { name: 'v1' }, spec });
const subnet = (spec: Body): Body => ({ metadata: { name: 'sn' }, spec: { cidrBlock: '10.16.0.0/24', ...spec } });
const IFNAME_CHARS = "must not contain '/', ':' or whitespace (a Linux interface name)";
const LABEL =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc')";
const SUBDOMAIN =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')";

describe('ProviderNetwork refusals', () => {
  const P = 'ProviderNetwork net1';
  const rows: Row[] = [
    {
      desc: 'a name of 13 characters (br-<name> would not fit in 15)',
      body: pn({}, 'physnet-rack1'),
      error: 'ProviderNetwork physnet-rack1: metadata.name: Invalid value: "physnet-rack1": must be no more than 12 characters (the node\'s bridge is br-<name>, a Linux interface name)',
    },
    { desc: 'a name of 12 characters is fine', body: pn({}, 'physnet-rack') },
    {
      desc: 'a name with a dot (a DNS label, not a subdomain)',
      body: pn({}, 'net.1'),
      error: `ProviderNetwork net.1: metadata.name: Invalid value: "net.1": ${LABEL}`,
    },
    {
      desc: 'the name int (br-int is the integration bridge)',
      body: pn({}, 'int'),
      error: 'ProviderNetwork int: metadata.name: Invalid value: "int": br-int is the integration bridge: choose another name',
    },
    {
      desc: 'defaultInterface missing',
      body: { metadata: { name: 'net1' }, spec: {} },
      error: `${P}: spec.defaultInterface: Required value: the NIC of every node not in customInterfaces`,
    },
    {
      desc: 'no spec at all',
      body: { metadata: { name: 'net1' } },
      error: `${P}: spec.defaultInterface: Required value: the NIC of every node not in customInterfaces`,
    },
    {
      desc: 'defaultInterface empty',
      body: pn({ defaultInterface: '' }),
      error: `${P}: spec.defaultInterface: Required value: the NIC of every node not in customInterfaces`,
    },
    {
      desc: 'defaultInterface of 16 characters',
      body: pn({ defaultInterface: 'enp0s31f6abcdefg' }),
      error: `${P}: spec.defaultInterface: Invalid value: "enp0s31f6abcdefg": must be no more than 15 bytes (a Linux interface name)`,
    },
    {
      desc: "defaultInterface with ':' (an alias)",
      body: pn({ defaultInterface: 'eth1:0' }),
      error: `${P}: spec.defaultInterface: Invalid value: "eth1:0": ${IFNAME_CHARS}`,
    },
    {
      desc: "defaultInterface with '/'",
      body: pn({ defaultInterface: 'eth/1' }),
      error: `${P}: spec.defaultInterface: Invalid value: "eth/1": ${IFNAME_CHARS}`,
    },
    {
      desc: 'defaultInterface with a space',
      body: pn({ defaultInterface: 'eth 1' }),
      error: `${P}: spec.defaultInterface: Invalid value: "eth 1": ${IFNAME_CHARS}`,
    },
    {
      desc: 'defaultInterface not a string',
      body: pn({ defaultInterface: 1 }),
      error: `${P}: spec.defaultInterface: Invalid value: 1: must be a string (quote it in YAML)`,
    },
    {
      desc: 'customInterfaces not a list',
      body: pn({ customInterfaces: { interface: 'eth2', nodes: ['n1'] } }),
      error: `${P}: spec.customInterfaces: Invalid value: an object: must be a list`,
    },
    {
      desc: 'a customInterfaces entry without interface',
      body: pn({ customInterfaces: [{ nodes: ['n1'] }] }),
      error: `${P}: spec.customInterfaces[0].interface: Required value: the NIC these nodes use`,
    },
    {
      desc: 'a customInterfaces entry with a bad interface name',
      body: pn({ customInterfaces: [{ interface: 'eth2:1', nodes: ['n1'] }] }),
      error: `${P}: spec.customInterfaces[0].interface: Invalid value: "eth2:1": ${IFNAME_CHARS}`,
    },
    {
      desc: 'a customInterfaces entry for no node',
      body: pn({ customInterfaces: [{ interface: 'eth2', nodes: [] }] }),
      error: `${P}: spec.customInterfaces[0].nodes: Required value: the nodes that use interface eth2`,
    },
    {
      desc: 'a customInterfaces entry with `node` for `nodes`',
      body: pn({ customInterfaces: [{ interface: 'eth2', node: ['n1'] }] }),
      error: `${P}: unknown field "spec.customInterfaces[0].node"; spec.customInterfaces[0].nodes: Required value: the nodes that use interface eth2`,
    },
    {
      desc: 'a node given two interfaces',
      body: pn({ customInterfaces: [{ interface: 'eth2', nodes: ['n1', 'n2'] }, { interface: 'eth3', nodes: ['n3', 'n2'] }] }),
      error: `${P}: spec.customInterfaces[1].nodes[1]: Invalid value: "n2": node already has interface "eth2" from spec.customInterfaces[0]: a node has one NIC per provider network`,
    },
    {
      desc: 'a node repeated in one entry is just one node',
      body: pn({ customInterfaces: [{ interface: 'eth2', nodes: ['n1', 'n1'] }] }),
      check: (o) => expect((o as ProviderNetworkObj).spec.customInterfaces).toEqual([{ interface: 'eth2', nodes: ['n1'] }]),
    },
    {
      desc: 'a node name that is not one',
      body: pn({ customInterfaces: [{ interface: 'eth2', nodes: ['Node_1'] }] }),
      error: `${P}: spec.customInterfaces[0].nodes[0]: Invalid value: "Node_1": is not a node name: ${SUBDOMAIN}`,
    },
    {
      desc: 'excludeNodes: a bad node name',
      body: pn({ excludeNodes: ['ok-node', 'bad node'] }),
      error: `${P}: spec.excludeNodes[1]: Invalid value: "bad node": is not a node name: ${SUBDOMAIN}`,
    },
    {
      desc: 'excludeNodes: not a list',
      body: pn({ excludeNodes: 'n1' }),
      error: `${P}: spec.excludeNodes: Invalid value: "n1": must be a list`,
    },
    {
      desc: 'nodeSelector: an unknown operator',
      body: pn({ nodeSelector: { matchExpressions: [{ key: 'k', operator: 'Equals', values: ['v'] }] } }),
      error: `${P}: spec.nodeSelector.matchExpressions[0].operator: Invalid value: "Equals": not a valid selector operator (use one of In, NotIn, Exists, DoesNotExist)`,
    },
    {
      desc: 'nodeSelector: a bad label value',
      body: pn({ nodeSelector: { matchLabels: { zone: 'a b' } } }),
      error:
        `${P}: spec.nodeSelector.matchLabels: Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', ` +
        "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345')",
    },
    {
      desc: "Kube-OVN fields ovnode does not read (exchangeLinkName, vlanInterfaces) do not refuse it",
      body: pn({ exchangeLinkName: true, autoCreateVlanSubinterfaces: false, vlanInterfaces: ['eth1.10'] }),
      check: (o) => expect((o as ProviderNetworkObj).spec).toEqual({ defaultInterface: 'eth1', customInterfaces: [], excludeNodes: [] }),
    },
  ];
  for (const row of rows) it(row.desc, () => runRow('ProviderNetwork', row));
});

describe('Vlan refusals', () => {
  const V = 'Vlan v1';
  const rows: Row[] = [
    { desc: 'id 4095, the top of the range', body: vlan({ id: 4095, provider: 'net1' }), check: (o) => expect((o as VlanObj).spec.id).toBe(4095) },
    { desc: 'id absent: 0 (untagged), as Kube-OVN reads it', body: vlan({ provider: 'net1' }), check: (o) => expect((o as VlanObj).spec).toEqual({ id: 0, provider: 'net1' }) },
    {
      desc: 'id 4096',
      body: vlan({ id: 4096, provider: 'net1' }),
      error: `${V}: spec.id: Invalid value: 4096: must be between 0 and 4095, inclusive (0: untagged)`,
    },
    {
      desc: 'id -1',
      body: vlan({ id: -1, provider: 'net1' }),
      error: `${V}: spec.id: Invalid value: -1: must be between 0 and 4095, inclusive (0: untagged)`,
    },
    { desc: 'id 10.5', body: vlan({ id: 10.5, provider: 'net1' }), error: `${V}: spec.id: Invalid value: 10.5: must be an integer` },
    { desc: 'id as a string', body: vlan({ id: '100', provider: 'net1' }), error: `${V}: spec.id: Invalid value: "100": must be an integer` },
    {
      desc: 'provider missing',
      body: vlan({ id: 100 }),
      error:
        `${V}: spec.provider: Required value: the name of the ProviderNetwork carrying this VLAN ` +
        "(Kube-OVN's controller fills in its default provider network; ovnode has no default: name it)",
    },
    {
      desc: 'provider longer than a ProviderNetwork name can be',
      body: vlan({ id: 100, provider: 'physnet-rack1' }),
      error: `${V}: spec.provider: Invalid value: "physnet-rack1": is not a ProviderNetwork name: those have at most 12 characters`,
    },
    {
      desc: 'provider not a DNS label',
      body: vlan({ id: 100, provider: 'Net_1' }),
      error: `${V}: spec.provider: Invalid value: "Net_1": is not a ProviderNetwork name: ${LABEL}`,
    },
    { desc: 'provider not a string', body: vlan({ id: 100, provider: 7 }), error: `${V}: spec.provider: Invalid value: 7: must be a string (quote it in YAML)` },
    {
      desc: "Kube-OVN before v1.9's vlanId instead of id (read as 0 it would untag the subnet)",
      body: vlan({ vlanId: 10, provider: 'net1' }),
      error: `${V}: spec.id: Required value: spec.vlanId is the name Kube-OVN before v1.9 used: write id: 10`,
    },
    {
      desc: 'vlanId contradicting id',
      body: vlan({ id: 10, vlanId: 20, provider: 'net1' }),
      error: `${V}: spec.vlanId: Invalid value: 20: contradicts spec.id (10); remove vlanId`,
    },
    { desc: 'vlanId equal to id is harmless', body: vlan({ id: 10, vlanId: 10, provider: 'net1' }), check: (o) => expect((o as VlanObj).spec).toEqual({ id: 10, provider: 'net1' }) },
    {
      desc: 'a bad name',
      body: { metadata: { name: 'VLAN 10' }, spec: { id: 10, provider: 'net1' } },
      error: `Vlan VLAN 10: metadata.name: Invalid value: "VLAN 10": ${SUBDOMAIN}`,
    },
  ];
  for (const row of rows) it(row.desc, () => runRow('Vlan', row));
});

describe('Subnet vlan and logicalGateway', () => {
  const S = 'Subnet sn';
  const rows: Row[] = [
    {
      desc: 'vlan and logicalGateway are read',
      body: subnet({ vlan: 'vlan100', logicalGateway: true }),
      check: (o) => expect((o as SubnetObj).spec).toMatchObject({ vlan: 'vlan100', logicalGateway: true }),
    },
    {
      desc: 'vlan not a name',
      body: subnet({ vlan: 'Vlan_100' }),
      error: `${S}: spec.vlan: Invalid value: "Vlan_100": is not a Vlan name: ${SUBDOMAIN}`,
    },
    { desc: 'vlan not a string', body: subnet({ vlan: 100 }), error: `${S}: spec.vlan: Invalid value: 100: must be a string (quote it in YAML)` },
    {
      desc: 'logicalGateway as a string',
      body: subnet({ vlan: 'v1', logicalGateway: 'true' }),
      error: `${S}: spec.logicalGateway: Invalid value: "true": must be true or false`,
    },
    {
      desc: 'logicalGateway with u2oInterconnection (Kube-OVN refuses both)',
      body: subnet({ vlan: 'v1', logicalGateway: true, u2oInterconnection: true }),
      error: `${S}: spec.logicalGateway: Forbidden: logicalGateway and u2oInterconnection can't both be true`,
    },
  ];
  for (const row of rows) it(row.desc, () => runRow('Subnet', row));
});

const BAD_VLAN = 'apiVersion: kubeovn.io/v1\nkind: Vlan\nmetadata: {name: vlan5000}\nspec: {id: 5000, provider: physnet1}\n';

describe('ManifestStore (embedded mode) serves them', () => {
  let dir: string;
  let store: ManifestStore | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ovnode-underlay-'));
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("lists ProviderNetworks and Vlans by name, gets them, reports a bad one, follows an edit", async () => {
    await writeFile(join(dir, '10-provider.yaml'), PROVIDER_NETWORK);
    await writeFile(join(dir, '20-vlans.yaml'), VLANS);
    await writeFile(join(dir, '30-subnets.yaml'), SUBNETS);
    await writeFile(join(dir, '40-bad.yaml'), BAD_VLAN);
    store = new ManifestStore(dir, undefined, { debounceMs: 5 });
    await store.load();
    expect(store.list('ProviderNetwork').map((p) => p.metadata.name)).toEqual(['physnet1']);
    expect(store.list('Vlan').map((v) => `${v.metadata.name}:${v.spec.id}@${v.spec.provider}`)).toEqual(['native:0@physnet1', 'vlan100:100@physnet1']);
    expect(store.get('ProviderNetwork', 'physnet1')?.spec.defaultInterface).toBe('eth1');
    // A subnet's Vlan, and the Vlan's provider network, by name.
    const rackA = store.get('Subnet', 'rack-a');
    const v = store.get('Vlan', rackA?.spec.vlan ?? '');
    expect(v?.spec.id).toBe(100);
    expect(store.get('ProviderNetwork', v?.spec.provider ?? '')?.metadata.name).toBe('physnet1');
    expect(store.rejected()).toEqual([
      {
        source: '40-bad.yaml', kind: 'Vlan', name: 'vlan5000',
        message: 'Vlan vlan5000: spec.id: Invalid value: 5000: must be between 0 and 4095, inclusive (0: untagged)',
      },
    ]);

    const changed = new Promise<void>((resolve) => {
      const off = store?.onChange(() => {
        off?.();
        resolve();
      });
    });
    await writeFile(join(dir, '40-bad.yaml'), BAD_VLAN.replace('id: 5000', 'id: 200'));
    await changed;
    expect(store.list('Vlan').map((x) => x.metadata.name)).toEqual(['native', 'vlan100', 'vlan5000']);
    expect(store.get('Vlan', 'vlan5000')?.spec.id).toBe(200);
    expect(store.rejected()).toEqual([]);
  });
});

describe('KubeStore (cluster mode) watches them', () => {
  const log = pino({ level: 'silent' });
  let server: FakeApiServer;
  let api: HttpKubeApi;
  let store: KubeStore;
  beforeEach(async () => {
    server = await FakeApiServer.start({
      resources: [
        ...Object.values(FAKE_RESOURCES),
        { prefix: '/apis/kubeovn.io/v1', plural: 'security-groups', kind: 'SecurityGroup', namespaced: false },
        { prefix: '/apis/kubeovn.io/v1', plural: 'vips', kind: 'Vip', namespaced: false },
        { prefix: '/apis/kubeovn.io/v1', plural: 'provider-networks', kind: 'ProviderNetwork', namespaced: false, status: true },
        { prefix: '/apis/kubeovn.io/v1', plural: 'vlans', kind: 'Vlan', namespaced: false, status: true },
      ],
    });
    api = new HttpKubeApi(staticConnection(server.url), { requestTimeoutMs: 5_000 });
    server.create('provider-networks', {
      metadata: { name: 'physnet1' },
      spec: { defaultInterface: 'eth1', customInterfaces: [{ interface: 'ens4f0', nodes: ['worker-b'] }] },
      status: { ready: true, readyNodes: ['worker-a'] },
    });
    server.create('vlans', { metadata: { name: 'vlan100' }, spec: { id: 100, provider: 'physnet1' } });
    server.create('vlans', { metadata: { name: 'vlan5000' }, spec: { id: 5000, provider: 'physnet1' } });
    store = new KubeStore({ api, log });
    await store.start();
  });
  afterEach(async () => {
    await store.close();
    api.close();
    await server.close();
  });

  it('holds the valid ones, typed, and reports the refused one', async () => {
    expect(store.list('ProviderNetwork')).toEqual([
      {
        kind: 'ProviderNetwork',
        metadata: { name: 'physnet1', namespace: '', labels: {}, annotations: {}, uid: server.get('provider-networks', undefined, 'physnet1')?.metadata.uid },
        spec: { defaultInterface: 'eth1', customInterfaces: [{ interface: 'ens4f0', nodes: ['worker-b'] }], excludeNodes: [] },
      },
    ]);
    expect(store.list('Vlan').map((v) => [v.metadata.name, v.spec])).toEqual([['vlan100', { id: 100, provider: 'physnet1' }]]);
    expect(store.rejected().map((r) => [r.kind, r.name, r.message])).toEqual([
      ['Vlan', 'vlan5000', 'Vlan vlan5000: spec.id: Invalid value: 5000: must be between 0 and 4095, inclusive (0: untagged)'],
    ]);

    // A new one arrives through the watch.
    const arrived = new Promise<void>((resolve) => {
      const off = store.onChange(() => {
        if (store.get('Vlan', 'vlan200')) {
          off();
          resolve();
        }
      });
    });
    server.create('vlans', { metadata: { name: 'vlan200' }, spec: { id: 200, provider: 'physnet2' } });
    await arrived;
    expect(store.list('Vlan').map((v) => v.metadata.name)).toEqual(['vlan100', 'vlan200']);
  });
});
