// The error catalogue: each class's CNI code and stable string code, toCniError and the brand.
import { describe, expect, it } from 'vitest';
import {
  CheckError,
  DeadlineError,
  DecodeError,
  IncompatibleVersionError,
  InvalidConfigError,
  InvalidEnvError,
  IoError,
  IpamError,
  isOvnodeError,
  NoIpAvailableError,
  NotAvailableError,
  OvnodeError,
  OvsdbError,
  PlumbError,
  TryAgainLaterError,
  UnknownContainerError,
  UnsupportedFieldError,
  toCniError,
} from '../../../common/errors';

type ErrorClass = new (msg: string, o?: { details?: string; cause?: unknown }) => OvnodeError;

describe('error classes', () => {
  const cases: { desc: string; cls: ErrorClass; cniCode: number; code: string }[] = [
    { desc: 'incompatible version', cls: IncompatibleVersionError, cniCode: 1, code: 'OVNODE_INCOMPATIBLE_VERSION' },
    { desc: 'unsupported field', cls: UnsupportedFieldError, cniCode: 2, code: 'OVNODE_UNSUPPORTED_FIELD' },
    { desc: 'unknown container', cls: UnknownContainerError, cniCode: 3, code: 'OVNODE_UNKNOWN_CONTAINER' },
    { desc: 'invalid environment', cls: InvalidEnvError, cniCode: 4, code: 'OVNODE_INVALID_ENV' },
    { desc: 'I/O failure', cls: IoError, cniCode: 5, code: 'OVNODE_IO' },
    { desc: 'decode failure', cls: DecodeError, cniCode: 6, code: 'OVNODE_DECODE' },
    { desc: 'invalid network config', cls: InvalidConfigError, cniCode: 7, code: 'OVNODE_INVALID_CONFIG' },
    { desc: 'try again later', cls: TryAgainLaterError, cniCode: 11, code: 'OVNODE_TRY_AGAIN_LATER' },
    { desc: 'STATUS: not available', cls: NotAvailableError, cniCode: 50, code: 'OVNODE_NOT_AVAILABLE' },
    { desc: 'STATUS: no IP available', cls: NoIpAvailableError, cniCode: 51, code: 'OVNODE_NO_IP_AVAILABLE' },
    { desc: 'IPAM failure', cls: IpamError, cniCode: 101, code: 'OVNODE_IPAM' },
    { desc: 'plumbing failure', cls: PlumbError, cniCode: 102, code: 'OVNODE_PLUMB' },
    { desc: 'OVSDB failure', cls: OvsdbError, cniCode: 103, code: 'OVNODE_OVSDB' },
    { desc: 'CHECK mismatch', cls: CheckError, cniCode: 104, code: 'OVNODE_CHECK' },
    { desc: 'deadline exceeded (retryable, so 11)', cls: DeadlineError, cniCode: 11, code: 'OVNODE_DEADLINE' },
  ];
  for (const c of cases) {
    it(`${c.desc}: ${c.cls.name} -> ${c.cniCode} ${c.code}`, () => {
      const cause = new Error('root cause');
      const e = new c.cls('boom', { details: 'more', cause });
      expect(e).toBeInstanceOf(OvnodeError);
      expect(e).toBeInstanceOf(Error);
      expect(e.name).toBe(c.cls.name);
      expect(e.message).toBe('boom');
      expect(e.cniCode).toBe(c.cniCode);
      expect(e.code).toBe(c.code);
      expect(e.details).toBe('more');
      expect(e.cause).toBe(cause);
      expect(isOvnodeError(e)).toBe(true);
      expect(toCniError(e)).toEqual({ code: c.cniCode, msg: 'boom', details: 'more' });
    });
  }

  it('leaves details and cause unset when not given', () => {
    const e = new IpamError('no');
    expect(e.details).toBeUndefined();
    expect('cause' in e).toBe(false);
    expect(toCniError(e)).toEqual({ code: 101, msg: 'no' });
    expect('details' in toCniError(e)).toBe(false);
  });
});

describe('toCniError for foreign values', () => {
  const cases: { desc: string; thrown: unknown; details: string }[] = [
    { desc: 'a plain Error keeps its message in details', thrown: new Error('socket hang up'), details: 'socket hang up' },
    { desc: 'a TypeError keeps its message in details', thrown: new TypeError('x is undefined'), details: 'x is undefined' },
    { desc: 'a thrown string', thrown: 'just a string', details: 'just a string' },
    { desc: 'a thrown number', thrown: 42, details: '42' },
    { desc: 'undefined', thrown: undefined, details: 'undefined' },
    { desc: 'null', thrown: null, details: 'null' },
    { desc: 'an object with a cniCode but no brand', thrown: { cniCode: 7, code: 'X', message: 'fake' }, details: '[object Object]' },
  ];
  for (const c of cases) {
    it(`${c.desc} -> 999`, () => {
      expect(toCniError(c.thrown)).toEqual({ code: 999, msg: 'internal error', details: c.details });
    });
  }
});

describe('isOvnodeError', () => {
  const cases: { desc: string; value: unknown; want: boolean }[] = [
    { desc: 'an OvnodeError subclass', value: new PlumbError('x'), want: true },
    { desc: 'the base class', value: new OvnodeError('x', { cniCode: 100, code: 'OVNODE_X' }), want: true },
    // The brand is Symbol.for(), so an error from a second copy of the module still counts.
    { desc: 'a foreign object carrying the global brand', value: { [Symbol.for('ovnode.error')]: true }, want: true },
    { desc: 'a plain Error', value: new Error('x'), want: false },
    { desc: 'a look-alike without the brand', value: { cniCode: 1, code: 'OVNODE_X' }, want: false },
    { desc: 'a brand of the wrong value', value: { [Symbol.for('ovnode.error')]: 'yes' }, want: false },
    { desc: 'null', value: null, want: false },
    { desc: 'a string', value: 'OvnodeError', want: false },
  ];
  for (const c of cases) {
    it(c.desc, () => expect(isOvnodeError(c.value)).toBe(c.want));
  }
});
