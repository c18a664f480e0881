// VmAddressKeeper (cluster/vm-addresses.ts) on real SubnetPools and a MemoryStore: every node
// holds a running VM's recorded addresses under the VM's plain port name, so nobody hands them
// out while the VM runs anywhere; it leaves them to a sandbox of the VM's own port, never takes
// them from anyone else, gives them back once no pod of the VM runs, and takes back in the same
// call what a DEL released while the VM runs on elsewhere.
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KUBEVIRT } from '../../../../daemon/cluster/kubevirt';
import { VmAddressKeeper, vmAddresses } from '../../../../daemon/cluster/vm-addresses';
import { portHolder, SubnetPool } from '../../../../daemon/ipam/pool';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { PodObj } from '../../../../daemon/objects/types';

interface Spec {
  node?: string;
  ns?: string;
  vm?: string;
  createdAt?: string;
  deleting?: boolean;
  finished?: boolean;
  target?: boolean;
  /** ovn.kubernetes.io/* write-back; '' for none. */
  ip?: string;
  mac?: string;
  annotations?: Record<string, string>;
}

function pod(name: string, s: Spec = {}): PodObj {
  const annotations: Record<string, string> = { [KUBEVIRT.allowMigration]: '', ...s.annotations };
  if (s.ip !== '') {
    annotations['ovn.kubernetes.io/allocated'] = 'true';
    annotations['ovn.kubernetes.io/ip_address'] = s.ip ?? '10.16.0.5';
    annotations['ovn.kubernetes.io/mac_address'] = s.mac ?? '0a:58:0a:10:00:05';
    annotations['ovn.kubernetes.io/logical_switch'] = 'ovn-default';
  }
  if (s.target) annotations[KUBEVIRT.migrationJob] = 'job-1';
  const p: PodObj = {
    kind: 'Pod',
    metadata: { name, namespace: s.ns ?? 'default', labels: s.vm === '' ? {} : { [KUBEVIRT.vmLabel]: s.vm ?? 'vm1' }, annotations },
    spec: { containers: [{ name: 'compute', ports: [] }], nodeName: s.node ?? 'node2' },
    status: { createdAt: s.createdAt ?? '2026-01-01T00:00:00Z' },
  };
  if (s.deleting) p.status = { ...p.status, deleting: true };
  if (s.finished) p.status = { ...p.status, finished: true };
  return p;
}

interface LogLine { level: number; msg: string; ip?: string; port?: string; holder?: string }

interface Env {
  store: MemoryStore;
  pools: SubnetPool[];
  keeper: VmAddressKeeper;
  warnings: () => LogLine[];
}

const stops: Array<() => void> = [];
afterEach(() => { for (const s of stops.splice(0)) s(); });

/** The cluster network (dual stack) and a secondary network's subnet. */
function env(...pods: PodObj[]): Env {
  const store = new MemoryStore();
  for (const p of pods) store.apply(p);
  const pools = [
    new SubnetPool({ name: 'ovn-default', cidrs: ['10.16.0.0/16', 'fd00:10:16::/64'] }),
    new SubnetPool({ name: 'net1', cidrs: ['10.18.0.0/24'] }),
  ];
  const logs: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => { logs.push(JSON.parse(s) as LogLine); } });
  const keeper = new VmAddressKeeper({ store, pools: () => pools, log });
  stops.push(() => keeper.stop());
  return { store, pools, keeper, warnings: () => logs.filter((l) => l.level === 40) };
}

const ownerOf = (e: Env, ip: string): string | undefined => e.pools.find((p) => p.covers(ip))?.ownerOf(ip);

describe('vmAddresses', () => {
  it('lists each running VM pod\'s recorded addresses under its VM\'s port, none of other pods', () => {
    const want = vmAddresses([
      pod('virt-launcher-vm1-a', { ip: '10.16.0.5, fd00:10:16::5' }),
      pod('virt-launcher-vm2-a', { vm: 'vm2', ns: 'prod', ip: '10.16.0.6' }),
      pod('web', { vm: '', ip: '10.16.0.7' }),
      pod('virt-launcher-vm3-a', { vm: 'vm3', ip: '' }),
    ]);
    expect(Object.fromEntries(want)).toEqual({ '10.16.0.5': 'vm1.default', 'fd00:10:16::5': 'vm1.default', '10.16.0.6': 'vm2.prod' });
  });
});

describe('VmAddressKeeper', () => {
  it('holds a running VM\'s addresses under its plain port name, once', () => {
    const e = env(pod('virt-launcher-vm1-a', { ip: '10.16.0.5,fd00:10:16::5' }), pod('web', { vm: '', ip: '10.16.0.9' }));
    expect(e.keeper.sync().sort()).toEqual(['10.16.0.5', 'fd00:10:16::5']);
    expect(ownerOf(e, '10.16.0.5')).toBe('vm1.default');
    expect(ownerOf(e, 'fd00:10:16::5')).toBe('vm1.default');
    // Not a VM's: left alone.
    expect(ownerOf(e, '10.16.0.9')).toBeUndefined();
    expect(e.keeper.sync()).toEqual([]);
    expect(ownerOf(e, '10.16.0.5')).toBe('vm1.default');
    // Nobody else gets it.
    expect(() => e.pools[0]?.reserve('10.16.0.5', portHolder('web.default', 'sb-web'))).toThrow(/in use by vm1\.default/);
    expect(e.warnings()).toEqual([]);
  });

  it('ignores an address no pool here covers', () => {
    const e = env(pod('virt-launcher-vm1-a', { ip: '10.99.0.5' }));
    expect(e.keeper.sync()).toEqual([]);
    expect(e.pools.flatMap((p) => p.held())).toEqual([]);
    expect(e.warnings()).toEqual([]);
  });

  it('leaves an address a sandbox of the VM\'s own port holds to it, without a word', () => {
    const e = env(pod('virt-launcher-vm1-a', { node: 'node1', ip: '10.16.0.5' }));
    const sandbox = portHolder('vm1.default', 'sb-1');
    e.pools[0]?.reserve('10.16.0.5', sandbox);
    expect(e.keeper.sync()).toEqual([]);
    expect(ownerOf(e, '10.16.0.5')).toBe(sandbox);
    expect(e.warnings()).toEqual([]);
    // The VM gone, the keeper releases nothing that is the sandbox's (its DEL does).
    e.store.remove('Pod', 'virt-launcher-vm1-a', 'default');
    expect(e.keeper.sync()).toEqual([]);
    expect(ownerOf(e, '10.16.0.5')).toBe(sandbox);
  });

  it('warns about, and leaves, an address held by something else', () => {
    const e = env(pod('virt-launcher-vm1-a', { ip: '10.16.0.5' }));
    const other = portHolder('web.default', 'sb-web');
    e.pools[0]?.reserve('10.16.0.5', other);
    expect(e.keeper.sync()).toEqual([]);
    expect(ownerOf(e, '10.16.0.5')).toBe(other);
    expect(e.warnings()).toEqual([expect.objectContaining({ ip: '10.16.0.5', port: 'vm1.default', holder: other })]);
    // And never frees it later, when the VM goes.
    e.store.remove('Pod', 'virt-launcher-vm1-a', 'default');
    e.keeper.sync();
    expect(ownerOf(e, '10.16.0.5')).toBe(other);
  });

  it('gives the addresses back once every pod of the VM is being deleted, finished or gone', () => {
    const live = pod('virt-launcher-vm1-a', { ip: '10.16.0.5' });
    const e = env(live);
    e.keeper.sync();
    expect(ownerOf(e, '10.16.0.5')).toBe('vm1.default');

    e.store.apply(pod('virt-launcher-vm1-a', { ip: '10.16.0.5', deleting: true }));
    expect(e.keeper.sync()).toEqual([]);
    expect(ownerOf(e, '10.16.0.5')).toBeUndefined();

    e.store.apply(live);
    expect(e.keeper.sync()).toEqual(['10.16.0.5']);
    e.store.apply(pod('virt-launcher-vm1-a', { ip: '10.16.0.5', finished: true }));
    e.keeper.sync();
    expect(ownerOf(e, '10.16.0.5')).toBeUndefined();

    e.store.apply(live);
    e.keeper.sync();
    e.store.remove('Pod', 'virt-launcher-vm1-a', 'default');
    e.keeper.sync();
    expect(ownerOf(e, '10.16.0.5')).toBeUndefined();
    // Free for anyone now.
    e.pools[0]?.reserve('10.16.0.5', portHolder('web.default', 'sb-web'));
  });

  it('keeps the addresses while a migration\'s source is being deleted and its target runs on', () => {
    const e = env(
      pod('virt-launcher-vm1-src', { node: 'node2', ip: '10.16.0.5', deleting: true }),
      pod('virt-launcher-vm1-dst', { node: 'node3', ip: '10.16.0.5', target: true, createdAt: '2026-01-01T00:05:00Z' }),
    );
    expect(e.keeper.sync()).toEqual(['10.16.0.5']);
    expect(ownerOf(e, '10.16.0.5')).toBe('vm1.default');
  });

  it('takes back, in the same call, what a DEL of the VM\'s sandbox here released while the VM runs elsewhere', () => {
    // The source ran here (node1): its sandbox took the held address over (add.ts: same port).
    const src = pod('virt-launcher-vm1-src', { node: 'node1', ip: '10.16.0.5' });
    const e = env(src, pod('virt-launcher-vm1-dst', { node: 'node2', ip: '10.16.0.5', target: true, createdAt: '2026-01-01T00:05:00Z' }));
    expect(e.keeper.sync()).toEqual(['10.16.0.5']);
    const sandbox = portHolder('vm1.default', 'sb-src');
    e.pools[0]?.reserve('10.16.0.5', sandbox);
    expect(ownerOf(e, '10.16.0.5')).toBe(sandbox);
    expect(e.keeper.sync()).toEqual([]);

    // The migration done: the source is being deleted, its DEL releases the sandbox's address.
    e.store.apply(pod('virt-launcher-vm1-src', { node: 'node1', ip: '10.16.0.5', deleting: true }));
    expect(e.pools[0]?.release(sandbox)).toEqual(['10.16.0.5']);
    expect(e.keeper.sync()).toEqual(['10.16.0.5']);
    expect(ownerOf(e, '10.16.0.5')).toBe('vm1.default');
    expect(e.keeper.sync()).toEqual([]);
    expect(e.warnings()).toEqual([]);
  });

  it('reclaim (the DEL path) re-holds only released addresses a running VM still has, from what the last VM pod change decided', () => {
    const src = pod('virt-launcher-vm1-src', { node: 'node1', ip: '10.16.0.5' });
    const e = env(src, pod('virt-launcher-vm1-dst', { node: 'node2', ip: '10.16.0.5', target: true, createdAt: '2026-01-01T00:05:00Z' }));
    e.keeper.start();
    const sandbox = portHolder('vm1.default', 'sb-src');
    e.pools[0]?.releaseIp('10.16.0.5', 'vm1.default');
    e.pools[0]?.reserve('10.16.0.5', sandbox);
    e.pools[0]?.reserve('10.16.0.9', portHolder('other.default', 'sb-other'));
    // The source is being deleted (a watch event), then its DEL releases both of this node's holders.
    e.store.apply(pod('virt-launcher-vm1-src', { node: 'node1', ip: '10.16.0.5', deleting: true }));
    const released = [...(e.pools[0]?.release(sandbox) ?? []), ...(e.pools[0]?.release(portHolder('other.default', 'sb-other')) ?? [])];
    expect(released.sort()).toEqual(['10.16.0.5', '10.16.0.9']);
    expect(e.keeper.reclaim(released)).toEqual(['10.16.0.5']);
    expect(ownerOf(e, '10.16.0.5')).toBe('vm1.default');
    expect(ownerOf(e, '10.16.0.9')).toBeUndefined();
    // Once the VM has no running pod, its address is released by the next change and never reclaimed.
    e.store.apply(pod('virt-launcher-vm1-dst', { node: 'node2', ip: '10.16.0.5', target: true, deleting: true, createdAt: '2026-01-01T00:05:00Z' }));
    expect(ownerOf(e, '10.16.0.5')).toBeUndefined();
    expect(e.keeper.reclaim(['10.16.0.5'])).toEqual([]);
  });

  it('holds a secondary network\'s addresses under <vm>.<ns>.<provider>', () => {
    const e = env(pod('virt-launcher-vm1-a', {
      ip: '10.16.0.5',
      annotations: {
        'net1.default.ovn.kubernetes.io/allocated': 'true', 'net1.default.ovn.kubernetes.io/ip_address': '10.18.0.7',
        'net1.default.ovn.kubernetes.io/mac_address': '0a:58:0a:12:00:07', 'net1.default.ovn.kubernetes.io/logical_switch': 'net1',
        // Not written back yet: not held.
        'net2.default.ovn.kubernetes.io/ip_address': '10.18.0.8',
      },
    }));
    expect(e.keeper.sync().sort()).toEqual(['10.16.0.5', '10.18.0.7']);
    expect(ownerOf(e, '10.16.0.5')).toBe('vm1.default');
    expect(ownerOf(e, '10.18.0.7')).toBe('vm1.default.net1.default.ovn');
    expect(ownerOf(e, '10.18.0.8')).toBeUndefined();
  });

  it('syncs at start and on changes of VM pods (also one that was a VM pod), not of other pods', () => {
    const e = env(pod('virt-launcher-vm1-a', { ip: '10.16.0.5' }));
    const sync = vi.spyOn(e.keeper, 'sync');
    e.keeper.start();
    expect(sync).toHaveBeenCalledTimes(1);
    expect(ownerOf(e, '10.16.0.5')).toBe('vm1.default');

    e.store.apply(pod('web', { vm: '', ip: '10.16.0.9' }));
    e.store.apply(pod('web', { vm: '', ip: '10.16.0.10' }));
    e.store.remove('Pod', 'web', 'default');
    expect(sync).toHaveBeenCalledTimes(1);

    // A new VM pod, then the old one going: each a sync.
    e.store.apply(pod('virt-launcher-vm2-a', { vm: 'vm2', ip: '10.16.0.6' }));
    expect(sync).toHaveBeenCalledTimes(2);
    expect(ownerOf(e, '10.16.0.6')).toBe('vm2.default');
    e.store.remove('Pod', 'virt-launcher-vm1-a', 'default');
    expect(sync).toHaveBeenCalledTimes(3);
    expect(ownerOf(e, '10.16.0.5')).toBeUndefined();

    // A pod that loses its VM label: a change of a VM pod (its addresses go); after that it is an ordinary pod.
    e.store.apply(pod('virt-launcher-vm2-a', { vm: '', ip: '10.16.0.6' }));
    expect(sync).toHaveBeenCalledTimes(4);
    expect(ownerOf(e, '10.16.0.6')).toBeUndefined();
    e.store.apply(pod('virt-launcher-vm2-a', { vm: '', ip: '10.16.0.7' }));
    expect(sync).toHaveBeenCalledTimes(4);

    // Stopped: nothing more.
    e.keeper.stop();
    e.store.apply(pod('virt-launcher-vm3-a', { vm: 'vm3', ip: '10.16.0.8' }));
    expect(sync).toHaveBeenCalledTimes(4);
    expect(ownerOf(e, '10.16.0.8')).toBeUndefined();
  });
});
