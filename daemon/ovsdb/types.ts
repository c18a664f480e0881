// Typed OVSDB transaction operations and their results (RFC 7047 §5.2), plus the monitor
// request shapes (§4.1.5, ovsdb-server(7) §4.1.12 for monitor_cond).

import type { Value } from './values';

/** <function> of a condition (RFC 7047 §5.1); includes/excludes apply to sets and maps. */
export type ConditionFunction = '<' | '<=' | '==' | '!=' | '>=' | '>' | 'includes' | 'excludes';
/** <condition>: [column, function, value] (RFC 7047 §5.1). */
export type Condition = [column: string, fn: ConditionFunction, value: Value];

/** <mutator> (RFC 7047 §5.1): arithmetic on integers/reals, insert/delete on sets and maps. */
export type Mutator = '+=' | '-=' | '*=' | '/=' | '%=' | 'insert' | 'delete';
/** <mutation>: [column, mutator, value]. */
export type Mutation = [column: string, mutator: Mutator, value: Value];

/** A row as sent on the wire: column name to <value>. */
export type WireRow = Record<string, Value>;

/** §5.2.1: the new row gets a fresh UUID; uuid-name lets other operations refer to it. */
export interface InsertOperation { op: 'insert'; table: string; row: WireRow; 'uuid-name'?: string }
/** §5.2.2 */
export interface SelectOperation { op: 'select'; table: string; where: Condition[]; columns?: string[] }
/** §5.2.3 */
export interface UpdateOperation { op: 'update'; table: string; where: Condition[]; row: WireRow }
/** §5.2.4 */
export interface MutateOperation { op: 'mutate'; table: string; where: Condition[]; mutations: Mutation[] }
/** §5.2.5 */
export interface DeleteOperation { op: 'delete'; table: string; where: Condition[] }
/** §5.2.6: fails the transaction unless the selected rows compare as `until` to `rows`. */
export interface WaitOperation {
  op: 'wait';
  table: string;
  where: Condition[];
  columns: string[];
  until: '==' | '!=';
  rows: WireRow[];
  timeout?: number;
}
/** §5.2.7 */
export interface CommitOperation { op: 'commit'; durable: boolean }
/** §5.2.8 */
export interface AbortOperation { op: 'abort' }
/** §5.2.9: recorded in the database log, useful to tell who wrote what. */
export interface CommentOperation { op: 'comment'; comment: string }
/** §5.2.10: fails unless this session owns the lock. */
export interface AssertOperation { op: 'assert'; lock: string }

export type Operation =
  | InsertOperation
  | SelectOperation
  | UpdateOperation
  | MutateOperation
  | DeleteOperation
  | WaitOperation
  | CommitOperation
  | AbortOperation
  | CommentOperation
  | AssertOperation;

/**
 * One element of a transact reply (RFC 7047 §4.1.3, §5.2): insert gives `uuid`, select `rows`,
 * update/mutate/delete `count`; a failed operation `error` and `details`.
 */
export interface OperationResult {
  uuid?: ['uuid', string];
  rows?: Record<string, unknown>[];
  count?: number;
  error?: string;
  details?: string;
}

/** What to monitor in one table; `where` switches the monitor to monitor_cond. */
export interface TableMonitorSpec {
  columns?: string[];
  where?: Condition[];
}

/** Table name to what to monitor in it. */
export type MonitorTables = Record<string, TableMonitorSpec>;
