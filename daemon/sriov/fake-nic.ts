// FakeNic: the named test double of the NIC seam (nic.ts), for nodes running on a fake SR-IOV
// sysfs tree (test/fakes/fake-sriov-sysfs.ts). No driver on the test machines implements PF-side
// VF settings or hw-tc-offload, so this one keeps the "NIC" in files under the fake sysfs root,
// where they survive a SIGKILL of the daemon and a test can check what was set and restored:
//
//   <root>/ovnode-fake-nic/vf-settings.json  { "<pfPci>/<vfIndex>": VfSettings }: what the NIC
//       holds. Authoritative. Replaced atomically (temp file in the same dir, rename), so a reader
//       sees the old or the new state, never a torn one. No fsync: what must survive is a SIGKILL
//       of the daemon, and the page cache does; a real NIC would not survive a power loss either.
//   <root>/ovnode-fake-nic/calls.jsonl       one JSON object per call (FakeNicCall): a record.
//       Appended BEFORE the state is replaced, so every state change has its line; a
//       line whose change is not in the state means the process died between the two (a request
//       sent to a NIC that may not have acted on it).
//
// Like a driver it refuses what a driver would (and then records nothing): a VF the PF does not
// have (no virtfn<N> link in the tree), vlan > 4095, qos > 7, max rate below min rate, a
// multicast MAC, and anything checkVfChange refuses; hw-tc-offload on a netdev the tree does not
// have. A half pair (vlan without qos, one of the rates) keeps the other half's current value, as
// NetlinkNic does. Calls are serialised per root within the process (one state file: concurrent
// read-modify-writes of different VFs would otherwise lose one); other processes are not
// coordinated with (one daemon per node).

import { constants } from 'node:fs';
import { lstat, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { InvalidConfigError, PlumbError } from '../../common/errors';
import { VF_SETTINGS_DEFAULT, type Nic, type PfVfConfig, type VfRef, type VfSettings } from './nic';
import { checkVfChange, KeyedSerializer } from './pf-netlink';
import { isValidNetdevName, parsePciAddress } from './sysfs';

export const FAKE_NIC_DIR = 'ovnode-fake-nic';
export const FAKE_NIC_STATE_FILE = 'vf-settings.json';
export const FAKE_NIC_CALLS_FILE = 'calls.jsonl';

export type FakeNicState = Record<string, VfSettings>;

export interface FakeNicCall {
  op: 'apply' | 'hwTcOffload';
  pfPci?: string;
  vfIndex?: number;
  /** apply: the settings as given (MAC lowercased), not the merged result. */
  change?: Partial<VfSettings>;
  netdev?: string;
  /** ISO 8601 time of the call. */
  at: string;
}

const stateKey = (pfPci: string, vfIndex: number): string => `${pfPci}/${vfIndex}`;
const nicDir = (root: string): string => join(root, FAKE_NIC_DIR);
const errnoOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code;

/** One serialiser for every FakeNic of the process, keyed by the resolved root. */
const perRoot = new KeyedSerializer();

/** The fake NIC's state: every VF ever configured under `root` ({} before the first apply). */
export async function readFakeNicState(root: string): Promise<FakeNicState> {
  const path = join(nicDir(root), FAKE_NIC_STATE_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return {};
    throw new PlumbError(`fake NIC state ${path}: ${(e as Error).message}`, { cause: e });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new PlumbError(`fake NIC state ${path} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new PlumbError(`fake NIC state ${path} is not an object`);
  for (const [key, value] of Object.entries(parsed)) {
    if (!isVfSettings(value)) throw new PlumbError(`fake NIC state ${path}: entry ${JSON.stringify(key)} is not a VfSettings`);
  }
  return parsed as FakeNicState;
}

function isVfSettings(v: unknown): v is VfSettings {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return Object.entries(VF_SETTINGS_DEFAULT).every(([k, def]) => typeof s[k] === typeof def);
}

/**
 * Every call recorded under `root`, oldest first ([] before the first). A last line without its
 * newline (the process died while appending it) is skipped; any other unparsable line throws.
 */
export async function readFakeNicCalls(root: string): Promise<FakeNicCall[]> {
  const path = join(nicDir(root), FAKE_NIC_CALLS_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return [];
    throw new PlumbError(`fake NIC calls ${path}: ${(e as Error).message}`, { cause: e });
  }
  const lines = text.split('\n');
  const torn = lines.pop(); // '' when the file ends with a newline
  const calls: FakeNicCall[] = [];
  lines.forEach((line, i) => {
    if (line === '') return;
    try {
      calls.push(JSON.parse(line) as FakeNicCall);
    } catch (e) {
      throw new PlumbError(`fake NIC calls ${path}: line ${i + 1} is not JSON: ${(e as Error).message}`, { cause: e });
    }
  });
  if (torn) {
    try { calls.push(JSON.parse(torn) as FakeNicCall); } catch { /* torn by a crash mid-append */ }
  }
  return calls;
}

/** Appends one line (one write: whole lines, whatever kills the process). */
async function appendCall(root: string, call: FakeNicCall): Promise<void> {
  await mkdir(nicDir(root), { recursive: true });
  const handle = await open(join(nicDir(root), FAKE_NIC_CALLS_FILE), constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o644);
  try {
    await handle.write(`${JSON.stringify(call)}\n`);
  } finally {
    await handle.close();
  }
}

/** Replaces the state file: temp file in the same dir, renamed over. */
async function writeState(root: string, state: FakeNicState): Promise<void> {
  const dir = nicDir(root);
  await mkdir(dir, { recursive: true });
  const sorted = Object.fromEntries(Object.entries(state).sort(([a], [b]) => a.localeCompare(b)));
  const tmp = join(dir, `.${FAKE_NIC_STATE_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    try {
      await handle.write(`${JSON.stringify(sorted, null, 2)}\n`);
    } finally {
      await handle.close();
    }
    await rename(tmp, join(dir, FAKE_NIC_STATE_FILE));
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * What a driver refuses beyond checkVfChange, on the settings the VF would end up with: the
 * kernel's vlan/qos ranges, min rate above a set max rate, a multicast (or broadcast) MAC.
 */
function checkDriverRules(where: string, change: Partial<VfSettings>, merged: VfSettings): void {
  const invalid = (what: string, why: string) => new InvalidConfigError(`${where}: invalid ${what} (${why})`);
  if (change.vlan !== undefined && change.vlan > 4095) throw invalid(`vlan ${change.vlan}`, 'must be 0-4095');
  if (change.qos !== undefined && change.qos > 7) throw invalid(`qos ${change.qos}`, 'must be 0-7');
  if (change.mac !== undefined && (parseInt(change.mac.slice(0, 2), 16) & 1) === 1) {
    throw invalid(`mac ${change.mac}`, 'a multicast address cannot be a VF MAC');
  }
  if ((change.minTxRate !== undefined || change.maxTxRate !== undefined) && merged.maxTxRate > 0 && merged.minTxRate > merged.maxTxRate) {
    throw invalid(`rate min_tx_rate ${merged.minTxRate} max_tx_rate ${merged.maxTxRate}`, 'min_tx_rate must not exceed max_tx_rate');
  }
}

class FakeVfConfig implements PfVfConfig {
  constructor(private readonly root: string) {}

  async read(vf: VfRef): Promise<VfSettings> {
    const pfPci = this.checkRef(vf);
    return await perRoot.run(this.root, async () => {
      await this.requireVf(vf, pfPci);
      return { ...VF_SETTINGS_DEFAULT, ...(await readFakeNicState(this.root))[stateKey(pfPci, vf.vfIndex)] };
    });
  }

  async apply(vf: VfRef, change: Partial<VfSettings>): Promise<void> {
    const pfPci = this.checkRef(vf);
    checkVfChange(vf, change);
    const given = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) as Partial<VfSettings>;
    if (given.mac !== undefined) given.mac = given.mac.toLowerCase();
    if (Object.keys(given).length === 0) return;
    await perRoot.run(this.root, async () => {
      await this.requireVf(vf, pfPci);
      const state = await readFakeNicState(this.root);
      const key = stateKey(pfPci, vf.vfIndex);
      const merged: VfSettings = { ...VF_SETTINGS_DEFAULT, ...state[key], ...given };
      checkDriverRules(`PF ${vf.pfNetdev} VF ${vf.vfIndex}`, given, merged);
      await appendCall(this.root, { op: 'apply', pfPci, vfIndex: vf.vfIndex, change: given, at: new Date().toISOString() });
      await writeState(this.root, { ...state, [key]: merged });
    });
  }

  /** The canonical PF address (the state key); refuses a ref a real PF could not be addressed by. */
  private checkRef(vf: VfRef): string {
    checkVfChange(vf, {});
    let pfPci: string;
    try {
      pfPci = parsePciAddress(vf.pfPci);
    } catch (e) {
      throw new InvalidConfigError(`PF ${vf.pfNetdev} VF ${vf.vfIndex}: ${(e as Error).message}`, { cause: e });
    }
    if (pfPci !== vf.pfPci) throw new InvalidConfigError(`PF ${vf.pfNetdev} VF ${vf.vfIndex}: PCI address ${vf.pfPci} is not in canonical form (${pfPci})`);
    return pfPci;
  }

  /** The PF exists in the tree and has a virtfn<vfIndex> link, as VF discovery found it. */
  private async requireVf(vf: VfRef, pfPci: string): Promise<void> {
    const pfDir = join(this.root, 'bus', 'pci', 'devices', pfPci);
    if (!(await exists(pfDir))) throw new PlumbError(`PF ${vf.pfNetdev} VF ${vf.vfIndex}: No such device (fake NIC: no ${pfDir})`);
    const link = join(pfDir, `virtfn${vf.vfIndex}`);
    if (!(await exists(link))) throw new PlumbError(`PF ${vf.pfNetdev} reports no VF ${vf.vfIndex} (fake NIC: no ${link})`);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if (errnoOf(e) === 'ENOENT' || errnoOf(e) === 'ENOTDIR') return false;
    throw new PlumbError(`${path}: ${(e as Error).message}`, { cause: e });
  }
}

export class FakeNic implements Nic {
  readonly vfConfig: PfVfConfig;
  private readonly root: string;

  /** `sysfsRoot`: the fake sysfs tree's root (the one SriovSysfs reads). */
  constructor(sysfsRoot: string) {
    this.root = resolve(sysfsRoot);
    this.vfConfig = new FakeVfConfig(this.root);
  }

  /** Records the call; refuses a netdev the fake tree's class/net does not have. */
  async enableHwTcOffload(netdev: string): Promise<void> {
    if (typeof netdev !== 'string' || !isValidNetdevName(netdev)) {
      throw new InvalidConfigError(`cannot enable hw-tc-offload on ${JSON.stringify(netdev)}: not a valid netdev name`);
    }
    await perRoot.run(this.root, async () => {
      if (!(await exists(join(this.root, 'class', 'net', netdev)))) {
        throw new PlumbError(`cannot enable hw-tc-offload on ${netdev}: No such device (fake NIC: not in ${join(this.root, 'class', 'net')})`);
      }
      await appendCall(this.root, { op: 'hwTcOffload', netdev, at: new Date().toISOString() });
    });
  }
}
