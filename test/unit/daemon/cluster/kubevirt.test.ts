// KubeVirt VMs as pods (cluster/kubevirt.ts): which pods are a VM's, what their ports are named
// after, and where a VM's port is bound during and after a live migration, decided from the pods
// alone (every node must reach the same answer from the same watch).
import { describe, expect, it } from 'vitest';
import {
  bindingNodes, KUBEVIRT, migrationOptions, portBaseName, vmAddressOf, vmBinding, vmOf, VmPodIndex, vmPods, type VmBinding,
} from '../../../../daemon/cluster/kubevirt';
import { MemoryStore } from '../../../../daemon/objects/memory-store';
import type { PodObj } from '../../../../daemon/objects/types';

interface Spec {
  node?: string;
  ns?: string;
  vm?: string;
  createdAt?: string;
  /** A migration's target (kubevirt.io/migrationJobName). */
  target?: boolean;
  /** kubevirt.io/allow-pod-bridge-network-live-migration. */
  allow?: boolean;
  activated?: string;
  deleting?: boolean;
  finished?: boolean;
  hostNetwork?: boolean;
  /** Its node attached it (ovn.kubernetes.io/allocated); default true. */
  attached?: boolean;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
}

function pod(name: string, s: Spec = {}): PodObj {
  const annotations: Record<string, string> = { ...(s.attached ?? true ? { 'ovn.kubernetes.io/allocated': 'true' } : {}), ...s.annotations };
  if (s.target) annotations[KUBEVIRT.migrationJob] = 'job-1';
  if (s.allow ?? true) annotations[KUBEVIRT.allowMigration] = '';
  if (s.activated !== undefined) annotations[KUBEVIRT.activated] = s.activated;
  const labels: Record<string, string> = { ...s.labels };
  if (s.vm !== '') labels[KUBEVIRT.vmLabel] = s.vm ?? 'vm1';
  const p: PodObj = {
    kind: 'Pod',
    metadata: { name, namespace: s.ns ?? 'default', labels, annotations },
    spec: { containers: [{ name: 'compute', ports: [] }], ...(s.node === '' ? {} : { nodeName: s.node ?? 'node1' }) },
    status: { createdAt: s.createdAt ?? '2026-01-01T00:00:00Z' },
  };
  if (s.hostNetwork) p.spec.hostNetwork = true;
  if (s.deleting) p.status = { ...p.status, deleting: true };
  if (s.finished) p.status = { ...p.status, finished: true };
  return p;
}

const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:05:00Z';
const T2 = '2026-01-01T00:10:00Z';

const source = (over: Spec = {}): PodObj => pod('virt-launcher-vm1-src', { node: 'node1', createdAt: T0, ...over });
const target = (over: Spec = {}): PodObj => pod('virt-launcher-vm1-dst', { node: 'node2', createdAt: T1, target: true, ...over });

/** The binding as pod names, for readable failures. */
function names(b: VmBinding | undefined): { active?: string; pending?: string } | undefined {
  if (!b) return undefined;
  return { active: b.active.metadata.name, ...(b.pending ? { pending: b.pending.metadata.name } : {}) };
}

describe('vmOf', () => {
  it('is the VM of a virt-launcher pod, in the pod\'s namespace', () => {
    expect(vmOf(pod('virt-launcher-vm1-abc', { ns: 'prod', vm: 'my-vm.v2' }))).toEqual({ namespace: 'prod', name: 'my-vm.v2' });
  });

  it('is undefined for no pod, a pod without the label, and a label no port name can carry', () => {
    expect(vmOf(undefined)).toBeUndefined();
    expect(vmOf(pod('web', { vm: '' }))).toBeUndefined();
    for (const bad of ['', '-vm', 'vm-', 'vm/one', 'vm one', 'vm|x', 'a'.repeat(64)]) {
      expect(vmOf(pod('p', { vm: '', labels: { [KUBEVIRT.vmLabel]: bad } })), JSON.stringify(bad)).toBeUndefined();
    }
    // The longest and shortest names a label value allows.
    expect(vmOf(pod('p', { vm: 'a'.repeat(63) }))?.name).toBe('a'.repeat(63));
    expect(vmOf(pod('p', { vm: 'x' }))?.name).toBe('x');
  });
});

describe('portBaseName', () => {
  it('is the VM\'s name for a virt-launcher pod, the pod\'s own otherwise (also for an unusable VM label)', () => {
    expect(portBaseName(pod('virt-launcher-vm1-abc', { vm: 'vm1' }))).toBe('vm1');
    expect(portBaseName(pod('web-0', { vm: '' }))).toBe('web-0');
    expect(portBaseName(pod('odd', { vm: '', labels: { [KUBEVIRT.vmLabel]: 'bad name' } }))).toBe('odd');
  });
});

describe('vmBinding', () => {
  it('is undefined without pods, or with none bound to a node', () => {
    expect(vmBinding([])).toBeUndefined();
    expect(vmBinding([pod('unscheduled', { node: '' })])).toBeUndefined();
  });

  it('binds a VM with one pod to it, without a pending location', () => {
    const b = vmBinding([source()]);
    expect(names(b)).toEqual({ active: 'virt-launcher-vm1-src' });
    expect(b?.pending).toBeUndefined();
  });

  it('keeps the source active and makes an allowed target on another node pending, in any order', () => {
    const src = source();
    const dst = target();
    const b = vmBinding([dst, src]);
    expect(b?.active).toBe(src);
    expect(b?.pending).toBe(dst);
    expect(names(vmBinding([src, dst]))).toEqual({ active: 'virt-launcher-vm1-src', pending: 'virt-launcher-vm1-dst' });
  });

  it('counts a target as pending only once its node attached it, unless the caller says it is ready (its own node, during its ADD)', () => {
    const dst = target({ attached: false });
    expect(names(vmBinding([source(), dst]))).toEqual({ active: 'virt-launcher-vm1-src' });
    expect(names(vmBinding([source(), dst], (p) => p === dst))).toEqual({ active: 'virt-launcher-vm1-src', pending: 'virt-launcher-vm1-dst' });
  });

  it('ignores a target whose VM does not allow migration over the pod network: never pending', () => {
    expect(names(vmBinding([source(), target({ allow: false })]))).toEqual({ active: 'virt-launcher-vm1-src' });
  });

  // Regression test, a bug found in review and fixed (daemon/cluster/kubevirt.ts, vmBinding, `const active = settled.at(-1) ?? pool[0]`): a
  // disallowed target is refused at its ADD and "never holds the port", yet when it is the only
  // live pod (the source being deleted), `settled` is empty and the fallback `pool[0]` is that
  // target: the VM's port moves to the node of a pod that never got a sandbox. The source (the
  // one that ran the VM) should stay active until its DEL, as when all pods are being deleted.
  it('never makes a disallowed target active, even when the source is being deleted', () => {
    const b = vmBinding([source({ deleting: true }), target({ allow: false })]);
    expect(names(b)).toEqual({ active: 'virt-launcher-vm1-src' });
  });

  it('does not make a target on the source\'s own node pending', () => {
    expect(names(vmBinding([source(), target({ node: 'node1' })]))).toEqual({ active: 'virt-launcher-vm1-src' });
  });

  it('makes an activated target active, and the source then nothing', () => {
    const b = vmBinding([source(), target({ activated: 'node2' })]);
    expect(names(b)).toEqual({ active: 'virt-launcher-vm1-dst' });
    expect(bindingNodes(b as VmBinding)).toEqual(['node2']);
  });

  it('leaves the source alone when the target is being deleted or finished (a failed migration)', () => {
    expect(names(vmBinding([source(), target({ deleting: true })]))).toEqual({ active: 'virt-launcher-vm1-src' });
    expect(names(vmBinding([source(), target({ finished: true })]))).toEqual({ active: 'virt-launcher-vm1-src' });
    expect(names(vmBinding([source()]))).toEqual({ active: 'virt-launcher-vm1-src' });
  });

  it('binds to the target alone when the source is being deleted or finished (the migration done)', () => {
    expect(names(vmBinding([source({ deleting: true }), target()]))).toEqual({ active: 'virt-launcher-vm1-dst' });
    expect(names(vmBinding([source({ finished: true }), target()]))).toEqual({ active: 'virt-launcher-vm1-dst' });
    expect(names(vmBinding([target()]))).toEqual({ active: 'virt-launcher-vm1-dst' });
  });

  it('still decides when every pod is being deleted: the serving one, never a waiting target', () => {
    expect(names(vmBinding([source({ deleting: true }), target({ deleting: true })]))).toEqual({ active: 'virt-launcher-vm1-src' });
    expect(names(vmBinding([source({ deleting: true }), target({ deleting: true, activated: 'node2' })]))).toEqual({ active: 'virt-launcher-vm1-dst' });
    // No pending location among pods that are going.
    expect(vmBinding([source({ deleting: true }), target({ deleting: true })])?.pending).toBeUndefined();
  });

  it('decides among finished pods too when nothing else is left, and ignores host-network ones', () => {
    expect(names(vmBinding([source({ finished: true }), pod('older', { node: 'node3', createdAt: '2025-12-01T00:00:00Z', finished: true })])))
      .toEqual({ active: 'virt-launcher-vm1-src' });
    // A host-network pod is never live: the other pod serves.
    expect(names(vmBinding([source(), pod('host', { node: 'node3', createdAt: T2, hostNetwork: true })]))).toEqual({ active: 'virt-launcher-vm1-src' });
  });

  it('serves from the newest live pod of two that are not targets (a relaunch)', () => {
    expect(names(vmBinding([source(), pod('virt-launcher-vm1-new', { node: 'node3', createdAt: T2 })]))).toEqual({ active: 'virt-launcher-vm1-new' });
  });

  it('takes the newest pending target of two, and none that is older than the serving pod', () => {
    const second = pod('virt-launcher-vm1-dst2', { node: 'node3', createdAt: T2, target: true });
    expect(names(vmBinding([source(), target(), second]))).toEqual({ active: 'virt-launcher-vm1-src', pending: 'virt-launcher-vm1-dst2' });
    // After a first migration (activated target serving), an older, unactivated target is no location.
    const stale = pod('virt-launcher-vm1-stale', { node: 'node3', createdAt: '2025-12-31T00:00:00Z', target: true });
    expect(names(vmBinding([stale, target({ activated: 'node2' })]))).toEqual({ active: 'virt-launcher-vm1-dst' });
  });
});

describe('bindingNodes', () => {
  it('lists the serving node first, then the pending target\'s', () => {
    expect(bindingNodes(vmBinding([target(), source()]) as VmBinding)).toEqual(['node1', 'node2']);
    expect(bindingNodes(vmBinding([source({ node: 'node3' }), target({ node: 'node1' })]) as VmBinding)).toEqual(['node3', 'node1']);
    expect(bindingNodes(vmBinding([source()]) as VmBinding)).toEqual(['node1']);
  });
});

describe('migrationOptions', () => {
  it('requests no chassis for none, one for one, and a list with the RARP activation for two', () => {
    expect(migrationOptions([])).toEqual({});
    expect(migrationOptions(['ch-a'])).toEqual({ 'requested-chassis': 'ch-a' });
    expect(migrationOptions(['ch-a', 'ch-b'])).toEqual({ 'requested-chassis': 'ch-a,ch-b', 'activation-strategy': 'rarp' });
  });
});

describe('VmPodIndex / vmPods', () => {
  it('groups pods by VM and namespace; pods of no VM are not in it', () => {
    const a = source();
    const b = target();
    const other = pod('virt-launcher-vm1-x', { ns: 'prod' });
    const plain = pod('web', { vm: '' });
    const index = new VmPodIndex([a, plain, b, other]);
    expect(index.pods({ namespace: 'default', name: 'vm1' })).toEqual([a, b]);
    expect(index.pods({ namespace: 'prod', name: 'vm1' })).toEqual([other]);
    expect(index.pods({ namespace: 'default', name: 'web' })).toEqual([]);
    expect([...index.vms()].sort()).toEqual(['default/vm1', 'prod/vm1']);

    const store = new MemoryStore();
    for (const p of [a, plain, b, other]) store.apply(p);
    expect(vmPods(store, { namespace: 'default', name: 'vm1' }).map((p) => p.metadata.name)).toEqual(['virt-launcher-vm1-dst', 'virt-launcher-vm1-src']);
  });
});

describe('vmAddressOf', () => {
  const allocated = (provider: string, ip: string, mac: string): Record<string, string> => ({
    [`${provider}.kubernetes.io/allocated`]: 'true', [`${provider}.kubernetes.io/ip_address`]: ip, [`${provider}.kubernetes.io/mac_address`]: mac,
  });

  it('is the MAC and addresses a live sibling holds for the provider', () => {
    const src = source({ annotations: { ...allocated('ovn', '10.16.0.5, fd00::5', '0a:58:0a:10:00:05'), ...allocated('net1.default.ovn', '10.18.0.7', '0a:58:0a:12:00:07') } });
    const dst = target();
    expect(vmAddressOf([src, dst], dst.metadata, 'ovn')).toEqual({ mac: '0a:58:0a:10:00:05', ips: ['10.16.0.5', 'fd00::5'] });
    expect(vmAddressOf([src, dst], dst.metadata, 'net1.default.ovn')).toEqual({ mac: '0a:58:0a:12:00:07', ips: ['10.18.0.7'] });
    expect(vmAddressOf([src, dst], dst.metadata, 'net2.default.ovn')).toBeUndefined();
  });

  it('ignores the pod itself, siblings being deleted or finished, and unallocated or incomplete ones', () => {
    const mine = allocated('ovn', '10.16.0.5', '0a:58:0a:10:00:05');
    const self = target({ annotations: mine });
    expect(vmAddressOf([self], self.metadata, 'ovn')).toBeUndefined();
    expect(vmAddressOf([source({ deleting: true, annotations: mine }), self], self.metadata, 'ovn')).toBeUndefined();
    expect(vmAddressOf([source({ finished: true, annotations: mine }), self], self.metadata, 'ovn')).toBeUndefined();
    expect(vmAddressOf([source({ annotations: { ...mine, 'ovn.kubernetes.io/allocated': 'false' } }), self], self.metadata, 'ovn')).toBeUndefined();
    const { 'ovn.kubernetes.io/mac_address': _mac, ...noMac } = mine;
    expect(vmAddressOf([source({ annotations: noMac }), self], self.metadata, 'ovn')).toBeUndefined();
    expect(vmAddressOf([source({ annotations: { ...mine, 'ovn.kubernetes.io/ip_address': ' , ' } }), self], self.metadata, 'ovn')).toBeUndefined();
  });

  it('takes the newest live holder with a complete record, falling back to an older one', () => {
    const self = target({ createdAt: T2 });
    const older = pod('virt-launcher-vm1-old', { node: 'node3', createdAt: '2025-12-01T00:00:00Z', annotations: allocated('ovn', '10.16.0.4', '0a:58:0a:10:00:04') });
    const newer = source({ annotations: allocated('ovn', '10.16.0.5', '0a:58:0a:10:00:05') });
    expect(vmAddressOf([older, newer, self], self.metadata, 'ovn')?.ips).toEqual(['10.16.0.5']);
    const incomplete = source({ annotations: { 'ovn.kubernetes.io/allocated': 'true', 'ovn.kubernetes.io/mac_address': '0a:58:0a:10:00:05' } });
    expect(vmAddressOf([older, incomplete, self], self.metadata, 'ovn')?.ips).toEqual(['10.16.0.4']);
  });
});
