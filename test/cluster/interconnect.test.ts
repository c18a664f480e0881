// Zones joining each other on the lab cluster (real kubelets, ovnode deployed with kubectl): every
// node publishes its contract on its Node object, every other node's southbound database holds it
// as a remote chassis with the Geneve encap it published, and that node's ovn-controller has built
// a Geneve tunnel to it, on the lab's overlay network (eth1, chosen with the ovnode-config
// ConfigMap) rather than the API's. Nothing here needs a controller: the daemons read each other's Nodes.
import { beforeAll, describe, expect, it } from 'vitest';
import { NODE_ANNOTATION } from '../../daemon/cluster/node-contract';
import { kubectlJson, readLab, type KubeObject } from './harness/lab';
import { deployOvnode, sbctl, vsctl } from './harness/ovnode';

beforeAll(async () => {
  await deployOvnode();
}, 600_000);

describe('interconnect: zones join through their Node objects (real lab cluster)', () => {
  it('each node publishes its chassis, encap address and zone (contract version 1) on its Node', async () => {
    for (const n of readLab().nodes) {
      const node = await kubectlJson<KubeObject>(['get', 'node', n.name]);
      const ann = node.metadata.annotations ?? {};
      expect(ann[NODE_ANNOTATION.version], n.name).toBe('1');
      expect(ann[NODE_ANNOTATION.minReader], `${n.name}: readable by version 1 readers`).toBe('1');
      expect(ann[NODE_ANNOTATION.chassis], n.name).toBe(n.name);
      expect(ann[NODE_ANNOTATION.encapIp], n.name).toBe(n.overlayIp); // eth1 (ovnode-config), not the API's eth0
      expect(ann[NODE_ANNOTATION.zone], n.name).toBe(n.name);
    }
  });

  it('each node\'s SB holds every other node as a remote chassis, and its ovn-controller tunnels to it', async () => {
    const nodes = readLab().nodes;
    for (const here of nodes) {
      const rows = (await sbctl(here.name, ['--bare', '--columns=name,other_config', 'list', 'Chassis'])).trim().split(/\n\n+/);
      const chassis = new Map(rows.map((r) => { const [name, other] = r.split('\n'); return [name?.trim() ?? '', other ?? ''] as const; }));
      expect([...chassis.keys()].sort(), here.name).toEqual(nodes.map((n) => n.name).sort());
      expect(chassis.get(here.name), `${here.name}: its own chassis`).not.toMatch(/is-remote=true/);
      for (const other of nodes.filter((n) => n !== here)) {
        expect(chassis.get(other.name), `${here.name} sees ${other.name}`).toMatch(/is-remote=true/);
        const encap = (await sbctl(here.name, ['--bare', '--columns=ip', 'find', 'Encap', `chassis_name=${other.name}`])).trim();
        expect(encap, `${here.name}: encap of ${other.name}`).toBe(other.overlayIp);
      }
      // ovn-controller's tunnel port to each peer (its name is ovn-controller's choice: ovn-<id>-0,
      // or ovn0-<id>-0 once it has run with a chassis index): a geneve interface ending there.
      for (const other of nodes.filter((n) => n !== here)) {
        const t0 = Date.now();
        let names = '';
        while (Date.now() - t0 < 30_000) {
          names = (await vsctl(here.name, ['--bare', '--columns=name', 'find', 'Interface', 'type=geneve', `options:remote_ip=${other.overlayIp}`])).trim();
          if (names !== '') break;
          await new Promise((r) => setTimeout(r, 250));
        }
        expect(names, `${here.name}: a Geneve tunnel to ${other.name} (${other.overlayIp})`).toMatch(new RegExp(`^ovn\\d*-${other.name.slice(0, 6)}-`));
      }
    }
  });
});
