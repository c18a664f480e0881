// Rows of a monitored table by a column the schema indexes uniquely (NB Port_Group, Address_Set
// and Logical_Switch_Port names, SB Port_Binding logical_port), following the monitor's row
// changes, which are complete (a resync after a reconnect is published as changes too): a caller
// looks a few rows up without walking every row of their table.

import type { OvsdbClient } from './client';
import type { Row } from './values';

export class UniqueIndex {
  #byKey: Map<string, string> | undefined;
  readonly #onChange = (table: string, uuid: string, old: Row | undefined, next: Row | undefined): void => {
    if (table !== this.table || !this.#byKey) return;
    const oldKey = old?.[this.column] as string | undefined;
    // Within one update a row may be deleted after another took its key: only drop our own.
    if (oldKey !== undefined && this.#byKey.get(oldKey) === uuid) this.#byKey.delete(oldKey);
    if (next) this.#byKey.set(next[this.column] as string, uuid);
  };

  constructor(private readonly client: Pick<OvsdbClient, 'rows' | 'on' | 'off'>, private readonly table: string, private readonly column = 'name') {}

  get(key: string): Row | undefined {
    // Built on first use, so it never depends on whether the monitor was set up before it.
    if (!this.#byKey) {
      this.#byKey = new Map([...this.client.rows(this.table).values()].map((r) => [r[this.column] as string, r._uuid]));
      this.client.on('change', this.#onChange);
    }
    const id = this.#byKey.get(key);
    return id === undefined ? undefined : this.client.rows(this.table).get(id);
  }

  close(): void {
    this.client.off('change', this.#onChange);
    this.#byKey = undefined;
  }
}
