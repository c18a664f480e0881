// SubnetRoutes against a fake routing table (unit): it adds what subnets want via the join
// gateway, removes only its own kind of route (through the node port, not the join network's),
// folds bursts into one pass, and survives a failed pass.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { RouteSpec } from '../../../../daemon/kernel/rtnl';
import { SubnetRoutes } from '../../../../daemon/node/subnet-routes';

interface Route { dst: string; gateway?: string; oif?: number }

function fakeRtnl(initial: Route[]) {
  const table: Route[] = [...initial];
  const calls: string[] = [];
  let failNext = false;
  return {
    table, calls,
    failOnce: () => { failNext = true; },
    getLink: async (name: string) => (name === 'ovn0' ? { index: 7, name, mac: '', mtu: 1400, up: true } : undefined),
    listRoutes: async (family: 4 | 6) => { calls.push('list'); return table.filter((r) => r.dst.includes(':') === (family === 6)).map((r) => ({ ...r })); },
    addRoute: async (r: RouteSpec) => {
      if (failNext) { failNext = false; throw new Error('EPERM'); }
      calls.push(`add ${r.dst}`);
      table.push({ dst: r.dst, oif: r.oif, ...(r.gateway ? { gateway: r.gateway } : {}) });
    },
    deleteRoute: async (r: RouteSpec) => {
      calls.push(`del ${r.dst}`);
      const i = table.findIndex((x) => x.dst === r.dst && x.oif === r.oif);
      if (i < 0) return false;
      table.splice(i, 1);
      return true;
    },
  };
}

const log = pino({ enabled: false });
const opts = { device: 'ovn0', joinGateways: ['100.64.0.1'], joinCidrs: ['100.64.0.0/16'], log };

describe('SubnetRoutes (fake routing table)', () => {
  it('adds missing subnet routes, removes stale ones through the node port, leaves the rest', async () => {
    const rtnl = fakeRtnl([
      { dst: '100.64.0.0/16', oif: 7 }, // the join network: connected, not ours
      { dst: '10.16.0.0/16', gateway: '100.64.0.1', oif: 7 },
      { dst: '172.30.0.0/24', gateway: '100.64.0.1', oif: 7 }, // a Subnet that is gone
      { dst: '192.168.0.0/16', gateway: '10.0.0.1', oif: 2 }, // the node's own, another device
    ]);
    await new SubnetRoutes({ ...opts, rtnl }).sync(['10.16.0.0/16', '172.31.0.0/24', 'fd00:10:16::/64']);
    expect(rtnl.table.map((r) => `${r.dst} ${r.gateway ?? '-'} ${r.oif}`).sort()).toEqual([
      '10.16.0.0/16 100.64.0.1 7', '100.64.0.0/16 - 7', '172.31.0.0/24 100.64.0.1 7', '192.168.0.0/16 10.0.0.1 2',
    ]);
  });

  it('with an IPv6 join network, routes IPv6 subnets via its gateway and leaves link-local and the join routes alone', async () => {
    const rtnl = fakeRtnl([
      { dst: 'fd00:100:64::/112', oif: 7 }, // connected
      { dst: 'fe80::/64', oif: 7 }, // the kernel's link-local route on the device
      { dst: 'fd00:99::/64', gateway: 'fd00:100:64::1', oif: 7 }, // a Subnet that is gone
      { dst: '10.16.0.0/16', gateway: '100.64.0.1', oif: 7 },
    ]);
    const dual = { ...opts, joinGateways: ['100.64.0.1', 'fd00:100:64::1'], joinCidrs: ['100.64.0.0/16', 'fd00:100:64::/112'] };
    await new SubnetRoutes({ ...dual, rtnl }).sync(['10.16.0.0/16', 'fd00:10:16::/64']);
    expect(rtnl.table.map((r) => `${r.dst} ${r.gateway ?? '-'} ${r.oif}`).sort()).toEqual([
      '10.16.0.0/16 100.64.0.1 7', 'fd00:100:64::/112 - 7', 'fd00:10:16::/64 fd00:100:64::1 7', 'fe80::/64 - 7',
    ]);
  });

  it('replaces a route through the node port that has the wrong gateway', async () => {
    const rtnl = fakeRtnl([{ dst: '172.31.0.0/24', gateway: '100.64.9.9', oif: 7 }]);
    await new SubnetRoutes({ ...opts, rtnl }).sync(['172.31.0.0/24']);
    expect(rtnl.table).toEqual([{ dst: '172.31.0.0/24', gateway: '100.64.0.1', oif: 7 }]);
  });

  it('folds syncs made during a pass into one more pass with the latest list', async () => {
    const rtnl = fakeRtnl([]);
    const routes = new SubnetRoutes({ ...opts, rtnl });
    const first = routes.sync(['172.31.0.0/24']);
    void routes.sync(['172.31.1.0/24']);
    const last = routes.sync(['172.31.2.0/24']);
    await Promise.all([first, last]);
    expect(rtnl.table.map((r) => r.dst)).toEqual(['172.31.2.0/24']);
    expect(rtnl.calls.filter((c) => c === 'list').length).toBeLessThanOrEqual(2);
  });

  it('a failed pass is logged, and the next sync puts everything right', async () => {
    const rtnl = fakeRtnl([]);
    const routes = new SubnetRoutes({ ...opts, rtnl });
    rtnl.failOnce();
    await routes.sync(['172.31.0.0/24']);
    expect(rtnl.table).toEqual([]);
    await routes.sync(['172.31.0.0/24']);
    expect(rtnl.table.map((r) => r.dst)).toEqual(['172.31.0.0/24']);
  });
});
