// Interpretation of a transact reply (RFC 7047 §4.1.3): success only when no element carries an
// error, since ovsdb-server reports per-operation and commit failures inside a non-error reply.

import { OvsdbError } from '../../common/errors';
import type { Operation, OperationResult } from './types';

/** Checks a transact reply (§4.1.3): an error in element i < ops.length is operation i's; one past
 * the end is the commit's (constraint violations, referential integrity). */
export function checkTransactResult(ops: Operation[], result: unknown): OperationResult[] {
  if (!Array.isArray(result)) throw new OvsdbError('transact: malformed reply', { details: JSON.stringify(result) });
  const results = result as (OperationResult | null)[];
  const i = results.findIndex((r) => r !== null && typeof r === 'object' && r.error !== undefined);
  if (i >= 0) {
    const r = results[i] as OperationResult;
    const op = ops[i];
    const where = op ? `operation ${i} (${op.op}${'table' in op ? ` ${op.table}` : ''})` : 'commit';
    const why = r.details ? `${r.error}: ${r.details}` : String(r.error);
    throw new OvsdbError(`OVSDB transaction failed at ${where}: ${why}`, { details: JSON.stringify(r) });
  }
  return results.map((r) => r ?? {});
}
