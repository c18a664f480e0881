// Rollback of a partially done operation: each side effect pushes its inverse; on failure the
// stack unwinds in reverse order, and an inverse that fails is logged, not allowed to mask the
// original error.

import type { Logger } from 'pino';

export class UndoStack {
  private readonly steps: Array<{ what: string; undo: () => Promise<unknown> | unknown }> = [];

  constructor(private readonly log: Logger) {}

  push(what: string, undo: () => Promise<unknown> | unknown): void {
    this.steps.push({ what, undo });
  }

  async unwind(): Promise<void> {
    while (this.steps.length > 0) {
      const { what, undo } = this.steps.pop() as (typeof this.steps)[number];
      try {
        await undo();
        this.log.info({ step: 'rollback', undone: what }, 'rolled back');
      } catch (e) {
        this.log.error({ step: 'rollback', undone: what, err: String(e) }, 'rollback step failed');
      }
    }
  }
}
