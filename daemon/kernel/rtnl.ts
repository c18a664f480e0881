// A narrow rtnetlink interface (links, addresses, routes) over the `netlink` package, bound to
// the network namespace its socket was created in. Everything the daemon does to the kernel on
// the ADD/DEL path goes through here: no `ip` commands.

import { createRtNetlink, FlagsNew, rt, type RtNetlinkSocket } from 'netlink';
import { formatIp, parseCidr, parseIp, type Family } from '../ipam/cidr';

export interface LinkInfo { index: number; name: string; mac: string; mtu: number; up: boolean }
export interface VethSpec {
  name: string;
  /** Host side's MAC, chosen by the caller so that no read-back is needed. */
  mac: string;
  mtu: number;
  peer: { name: string; mac: string; mtu: number; netnsFd: number };
}
export interface RouteSpec { dst: string; gateway?: string; oif: number }

export interface Rtnl {
  createVeth(spec: VethSpec): Promise<void>;
  getLink(name: string): Promise<LinkInfo | undefined>;
  /** Names of the links of one kind (IFLA_INFO_KIND, e.g. "veth"). */
  listLinkNames(kind: string): Promise<string[]>;
  setUp(index: number): Promise<void>;
  /** False when the link did not exist. */
  deleteLink(name: string): Promise<boolean>;
  addAddress(index: number, cidr: string): Promise<void>;
  listAddresses(index: number): Promise<string[]>;
  addRoute(route: RouteSpec): Promise<void>;
  /** False when there was no such route. */
  deleteRoute(route: RouteSpec): Promise<boolean>;
  listRoutes(family: Family): Promise<Array<{ dst: string; gateway?: string; oif?: number }>>;
  close(): void;
}

const IFLA = { address: 1, ifname: 3, mtu: 4, netNsFd: 28 } as const;
const AF = { 4: 2, 6: 10 } as const;
const ENODEV = /ENODEV|No such device/;

/** One netlink attribute: length, type, payload, padded to 4 bytes (netlink(7)). */
function nlattr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc(len + ((4 - (len % 4)) % 4));
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
const cstr = (s: string): Buffer => Buffer.from(`${s}\0`);
const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
export const macToBuffer = (mac: string): Buffer => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
export const bufferToMac = (b: Buffer | undefined): string => (b ? [...b].map((x) => x.toString(16).padStart(2, '0')).join(':') : '');

function ipToBuffer(ip: string): { family: Family; buf: Buffer } {
  const { family, value } = parseIp(ip);
  const len = family === 4 ? 4 : 16;
  const buf = Buffer.alloc(len);
  let v = value;
  for (let i = len - 1; i >= 0; i--) { buf[i] = Number(v & 0xffn); v >>= 8n; }
  return { family, buf };
}
function bufferToIp(b: Buffer): string {
  const value = [...b].reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
  return formatIp(b.length === 4 ? 4 : 6, value);
}

/** veth "peer" info is a struct ifinfomsg followed by link attributes (veth(4) / VETH_INFO_PEER). */
function vethLinkInfo(peer: VethSpec['peer']): Buffer {
  // The peer cannot be created up: veth configures it before the pair is linked, and opening a
  // veth without its peer fails (ENOTCONN). The host end can (it is configured last).
  const peerMsg = Buffer.concat([
    rt.formatLink({}),
    nlattr(IFLA.ifname, cstr(peer.name)),
    nlattr(IFLA.address, macToBuffer(peer.mac)),
    nlattr(IFLA.mtu, u32(peer.mtu)),
    nlattr(IFLA.netNsFd, u32(peer.netnsFd)),
  ]);
  return Buffer.concat([nlattr(1 /* IFLA_INFO_KIND */, cstr('veth')), nlattr(2 /* IFLA_INFO_DATA */, nlattr(1, peerMsg))]);
}

class NetlinkRtnl implements Rtnl {
  constructor(private readonly sock: RtNetlinkSocket) {}

  async createVeth(spec: VethSpec): Promise<void> {
    await this.sock.newLink({ flags: { up: true }, change: { up: true } }, { ifname: spec.name, address: macToBuffer(spec.mac), mtu: spec.mtu, linkinfo: vethLinkInfo(spec.peer) }, {
      flags: FlagsNew.CREATE | FlagsNew.EXCL,
    });
  }

  async getLink(name: string): Promise<LinkInfo | undefined> {
    try {
      const [msg] = await this.sock.getLink({}, { ifname: name });
      if (!msg) return undefined;
      return {
        index: msg.data.index ?? 0,
        name: msg.attrs.ifname ?? name,
        mac: bufferToMac(msg.attrs.address),
        mtu: msg.attrs.mtu ?? 0,
        up: Boolean(msg.data.flags?.up),
      };
    } catch (e) {
      if (ENODEV.test(String(e))) return undefined;
      throw e;
    }
  }

  async listLinkNames(kind: string): Promise<string[]> {
    const want = nlattr(1 /* IFLA_INFO_KIND */, cstr(kind));
    const links = await this.sock.getLinks();
    return links
      .filter((l) => l.attrs.linkinfo !== undefined && l.attrs.linkinfo.subarray(0, want.length).equals(want))
      .map((l) => l.attrs.ifname ?? '')
      .filter(Boolean);
  }

  async setUp(index: number): Promise<void> {
    await this.sock.setLink({ index, change: { up: true }, flags: { up: true } });
  }

  async deleteLink(name: string): Promise<boolean> {
    try {
      await this.sock.delLink({}, { ifname: name });
      return true;
    } catch (e) {
      if (ENODEV.test(String(e))) return false;
      throw e;
    }
  }

  async addAddress(index: number, cidrText: string): Promise<void> {
    const [ip, prefix] = cidrText.split('/');
    const { family, buf } = ipToBuffer(ip as string);
    // IPv6 addresses skip DAD: the address is ours by IPAM, and a tentative address would make
    // the pod wait ~1 s before it can use it.
    await this.sock.newAddress(
      { family: AF[family], prefixlen: Number(prefix), index, flags: family === 6 ? { nodad: true } : {} },
      { local: buf, address: buf },
      { flags: FlagsNew.CREATE | FlagsNew.REPLACE },
    );
  }

  async listAddresses(index: number): Promise<string[]> {
    const msgs = await this.sock.getAddresses();
    return msgs
      .filter((m) => m.data.index === index && (m.attrs.address || m.attrs.local))
      .filter((m) => !(m.data.family === AF[6] && (m.data.scope ?? 0) === 253)) // skip fe80:: link-local
      .map((m) => `${bufferToIp((m.attrs.local ?? m.attrs.address) as Buffer)}/${m.data.prefixlen}`);
  }

  async addRoute(route: RouteSpec): Promise<void> {
    const dst = parseCidr(route.dst);
    const attrs: rt.RouteAttrs = { oif: route.oif };
    if (dst.prefix > 0) attrs.dst = ipToBuffer(dst.text.split('/')[0] as string).buf;
    if (route.gateway) attrs.gateway = ipToBuffer(route.gateway).buf;
    await this.sock.newRoute(
      { family: AF[dst.family], dstLen: dst.prefix, table: 254, protocol: 'BOOT', scope: route.gateway ? 'UNIVERSE' : 'LINK', type: 'UNICAST' },
      attrs,
      { flags: FlagsNew.CREATE | FlagsNew.REPLACE },
    );
  }

  async deleteRoute(route: RouteSpec): Promise<boolean> {
    const dst = parseCidr(route.dst);
    const attrs: rt.RouteAttrs = { oif: route.oif };
    if (dst.prefix > 0) attrs.dst = ipToBuffer(dst.text.split('/')[0] as string).buf;
    if (route.gateway) attrs.gateway = ipToBuffer(route.gateway).buf;
    try {
      await this.sock.delRoute({ family: AF[dst.family], dstLen: dst.prefix, table: 254 }, attrs);
      return true;
    } catch (e) {
      if (/ESRCH|No such process/.test(String(e))) return false;
      throw e;
    }
  }

  async listRoutes(family: Family): Promise<Array<{ dst: string; gateway?: string; oif?: number }>> {
    const msgs = await this.sock.getRoutes({ family: AF[family] });
    return msgs
      .filter((m) => m.data.table === 254)
      .map((m) => {
        const dst = m.attrs.dst ? `${bufferToIp(m.attrs.dst)}/${m.data.dstLen}` : family === 4 ? '0.0.0.0/0' : '::/0';
        const out: { dst: string; gateway?: string; oif?: number } = { dst };
        if (m.attrs.gateway) out.gateway = bufferToIp(m.attrs.gateway);
        if (m.attrs.oif !== undefined) out.oif = m.attrs.oif;
        return out;
      });
  }

  close(): void { this.sock.socket.close(); }
}

/** Opens an rtnetlink socket in the calling thread's current netns. */
export function openRtnl(): Rtnl {
  return new NetlinkRtnl(createRtNetlink());
}
