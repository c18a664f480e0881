// STATUS (CNI 1.1): can this node serve ADD right now?

import { NoIpAvailableError, NotAvailableError } from '../../common/errors';
import type { RequestContext } from '../context';

export async function cmdStatus({ deps }: RequestContext): Promise<void> {
  const r = deps.readiness();
  if (!r.ready) throw new NotAvailableError(`ovnoded is not ready: ${r.reason ?? 'starting'}`);
  const pool = deps.subnets.get(deps.subnets.defaultSwitch);
  if (pool.families.every((f) => pool.stats(f).free <= 0n)) {
    throw new NoIpAvailableError(`subnet ${pool.name} has no free address`);
  }
}
