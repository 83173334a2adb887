import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  isNixBase32,
  nixBase32Decode,
  nixBase32Encode,
  nixBase32Length,
} from '../../../src/core/nix/base32.js';

function nixToBase32(hex: string[], type: string): string[] {
  return execFileSync('nix-hash', ['--type', type, '--to-base32', ...hex], { encoding: 'utf8' })
    .trim()
    .split('\n');
}

describe('nix-base32', () => {
  it('matches the spec test vector: sha256("test")', () => {
    const digest = createHash('sha256').update('test').digest();
    expect(nixBase32Encode(digest)).toBe('020ay2q1av2xs4n842rb3d7vz8qms1dcb87a5yd6azaci20x11lz');
    expect(nixBase32Decode('020ay2q1av2xs4n842rb3d7vz8qms1dcb87a5yd6azaci20x11lz').equals(digest)).toBe(true);
  });

  it('agrees with nix-hash --to-base32 on random sha256, sha1 and md5 digests, both ways', () => {
    for (const [type, bytes, length] of [
      ['sha256', 32, 52],
      ['sha1', 20, 32],
      ['md5', 16, 26],
      ['sha512', 64, 103],
    ] as const) {
      const digests = Array.from({ length: 20 }, () => randomBytes(bytes));
      digests.push(Buffer.alloc(bytes), Buffer.alloc(bytes, 0xff));
      const expected = nixToBase32(
        digests.map((d) => d.toString('hex')),
        type,
      );
      expect(digests.map((d) => nixBase32Encode(d))).toEqual(expected);
      for (const [i, text] of expected.entries()) {
        expect(text).toHaveLength(length);
        expect(nixBase32Length(bytes)).toBe(length);
        expect(nixBase32Decode(text).equals(digests[i] as Buffer)).toBe(true);
      }
    }
  });

  it('round-trips every length from 0 to 70 bytes', () => {
    for (let n = 0; n <= 70; n++) {
      const bytes = randomBytes(n);
      const text = nixBase32Encode(bytes);
      expect(text).toHaveLength(nixBase32Length(n));
      expect(nixBase32Decode(text).equals(bytes)).toBe(true);
    }
  });

  it('refuses letters outside the alphabet, impossible lengths and stray high bits', () => {
    const good = nixBase32Encode(randomBytes(32));
    expect(() => nixBase32Decode(`e${good.slice(1)}`)).toThrow(/not in the nix-base32 alphabet/);
    expect(() => nixBase32Decode(`${good.slice(0, -1)}u`)).toThrow(/alphabet/);
    expect(() => nixBase32Decode(good.slice(1))).toThrow(/length 51/);
    // 52 chars carry 260 bits for 256: the first character may only be 0-f (4 leading bits).
    expect(() => nixBase32Decode(`z${good.slice(1)}`)).toThrow(/bits beyond/);
    expect(isNixBase32(good)).toBe(true);
    expect(isNixBase32('hello')).toBe(false);
  });
});
