// The error catalogue: every failure ovnode reports carries its CNI error code (CNI spec,
// "Error" section; codes 1-11 and 50/51 are the spec's, 100+ are ours). The daemon turns any
// thrown value into a wire error with toCniError(); the shim only adds I/O and transport errors.

const brand = Symbol.for('ovnode.error');

/** Error JSON as the CNI spec defines it (plus cniVersion, added when printed). */
export interface CniErrorJson {
  code: number;
  msg: string;
  details?: string;
}

export class OvnodeError extends Error {
  readonly [brand] = true;
  /** CNI error code sent to the runtime. */
  readonly cniCode: number;
  /** Stable machine-readable code, e.g. OVNODE_IPAM. */
  readonly code: string;
  readonly details: string | undefined;

  constructor(message: string, opts: { cniCode: number; code: string; details?: string; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.cniCode = opts.cniCode;
    this.code = opts.code;
    this.details = opts.details;
  }
}

export function isOvnodeError(e: unknown): e is OvnodeError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[brand] === true;
}

type Opts = { details?: string; cause?: unknown };

export class IncompatibleVersionError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 1, code: 'OVNODE_INCOMPATIBLE_VERSION' }); }
}
export class UnsupportedFieldError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 2, code: 'OVNODE_UNSUPPORTED_FIELD' }); }
}
export class UnknownContainerError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 3, code: 'OVNODE_UNKNOWN_CONTAINER' }); }
}
export class InvalidEnvError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 4, code: 'OVNODE_INVALID_ENV' }); }
}
export class IoError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 5, code: 'OVNODE_IO' }); }
}
export class DecodeError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 6, code: 'OVNODE_DECODE' }); }
}
export class InvalidConfigError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 7, code: 'OVNODE_INVALID_CONFIG' }); }
}
export class TryAgainLaterError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 11, code: 'OVNODE_TRY_AGAIN_LATER' }); }
}
/** STATUS: the plugin cannot serve ADD at all right now (CNI 1.1). */
export class NotAvailableError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 50, code: 'OVNODE_NOT_AVAILABLE' }); }
}
/** STATUS: the plugin cannot serve ADD because address space is exhausted (CNI 1.1). */
export class NoIpAvailableError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 51, code: 'OVNODE_NO_IP_AVAILABLE' }); }
}
export class IpamError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 101, code: 'OVNODE_IPAM' }); }
}
export class PlumbError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 102, code: 'OVNODE_PLUMB' }); }
}
export class OvsdbError extends OvnodeError {
  constructor(msg: string, o: Opts & { cniCode?: number; code?: string } = {}) {
    super(msg, { ...o, cniCode: o.cniCode ?? 103, code: o.code ?? 'OVNODE_OVSDB' });
  }
}
/** The database cannot be reached right now; nothing was sent, so nothing changed. */
export class OvsdbUnavailableError extends OvsdbError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 11, code: 'OVNODE_OVSDB_UNAVAILABLE' }); }
}
/**
 * A transaction was sent but no reply came (connection lost, reply overdue): it may or may not
 * have committed. Whoever undoes it must look at the database, not assume either way.
 */
export class OvsdbOutcomeUnknownError extends OvsdbError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 11, code: 'OVNODE_OVSDB_OUTCOME_UNKNOWN' }); }
}
export class CheckError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 104, code: 'OVNODE_CHECK' }); }
}
export class DeadlineError extends OvnodeError {
  constructor(msg: string, o: Opts = {}) { super(msg, { ...o, cniCode: 11, code: 'OVNODE_DEADLINE' }); }
}

/** Maps anything thrown to the CNI error JSON; unknown failures become 999 with the message kept. */
export function toCniError(e: unknown): CniErrorJson {
  if (isOvnodeError(e)) {
    const out: CniErrorJson = { code: e.cniCode, msg: e.message };
    if (e.details !== undefined) out.details = e.details;
    return out;
  }
  const msg = e instanceof Error ? e.message : String(e);
  return { code: 999, msg: 'internal error', details: msg };
}
