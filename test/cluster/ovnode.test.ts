// ovnode on the real lab cluster: kubelet -> containerd -> the ovnode CNI executable -> ovnoded,
// deployed with `kubectl apply -f deploy/`. Pods created with kubectl get their addresses from
// ovnode (annotations = kernel = NB, claims consistent), talk to each other on a node, are
// reached by their node (their ports prepared before their ADDs), obey a NetworkPolicy and a label change, and leave nothing when deleted.
// The ovnode pod's restart keeps an established TCP stream and writes no NB transaction.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { apply, kubectl, kubectlJson, kubectlOk, type KubeObject, nodeExec, readLab, waitForDeleted, waitForNodeReady, waitForPodReady } from './harness/lab';
import { daemonPod, httpFrom, nbctl, pingFrom, podExec, SYSTEM_NS, testPod, useTestNamespace, vsctl, waitDaemonSetReady } from './harness/ovnode';

const NS = useTestNamespace('ovt');
const NODES = ['node1', 'node2'];

interface PodInfo { name: string; node: string; ip: string; mac: string; obj: KubeObject }
const pods = new Map<string, PodInfo>();

async function podInfo(name: string): Promise<PodInfo> {
  const obj = await kubectlJson<KubeObject>(['-n', NS, 'get', 'pod', name]);
  const ann = obj.metadata.annotations ?? {};
  return { name, node: obj.spec.nodeName, ip: ann['ovn.kubernetes.io/ip_address'], mac: ann['ovn.kubernetes.io/mac_address'], obj };
}


describe('ovnode deployed on the lab cluster (kubelet -> containerd -> CNI -> ovnoded)', () => {
  it('both DaemonSets run on every node, nodes are Ready, and the conflist was written only once the daemon served', async () => {
    for (const node of NODES) {
      await waitForNodeReady(node, 120_000);
      const nodeObj = await kubectlJson<KubeObject>(['get', 'node', node]);
      const unavailable = (nodeObj.status.conditions as KubeObject[]).find((c) => c.type === 'NetworkUnavailable');
      expect(unavailable, `${node} NetworkUnavailable`).toMatchObject({ status: 'False', reason: 'OvnodeReady' });
      const daemon = await daemonPod('ovnode', node);
      const logs = await kubectlOk(['-n', SYSTEM_NS, 'logs', daemon.metadata.name], { timeoutMs: 30_000 });
      const lines = logs.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; time: string });
      const synced = lines.find((l) => l.msg === 'watches synced');
      const rebuilt = lines.find((l) => l.msg === 'state rebuilt from OVSDB');
      const installed = lines.find((l) => l.msg === 'CNI plugin and configuration installed');
      expect(synced && rebuilt && installed, `log of ${daemon.metadata.name}:\n${logs.slice(-3000)}`).toBeTruthy();
      expect(Date.parse(String(installed?.time))).toBeGreaterThanOrEqual(Date.parse(String(rebuilt?.time)));
      const conf = await nodeExec(node, ['cat', '/etc/cni/net.d/10-ovnode.conflist']);
      expect(JSON.parse(conf.stdout)).toMatchObject({ cniVersion: '1.0.0', plugins: [{ type: 'ovnode', daemonSocket: '/run/ovnode/ovnoded.sock' }] });
      expect((await nodeExec(node, ['test', '-x', '/opt/cni/bin/ovnode'])).code).toBe(0);
    }
  });

  it('pods created at once, two per node, get distinct addresses: annotations = kernel = NB, inside their node\'s claimed blocks', async () => {
    const names = ['a1', 'a2', 'b1', 'b2'];
    const nodeOf: Record<string, string> = { a1: 'node1', a2: 'node1', b1: 'node2', b2: 'node2' };
    await apply({ apiVersion: 'v1', kind: 'List', items: names.map((n) => testPod({ name: n, namespace: NS, node: nodeOf[n] as string, labels: { app: n } })) });
    await Promise.all(names.map((n) => waitForPodReady(NS, n, 180_000)));
    for (const n of names) pods.set(n, await podInfo(n));
    const ips = names.map((n) => pods.get(n)?.ip);
    expect(new Set(ips).size, `addresses ${ips.join(' ')}`).toBe(4);
    const claims = (await kubectlJson<{ items: KubeObject[] }>(['get', 'ipclaims'])).items;
    for (const n of names) {
      const p = pods.get(n) as PodInfo;
      expect(p.obj.metadata.annotations).toMatchObject({
        'ovn.kubernetes.io/allocated': 'true', 'ovn.kubernetes.io/logical_switch': 'ovn-default',
        'ovn.kubernetes.io/cidr': '10.16.0.0/16', 'ovn.kubernetes.io/gateway': '10.16.0.1',
      });
      expect(p.obj.status.podIP, 'the runtime reports the CNI result').toBe(p.ip);
      const kernel = await podExec(NS, n, ['ip', '-o', 'addr', 'show', 'eth0']);
      expect(kernel.stdout).toContain(`inet ${p.ip}/16`);
      const link = await podExec(NS, n, ['cat', '/sys/class/net/eth0/address']);
      expect(link.stdout.trim()).toBe(p.mac);
      const nb = await nbctl(p.node, ['lsp-get-addresses', `${n}.${NS}`]);
      expect(nb.trim()).toBe(`${p.mac} ${p.ip}`);
      const block = claims.find((c) => c.spec.kind === 'block' && c.spec.node === p.node && inCidr(p.ip, c.spec.cidr as string));
      expect(block, `a block claim of ${p.node} holding ${p.ip}`).toBeTruthy();
    }
  });

  it('each pod\'s port was prepared when it was scheduled, before its ADD, which took it over with the same addresses', async () => {
    for (const node of NODES) {
      const daemon = await daemonPod('ovnode', node);
      const logs = await kubectlOk(['-n', SYSTEM_NS, 'logs', daemon.metadata.name], { timeoutMs: 30_000 });
      const lines = logs.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; time: string; lsp?: string; ips?: string[] });
      for (const p of [...pods.values()].filter((x) => x.node === node)) {
        const lsp = `${p.name}.${NS}`;
        const preparedLine = lines.find((l) => l.msg === 'port prepared' && l.lsp === lsp);
        const attachedLine = lines.find((l) => l.msg === 'attached' && l.lsp === lsp);
        expect(preparedLine && attachedLine, `${node}: 'port prepared' and 'attached' for ${lsp}`).toBeTruthy();
        expect(Date.parse(String(preparedLine?.time))).toBeLessThanOrEqual(Date.parse(String(attachedLine?.time)));
        expect(attachedLine?.ips).toEqual(preparedLine?.ips);
        const ids = JSON.parse(await nbctl(node, ['--format=json', '--columns=external_ids', 'find', 'Logical_Switch_Port', `name=${lsp}`])) as { data: unknown[][] };
        const map = Object.fromEntries(((ids.data[0]?.[0] as [string, string[][]])?.[1] ?? []) as Array<[string, string]>);
        expect(map['ovnode:prepared'], `${lsp}: the ADD's row replaced the prepared one`).toBeUndefined();
        expect(map.sandbox, `${lsp}: sandbox recorded`).toBeTruthy();
      }
    }
  });

  it('pods on one node reach each other (ICMP and TCP) and their node reaches them', async () => {
    const [a1, a2] = [pods.get('a1') as PodInfo, pods.get('a2') as PodInfo];
    expect(await pingFrom(NS, 'a1', a2.ip)).toBe(true);
    expect(await httpFrom(NS, 'a1', a2.ip)).toBe('ok');
    expect(await httpFrom(NS, 'b1', (pods.get('b2') as PodInfo).ip)).toBe('ok');
    expect((await nodeExec('node1', ['ping', '-c', '2', '-W', '1', a1.ip])).code).toBe(0);
  });

  it('a NetworkPolicy and a pod label change through the API reach the datapath', async () => {
    const a2 = pods.get('a2') as PodInfo;
    await apply({
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'only-friends', namespace: NS },
      spec: { podSelector: { matchLabels: { app: 'a2' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { friend: 'yes' } } }] }] },
    });
    await expectEventually(async () => (await httpFrom(NS, 'a1', a2.ip)) === '', 'a1 -> a2 dropped by the policy');
    await kubectlOk(['-n', NS, 'label', 'pod', 'a1', 'friend=yes']);
    await expectEventually(async () => (await httpFrom(NS, 'a1', a2.ip)) === 'ok', 'a1 -> a2 allowed once a1 is a friend');
    await kubectlOk(['-n', NS, 'label', 'pod', 'a1', 'friend-']);
    await expectEventually(async () => (await httpFrom(NS, 'a1', a2.ip)) === '', 'a1 -> a2 dropped again');
    await kubectlOk(['-n', NS, 'delete', 'networkpolicy', 'only-friends']);
    await expectEventually(async () => (await httpFrom(NS, 'a1', a2.ip)) === 'ok', 'a1 -> a2 allowed once the policy is gone');
  });

  it('restarting the ovnode pod keeps an established TCP stream, writes no NB transaction, and writes back a lost annotation', async () => {
    const a2 = pods.get('a2') as PodInfo;
    const before = await nbSize('node1');
    // One TCP connection a1 -> a2:9000 (echo), a line every 100 ms, for the whole restart.
    const lab = readLab();
    const stream = spawn(lab.kubectl, ['--kubeconfig', lab.kubeconfig, 'exec', '-n', NS, 'a1', '--', 'sh', '-c',
      `i=0; while [ $i -lt 150 ]; do echo line$i; i=$((i+1)); sleep 0.1; done | nc ${a2.ip} 9000`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let echoed = '';
    stream.stdout.on('data', (b: Buffer) => { echoed += b.toString(); });
    const ended = new Promise<number | null>((r) => stream.once('close', (code) => r(code)));
    await expectEventually(async () => echoed.includes('line5'), 'the stream runs');
    // An annotation lost while no daemon ran (say, a crash between an ADD and its write-back):
    // the restarted daemon writes it back from the NB, its record.
    await kubectlOk(['-n', NS, 'annotate', 'pod', 'a2', 'ovn.kubernetes.io/gateway-']);
    const old = await daemonPod('ovnode', 'node1');
    await kubectlOk(['-n', SYSTEM_NS, 'delete', 'pod', old.metadata.name, '--wait=true'], { timeoutMs: 120_000 });
    await waitDaemonSetReady('ovnode', 180_000);
    const code = await ended;
    const got = echoed.split('\n').filter((l) => l.startsWith('line'));
    expect(code, 'the stream ended normally').toBe(0);
    expect(got.length, `echoed lines: ${got.length}`).toBe(150);
    expect(await nbSize('node1'), 'the NB database file did not grow: no transaction').toBe(before);
    await expectEventually(async () => (await podInfo('a2')).obj.metadata.annotations['ovn.kubernetes.io/gateway'] === '10.16.0.1', 'a2\'s gateway annotation written back');
    // The new daemon serves: a new pod on node1 gets networked.
    await apply(testPod({ name: 'a3', namespace: NS, node: 'node1' }));
    await waitForPodReady(NS, 'a3', 120_000);
    expect(await pingFrom(NS, 'a3', (pods.get('a1') as PodInfo).ip)).toBe(true);
  });

  it('a pod deleted with kubectl leaves no veth, OVS port, LSP or address', async () => {
    const b1 = pods.get('b1') as PodInfo;
    await kubectlOk(['-n', NS, 'delete', 'pod', 'b1', '--wait=true'], { timeoutMs: 120_000 });
    await waitForDeleted('pod/b1', { namespace: NS });
    await expectEventually(async () => !(await nbctl('node2', ['--bare', '--columns=name', 'find', 'Logical_Switch_Port', `name=b1.${NS}`])).trim(), 'LSP gone');
    const ports = await vsctl('node2', ['--bare', '--columns=external_ids', 'find', 'Interface', `external_ids:iface-id=b1.${NS}`]);
    expect(ports.trim()).toBe('');
    const addrs = await nbctl('node2', ['--bare', '--columns=addresses', 'list', 'Logical_Switch_Port']);
    expect(addrs).not.toContain(` ${b1.ip}\n`);
    const links = await nodeExec('node2', ['ip', '-o', 'link', 'show']);
    const veths = links.stdout.split('\n').filter((l) => /\d+: [0-9a-f]{12}_h[@:]/.test(l));
    expect(veths.length, `host veths on node2: ${veths.join('\n')}`).toBe(1); // b2's
  });
});

async function nbSize(node: string): Promise<number> {
  const r = await nodeExec(node, ['stat', '-c', '%s', '/var/lib/ovnode/ovn/nb.db']);
  return Number(r.stdout.trim());
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, bits] = cidr.split('/');
  const toNum = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const mask = Number(bits) === 0 ? 0 : 2 ** 32 - 2 ** (32 - Number(bits));
  return (toNum(ip) & mask) >>> 0 === (toNum(net as string) & mask) >>> 0;
}

/**
 * Retries `check` for up to 20 s. Most checks are real exchanges (kubectl exec, up to 2 s each);
 * the pause between tries lets I/O events in when a check only reads state.
 */
async function expectEventually(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`not reached within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
