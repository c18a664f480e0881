// From failure to CNI code: unknown failures take their step's code; classified ones keep theirs.
import { describe, expect, it } from 'vitest';
import {
  DeadlineError, InvalidConfigError, InvalidEnvError, IpamError, OvsdbError, OvsdbOutcomeUnknownError, OvsdbUnavailableError, toCniError,
} from '../../../../common/errors';
import { atStep, type Step } from '../../../../daemon/cmd/step-errors';

const nativeFailure = Object.assign(new Error('setns(/var/run/netns/p): No such file or directory'), { code: 'ENOENT' });
const netlinkFailure = Object.assign(new Error('netlink: RTM_NEWLINK: File exists'), { errno: 17 });

const table: Array<{ desc: string; step: Step; thrown: unknown; code: number }> = [
  { desc: 'a netns that vanished while plumbing', step: 'plumb', thrown: nativeFailure, code: 102 },
  { desc: 'a netlink failure while plumbing', step: 'plumb', thrown: netlinkFailure, code: 102 },
  { desc: 'a TypeError (bug) while plumbing', step: 'plumb', thrown: new TypeError("Cannot read properties of null (reading 'dst')"), code: 102 },
  { desc: 'a thrown string while plumbing', step: 'plumb', thrown: 'weird', code: 102 },
  { desc: 'an unknown IPAM failure', step: 'ipam', thrown: new RangeError('bad bigint'), code: 101 },
  { desc: 'a classified IPAM failure', step: 'ipam', thrown: new IpamError('subnet full'), code: 101 },
  { desc: 'an unknown failure writing the NB', step: 'ovn', thrown: new Error('x'), code: 103 },
  { desc: 'an OVSDB refusal', step: 'ovs', thrown: new OvsdbError('constraint violation'), code: 103 },
  { desc: 'OVSDB not connected', step: 'ovs', thrown: new OvsdbUnavailableError('transact: not connected'), code: 11 },
  { desc: 'OVSDB connection closed before the reply', step: 'ovn', thrown: new OvsdbOutcomeUnknownError('transact: connection closed before the reply'), code: 11 },
  { desc: 'the deadline while waiting for ovn-installed', step: 'wait', thrown: new DeadlineError('ADD did not finish'), code: 11 },
  { desc: 'a bad address line refused before writing', step: 'ovn', thrown: new InvalidConfigError('refusing to write port_security'), code: 7 },
  { desc: 'a bad netns found while plumbing', step: 'plumb', thrown: new InvalidEnvError('not a netns'), code: 4 },
];

describe('atStep: failure to CNI code', () => {
  for (const c of table) {
    it(`${c.desc} -> ${c.code} (synchronous)`, () => {
      let err: unknown;
      try { atStep(c.step, () => { throw c.thrown; }); } catch (e) { err = e; }
      expect(toCniError(err).code).toBe(c.code);
    });
    it(`${c.desc} -> ${c.code} (asynchronous)`, async () => {
      const err = await atStep(c.step, () => Promise.reject(c.thrown)).catch((e: unknown) => e);
      expect(toCniError(err).code).toBe(c.code);
    });
  }

  it('keeps the original failure as the cause and its message in details', () => {
    let err: unknown;
    try { atStep('plumb', () => { throw nativeFailure; }); } catch (e) { err = e; }
    expect((err as Error).cause).toBe(nativeFailure);
    expect(toCniError(err)).toMatchObject({ msg: `plumb failed: ${nativeFailure.message}`, details: nativeFailure.message });
  });

  it('passes values through untouched', async () => {
    expect(atStep('ipam', () => 5)).toBe(5);
    expect(await atStep('ovs', () => Promise.resolve('uuid'))).toBe('uuid');
  });
});
