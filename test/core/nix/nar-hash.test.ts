import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  formatNarHash,
  formatNarHashSri,
  narHashNix32,
  normaliseNarHash,
  parseNarHash,
} from '../../../src/core/nix/nar-hash.js';

function nixHash(command: string, hash: string): string {
  return execFileSync(
    'nix',
    ['--extra-experimental-features', 'nix-command', 'hash', command, '--type', 'sha256', hash],
    { encoding: 'utf8' },
  ).trim();
}

describe('NAR hashes', () => {
  const digest = randomBytes(32);
  const sri = `sha256-${digest.toString('base64')}`;

  it('formats like nix hash to-base32 / to-sri', () => {
    expect(formatNarHash(digest)).toBe(`sha256:${nixHash('to-base32', sri)}`);
    expect(formatNarHashSri(digest)).toBe(nixHash('to-sri', `sha256:${digest.toString('hex')}`));
    expect(narHashNix32(digest)).toHaveLength(52);
  });

  it('parses SRI, sha256:nix32, sha256:base64, sha256:hex and bare forms to the same digest', () => {
    const nix32 = nixHash('to-base32', sri);
    const forms = [
      sri,
      `sha256:${nix32}`,
      `sha256:${digest.toString('base64')}`,
      `sha256:${digest.toString('base64').replace(/=+$/, '')}`,
      `sha256:${digest.toString('hex')}`,
      `sha256:${digest.toString('hex').toUpperCase()}`,
      nix32,
      digest.toString('hex'),
      `  ${sri}\n`,
    ];
    for (const form of forms) expect(parseNarHash(form).equals(digest)).toBe(true);
    expect(normaliseNarHash(sri)).toBe(`sha256:${nix32}`);
  });

  it('matches the spec test vector of the NAR of a file "hello\\n"', () => {
    // 120-byte NAR of a regular file with contents "hello\n" (spec §4.4)
    const s = (t: string) => {
      const b = Buffer.from(t);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(b.length));
      return Buffer.concat([len, b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
    };
    const nar = Buffer.concat(['nix-archive-1', '(', 'type', 'regular', 'contents', 'hello\n', ')'].map(s));
    expect(nar.length).toBe(120);
    expect(formatNarHash(createHash('sha256').update(nar).digest())).toBe(
      'sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw',
    );
  });

  it('refuses other algorithms, wrong lengths and garbage with a message naming the value', () => {
    expect(() => parseNarHash(`sha512-${randomBytes(64).toString('base64')}`)).toThrow(/only sha256/);
    expect(() => parseNarHash('sha256:abc')).toThrow(/invalid NAR hash "sha256:abc"/);
    expect(() => parseNarHash(`sha256:${'e'.repeat(52)}`)).toThrow(/alphabet/);
    expect(() => parseNarHash('')).toThrow(/invalid NAR hash/);
    expect(() => formatNarHash(randomBytes(20))).toThrow(/32-byte/);
  });
});
