/**
 * The in-process bzip2 decompressor against the real bzip2 (1.0.x at /usr/bin/bzip2 or /bin/bzip2):
 * everything here is compressed by it, and what the decoder returns must be byte for byte what went
 * in (and what `bzip2 -d` returns). Damaged, truncated and foreign input must throw, never decode to
 * something else, and the output cap must hold.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bunzip2 } from '../../../src/core/compress/bunzip2.js';

const BZIP2 = ['/usr/bin/bzip2', '/bin/bzip2'].find((file) => existsSync(file));
if (!BZIP2) throw new Error('these tests need bzip2 at /usr/bin/bzip2 or /bin/bzip2');
const bzip2Binary: string = BZIP2;
const NO_CAP = 1 << 30;

function compress(data: Uint8Array, level = 9): Buffer {
  return execFileSync(bzip2Binary, ['-c', `-${level}`], { input: data, maxBuffer: NO_CAP });
}

function referenceDecompress(data: Uint8Array): Buffer {
  return execFileSync(bzip2Binary, ['-d', '-c'], { input: data, maxBuffer: NO_CAP });
}

/** Compares without printing megabytes on a failure. */
function expectSame(actual: Buffer, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  expect(actual.equals(expected)).toBe(true);
}

function roundTrip(data: Uint8Array, level = 9): void {
  expectSame(bunzip2(compress(data, level), NO_CAP), data);
}

function randomBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const WORDS =
  'gcc -O2 -c src/main.c -o build/main.o checking for make[1]: Entering directory warning: unused variable ok'.split(
    ' ',
  );

/** Log-like text: numbered lines of words and numbers. */
function text(length: number, seed: number): Buffer {
  const random = randomBytes(length, seed);
  let out = '';
  for (let line = 0, r = 0; out.length < length; line++) {
    let words = `[${line}]`;
    const count = 3 + ((random[r++ % length] ?? 0) % 10);
    for (let w = 0; w < count; w++) words += ` ${WORDS[(random[r++ % length] ?? 0) % WORDS.length]}`;
    out += `${words} ${(random[r++ % length] ?? 0) * 37}\n`;
  }
  return Buffer.from(out.slice(0, length));
}

/** Runs of every length 1..300 of changing bytes: each length of run RLE1 can write. */
function runsOfEveryLength(): Buffer {
  const parts: Buffer[] = [];
  for (let n = 1; n <= 300; n++) parts.push(Buffer.alloc(n, n % 7 === 0 ? 0 : 0x41 + (n % 3)));
  return Buffer.concat(parts);
}

describe('bunzip2 against the real bzip2', () => {
  it('decodes an empty input and single bytes', () => {
    const empty = compress(Buffer.alloc(0));
    expect(empty.length).toBe(14);
    expect(bunzip2(empty, NO_CAP).length).toBe(0);
    expect(bunzip2(empty, 0).length).toBe(0);
    for (const byte of [0x00, 0x41, 0xff]) roundTrip(Buffer.from([byte]));
  });

  it('decodes runs of one byte, short and long (RLE1 runs of 4 + count, and block-sized runs)', () => {
    for (const n of [2, 3, 4, 5, 6, 7, 8, 9, 255, 256, 258, 259, 260, 263, 264, 1000, 4096, 100_000])
      roundTrip(Buffer.alloc(n, 0x61));
    roundTrip(Buffer.alloc(900_000, 0));
    roundTrip(Buffer.alloc(900_001, 0xff));
    roundTrip(runsOfEveryLength());
    // Runs of every byte value, each 1..300 long.
    const lengths = randomBytes(256, 7);
    roundTrip(Buffer.concat(Array.from({ length: 256 }, (_, b) => Buffer.alloc(1 + (lengths[b] ?? 0), b))));
  });

  it('decodes a run of zeros spanning several 100k blocks', () => {
    roundTrip(Buffer.alloc(12 * 1024 * 1024, 0), 1);
  });

  it('decodes random bytes and text', () => {
    for (const n of [2, 100, 10_000, 300_000]) roundTrip(randomBytes(n, n));
    roundTrip(text(50_000, 3));
    roundTrip(Buffer.concat([text(20_000, 4), randomBytes(20_000, 5), runsOfEveryLength(), text(20_000, 6)]));
  });

  it('decodes multi-block inputs larger than 900 kB, at -1 and at -9', () => {
    const data = Buffer.concat([text(1_500_000, 8), randomBytes(300_000, 9), text(500_000, 10)]);
    roundTrip(data, 1);
    roundTrip(data, 9);
  });

  it('decodes every level -1 .. -9', () => {
    const data = Buffer.concat([text(150_000, 11), randomBytes(60_000, 12), Buffer.alloc(50_000, 0x20)]);
    for (let level = 1; level <= 9; level++) roundTrip(data, level);
  });

  it('decodes concatenated streams to the concatenation, as bzip2 -d does', () => {
    const a = text(30_000, 13);
    const b = randomBytes(5_000, 14);
    const c = text(250_000, 15);
    const joined = Buffer.concat([compress(a), compress(b, 1), compress(Buffer.alloc(0)), compress(c, 1)]);
    const expected = Buffer.concat([a, b, c]);
    expectSame(referenceDecompress(joined), expected);
    expectSame(bunzip2(joined, NO_CAP), expected);

    // What `bzip2 -c a b` writes: one stream per file.
    const dir = mkdtempSync(join(tmpdir(), 'bunzip2-'));
    try {
      writeFileSync(join(dir, 'a'), a);
      writeFileSync(join(dir, 'b'), c);
      const both = execFileSync(bzip2Binary, ['-c', '-2', join(dir, 'a'), join(dir, 'b')], {
        maxBuffer: NO_CAP,
      });
      expectSame(bunzip2(both, NO_CAP), Buffer.concat([a, c]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects every truncation of a stream as truncated', () => {
    for (const data of [text(20_000, 16), Buffer.concat([text(150_000, 17), randomBytes(80_000, 18)])]) {
      const bz = compress(data, 1);
      const cuts = new Set<number>([bz.length - 1, bz.length - 2, bz.length - 5]);
      for (let n = 0; n < Math.min(bz.length, 120); n++) cuts.add(n);
      for (let n = 0; n < bz.length; n += Math.max(1, Math.floor(bz.length / 300))) cuts.add(n);
      for (const n of cuts) {
        const cut = bz.subarray(0, n);
        expect(() => bunzip2(cut, NO_CAP)).toThrow(n < 4 ? /^not bzip2 data/ : /^bzip2 data truncated$/);
      }
    }
  });

  it('never returns wrong output for a damaged byte: it throws (CRC or format) or decodes the original', () => {
    const data = Buffer.concat([text(3_000, 19), Buffer.alloc(600, 0x2d), text(1_000, 20)]);
    const bz = compress(data);
    const multi = Buffer.concat([compress(text(120_000, 21), 1), compress(randomBytes(2_000, 22), 1)]);
    const multiData = referenceDecompress(multi);
    let thrown = 0;
    let tried = 0;
    const tryDamaged = (source: Buffer, expected: Buffer, at: number, mask: number) => {
      const damaged = Buffer.from(source);
      damaged[at] = (damaged[at] ?? 0) ^ mask;
      tried++;
      let out: Buffer;
      try {
        out = bunzip2(damaged, NO_CAP);
      } catch (error) {
        expect((error as Error).message).toMatch(/^(not bzip2 data|bzip2 |trailing data)/);
        thrown++;
        return;
      }
      expectSame(out, expected);
    };
    for (let at = 0; at < bz.length; at++)
      for (const mask of [0x01, 0x80, 0xff]) tryDamaged(bz, data, at, mask);
    for (let at = 0; at < multi.length; at += 97) tryDamaged(multi, multiData, at, 0x10);
    // Only a few flips leave the output alone (the block size digit, unused padding bits).
    expect(thrown).toBeGreaterThan(tried * 0.95);
    // A damaged block CRC is named as such.
    const badCrc = Buffer.from(bz);
    badCrc[10] = (badCrc[10] ?? 0) ^ 0x04;
    expect(() => bunzip2(badCrc, NO_CAP)).toThrow('bzip2 data damaged: CRC mismatch in block 1');
    // The stream CRC: its last byte is the file's last whole byte before the padding.
    const tail = compress(Buffer.from('abc'));
    const badStreamCrc = Buffer.from(tail);
    badStreamCrc[tail.length - 2] = (badStreamCrc[tail.length - 2] ?? 0) ^ 0x01;
    expect(() => bunzip2(badStreamCrc, NO_CAP)).toThrow(/^bzip2 data damaged/);
  });

  it('rejects input that is not bzip2, trailing data and randomised blocks', () => {
    for (const input of ['', 'B', 'BZ', 'BZh', 'BZh0', 'BZh:', 'BZx9', 'hello world', '\x1f\x8b\x08\x00\x00'])
      expect(() => bunzip2(Buffer.from(input, 'latin1'), NO_CAP)).toThrow(/^not bzip2 data/);
    expect(() => bunzip2(Buffer.from('BZh9'), NO_CAP)).toThrow('bzip2 data truncated');
    expect(() => bunzip2(Buffer.from('BZh91AY&SY and then nothing sensible at all'), NO_CAP)).toThrow(
      /^bzip2 data (damaged|truncated)/,
    );
    const good = compress(Buffer.from('a log\n'));
    expect(() => bunzip2(Buffer.concat([good, Buffer.from('junk')]), NO_CAP)).toThrow(/^trailing data/);
    expect(() => bunzip2(Buffer.concat([good, Buffer.alloc(8)]), NO_CAP)).toThrow(/^trailing data/);
    // The randomised flag is the bit after the block magic (6 bytes) and CRC (4), after the header.
    const randomised = Buffer.from(good);
    randomised[14] = (randomised[14] ?? 0) | 0x80;
    expect(() => bunzip2(randomised, NO_CAP)).toThrow(/randomised blocks .* not supported/);
  });

  it('stops at the output cap, also in the middle of a run', () => {
    const data = text(200_000, 23);
    const bz = compress(data, 1);
    expectSame(bunzip2(bz, data.length), data);
    expect(() => bunzip2(bz, data.length - 1)).toThrow(
      `bzip2 data decompresses to larger than ${data.length - 1} bytes`,
    );
    expect(() => bunzip2(bz, 100_000)).toThrow('larger than 100000 bytes');

    const run = compress(Buffer.alloc(1000, 0x61));
    expect(bunzip2(run, 1000).length).toBe(1000);
    expect(() => bunzip2(run, 999)).toThrow('larger than 999 bytes');
    expect(() => bunzip2(compress(Buffer.from('x')), 0)).toThrow('larger than 0 bytes');

    // 64 MiB of zeros is 45 bytes per 100k block compressed; the cap stops it long before that.
    const bomb = compress(Buffer.alloc(64 << 20, 0), 9);
    expect(bomb.length).toBeLessThan(10_000);
    expect(() => bunzip2(bomb, 1 << 20)).toThrow('larger than 1048576 bytes');
  });
});
