// A node for handler tests, built from fakes the way daemon/node/start.ts builds a real one: two
// FakeOvsdbServer instances with the real Open_vSwitch and OVN_Northbound schemas, real
// OvsdbClient sessions with the daemon's monitors, the chassis / br-int / topology written by the
// daemon's own functions, FakeNative for namespaces, FakePlumber for veths, the real subnet
// registry and a real PolicyEngine (empty MemoryStore) that only records scheduleSoon. A fake
// ovn-controller marks every bound Interface ovn-installed as soon as the daemon's monitor sees it,
// unless told to hang for that port.

import pino, { type Logger } from 'pino';
import { DeadlineError } from '../../../../common/errors';
import type { CniResult } from '../../../../common/cni-spec';
import { PROTOCOL_VERSION } from '../../../../common/protocol';
import { cmdAdd } from '../../../../daemon/cmd/add';
import { cmdCheck } from '../../../../daemon/cmd/check';
import { cmdDel } from '../../../../daemon/cmd/del';
import { cmdGc } from '../../../../daemon/cmd/gc';
import type { Deps, RequestContext } from '../../../../daemon/context';
import { hostIfName, lspNameFor } from '../../../../daemon/intent/intent';
import { portHolder, type SubnetPool } from '../../../../daemon/ipam/pool';
import { SubnetRegistry } from '../../../../daemon/ipam/registry';
import { macForIp } from '../../../../daemon/ipam/mac';
import { formatIp, parseCidr } from '../../../../daemon/ipam/cidr';
import { Metrics } from '../../../../daemon/metrics';
import { NB_MONITOR, OVS_MONITOR } from '../../../../daemon/node/monitors';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import { ensureTopology, type SwitchSpec } from '../../../../daemon/ovn/topology';
import { configureChassis, ensureBridge } from '../../../../daemon/ovs/bridge';
import { NB, OVS } from '../../../../daemon/ovs/schema';
import { OvsdbClient } from '../../../../daemon/ovsdb/client';
import { asArray, asMap, ovsMap, uuid } from '../../../../daemon/ovsdb/values';
import { PolicyEngine } from '../../../../daemon/policy/engine';
import { decodeRequest, type CniRequest } from '../../../../daemon/server/request';
import { FakeNative } from '../../../../native/fake';
import { FakeOvsdbServer, loadSchema, NB_SCHEMA_PATH, OVS_SCHEMA_PATH } from '../../../fakes/fake-ovsdb-server';
import { FakePlumber } from '../../../fakes/fake-plumber';

export const POD_SWITCH = 'ovn-default';
export const JOIN_SWITCH = 'join';
export const BRIDGE = 'br-int';
export const NETWORK = 'ovn';

const OVS_SCHEMA = loadSchema(OVS_SCHEMA_PATH);
const NB_SCHEMA = loadSchema(NB_SCHEMA_PATH);

export interface LogRecord { level: number; msg: string; [key: string]: unknown }

/** What one CNI call is about; everything but the sandbox has a default. */
export interface Call {
  sandbox: string;
  /** K8S_POD_NAME; with it the LSP is `<pod>.<namespace>` (one name for every sandbox of the pod). */
  pod?: string;
  namespace?: string;
  /** K8S_POD_UID. */
  uid?: string;
  ifName?: string;
  /** Default `/var/run/netns/<sandbox>`, registered with FakeNative by add() when not given. */
  netns?: string;
  /** runtimeConfig "ips" (static addresses). */
  ips?: string[];
  /** Netconf "name". */
  network?: string;
  cniVersion?: string;
  prevResult?: unknown;
  signal?: AbortSignal;
}

/** ovn-controller, as far as ADD sees it: it marks bound Interfaces ovn-installed. */
export class FakeOvnController {
  /** Interface names it never marks (the wait for them only ends with the deadline). */
  readonly hang = new Set<string>();
  readonly installed: string[] = [];

  constructor(private readonly server: FakeOvsdbServer, client: OvsdbClient) {
    client.on('change', (table, id, _old, row) => {
      if (table !== OVS.iface || !row) return;
      const ids = asMap(row.external_ids);
      const name = row.name as string;
      if (!ids['iface-id'] || ids['ovn-installed'] === 'true' || this.hang.has(name)) return;
      this.server.apply([{
        op: 'mutate', table: OVS.iface, where: [['_uuid', '==', uuid(id)]],
        mutations: [['external_ids', 'insert', ovsMap({ 'ovn-installed': 'true' })]],
      }]);
      this.installed.push(name);
    });
  }
}

/** The real engine (switchFor, admissionOps) minus its background runs: scheduleSoon is recorded. */
export class RecordingPolicy extends PolicyEngine {
  readonly scheduled: string[] = [];
  override scheduleSoon(reason: string): void {
    this.scheduled.push(reason);
  }
}

/** Everything a test compares to prove that "nothing is left": both databases, veths, IPAM. */
export interface NodeState {
  ovs: Record<string, unknown[]>;
  nb: Record<string, unknown[]>;
  veths: string[];
  /** `ip=holder`, every pool, sorted. */
  held: string[];
}

export interface NodeOptions {
  /** Pod subnet CIDRs (one per family); default 10.16.0.0/16. */
  cidrs?: string[];
  /**
   * OvsdbClient replyTimeoutMs: how soon a dropped reply becomes an unknown outcome. Default 10 s
   * (no test waits for it); tests of dropped replies set a short one.
   */
  replyTimeoutMs?: number;
}

export class FakeNode {
  readonly logs: LogRecord[] = [];
  readonly log: Logger;
  readonly native = new FakeNative();
  readonly plumber = new FakePlumber(this.native);
  readonly metrics = new Metrics();
  readonly store = new MemoryStore();
  readonly subnets = new SubnetRegistry(POD_SWITCH);
  readonly ovs: OvsdbClient;
  readonly nb: OvsdbClient;
  readonly controller: FakeOvnController;
  policy!: RecordingPolicy;
  deps!: Deps;
  /** Keys withLock was called with by GC. */
  readonly locked: string[] = [];

  private constructor(readonly ovsServer: FakeOvsdbServer, readonly nbServer: FakeOvsdbServer, private readonly opts: NodeOptions) {
    this.log = pino({ level: 'debug' }, { write: (line: string) => this.record(JSON.parse(line) as LogRecord) });
    const replyTimeoutMs = opts.replyTimeoutMs ?? 10_000;
    this.ovs = new OvsdbClient({ socketPath: ovsServer.socketPath, database: 'Open_vSwitch', reconnectDelayMs: 5, replyTimeoutMs, logger: this.log });
    this.nb = new OvsdbClient({ socketPath: nbServer.socketPath, database: 'OVN_Northbound', reconnectDelayMs: 5, replyTimeoutMs, logger: this.log });
    this.controller = new FakeOvnController(ovsServer, this.ovs);
  }

  static async start(opts: NodeOptions = {}): Promise<FakeNode> {
    const [ovsServer, nbServer] = await Promise.all([
      FakeOvsdbServer.start({ database: 'Open_vSwitch', schema: OVS_SCHEMA }),
      FakeOvsdbServer.start({ database: 'OVN_Northbound', schema: NB_SCHEMA }),
    ]);
    const node = new FakeNode(ovsServer, nbServer, opts);
    await node.init();
    return node;
  }

  private async init(): Promise<void> {
    const { ovs, nb } = this;
    await Promise.all([ovs.connect(), nb.connect()]);
    await Promise.all([ovs.monitor(OVS_MONITOR), nb.monitor(NB_MONITOR)]);
    // What start.ts writes: chassis, br-int with ovn0, router + pod switch + join switch + node LSP.
    const chassis = { systemId: 'n1', hostname: 'n1', sbRemote: 'unix:/nonexistent', encapIp: '127.0.0.1', bridge: BRIDGE, datapathType: 'netdev' as const };
    const join = parseCidr('100.64.0.0/16');
    const joinGw = formatIp(4, join.network + 1n);
    const nodeIp = formatIp(4, join.network + 2n);
    await configureChassis(ovs, chassis);
    await ensureBridge(ovs, chassis, { name: 'ovn0', mac: macForIp(nodeIp), ifaceId: 'node-n1' }, { freshSwitch: true });
    const cidrs = this.opts.cidrs ?? ['10.16.0.0/16'];
    const gateways = cidrs.map((c) => { const p = parseCidr(c); return formatIp(p.family, p.network + 1n); });
    const podSwitch: SwitchSpec = { name: POD_SWITCH, cidrs, gateways, routerPortMac: macForIp(gateways[0]) };
    const joinSwitch: SwitchSpec = { name: JOIN_SWITCH, cidrs: [join.text], gateways: [joinGw], routerPortMac: macForIp(joinGw) };
    await ensureTopology(nb, [podSwitch, joinSwitch], { switchName: JOIN_SWITCH, lspName: 'node-n1', mac: macForIp(nodeIp), ips: [nodeIp] });
    this.subnets.add({ name: POD_SWITCH, cidrs, gateways });
    this.subnets.add({ name: JOIN_SWITCH, cidrs: [join.text], gateways: [joinGw] });
    this.subnets.rebuildFromNb(nb);
    this.policy = new RecordingPolicy({
      nb, store: this.store, subnets: this.subnets, log: this.log,
      builtin: [podSwitch, joinSwitch].map(({ name, cidrs: c, gateways: g }) => ({ name, cidrs: c, gateways: g })),
      joinCidrs: [join.text], nodeIps: [nodeIp], metrics: this.metrics,
    });
    this.deps = {
      log: this.log, ovs, nb, native: this.native, plumber: this.plumber, subnets: this.subnets,
      node: { name: 'n1', bridge: BRIDGE, mtu: 1400, datapathType: 'netdev' },
      metrics: this.metrics, readiness: () => ({ ready: true }), objects: this.store, policy: this.policy,
    };
  }

  get pool(): SubnetPool { return this.subnets.get(POD_SWITCH); }

  // ---- requests ----

  netnsOf(call: Call): string { return call.netns ?? `/var/run/netns/${call.sandbox}`; }
  lspOf(call: Call): string { return lspNameFor({ containerId: call.sandbox, ifName: call.ifName ?? 'eth0', args: call.pod ? { podName: call.pod, podNamespace: call.namespace ?? 'default' } : {} }); }
  portOf(call: Call): string { return hostIfName(call.sandbox, call.ifName ?? 'eth0'); }
  holderOf(call: Call): string { return portHolder(this.lspOf(call), call.sandbox); }

  request(command: CniRequest['command'], call: Call): CniRequest {
    const conf: Record<string, unknown> = { cniVersion: call.cniVersion ?? '1.0.0', name: call.network ?? NETWORK, type: 'ovnode' };
    if (call.ips) conf.runtimeConfig = { ips: call.ips };
    if (call.prevResult !== undefined) conf.prevResult = call.prevResult;
    const env: Record<string, string> = {
      CNI_COMMAND: command, CNI_CONTAINERID: call.sandbox, CNI_NETNS: call.netns ?? this.netnsOf(call), CNI_IFNAME: call.ifName ?? 'eth0',
    };
    if (call.pod) env.CNI_ARGS = `K8S_POD_NAMESPACE=${call.namespace ?? 'default'};K8S_POD_NAME=${call.pod}${call.uid ? `;K8S_POD_UID=${call.uid}` : ''}`;
    return decodeRequest({ protocol: PROTOCOL_VERSION, env, config: JSON.stringify(conf), deadlineMs: 60_000 });
  }

  ctx(req: CniRequest, signal = new AbortController().signal): RequestContext {
    return { deps: this.deps, req, log: this.log.child({ cmd: req.command, sandbox: req.containerId }), signal };
  }

  async add(call: Call): Promise<CniResult> {
    if (call.netns === undefined) this.native.addNetns(this.netnsOf(call));
    return cmdAdd(this.ctx(this.request('ADD', call), call.signal));
  }

  /** ADD that must fail: resolves with what it threw. */
  async addFails(call: Call): Promise<unknown> {
    return this.add(call).then(
      (r) => { throw new Error(`ADD of ${call.sandbox} succeeded: ${JSON.stringify(r)}`); },
      (e: unknown) => e,
    );
  }

  del(call: Call): Promise<void> {
    return cmdDel(this.ctx(this.request('DEL', call), call.signal));
  }

  check(call: Call): Promise<void> {
    return cmdCheck(this.ctx(this.request('CHECK', call), call.signal));
  }

  gc(valid: Array<{ sandbox: string; ifName?: string }>, network = NETWORK): Promise<void> {
    const conf = {
      cniVersion: '1.1.0', name: network, type: 'ovnode',
      'cni.dev/valid-attachments': valid.map((v) => ({ containerID: v.sandbox, ifname: v.ifName ?? 'eth0' })),
    };
    const req = decodeRequest({ protocol: PROTOCOL_VERSION, env: { CNI_COMMAND: 'GC' }, config: JSON.stringify(conf), deadlineMs: 60_000 });
    return cmdGc(this.ctx(req), async (key, fn) => { this.locked.push(key); return fn(); });
  }

  /**
   * A deadline signal that fires the moment ADD starts waiting for ovn-installed (right after the
   * waiter is registered), as the server's RequestDeadline would when the budget runs out there.
   */
  deadlineAtWait(): AbortSignal {
    const ac = new AbortController();
    const client = this.ovs as unknown as { waitFor: OvsdbClient['waitFor'] };
    const original = OvsdbClient.prototype.waitFor;
    client.waitFor = (table, predicate, signal) => {
      const p = original.call(this.ovs, table, predicate, signal);
      if (table === OVS.iface) {
        delete (client as { waitFor?: unknown }).waitFor;
        ac.abort(new DeadlineError('ADD did not finish within its deadline (test)'));
      }
      return p;
    };
    return ac.signal;
  }

  // ---- observation ----

  /** Both caches have caught up with everything the servers committed so far. */
  async settle(): Promise<void> {
    await Promise.all([this.ovs.connect(), this.nb.connect()]);
    await Promise.all([this.ovs.echo(), this.nb.echo(), this.plumber.drain()]);
  }

  state(): NodeState {
    const dump = (s: FakeOvsdbServer): Record<string, unknown[]> => {
      const out: Record<string, unknown[]> = {};
      for (const t of [...s.tables.keys()].sort()) {
        const rows = s.rows(t).sort((a, b) => a._uuid.localeCompare(b._uuid));
        if (rows.length > 0) out[t] = rows;
      }
      return out;
    };
    const held: string[] = [];
    for (const pool of this.subnets.all()) for (const o of pool.owners()) for (const ip of pool.holdings(o)) held.push(`${ip}=${o}`);
    return { ovs: dump(this.ovsServer), nb: dump(this.nbServer), veths: [...this.plumber.veths.keys()].sort(), held: held.sort() };
  }

  /** Requests each server received since `mark` (see marks()), counted by method. */
  requestsSince(mark: { ovs: number; nb: number }): { ovs: Record<string, number>; nb: Record<string, number> } {
    const count = (s: FakeOvsdbServer, from: number): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const r of s.requests.slice(from)) out[r.method] = (out[r.method] ?? 0) + 1;
      return out;
    };
    return { ovs: count(this.ovsServer, mark.ovs), nb: count(this.nbServer, mark.nb) };
  }

  marks(): { ovs: number; nb: number } {
    return { ovs: this.ovsServer.requests.length, nb: this.nbServer.requests.length };
  }

  /** LSPs of pods in the NB server, as "name sandbox". */
  podLsps(): string[] {
    return this.nbServer.rows(NB.lsp).filter((r) => asMap(r.external_ids)['ovnode:owner'] === 'ovnode')
      .map((r) => `${r.name as string} ${asMap(r.external_ids).sandbox}`).sort();
  }

  /** Pod ports on br-int in the OVS server, as "name sandbox". */
  podPorts(): string[] {
    const bridge = this.ovsServer.rows(OVS.bridge).find((b) => b.name === BRIDGE);
    const onBridge = new Set(asArray<string>(bridge?.ports));
    return this.ovsServer.rows(OVS.port).filter((p) => asMap(p.external_ids)['ovnode:owner'] === 'ovnode')
      .map((p) => `${p.name as string} ${asMap(p.external_ids).sandbox}${onBridge.has(p._uuid) ? '' : ' (not on bridge)'}`).sort();
  }

  private readonly logWaiters = new Set<{ pred: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }>();

  private record(r: LogRecord): void {
    this.logs.push(r);
    for (const w of this.logWaiters) if (w.pred(r)) { this.logWaiters.delete(w); w.resolve(r); }
  }

  /** The first log record matching pred, already written or when it is. */
  logged(pred: (r: LogRecord) => boolean): Promise<LogRecord> {
    const found = this.logs.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.logWaiters.add({ pred, resolve }));
  }

  /** Rollback steps that failed (UndoStack logs each, without failing the request for it). */
  rollbackFailures(): LogRecord[] {
    return this.logs.filter((r) => r.msg === 'rollback step failed');
  }

  async close(): Promise<void> {
    await this.plumber.drain();
    await Promise.all([this.ovs.close(), this.nb.close()]);
    await Promise.all([this.ovsServer.close(), this.nbServer.close()]);
  }
}
