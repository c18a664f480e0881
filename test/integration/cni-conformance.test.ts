// CNI conformance of ovnode through libcni's own client (cnitool): ADD/CHECK/DEL, result
// versions, chaining with the reference tuning plugin, static IP/MAC, K8S CNI_ARGS, and what
// the OVN datapath actually does (pod-to-pod ping and TCP, node-to-pod, port security).
//
// One ovnoded node for the whole file (own netns, own embedded OVS/OVN, subnet 10.16.0.0/16,
// gateway 10.16.0.1). Every pod is a namespace created here; traffic only flows between them
// and the node namespace. Everything is removed in afterAll, even when a test fails.

import { readdirSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cnitool, NetConfDir, type ExecResult } from './harness/cni';
import { hostVeths, lsps, podOvsPorts } from './harness/inspect';
import { NetnsSet } from './harness/netns';
import { TestNode } from './harness/node';
import { requireArtefacts } from './harness/paths';
import { flushNeighbours, linkState, pingWith, tcpTransfer, unreachable } from './harness/traffic';

const GATEWAY = '10.16.0.1';
const SUBNET_RE = /^10\.16\.\d{1,3}\.\d{1,3}\/16$/;
const RESULT_CACHE = '/var/lib/cni/results';

interface CniIp { address: string; gateway?: string; interface?: number; version?: string }
interface CniInterface { name: string; mac?: string; sandbox?: string }
interface CniResult { cniVersion: string; interfaces?: CniInterface[]; ips?: CniIp[]; routes?: Array<{ dst: string; gw?: string }> }

interface Pod {
  ns: string;
  path: string;
  conf: NetConfDir;
  args?: string;
  result: CniResult;
  /** First IPv4 address with its prefix, e.g. "10.16.0.2/16". */
  cidr: string;
  /** The same without the prefix. */
  ip: string;
}

const netns = new NetnsSet();
let node: TestNode | undefined;
/** Every NetConfDir of this file, for cleanup (and for the result cache files of its network). */
const confs: NetConfDir[] = [];
/** Pods that may still be attached: DELeted (best effort) in afterAll. */
const attached = new Set<Pod>();

function newConf(tag: string, opts: Omit<Parameters<NetConfDir['write']>[0], 'socket'> = {}): NetConfDir {
  const c = new NetConfDir(`${netns.prefix}-${tag}`);
  c.write({ socket: theNode().socket, ...opts });
  confs.push(c);
  return c;
}

function theNode(): TestNode {
  if (!node) throw new Error('node not started');
  return node;
}

function describeRun(r: ExecResult): string {
  return `status ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

function parseResult(r: ExecResult): CniResult {
  expect(r.status, describeRun(r)).toBe(0);
  let parsed: unknown;
  expect(() => { parsed = JSON.parse(r.stdout); }, `ADD result is not JSON: ${r.stdout}`).not.toThrow();
  expect(typeof parsed).toBe('object');
  return parsed as CniResult;
}

/** Creates a pod namespace and ADDs it through cnitool; fails the test unless ADD succeeds. */
function addPod(suffix: string, conf: NetConfDir, extra: { args?: string; capArgs?: Record<string, unknown> } = {}): Pod {
  const ns = netns.create(suffix);
  const path = netns.path(ns);
  const r = cnitool({ command: 'add', conf, netnsPath: path, args: extra.args, capArgs: extra.capArgs });
  const result = parseResult(r);
  const ip4 = (result.ips ?? []).find((i) => !i.address.includes(':'));
  expect(ip4, `no IPv4 address in ${r.stdout}`).toBeDefined();
  const cidr = ip4!.address;
  const pod: Pod = { ns, path, conf, args: extra.args, result, cidr, ip: cidr.split('/')[0]! };
  attached.add(pod);
  return pod;
}

function delPod(pod: Pod, args = pod.args): ExecResult {
  const r = cnitool({ command: 'del', conf: pod.conf, netnsPath: pod.path, args });
  if (r.status === 0) attached.delete(pod);
  return r;
}

/** DEL through cnitool (must succeed) and remove the pod's namespace. */
function removePod(pod: Pod): void {
  const r = delPod(pod);
  expect(r.status, describeRun(r)).toBe(0);
  netns.remove(pod.ns);
}

interface Footprint { veths: string[]; ports: string[]; lsps: Array<{ name: string; addresses: string }> }

function footprint(): Footprint {
  const n = theNode();
  return { veths: hostVeths(n).sort(), ports: podOvsPorts(n).sort(), lsps: lsps(n).sort((a, b) => a.name.localeCompare(b.name)) };
}

const newIn = <T>(after: T[], before: T[], key: (t: T) => string = String): T[] => {
  const old = new Set(before.map(key));
  return after.filter((t) => !old.has(key(t)));
};

/** Whether any LSP of the default switch holds `ip` in its addresses. */
function ipInUse(ip: string): boolean {
  return lsps(theNode()).some((l) => l.addresses.split(/[\s,]+/).includes(ip));
}

beforeAll(async () => {
  requireArtefacts();
  node = new TestNode({ netns, name: 'n1' });
  await node.start();
});

afterAll(async () => {
  const errors: unknown[] = [];
  const attempt = async (f: () => unknown): Promise<void> => { try { await f(); } catch (e) { errors.push(e); } };
  for (const pod of [...attached]) await attempt(() => { cnitool({ command: 'del', conf: pod.conf, netnsPath: pod.path, args: pod.args }); });
  if (node) await attempt(() => node!.destroy());
  await attempt(() => netns.removeAll());
  for (const c of confs) {
    await attempt(() => {
      // libcni's result cache of our own networks only (ADDs whose DEL never ran).
      for (const f of readdirSync(RESULT_CACHE)) if (f.startsWith(`${c.netName}-`)) rmSync(`${RESULT_CACHE}/${f}`, { force: true });
    });
    await attempt(() => c.cleanup());
  }
  if (errors.length > 0) console.error('cni-conformance cleanup errors:', errors);
});

describe('ovnode through cnitool (libcni 1.1.2)', () => {
  it('ADDs two pods: results parse, pods ping each other and the gateway, and the node netns reaches a pod', () => {
    const conf = newConf('basic');
    const a = addPod('a1', conf);
    const b = addPod('b1', conf);

    for (const pod of [a, b]) {
      expect(pod.result.cniVersion).toBe('1.0.0');
      expect(pod.cidr).toMatch(SUBNET_RE);
      const eth0 = (pod.result.interfaces ?? []).find((i) => i.name === 'eth0' && i.sandbox === pod.path);
      expect(eth0, `no eth0 interface in the pod sandbox: ${JSON.stringify(pod.result)}`).toBeDefined();
      expect(eth0!.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      const ip = pod.result.ips!.find((i) => i.address === pod.cidr)!;
      expect(ip.gateway).toBe(GATEWAY);
      // The result tells the truth about the netns.
      const link = linkState(netns, pod.ns);
      expect(link?.addrs).toContain(pod.cidr);
      expect(link?.mac).toBe(eth0!.mac);
      const routes = netns.exec(pod.ns, ['ip', '-4', 'route', 'show', 'default']).stdout;
      expect(routes).toContain(`via ${GATEWAY}`);
    }
    expect(a.ip).not.toBe(b.ip);

    expect(netns.ping(a.ns, b.ip), 'A -> B').toBe(true);
    expect(netns.ping(b.ns, a.ip), 'B -> A').toBe(true);
    expect(netns.ping(a.ns, GATEWAY), 'A -> gateway').toBe(true);
    expect(netns.ping(b.ns, GATEWAY), 'B -> gateway').toBe(true);
    expect(netns.ping(theNode().ns, a.ip), 'node netns -> A').toBe(true);
    expect(netns.ping(theNode().ns, b.ip), 'node netns -> B').toBe(true);

    removePod(a);
    removePod(b);
  });

  it('carries TCP between two pods: 1 MB through nc arrives intact in both directions', async () => {
    const conf = newConf('tcp');
    const a = addPod('a2', conf);
    const b = addPod('b2', conf);
    expect(netns.ping(a.ns, b.ip), 'positive control: A pings B').toBe(true);

    for (const [from, to] of [[a, b], [b, a]] as const) {
      const t = await tcpTransfer(netns, { from: from.ns, to: to.ns, toIp: to.ip, bytes: 1024 * 1024 });
      const what = `${from.ip} -> ${to.ip}: ${JSON.stringify(t)}`;
      expect(t.clientStatus, what).toBe(0);
      expect(t.serverStatus, what).toBe(0);
      expect(t.receivedBytes, what).toBe(t.sentBytes);
      expect(t.receivedSha256, what).toBe(t.sentSha256);
    }

    removePod(a);
    removePod(b);
  });

  it('CHECK passes after ADD (1.0.0 list) and fails once the pod address was flushed inside the netns', () => {
    const conf = newConf('check');
    const good = addPod('chk-ok', conf);
    const ok = cnitool({ command: 'check', conf, netnsPath: good.path });
    expect(ok.status, describeRun(ok)).toBe(0);

    const broken = addPod('chk-bad', conf);
    const before = cnitool({ command: 'check', conf, netnsPath: broken.path });
    expect(before.status, `positive control: ${describeRun(before)}`).toBe(0);
    expect(netns.exec(broken.ns, ['ip', 'addr', 'flush', 'dev', 'eth0']).status).toBe(0);
    expect(linkState(netns, broken.ns)?.addrs).toEqual([]);
    const bad = cnitool({ command: 'check', conf, netnsPath: broken.path });
    expect(bad.status, describeRun(bad)).not.toBe(0);
    // The failure names what is missing (e.g. "eth0 lacks address 10.16.0.3/16").
    expect(bad.stderr, 'CHECK failure must explain itself').toContain(broken.cidr);

    // The untouched pod still checks fine.
    const okAgain = cnitool({ command: 'check', conf, netnsPath: good.path });
    expect(okAgain.status, describeRun(okAgain)).toBe(0);

    removePod(good);
    removePod(broken);
  });

  it('DEL removes veth, OVS port and LSP and frees the IP; a second DEL and a DEL after the netns is gone succeed', () => {
    const conf = newConf('del');
    const before = footprint();
    const pod = addPod('del1', conf);
    const during = footprint();
    const veth = newIn(during.veths, before.veths);
    const port = newIn(during.ports, before.ports);
    const lsp = newIn(during.lsps, before.lsps, (l) => l.name);
    expect(veth, 'one new host veth').toHaveLength(1);
    expect(port, 'one new pod OVS port').toHaveLength(1);
    expect(lsp, 'one new LSP').toHaveLength(1);
    expect(lsp[0]!.addresses.split(/[\s,]+/)).toContain(pod.ip);

    const del = delPod(pod);
    expect(del.status, describeRun(del)).toBe(0);
    const after = footprint();
    expect(after.veths).not.toContain(veth[0]);
    expect(after.ports).not.toContain(port[0]);
    expect(after.lsps.map((l) => l.name)).not.toContain(lsp[0]!.name);
    expect(after).toEqual(before);
    expect(linkState(netns, pod.ns), 'eth0 gone from the pod netns').toBeUndefined();
    expect(ipInUse(pod.ip)).toBe(false);

    // Second DEL of the same attachment: idempotent.
    const del2 = delPod(pod);
    expect(del2.status, `second DEL: ${describeRun(del2)}`).toBe(0);
    expect(footprint()).toEqual(before);

    // The freed IP can be taken again, exactly, as a static IP.
    const reuse = addPod('del2', conf, { capArgs: { ips: [pod.cidr] } });
    expect(reuse.cidr).toBe(pod.cidr);
    expect(linkState(netns, reuse.ns)?.addrs).toContain(pod.cidr);
    expect(netns.ping(theNode().ns, reuse.ip), 'node reaches the re-used IP').toBe(true);
    netns.remove(pod.ns);

    // DEL after the netns was deleted (the runtime lost the sandbox): succeeds and cleans up.
    netns.remove(reuse.ns);
    const del3 = delPod(reuse);
    expect(del3.status, `DEL without netns: ${describeRun(del3)}`).toBe(0);
    expect(footprint()).toEqual(before);
    expect(ipInUse(reuse.ip)).toBe(false);
    // ... and the IP is free again.
    const again = addPod('del3', conf, { capArgs: { ips: [pod.cidr] } });
    expect(again.cidr).toBe(pod.cidr);
    removePod(again);
    expect(footprint()).toEqual(before);
  });

  it('static IP and MAC: honoured inside the subnet; outside the subnet or already taken fails cleanly without leftovers', () => {
    const conf = newConf('static');
    const staticCidr = '10.16.7.7/16';
    // Not the MAC the daemon would derive from the IP (0a:58:0a:10:07:07), so it proves the request was honoured.
    const staticMac = '0a:58:12:34:56:78';
    expect(ipInUse('10.16.7.7'), 'precondition: 10.16.7.7 is free').toBe(false);

    const pod = addPod('st1', conf, { capArgs: { ips: [staticCidr], mac: staticMac } });
    expect(pod.cidr).toBe(staticCidr);
    const eth0 = (pod.result.interfaces ?? []).find((i) => i.sandbox === pod.path);
    expect(eth0?.mac).toBe(staticMac);
    const link = linkState(netns, pod.ns);
    expect(link?.addrs).toEqual([staticCidr]);
    expect(link?.mac).toBe(staticMac);
    const lsp = lsps(theNode()).find((l) => l.addresses.split(/[\s,]+/).includes('10.16.7.7'));
    expect(lsp?.addresses).toContain(staticMac);
    expect(netns.ping(pod.ns, GATEWAY), 'static pod reaches the gateway').toBe(true);
    expect(netns.ping(theNode().ns, '10.16.7.7'), 'node reaches the static pod').toBe(true);

    const before = footprint();

    const outsideNs = netns.create('st-out');
    const outside = cnitool({ command: 'add', conf, netnsPath: netns.path(outsideNs), capArgs: { ips: ['10.17.0.5/16'] } });
    expect(outside.status, describeRun(outside)).not.toBe(0);
    expect(outside.stderr).toContain('outside');
    expect(outside.stderr).toContain('10.17.0.5');

    const takenNs = netns.create('st-taken');
    const taken = cnitool({ command: 'add', conf, netnsPath: netns.path(takenNs), capArgs: { ips: [staticCidr] } });
    expect(taken.status, describeRun(taken)).not.toBe(0);
    expect(taken.stderr).toContain('already in use');

    // Nothing left behind by the failed ADDs, and the namespaces have no eth0.
    expect(footprint()).toEqual(before);
    expect(linkState(netns, outsideNs)).toBeUndefined();
    expect(linkState(netns, takenNs)).toBeUndefined();
    // The owner of the address is untouched.
    expect(linkState(netns, pod.ns)?.addrs).toEqual([staticCidr]);
    expect(netns.ping(theNode().ns, '10.16.7.7'), 'static pod still reachable').toBe(true);

    // A runtime DELs after a failed ADD: that must succeed and must not hurt the real owner.
    for (const ns of [outsideNs, takenNs]) {
      const d = cnitool({ command: 'del', conf, netnsPath: netns.path(ns) });
      expect(d.status, describeRun(d)).toBe(0);
      netns.remove(ns);
    }
    expect(footprint()).toEqual(before);
    expect(netns.ping(theNode().ns, '10.16.7.7'), 'static pod reachable after DEL of the failed attempts').toBe(true);

    removePod(pod);
  });

  for (const version of ['0.3.1', '0.4.0', '1.0.0']) {
    it(`answers a cniVersion ${version} conflist with a ${version} result that libcni parses; DEL works`, () => {
      const conf = newConf(`v${version.replace(/\./g, '')}`, { cniVersion: version });
      const before = footprint();
      const pod = addPod(`v${version.replace(/\./g, '')}`, conf);
      expect(pod.result.cniVersion).toBe(version);
      expect(pod.cidr).toMatch(SUBNET_RE);
      for (const ip of pod.result.ips ?? []) {
        if (version === '1.0.0') expect(ip.version).toBeUndefined();
        else expect(ip.version).toBe('4');
      }
      expect(linkState(netns, pod.ns)?.addrs).toContain(pod.cidr);
      expect(netns.ping(pod.ns, GATEWAY)).toBe(true);
      if (version !== '0.3.1') {
        const chk = cnitool({ command: 'check', conf, netnsPath: pod.path });
        expect(chk.status, describeRun(chk)).toBe(0);
      }
      removePod(pod);
      expect(footprint()).toEqual(before);
    });
  }

  it('chains the reference tuning plugin: it consumes our prevResult (sysctl and MTU applied, IPs kept); CHECK and DEL work', () => {
    const conf = newConf('tuning', {
      chain: [{ type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.rp_filter': '2' }, mtu: 1300 }],
    });
    const before = footprint();
    const pod = addPod('tun1', conf);
    expect(pod.result.cniVersion).toBe('1.0.0');
    expect(pod.cidr).toMatch(SUBNET_RE);
    expect((pod.result.interfaces ?? []).some((i) => i.name === 'eth0' && i.sandbox === pod.path)).toBe(true);
    expect(pod.result.ips?.[0]?.gateway).toBe(GATEWAY);
    // tuning acted on the interface named in our result, inside the pod netns.
    const sysctl = netns.exec(pod.ns, ['sysctl', '-n', 'net.ipv4.conf.eth0.rp_filter']);
    expect(sysctl.stdout.trim()).toBe('2');
    const link = linkState(netns, pod.ns);
    expect(link?.mtu).toBe(1300);
    expect(link?.addrs).toContain(pod.cidr);
    expect(netns.ping(pod.ns, GATEWAY), 'pod still reaches the gateway after tuning').toBe(true);

    const chk = cnitool({ command: 'check', conf, netnsPath: pod.path });
    expect(chk.status, describeRun(chk)).toBe(0);

    removePod(pod);
    expect(footprint()).toEqual(before);
  });

  it('enforces port security on the datapath: a spoofed MAC or source IP cannot reach another pod', () => {
    const conf = newConf('portsec');
    const a = addPod('ps-a', conf);
    const b = addPod('ps-b', conf);
    const origMac = linkState(netns, a.ns)!.mac;
    const spoofIp = '10.16.0.200';
    const spoofIp2 = '10.16.0.201';
    expect(ipInUse(spoofIp) || ipInUse(spoofIp2), 'precondition: spoof IPs unused').toBe(false);

    expect(netns.ping(a.ns, b.ip), 'positive control: A reaches B').toBe(true);

    // 1. Foreign MAC on A's eth0.
    expect(netns.exec(a.ns, ['ip', 'link', 'set', 'eth0', 'address', '0a:58:de:ad:be:ef']).status).toBe(0);
    expect(linkState(netns, a.ns)?.mac).toBe('0a:58:de:ad:be:ef');
    flushNeighbours(netns, a.ns, b.ns);
    expect(unreachable(netns, a.ns, b.ip), 'A with a spoofed MAC must not reach B').toBe(true);

    // Restore: reachable again (the failure above was port security, not a broken pod).
    expect(netns.exec(a.ns, ['ip', 'link', 'set', 'eth0', 'address', origMac]).status).toBe(0);
    flushNeighbours(netns, a.ns, b.ns);
    expect(netns.ping(a.ns, b.ip), 'A reaches B again with its own MAC').toBe(true);

    // 2. An extra (unassigned) address: pinging from it fails, from the real one works.
    expect(netns.exec(a.ns, ['ip', 'addr', 'add', `${spoofIp2}/16`, 'dev', 'eth0']).status).toBe(0);
    flushNeighbours(netns, a.ns, b.ns);
    expect(pingWith(netns, a.ns, b.ip, ['-I', a.ip]), 'A reaches B from its own IP').toBe(true);
    flushNeighbours(netns, b.ns);
    expect(unreachable(netns, a.ns, b.ip, 2, ['-I', spoofIp2]), 'A must not reach B from an unassigned source IP').toBe(true);
    expect(netns.exec(a.ns, ['ip', 'addr', 'del', `${spoofIp2}/16`, 'dev', 'eth0']).status).toBe(0);

    // 3. A's IP replaced by an unassigned one (default route kept).
    expect(netns.exec(a.ns, ['ip', 'addr', 'del', a.cidr, 'dev', 'eth0']).status).toBe(0);
    expect(netns.exec(a.ns, ['ip', 'addr', 'add', `${spoofIp}/16`, 'dev', 'eth0']).status).toBe(0);
    netns.exec(a.ns, ['ip', 'route', 'replace', 'default', 'via', GATEWAY, 'dev', 'eth0']);
    expect(netns.exec(a.ns, ['ip', '-4', 'route', 'show', 'default']).stdout).toContain(`via ${GATEWAY}`);
    flushNeighbours(netns, a.ns, b.ns);
    expect(unreachable(netns, a.ns, b.ip), 'A with a changed IP must not reach B').toBe(true);
    expect(unreachable(netns, a.ns, GATEWAY), 'A with a changed IP must not reach the gateway').toBe(true);

    // Restore and prove A works again.
    expect(netns.exec(a.ns, ['ip', 'addr', 'del', `${spoofIp}/16`, 'dev', 'eth0']).status).toBe(0);
    expect(netns.exec(a.ns, ['ip', 'addr', 'add', a.cidr, 'dev', 'eth0']).status).toBe(0);
    netns.exec(a.ns, ['ip', 'route', 'replace', 'default', 'via', GATEWAY, 'dev', 'eth0']);
    flushNeighbours(netns, a.ns, b.ns);
    expect(netns.ping(a.ns, b.ip), 'A reaches B again once restored').toBe(true);

    removePod(a);
    removePod(b);
  });

  it('names the LSP "<pod>.<namespace>" from the K8S CNI_ARGS and removes it on DEL', () => {
    const conf = newConf('k8s');
    const args = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod1;K8S_POD_UID=abc;K8S_POD_INFRA_CONTAINER_ID=xyz';
    const before = footprint();
    const pod = addPod('k8s1', conf, { args });
    const lsp = lsps(theNode()).find((l) => l.name === 'pod1.ns1');
    expect(lsp, `LSPs: ${JSON.stringify(lsps(theNode()))}`).toBeDefined();
    expect(lsp!.addresses.split(/[\s,]+/)).toContain(pod.ip);
    expect(netns.ping(theNode().ns, pod.ip)).toBe(true);

    removePod(pod);
    expect(lsps(theNode()).map((l) => l.name)).not.toContain('pod1.ns1');
    expect(footprint()).toEqual(before);
  });
});
