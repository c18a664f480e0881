// SubnetRegistry.rebuildFromNb: the addresses of every port of a switch are held in its pool, so
// no ADD hands one out again; except the ports this zone holds for other nodes' pods (marked with
// the peer's node, VIF type like a local pod's), whose addresses belong to their nodes' blocks.
import { describe, expect, it } from 'vitest';
import { portHolder } from '../../../../daemon/ipam/pool';
import { SubnetRegistry } from '../../../../daemon/ipam/registry';
import type { OvsdbClient } from '../../../../daemon/ovsdb/client';
import type { Row } from '../../../../daemon/ovsdb/values';

/** The monitor cache's view of an NB: decoded rows (sets as arrays, maps as records) by table and uuid. */
function nbOf(tables: Record<string, Row[]>): OvsdbClient {
  return { rows: (table: string) => new Map((tables[table] ?? []).map((r) => [r._uuid, r])) } as unknown as OvsdbClient;
}

const lsp = (uuid: string, name: string, address: string, ids: Record<string, string>): Row => ({ _uuid: uuid, name, type: '', addresses: [address], external_ids: ids });

describe('SubnetRegistry.rebuildFromNb', () => {
  it('holds the addresses of the node\'s own ports, not those of ports it keeps for other nodes', () => {
    const registry = new SubnetRegistry('ovn-default');
    const pool = registry.add({ name: 'ovn-default', cidrs: ['10.16.0.0/16'] });
    const nb = nbOf({
      Logical_Switch: [{ _uuid: 'ls', name: 'ovn-default', ports: ['local', 'remote', 'other'] }],
      Logical_Switch_Port: [
        lsp('local', 'web.default', '0a:58:0a:10:00:05 10.16.0.5', { 'ovnode:owner': 'ovnode', sandbox: 'abc' }),
        lsp('remote', 'db.default', '0a:58:0a:10:00:06 10.16.0.6', { 'ovnode:remote-node': 'node2', 'ovnode:pod': 'default/db' }),
        lsp('other', 'vm1', '0a:58:0a:10:00:07 10.16.0.7', {}),
      ],
    });
    expect(registry.rebuildFromNb(nb)).toBe(2);
    expect(pool.ownerOf('10.16.0.5')).toBe(portHolder('web.default', 'abc'));
    expect(pool.ownerOf('10.16.0.6'), 'another node\'s pod: held in its node\'s block, not here').toBeUndefined();
    expect(pool.ownerOf('10.16.0.7'), 'a port another controller added').toBe('vm1');
  });
});
