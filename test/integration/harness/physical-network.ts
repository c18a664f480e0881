// A "physical network" for underlay tests: a network namespace the test creates, holding a switch
// (a private ovsdb-server + ovs-vswitchd on the userspace datapath, see private-vswitchd.ts: this
// kernel has neither 8021q nor bridge VLAN filtering, and OVS tags in userspace) whose trunk ports
// lead to the nodes' uplinks (veth pairs), and a router: an access port of one VLAN (an OVS
// internal port, i.e. a tap device in this namespace) holding the gateway address. Everything is
// removed by destroy(), processes by pid.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import type { NetnsSet } from './netns';
import { PrivateVswitchd } from './private-vswitchd';

const BRIDGE = 'physw';

export class PhysicalNetwork {
  readonly ns: string;
  private readonly ovs: PrivateVswitchd;
  private readonly captures = new Set<ChildProcess>();
  private seq = 0;

  constructor(private readonly netns: NetnsSet) {
    this.ns = netns.create('phys');
    this.ovs = new PrivateVswitchd({ netns: this.ns, dirPrefix: 'ovt-phys-' });
  }

  /** The switch's directory (database, sockets, pid files, logs). */
  get dir(): string { return this.ovs.dir; }

  vsctl(...args: string[]): Promise<string> {
    return this.ovs.vsctl(...args);
  }

  /** The switch, up and empty. */
  async start(): Promise<void> {
    await this.ovs.start();
    await this.vsctl('add-br', BRIDGE, '--', 'set', 'bridge', BRIDGE, 'datapath_type=netdev', 'fail-mode=standalone');
  }

  /**
   * A cable to a node: a veth whose end `name` is in the node's netns (its uplink, left down
   * and without addresses: the node's provider bridge takes it) and whose other end is a trunk
   * port of the switch. Returns the switch side's name (for captures).
   */
  async cable(nodeNs: string, name: string): Promise<string> {
    const here = `phy${++this.seq}${this.netns.prefix.slice(-4)}`;
    execFileSync('ip', ['-n', this.ns, 'link', 'add', 'name', here, 'type', 'veth', 'peer', 'name', name, 'netns', nodeNs]);
    execFileSync('ip', ['-n', this.ns, 'link', 'set', here, 'up']);
    await this.vsctl('add-port', BRIDGE, here);
    return here;
  }

  /** The router's interface on VLAN `vlan`: an access port (tag) holding `cidr` (e.g. 192.168.100.1/24). */
  async router(vlan: number, cidr: string): Promise<void> {
    const name = `rtr${vlan}`;
    await this.vsctl('add-port', BRIDGE, name, `tag=${vlan}`, '--', 'set', 'interface', name, 'type=internal');
    execFileSync('ip', ['-n', this.ns, 'addr', 'add', cidr, 'dev', name]);
    execFileSync('ip', ['-n', this.ns, 'link', 'set', name, 'up']);
  }

  /**
   * Starts tcpdump -e on a switch-side port and resolves once it listens; stop() returns what it
   * printed (one line per frame, with its 802.1Q tag when it has one).
   */
  async capture(port: string, filter: string[] = []): Promise<{ stop: () => Promise<string> }> {
    const child = spawn('ip', ['netns', 'exec', this.ns, 'tcpdump', '--immediate-mode', '-e', '-n', '-l', '-i', port, ...filter], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.captures.add(child);
    let out = '';
    let err = '';
    child.stdout?.on('data', (b: Buffer) => { out += b.toString(); });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tcpdump on ${port} did not start: ${err}`)), 10_000);
      child.stderr?.on('data', (b: Buffer) => { err += b.toString(); if (err.includes('listening on')) { clearTimeout(timer); resolve(); } });
      child.once('exit', () => { clearTimeout(timer); reject(new Error(`tcpdump on ${port} exited: ${err}`)); });
    });
    return {
      stop: async () => {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGINT');
        await exited;
        this.captures.delete(child);
        return out;
      },
    };
  }

  log(): string {
    return this.ovs.logTail();
  }

  async destroy(): Promise<void> {
    for (const c of this.captures) c.kill('SIGKILL');
    await this.ovs.destroy('SIGKILL');
    this.netns.remove(this.ns);
  }
}
