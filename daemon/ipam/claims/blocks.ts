// How one family of a subnet is cut into address blocks: aligned ranges of one prefix length that
// tile the subnet exactly (a subnet smaller than a block is one block). Block i covers
// [network + i*size, network + (i+1)*size - 1].

import { createHash } from 'node:crypto';
import { formatIp, type Cidr, type Family } from '../cidr';
import type { ValueRange } from '../pool';

export const DEFAULT_BLOCK_PREFIX: Record<Family, number> = { 4: 26, 6: 122 };

export interface Block {
  index: bigint;
  lo: bigint;
  hi: bigint;
  cidr: Cidr;
}

export class BlockGeometry {
  readonly family: Family;
  /** The prefix length blocks really have (the subnet's own when it is smaller than a block). */
  readonly prefix: number;
  readonly size: bigint;
  readonly count: bigint;

  /**
   * `keyedOffsets`: only blocks lying wholly below this offset are used (a switch spanning nodes
   * keys its ports by address offset, 1..32767: cluster/tunnel-keys.ts).
   */
  constructor(readonly subnet: Cidr, blockPrefix: number, keyedOffsets?: bigint) {
    this.family = subnet.family;
    const bits = this.family === 4 ? 32 : 128;
    if (!Number.isInteger(blockPrefix) || blockPrefix < 0 || blockPrefix > bits) {
      throw new Error(`block prefix /${blockPrefix} is not valid for IPv${this.family}`);
    }
    this.prefix = Math.max(blockPrefix, subnet.prefix);
    this.size = 1n << BigInt(bits - this.prefix);
    const all = 1n << BigInt(this.prefix - subnet.prefix);
    const keyed = keyedOffsets === undefined ? all : keyedOffsets / this.size;
    this.count = keyed < 1n ? 1n : keyed < all ? keyed : all;
  }

  block(index: bigint): Block {
    const lo = this.subnet.network + index * this.size;
    const text = `${formatIp(this.family, lo)}/${this.prefix}`;
    return { index, lo, hi: lo + this.size - 1n, cidr: { family: this.family, network: lo, prefix: this.prefix, text } };
  }

  /** Index of the block holding an address of the subnet. */
  indexOf(value: bigint): bigint {
    return (value - this.subnet.network) / this.size;
  }

  /** Whether a claimed range is exactly one of this geometry's blocks. */
  isBlock(range: ValueRange): boolean {
    const [lo, hi] = range;
    return hi - lo + 1n === this.size && lo >= this.subnet.network && (lo - this.subnet.network) % this.size === 0n
      && this.indexOf(lo) < this.count;
  }

  /**
   * Where a node starts looking for a block: a hash of its name, so that nodes starting together
   * try different blocks instead of all colliding on the first one.
   */
  startIndex(node: string): bigint {
    const h = BigInt(`0x${createHash('sha256').update(node).digest('hex').slice(0, 16)}`);
    return h % this.count;
  }
}
