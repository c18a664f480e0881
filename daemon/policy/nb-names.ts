// Rows of a monitored NB table by name (Port_Group and Address_Set names are unique indexes in
// the NB schema), following the monitor's row changes, which are complete (a resync after a
// reconnect is published as changes too): the ADD path looks a few groups and sets up without
// walking every row of their tables.

import type { OvsdbClient } from '../ovsdb/client';
import type { Row } from '../ovsdb/values';

export class NbNameIndex {
  #byName: Map<string, string> | undefined;
  readonly #onChange = (table: string, uuid: string, old: Row | undefined, next: Row | undefined): void => {
    if (table !== this.table || !this.#byName) return;
    const oldName = old?.name as string | undefined;
    // Within one update a row may be deleted after another took its name: only drop our own.
    if (oldName !== undefined && this.#byName.get(oldName) === uuid) this.#byName.delete(oldName);
    if (next) this.#byName.set(next.name as string, uuid);
  };

  constructor(private readonly nb: OvsdbClient, private readonly table: string) {}

  get(name: string): Row | undefined {
    // Built on first use, so it never depends on whether the monitor was set up before it.
    if (!this.#byName) {
      this.#byName = new Map([...this.nb.rows(this.table).values()].map((r) => [r.name as string, r._uuid]));
      this.nb.on('change', this.#onChange);
    }
    const id = this.#byName.get(name);
    return id === undefined ? undefined : this.nb.rows(this.table).get(id);
  }

  close(): void {
    this.nb.off('change', this.#onChange);
    this.#byName = undefined;
  }
}
