/**
 * One-shot zstd with a kept context and output buffer: the same frames as node:zlib's
 * `zstdCompressSync` given room for the whole frame (what the push used before), for any size and
 * level and in any order, each in a buffer of its own that a later call does not overwrite.
 */
import { randomBytes } from 'node:crypto';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { compressBound, zstdLevelParams, zstdOnce } from '../../../src/core/compress/zstd-once.js';

/** What zstdCompressSync writes with an output buffer of zstd's worst case (one pass). */
function reference(input: Buffer, level: number): Buffer {
  return zstdCompressSync(input, { ...zstdLevelParams(level), chunkSize: compressBound(input.length) });
}

function mixed(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  randomBytes(size >> 1).copy(out);
  out.fill(`line ${seed}: compressible text, again and again\n`, size >> 1);
  return out;
}

describe('zstdOnce', () => {
  it('writes the frame zstdCompressSync writes in one pass, for sizes from empty to past the kept buffer', () => {
    const sizes = [0, 1, 100, 4096, 131_071, 131_072, 1_000_000, 10 * 1024 * 1024, 12 * 1024 * 1024];
    for (const [i, size] of sizes.entries()) {
      const input = mixed(size, i);
      const once = zstdOnce(input, 3);
      expect(once.equals(reference(input, 3))).toBe(true);
      expect(zstdDecompressSync(once).equals(input)).toBe(true);
      expect(once.length).toBeLessThanOrEqual(compressBound(size));
    }
  });

  it('keeps earlier results intact and levels apart when calls interleave', () => {
    const inputs = [mixed(300_000, 1), mixed(50_000, 2), mixed(2_000_000, 3), mixed(10, 4)];
    const levels = [1, 3, 19, 3];
    const bodies = inputs.map((input, i) => zstdOnce(input, levels[i] as number));
    bodies.forEach((body, i) => {
      const input = inputs[i] as Buffer;
      expect(zstdDecompressSync(body).equals(input)).toBe(true);
      expect(body.equals(reference(input, levels[i] as number))).toBe(true);
    });
    // Level 1 and level 19 differ on compressible data, so a shared context would show here.
    const text = Buffer.from('abcdefgh'.repeat(50_000) + 'ijklmnop'.repeat(50_000));
    expect(zstdOnce(text, 19).equals(reference(text, 19))).toBe(true);
    expect(zstdOnce(text, 1).equals(reference(text, 1))).toBe(true);
  });

  it('takes strings as UTF-8', () => {
    const text = 'StorePath: /nix/store/…-ü\n'.repeat(20);
    expect(zstdDecompressSync(zstdOnce(text, 3)).toString('utf8')).toBe(text);
  });
});
