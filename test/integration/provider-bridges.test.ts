// syncProviderBridges against a real, private ovsdb-server + ovs-vswitchd on the userspace (netdev)
// datapath. vswitchd runs in a "node" netns of the test's; the uplink is a veth whose peer sits in
// a "physical network" netns, also the test's. Checked: the bridge and its uplink exist for
// vswitchd too (ofport, no error), ovs-vsctl reads the mapping, VLAN 100 leaves through the uplink
// trunk (frames of an access port on VLAN 100 in the bridge reach the peer tagged 100, read with
// tcpdump -e: this kernel has no 8021q module for a VLAN device) and stops when the trunks no
// longer carry it, a second sync writes nothing, removal cleans up (rows,
// mapping, vswitchd's tap). Processes are stopped by pid, namespaces and the directory removed,
// also when a test fails. Addresses are private and exist only inside these namespaces.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OVS_MONITOR } from '../../daemon/node/monitors';
import { syncProviderBridges, type ProviderBridgeSpec } from '../../daemon/node/provider-bridges';
import { OvsdbClient } from '../../daemon/ovsdb/client';
import { NetnsSet } from './harness/netns';
import { PrivateVswitchd, VSWITCH_SCHEMA } from './harness/private-vswitchd';

const NET = '10.79.100'; // only inside the test's namespaces

const netns = new NetnsSet();
/** Short and unique: the provider (<= 12) and br-<provider> (a tap in the node netns). */
const provider = `${netns.prefix}p`;
const bridgeName = `br-${provider}`;
const node = `${netns.prefix}-node`;
const phys = `${netns.prefix}-phys`;
/** ovsdb-server and ovs-vswitchd (in the node netns), with their files in a directory of this run's. */
const vswitchd = new PrivateVswitchd({ netns: node, dirPrefix: `${netns.prefix}-provbr-` });
let ovs: OvsdbClient | undefined;
let writes = 0;
const captures = new Set<ChildProcess>();

const sh = (ns: string, cmd: string[]): string => {
  const r = netns.exec(ns, cmd);
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} in ${ns}: ${r.status} ${r.stderr}`);
  return r.stdout;
};
const vsctl = async (...args: string[]): Promise<string> => (await vswitchd.vsctl(...args)).trim();
const vsctlStatus = async (...args: string[]): Promise<{ ok: boolean; out: string }> => {
  try {
    return { ok: true, out: await vsctl(...args) };
  } catch (e) {
    return { ok: false, out: String((e as { stderr?: string }).stderr ?? e) };
  }
};
const vswitchdLog = (): string => vswitchd.logTail();
const client = (): OvsdbClient => {
  if (!ovs) throw new Error('no OVSDB client');
  return ovs;
};
const sync = (desired: ProviderBridgeSpec[]) => syncProviderBridges({ ovs: client(), log: pino({ level: 'silent' }), datapathType: 'netdev' }, desired);

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end;) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}\n${vswitchdLog()}`);
}

let tick = 0;
/**
 * Returns once vswitchd has applied the database (a sync returns at the commit): ovs-vsctl waits
 * for vswitchd's reconfiguration after a change, so it makes one vswitchd ignores.
 */
const settle = (): Promise<string> => vsctl('set', 'Open_vSwitch', '.', `external_ids:ovnode-test-tick=${++tick}`);

/**
 * Frames on the physical side of the uplink (ph0) matching `filter`, link headers shown, while
 * `traffic` runs: tcpdump stops at the first one or after `seconds`.
 */
async function capture(filter: string[], traffic: () => void, seconds = 4): Promise<string> {
  const child = spawn('ip', ['netns', 'exec', phys, 'timeout', String(seconds), 'tcpdump', '-i', 'ph0', '-e', '-nn', '-l', '-c', '1', ...filter],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  captures.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => { captures.delete(child); resolve(); }));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('listening on')) resolve(); });
    void exited.then(() => reject(new Error(`tcpdump ended before listening: ${err}`)));
  });
  traffic();
  await exited;
  return out;
}

beforeAll(async () => {
  const missing = [VSWITCH_SCHEMA, '/usr/sbin/ovs-vswitchd', '/usr/sbin/ovsdb-server', '/usr/bin/ovs-vsctl', '/usr/bin/ping'].filter((p) => !existsSync(p));
  if (missing.length > 0) throw new Error(`provider bridge integration test needs openvswitch-switch and iputils-ping; missing: ${missing.join(', ')}`);
  if (!existsSync('/usr/bin/tcpdump')) throw new Error('provider bridge integration test needs tcpdump');
  if (process.getuid?.() !== 0) throw new Error('provider bridge integration test needs root (network namespaces, OVS)');
  netns.create('node');
  netns.create('phys');
  // Made in the physical netns with the peer put straight into the node's: never in the host.
  sh(phys, ['ip', 'link', 'add', 'ph0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', node]);
  sh(phys, ['ip', 'link', 'set', 'ph0', 'up']);
  sh(node, ['ip', 'link', 'set', 'lo', 'up']);
  sh(node, ['ip', 'link', 'set', 'up0', 'up']); // no address: an underlay uplink carries none (see the module)
  await vswitchd.start();
  ovs = new OvsdbClient({ socketPath: vswitchd.dbSocket, database: 'Open_vSwitch', logger: pino({ level: 'silent' }) });
  await ovs.connect(AbortSignal.timeout(10_000));
  await ovs.monitor(OVS_MONITOR);
  const transact = ovs.transact.bind(ovs);
  ovs.transact = (ops) => {
    if (ops.some((o) => o.op !== 'select')) writes++;
    return transact(ops);
  };
});

afterAll(async () => {
  for (const c of captures) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, 'SIGKILL');
  await ovs?.close().catch(() => undefined);
  await vswitchd.destroy();
  // Deleting the namespaces takes the veth pair and vswitchd's taps with them.
  netns.removeAll();
});

const spec: ProviderBridgeSpec = { provider, interface: 'up0', vlanIds: [0, 100] };

/** What the sync is responsible for, as the real server and vswitchd hold it. */
async function snapshot(): Promise<unknown> {
  const list = (table: string, cols: string) => vsctl('--columns', cols, '--format=json', 'list', table);
  return {
    bridges: await list('Bridge', '_uuid,name,ports,datapath_type,fail_mode,other_config,external_ids'),
    ports: await list('Port', '_uuid,name,interfaces,trunks,tag,external_ids'),
    ifaces: await list('Interface', '_uuid,name,type,ofport,error'),
    root: await list('Open_vSwitch', 'external_ids,bridges'),
  };
}

describe('provider bridges on a real ovs-vswitchd (userspace datapath)', () => {
  it('creates br-<provider> with the veth uplink as a trunk port, attached by vswitchd, and maps it', async () => {
    await expect(sync([spec])).resolves.toEqual({ created: [bridgeName], removed: [], updated: [] });
    expect(writes).toBe(1);
    expect(await vsctl('get', 'Open_vSwitch', '.', 'external_ids:ovn-bridge-mappings')).toBe(`"${provider}:${bridgeName}"`);
    expect((await vsctl('list-ports', bridgeName)).split('\n')).toEqual(['up0']);
    expect(await vsctl('port-to-br', 'up0')).toBe(bridgeName);
    expect(await vsctl('get', 'Bridge', bridgeName, 'datapath_type')).toBe('netdev');
    expect(await vsctl('get', 'Port', 'up0', 'trunks')).toBe('[0, 100]');
    // vswitchd opened the veth (AF_PACKET) and created the bridge's local tap in the node netns.
    await until('vswitchd to attach up0', async () => Number(await vsctl('get', 'Interface', 'up0', 'ofport')) > 0);
    expect(await vsctl('get', 'Interface', 'up0', 'error')).toBe('[]');
    await until(`the ${bridgeName} tap`, () => netns.exec(node, ['ip', 'link', 'show', bridgeName]).status === 0);
    expect(sh(node, ['ip', '-o', 'link', 'show', 'up0'])).toContain('PROMISC');
  });

  it('sends VLAN 100 out of the uplink tagged, and no longer once the trunks leave it out', async () => {
    // An access port on VLAN 100, as a localnet port's traffic would come out of br-int tagged 100.
    await vsctl('add-port', bridgeName, 'vl100', 'tag=100', '--', 'set', 'Interface', 'vl100', 'type=internal');
    sh(node, ['ip', 'addr', 'add', `${NET}.1/24`, 'dev', 'vl100']);
    sh(node, ['ip', 'link', 'set', 'vl100', 'up']);
    // Nobody answers: the ARP requests for .2 are the frames looked for. The neighbour entry is
    // flushed after each try, or the kernel would go on probing after ping has given up.
    const arp = (): void => {
      netns.exec(node, ['ping', '-c', '2', '-i', '0.5', '-W', '1', `${NET}.2`]);
      sh(node, ['ip', 'neigh', 'flush', 'dev', 'vl100']);
    };
    const tagged = await capture(['vlan', '100', 'and', 'arp'], arp);
    expect(tagged, `no VLAN 100 frame on the uplink\n${vswitchdLog()}`).toMatch(/vlan 100.*ARP.*Request who-has 10\.79\.100\.2/);
    // The foreign port stays through syncs; the trunks change in place.
    await expect(sync([{ ...spec, vlanIds: [0, 200] }])).resolves.toEqual({ created: [], removed: [], updated: [bridgeName] });
    expect(await vsctl('get', 'Port', 'up0', 'trunks')).toBe('[0, 200]');
    await settle();
    expect((await capture(['arp', 'or', '(vlan and arp)'], arp, 3)).trim()).toBe('');
    await sync([spec]);
    await settle();
    expect(await capture(['vlan', '100', 'and', 'arp'], arp)).toMatch(/vlan 100/);
    expect((await vsctl('list-ports', bridgeName)).split('\n')).toEqual(['up0', 'vl100']);
  });

  it('a second sync writes nothing and changes nothing', async () => {
    const before = await snapshot();
    const n = writes;
    await expect(sync([spec])).resolves.toEqual({ created: [], removed: [], updated: [] });
    expect(writes).toBe(n);
    expect(await snapshot()).toEqual(before);
  });

  it('removal deletes the bridge, its ports and its mapping, keeping a foreign mapping; vswitchd drops the tap', async () => {
    // A mapping ovnode does not own, set the operator's way.
    await vsctl('set', 'Open_vSwitch', '.', `external_ids:ovn-bridge-mappings=physnet0:br-ex,${provider}:${bridgeName}`);
    const n = writes;
    await expect(sync([])).resolves.toEqual({ created: [], removed: [bridgeName], updated: [] });
    expect(writes).toBe(n + 1);
    expect((await vsctlStatus('br-exists', bridgeName)).ok).toBe(false);
    expect(await vsctl('get', 'Open_vSwitch', '.', 'external_ids:ovn-bridge-mappings')).toBe('"physnet0:br-ex"');
    expect(await vsctl('--columns=name', '--format=csv', '--no-headings', 'list', 'Port')).toBe('');
    expect(await vsctl('--columns=name', '--format=csv', '--no-headings', 'list', 'Interface')).toBe('');
    await until(`vswitchd to remove the ${bridgeName} tap`, () => netns.exec(node, ['ip', 'link', 'show', bridgeName]).status !== 0);
    expect(netns.exec(node, ['ip', 'link', 'show', 'up0']).status).toBe(0); // the uplink itself stays
    await vsctl('remove', 'Open_vSwitch', '.', 'external_ids', 'ovn-bridge-mappings');
    await expect(sync([])).resolves.toEqual({ created: [], removed: [], updated: [] });
    expect(writes).toBe(n + 1);
  });
});
