// An OVSDB insert whose undo must hold whatever happened to it. The undo is registered before
// the write is sent; when it runs it knows whether the write committed (delete that row by UUID),
// was refused or never sent (nothing to do), or has an unknown outcome (wait for the reconnect,
// whose monitor resync shows the truth, and delete the rows this attachment owns). Row UUIDs and
// sandbox-derived owner checks mean an undo never touches a row a newer sandbox wrote.

import type { Logger } from 'pino';
import { OvsdbOutcomeUnknownError, OvsdbUnavailableError } from '../../common/errors';
import type { OvsdbClient } from '../ovsdb/client';

type WriteState = 'idle' | 'sent' | 'committed' | 'not-committed' | 'unknown';

export class TrackedWrite {
  private state: WriteState = 'idle';
  private rowUuid: string | undefined;

  /** Runs the write; fn resolves with the inserted row's UUID. */
  async run(fn: () => Promise<string>): Promise<string> {
    this.state = 'sent';
    try {
      this.rowUuid = await fn();
      this.state = 'committed';
      return this.rowUuid;
    } catch (e) {
      // A transaction the server answered with an error is atomic: nothing of it committed.
      this.state = e instanceof OvsdbOutcomeUnknownError ? 'unknown' : 'not-committed';
      throw e;
    }
  }

  get outcome(): { state: WriteState; rowUuid?: string } {
    return this.rowUuid === undefined ? { state: this.state } : { state: this.state, rowUuid: this.rowUuid };
  }
}

export interface RowRemoval {
  client: OvsdbClient;
  /** UUIDs of the rows this attachment owns now, read from the (resynced) cache. */
  findOwn(): string[];
  /** Deletes these rows in one transaction; idempotent. */
  remove(uuids: string[]): Promise<void>;
  /** How long to wait for the database to come back before leaving it to the reconcile loop. */
  reconnectTimeoutMs?: number;
}

const ATTEMPTS = 3;

/**
 * Undoes a tracked write; resolves true once the server confirmed that none of this
 * attachment's rows remain, false when that could not be confirmed (the reconcile loop removes
 * them later, and whatever they reference, addresses included, stays held until then).
 */
export async function undoTrackedWrite(write: TrackedWrite, removal: RowRemoval, log: Logger): Promise<boolean> {
  const { state, rowUuid } = write.outcome;
  if (state === 'idle' || state === 'not-committed') return true;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      // After an unknown outcome the connection was lost: connect() resolves only once the
      // monitors have resynced, so the cache then shows whether the write committed.
      await removal.client.connect(AbortSignal.timeout(removal.reconnectTimeoutMs ?? 10_000));
      const uuids = state === 'committed' && rowUuid !== undefined ? [rowUuid] : removal.findOwn();
      if (uuids.length > 0) await removal.remove(uuids);
      return true;
    } catch (e) {
      const retry = e instanceof OvsdbOutcomeUnknownError || e instanceof OvsdbUnavailableError;
      log.warn({ step: 'rollback', attempt, err: e }, retry ? 'rollback write outcome unknown, retrying' : 'rollback write failed');
      if (!retry) return false;
    }
  }
  return false;
}
