import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNarHash } from '../../../src/core/nix/nar-hash.js';
import { parsePathInfoJson } from '../../../src/core/nix/path-info.js';
import {
  fingerprint,
  generateSecretKey,
  maskSecretKey,
  parsePublicKey,
  parseSecretKey,
  publicKeyOf,
  signFingerprint,
  verifySignature,
} from '../../../src/core/nix/signing-key.js';
import { buildDerivations, nixPathInfoJson } from '../../helpers/nix-fixtures.js';

// niks3 spec §1.3 and §4.3
const SECRET =
  'niks3-test-1:0knWkx/F+6IJmI4dkvNs14SCaewg9ZWSAQUNg9juRxh/8x+rzUJx9SWdyGOVl21IbJlQemUKG40qW2TTyrE++w==';
const PUBLIC = 'niks3-test-1:f/Mfq81CcfUlnchjlZdtSGyZUHplChuNKltk08qxPvs=';
const FP =
  '1;/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1;sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh;226560;/nix/store/sl141d1g77wvhr050ah87lcyz2czdxa3-glibc-2.40-36';
const SIG =
  'niks3-test-1:IQ8SoNkz8N42fU8aQDsiPD77WM540b+yYYwDmRPz5jwk2IMz1rr1hQu8Ny2cH1HPS0b4mHkP79F7VlzOypa8Bw==';
const NIX = ['--extra-experimental-features', 'nix-command'];

describe('signing keys', () => {
  it('reproduces the spec test vector (public key, fingerprint, signature)', () => {
    const key = parseSecretKey(SECRET);
    expect(key.name).toBe('niks3-test-1');
    expect(key.publicKey).toBe(PUBLIC);
    expect(key.seed).toHaveLength(32);
    const fp = fingerprint(
      '/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1',
      'sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh',
      226560,
      ['/nix/store/sl141d1g77wvhr050ah87lcyz2czdxa3-glibc-2.40-36'],
    );
    expect(fp).toBe(FP);
    expect(signFingerprint(key, fp)).toBe(SIG);
    expect(verifySignature(PUBLIC, FP, SIG)).toBe(true);
  });

  it('builds fingerprints with sorted references, any NAR hash form, and a trailing ";" without references', () => {
    const nix32 = 'sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh';
    const sri = `sha256-${parseNarHash(nix32).toString('base64')}`;
    const hex = `sha256:${parseNarHash(nix32).toString('hex')}`;
    const path = '/nix/store/26xbg1ndr7hbcncrlf9nhx5is2b25d13-hello-2.12.1';
    const refs = ['/nix/store/sl141d1g77wvhr050ah87lcyz2czdxa3-glibc-2.40-36'];
    expect(fingerprint(path, sri, 226560, refs)).toBe(FP);
    expect(fingerprint(path, hex, 226560, refs)).toBe(FP);
    expect(
      fingerprint('/nix/store/b-x', 'sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh', 1, []),
    ).toMatch(/;1;$/);
    expect(
      fingerprint('/nix/store/b-x', 'sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh', 1, [
        '/nix/store/z',
        '/nix/store/a',
        '/nix/store/B',
      ]),
    ).toMatch(/;1;\/nix\/store\/B,\/nix\/store\/a,\/nix\/store\/z$/);
    expect(() =>
      fingerprint('/nix/store/b-x', 'sha256:1mkvday29m2qxg1fnbv8xh9s6151bh8a2xzhh0k86j7lqhyfwibh', 1, [
        'a-b',
      ]),
    ).toThrow(/not a full store path/);
  });

  it('accepts the 32-byte seed form, padded or not, with spaces around', () => {
    const seed = Buffer.from(SECRET.split(':')[1] as string, 'base64').subarray(0, 32);
    for (const text of [
      `niks3-test-1:${seed.toString('base64')}`,
      ` niks3-test-1 : ${seed.toString('base64').replace(/=+$/, '')}\n`,
    ]) {
      const key = parseSecretKey(text);
      expect(key.publicKey).toBe(PUBLIC);
      expect(signFingerprint(key, FP)).toBe(SIG);
    }
  });

  it('refuses bad keys without ever printing key material', () => {
    const material = SECRET.split(':')[1] as string;
    const bad = [
      material,
      `:${material}`,
      'k:',
      'k:!!!notbase64!!!',
      `k:${Buffer.alloc(48, 1).toString('base64')}`,
      // 64 bytes whose second half is not the public key of the first
      `k:${Buffer.concat([Buffer.from(material, 'base64').subarray(0, 32), Buffer.alloc(32, 7)]).toString('base64')}`,
    ];
    for (const text of bad) {
      let message = '';
      try {
        parseSecretKey(text);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain(material.slice(0, 12));
      expect(message).not.toContain(
        Buffer.from(material, 'base64').subarray(0, 32).toString('base64').slice(0, 12),
      );
    }
  });

  it('maskSecretKey masks the text and the derived seed forms', () => {
    const masked = new Set<string>();
    maskSecretKey({ setSecret: (v) => masked.add(v) }, `  ${SECRET}\n`);
    const value = SECRET.split(':')[1] as string;
    const seed = Buffer.from(value, 'base64').subarray(0, 32);
    for (const form of [
      SECRET,
      value,
      seed.toString('base64'),
      seed.toString('base64').replace(/=+$/, ''),
      seed.toString('hex'),
    ])
      expect(masked).toContain(form);
    expect([...masked].some((m) => PUBLIC.includes(m) && m.length > 8)).toBe(false);
    maskSecretKey({ setSecret: (v) => masked.add(v) }, 'not a key at all');
  });

  it('verifySignature refuses other keys, other names, tampered fingerprints and junk', () => {
    const other = generateSecretKey('niks3-test-1');
    expect(verifySignature(other.publicKey, FP, SIG)).toBe(false);
    expect(
      verifySignature(PUBLIC.replace('niks3-test-1', 'other'), FP, SIG.replace('niks3-test-1', 'other')),
    ).toBe(true);
    expect(verifySignature(PUBLIC, FP, SIG.replace('niks3-test-1', 'other'))).toBe(false);
    expect(verifySignature(PUBLIC, FP.replace('226560', '226561'), SIG)).toBe(false);
    expect(verifySignature(PUBLIC, FP, 'niks3-test-1:AAAA')).toBe(false);
    expect(verifySignature('garbage', FP, SIG)).toBe(false);
    expect(parsePublicKey(PUBLIC).key).toHaveLength(32);
  });

  it('generates keys Nix agrees with (nix key convert-secret-to-public)', () => {
    const { secretKeyText, publicKey } = generateSecretKey('test-gen-1');
    expect(publicKeyOf(secretKeyText)).toBe(publicKey);
    const fromNix = execFileSync('nix', [...NIX, 'key', 'convert-secret-to-public'], {
      input: secretKeyText,
      encoding: 'utf8',
    }).trim();
    expect(fromNix).toBe(publicKey);
    const nixSecret = execFileSync('nix', [...NIX, 'key', 'generate-secret', '--key-name', 'nix-made-1'], {
      encoding: 'utf8',
    }).trim();
    expect(parseSecretKey(nixSecret).publicKey).toBe(
      execFileSync('nix', [...NIX, 'key', 'convert-secret-to-public'], {
        input: nixSecret,
        encoding: 'utf8',
      }).trim(),
    );
  });

  it('produces exactly the signature `nix store sign` puts on a real store path', async () => {
    const paths = await buildDerivations({
      base: 'echo base > $out',
      signed: '/bin/mkdir $out; echo ${base} > $out/ref',
    });
    const dir = mkdtempSync(join(tmpdir(), 'sign-'));
    try {
      const keyFile = join(dir, 'key');
      writeFileSync(keyFile, SECRET, { mode: 0o600 });
      execFileSync('nix', [...NIX, 'store', 'sign', '--key-file', keyFile, paths.signed as string], {
        stdio: 'pipe',
      });
      const [info] = parsePathInfoJson(nixPathInfoJson([paths.signed as string]));
      const nixSig = info?.signatures.find((s) => s.startsWith('niks3-test-1:'));
      expect(nixSig).toBeDefined();
      const key = parseSecretKey(SECRET);
      const fp = fingerprint(
        info!.path,
        `sha256-${info!.narHash.toString('base64')}`,
        info!.narSize,
        info!.references,
      );
      expect(fp).toContain(';/nix/store/');
      expect(signFingerprint(key, fp)).toBe(nixSig);
      expect(verifySignature(PUBLIC, fp, nixSig as string)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
