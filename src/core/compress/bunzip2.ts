/**
 * An in-process bzip2 decompressor (for Nix's `.bz2` build logs: no child process, no temporary
 * files). The format, from the outside in:
 *
 * - A file is one or more streams (`bzip2 -c a b` and `cat x.bz2 y.bz2` make several); they decode
 *   to the concatenation of their contents, as `bzip2 -d` does. Anything else after a stream is an
 *   error (`bzip2 -d` only warns), so a damaged file never yields a silently shortened log.
 * - A stream: `BZh` and the block size `1`..`9` (x 100 000 bytes), blocks, then the end-of-stream
 *   magic 0x177245385090, the combined CRC (each block's CRC folded in as `rotl(c, 1) ^ crc`) and
 *   zero bits to the next byte. Everything after the 4-byte header is a bit stream, most
 *   significant bit first, with no byte alignment between blocks.
 * - A block: magic 0x314159265359, its CRC (bzip2's CRC-32: polynomial 0x04c11db7, MSB first, of the
 *   block's decoded bytes), the obsolete "randomised" flag (rejected here), the 24-bit origin
 *   pointer of the Burrows-Wheeler transform, a two-level bitmap of the bytes in use, 2..6 Huffman
 *   tables, the selectors (which table codes each group of 50 symbols; move-to-front coded, each in
 *   unary), each table's code lengths (a 5-bit start, then per symbol +1/-1 steps until a 0 bit),
 *   then the Huffman-coded symbols up to end-of-block.
 * - The symbols are move-to-front indexes, where runs of index 0 are written in bijective base 2
 *   with the digits RUNA (1) and RUNB (2), least significant first. Undoing the move-to-front gives
 *   the last column of the sorted rotations; undoing the BWT from the origin pointer gives the
 *   block, in which every run of 4 equal bytes is followed by a count (0..255) of more of them.
 *
 * Written from that description; the output grows in chunks and never past `maxOutput`.
 */

const MAX_CODE_LENGTH = 20;
const GROUP_SIZE = 50;
const MAX_GROUPS = 6;
/** The most selectors a 900 000-byte block can use; a few encoders write more, which are unused. */
const MAX_SELECTORS = 18002;
/** Codes up to this many bits are decoded with one table look-up, longer ones by walking lengths. */
const FAST_BITS = 10;
const FAST_MASK = (1 << FAST_BITS) - 1;

const CRC_TABLE = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 24;
  for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
  CRC_TABLE[i] = c >>> 0;
}

/** One decoder for every call: its block buffer (3.6 MB) costs more to allocate than a small log. */
let shared: BlockDecoder | undefined;

/** Decompresses bzip2 data (one or more streams); throws on anything malformed or larger than `maxOutput`. */
export function bunzip2(input: Uint8Array, maxOutput: number): Buffer {
  if (!hasStreamHeader(input, 0)) throw new Error('not bzip2 data (no "BZh1".."BZh9" header)');
  const out = new Output(input.length, maxOutput);
  const bits = new BitReader(input);
  const decoder = (shared ??= new BlockDecoder());
  let streamStart = 0;
  for (;;) {
    decodeStream(bits, streamStart, decoder, out);
    streamStart = bits.alignToByte();
    if (streamStart >= input.length) break;
    if (!hasStreamHeader(input, streamStart))
      throw new Error(`trailing data after the bzip2 stream (at byte ${streamStart})`);
  }
  return out.result();
}

function hasStreamHeader(input: Uint8Array, at: number): boolean {
  const level = input[at + 3] ?? 0;
  return (
    input[at] === 0x42 && input[at + 1] === 0x5a && input[at + 2] === 0x68 && level >= 0x31 && level <= 0x39
  );
}

function decodeStream(bits: BitReader, start: number, decoder: BlockDecoder, out: Output): void {
  const maxBlock = (bits.data[start + 3]! - 0x30) * 100000;
  bits.skipBytes(4);
  let combined = 0;
  for (let block = 1; ; block++) {
    const magicHigh = bits.read(24);
    const magicLow = bits.read(24);
    if (magicHigh === 0x177245 && magicLow === 0x385090) {
      const stored = bits.read32();
      if (stored !== combined) throw new Error('bzip2 data damaged: combined CRC mismatch');
      return;
    }
    if (magicHigh !== 0x314159 || magicLow !== 0x265359)
      throw new Error(`bzip2 data damaged: bad block magic (block ${block})`);
    const storedCrc = bits.read32();
    const crc = decoder.decode(bits, maxBlock, out, block);
    if (crc !== storedCrc) throw new Error(`bzip2 data damaged: CRC mismatch in block ${block}`);
    combined = (((combined << 1) | (combined >>> 31)) ^ crc) >>> 0;
  }
}

/** Bits, most significant first; `buf` holds the next `count` bits in its low bits. */
class BitReader {
  pos = 0;
  buf = 0;
  count = 0;
  readonly data: Uint8Array;
  constructor(data: Uint8Array) {
    this.data = data;
  }

  /** `n` <= 24 bits. Past the end it reads zeros, then throws once any of them is used. */
  read(n: number): number {
    while (this.count < n) {
      this.buf = (this.buf << 8) | (this.data[this.pos] ?? 0);
      this.pos++;
      this.count += 8;
    }
    this.count -= n;
    this.checkEnd();
    return (this.buf >>> this.count) & ((1 << n) - 1);
  }

  read32(): number {
    return ((this.read(16) << 16) | this.read(16)) >>> 0;
  }

  checkEnd(): void {
    if (this.pos > this.data.length && this.pos * 8 - this.count > this.data.length * 8)
      throw new Error('bzip2 data truncated');
  }

  /** Drops the bits left in the current byte; returns the index of the next byte. */
  alignToByte(): number {
    this.pos -= this.count >> 3;
    this.buf = 0;
    this.count = 0;
    return this.pos;
  }

  skipBytes(n: number): void {
    this.alignToByte();
    this.pos += n;
  }
}

/** The decoded output: grows by doubling, never past `max`. */
class Output {
  buf: Buffer;
  len = 0;
  readonly max: number;
  constructor(inputLength: number, max: number) {
    this.max = max;
    // A first guess from the input (logs shrink about 5 times), at most 8 MiB before any is decoded.
    this.buf = Buffer.alloc(Math.min(max, 8 << 20, Math.max(1 << 12, inputLength * 5)));
  }

  /** Room for `n` more bytes, or an error when they would pass the limit. */
  reserve(n: number): Buffer {
    const need = this.len + n;
    if (need <= this.buf.length) return this.buf;
    if (need > this.max) throw new Error(`bzip2 data decompresses to larger than ${this.max} bytes`);
    const grown = Buffer.alloc(Math.min(this.max, Math.max(need, this.buf.length * 2)));
    this.buf.copy(grown, 0, 0, this.len);
    this.buf = grown;
    return grown;
  }

  result(): Buffer {
    if (this.len === this.buf.length) return this.buf;
    // A copy when much of the buffer is spare, so the caller does not hold on to it.
    return this.len * 2 > this.buf.length
      ? this.buf.subarray(0, this.len)
      : Buffer.from(this.buf.subarray(0, this.len));
  }
}

/** One block's tables and buffers, reused from block to block. */
class BlockDecoder {
  private tt = new Uint32Array(0);
  private readonly seqToByte = new Uint8Array(256);
  private readonly mtf = new Uint8Array(256);
  private readonly selectors = new Uint8Array(MAX_SELECTORS);
  private readonly lengths = new Uint8Array(258);
  private readonly byteCount = new Int32Array(256);
  // Per table: the fast look-up (symbol << 5 | length, 0 for longer codes), and for longer codes
  // the largest code of each length (limit) and the offset from a code to its symbol in perm.
  private readonly fast = Array.from({ length: MAX_GROUPS }, () => new Uint16Array(1 << FAST_BITS));
  private readonly limit = Array.from({ length: MAX_GROUPS }, () => new Int32Array(MAX_CODE_LENGTH + 2));
  private readonly base = Array.from({ length: MAX_GROUPS }, () => new Int32Array(MAX_CODE_LENGTH + 2));
  private readonly perm = Array.from({ length: MAX_GROUPS }, () => new Uint16Array(258));
  private readonly maxLen = new Int32Array(MAX_GROUPS);

  /** Decodes one block (after its magic and CRC) into `out`; returns the CRC of what it wrote. */
  decode(bits: BitReader, maxBlock: number, out: Output, block: number): number {
    const damaged = (what: string) => new Error(`bzip2 data damaged: ${what} in block ${block}`);
    if (bits.read(1)) throw new Error('bzip2 randomised blocks (an obsolete format) are not supported');
    const origPtr = bits.read(24);

    // The bytes in use: 16 ranges of 16, each range present in a 16-bit map.
    const ranges = bits.read(16);
    let inUse = 0;
    for (let r = 0; r < 16; r++) {
      if (!(ranges & (0x8000 >>> r))) continue;
      const used = bits.read(16);
      for (let j = 0; j < 16; j++) if (used & (0x8000 >>> j)) this.seqToByte[inUse++] = r * 16 + j;
    }
    if (inUse === 0) throw damaged('no bytes in use');
    const alphaSize = inUse + 2;

    const groups = bits.read(3);
    if (groups < 2 || groups > MAX_GROUPS) throw damaged(`${groups} Huffman tables`);
    const selectorCount = bits.read(15);
    if (selectorCount < 1) throw damaged('no selectors');
    const order = [0, 1, 2, 3, 4, 5];
    for (let i = 0; i < selectorCount; i++) {
      let j = 0;
      while (bits.read(1)) if (++j >= groups) throw damaged('bad selector');
      const group = order[j]!;
      for (; j > 0; j--) order[j] = order[j - 1]!;
      order[0] = group;
      if (i < MAX_SELECTORS) this.selectors[i] = group;
    }
    const usedSelectors = Math.min(selectorCount, MAX_SELECTORS);

    for (let g = 0; g < groups; g++) {
      let len = bits.read(5);
      for (let s = 0; s < alphaSize; s++) {
        for (;;) {
          if (len < 1 || len > MAX_CODE_LENGTH) throw damaged('bad code length');
          if (!bits.read(1)) break;
          len += bits.read(1) ? -1 : 1;
        }
        this.lengths[s] = len;
      }
      if (!this.buildTable(g, alphaSize)) throw damaged('bad Huffman table');
    }

    const nblock = this.readSymbols(bits, maxBlock, alphaSize, usedSelectors, damaged);
    if (origPtr >= nblock) throw damaged('bad BWT origin pointer');
    return this.unsort(origPtr, nblock, out);
  }

  /** Canonical codes from `lengths`: false for an over-full code. */
  private buildTable(g: number, alphaSize: number): boolean {
    const lengths = this.lengths;
    const fast = this.fast[g]!;
    const limit = this.limit[g]!;
    const base = this.base[g]!;
    const perm = this.perm[g]!;
    fast.fill(0);
    let code = 0;
    let index = 0;
    let maxLen = 0;
    for (let len = 1; len <= MAX_CODE_LENGTH; len++) {
      base[len] = index - code;
      for (let s = 0; s < alphaSize; s++) {
        if (lengths[s] !== len) continue;
        perm[index++] = s;
        if (len <= FAST_BITS) {
          const shift = FAST_BITS - len;
          fast.fill((s << 5) | len, code << shift, (code + 1) << shift);
        }
        code++;
        maxLen = len;
      }
      if (code > 1 << len) return false;
      limit[len] = code - 1;
      code <<= 1;
    }
    this.maxLen[g] = maxLen;
    return true;
  }

  /**
   * Huffman symbols -> move-to-front -> bytes in `tt` (low 8 bits), counted in `byteCount`; returns
   * the block's length. The hot loop keeps the bit reader's state in locals.
   */
  private readSymbols(
    bits: BitReader,
    maxBlock: number,
    alphaSize: number,
    selectorCount: number,
    damaged: (what: string) => Error,
  ): number {
    if (this.tt.length < maxBlock) this.tt = new Uint32Array(maxBlock);
    const { tt, mtf, byteCount, selectors } = this;
    const data = bits.data;
    const end = data.length;
    for (let i = 0; i < 256; i++) mtf[i] = this.seqToByte[i]!;
    byteCount.fill(0);
    const eob = alphaSize - 1;
    let { pos, buf, count } = bits;
    // Bits past the end read as zeros: a truncated block is reported as such, not as damaged.
    // (The hot loop's state is passed, not captured, so that it stays in registers.)
    const fail = (what: string, at: number, buffered: number): Error => {
      bits.pos = at;
      bits.count = buffered;
      bits.checkEnd();
      return damaged(what);
    };
    let nblock = 0;
    let run = 0;
    let runWeight = 1;
    let selector = 0;
    let left = 0;
    let g = 0;
    let fast = this.fast[0]!;
    let limit = this.limit[0]!;
    let base = this.base[0]!;
    let perm = this.perm[0]!;
    let maxLen = 0;
    for (;;) {
      if (left === 0) {
        if (pos > end && pos * 8 - count > end * 8) throw new Error('bzip2 data truncated');
        if (selector >= selectorCount) throw fail('more symbols than selectors', pos, count);
        g = selectors[selector++]!;
        fast = this.fast[g]!;
        limit = this.limit[g]!;
        base = this.base[g]!;
        perm = this.perm[g]!;
        maxLen = this.maxLen[g]!;
        left = GROUP_SIZE;
      }
      left--;
      while (count < 24) {
        buf = (buf << 8) | (pos < end ? data[pos]! : 0);
        pos++;
        count += 8;
      }
      let sym: number;
      const entry = fast[(buf >>> (count - FAST_BITS)) & FAST_MASK]!;
      if (entry !== 0) {
        count -= entry & 31;
        sym = entry >>> 5;
      } else {
        let len = FAST_BITS + 1;
        let v = (buf >>> (count - len)) & ((1 << len) - 1);
        while (len <= maxLen && v > limit[len]!) {
          len++;
          v = (buf >>> (count - len)) & ((1 << len) - 1);
        }
        if (len > maxLen) throw fail('bad Huffman code', pos, count);
        count -= len;
        sym = perm[base[len]! + v]!;
      }

      if (sym <= 1) {
        // RUNA adds 1 x weight, RUNB 2 x weight; the weight doubles per digit.
        run += runWeight << sym;
        runWeight <<= 1;
        if (nblock + run > maxBlock) throw fail('block longer than its stream header allows', pos, count);
        continue;
      }
      if (run > 0) {
        const b = mtf[0]!;
        byteCount[b]! += run;
        if (run > 32) {
          tt.fill(b, nblock, nblock + run);
          nblock += run;
        } else for (let k = 0; k < run; k++) tt[nblock++] = b;
        run = 0;
        runWeight = 1;
      }
      if (sym === eob) break;
      if (nblock >= maxBlock) throw fail('block longer than its stream header allows', pos, count);
      // Move-to-front index sym - 1 to the front.
      let j = sym - 1;
      const b = mtf[j]!;
      if (j > 16) mtf.copyWithin(1, 0, j);
      else for (; j > 0; j--) mtf[j] = mtf[j - 1]!;
      mtf[0] = b;
      byteCount[b]!++;
      tt[nblock++] = b;
    }
    bits.pos = pos;
    bits.buf = buf;
    bits.count = count;
    bits.checkEnd();
    return nblock;
  }

  /** Inverse BWT, then the run-length step, into `out`; returns the block's CRC. */
  private unsort(origPtr: number, nblock: number, out: Output): number {
    const tt = this.tt;
    // start[b]: where the rows beginning with byte b start in sorted order.
    const start = new Int32Array(256);
    for (let b = 0, sum = 0; b < 256; b++) {
      start[b] = sum;
      sum += this.byteCount[b]!;
    }
    for (let i = 0; i < nblock; i++) {
      const b = tt[i]! & 0xff;
      tt[start[b]!++]! |= i << 8;
    }

    let buf = out.reserve(0);
    let len = out.len;
    let crc = 0xffffffff;
    let pos = tt[origPtr]! >>> 8;
    let last = -1;
    let same = 0;
    for (let i = 0; i < nblock; i++) {
      const entry = tt[pos]!;
      const b = entry & 0xff;
      pos = entry >>> 8;
      if (same === 4) {
        // b counts further copies of the run's byte.
        if (b > 0) {
          out.len = len;
          buf = out.reserve(b);
          buf.fill(last, len, len + b);
          for (let k = 0; k < b; k++) crc = (crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ last) & 0xff]!;
          len += b;
        }
        same = 0;
        last = -1;
        continue;
      }
      if (b === last) same++;
      else {
        last = b;
        same = 1;
      }
      if (len === buf.length) {
        out.len = len;
        buf = out.reserve(1);
      }
      buf[len++] = b;
      crc = (crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ b) & 0xff]!;
    }
    out.len = len;
    return ~crc >>> 0;
  }
}
