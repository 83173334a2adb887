/**
 * Nix narinfo signing as niks3 does it (spec §1.3, §4.3): Ed25519 keys in Nix's
 * `name:base64` form, the fingerprint `1;<path>;<narHash>;<narSize>;<refs>` and
 * signatures `name:<base64 of 64 bytes>`.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  type KeyObject,
} from 'node:crypto';

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A parsed signing key. */
export interface SigningKey {
  readonly name: string;
  /** `name:base64(seed ‖ public)`, the form `nix key generate-secret` writes. */
  readonly secret: string;
  /** `name:base64(public)`, standard padded base64, as in `trusted-public-keys`. */
  readonly publicKey: string;
  readonly privateKey: KeyObject;
}

function decodeStdBase64(s: string): Buffer | undefined {
  // Standard alphabet, padded or unpadded (Go tries StdEncoding, then RawStdEncoding).
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  const unpadded = s.replace(/=+$/, '');
  if (s.includes('=') && s.length % 4 !== 0) return undefined;
  if (unpadded.length % 4 === 1) return undefined;
  return Buffer.from(unpadded, 'base64');
}

/**
 * Parses a Nix secret key `name:base64` holding a 32-byte seed or a 64-byte
 * seed ‖ public key. Whitespace around the parts is trimmed. Throws with niks3's messages.
 */
export function parseSigningKey(text: string): SigningKey {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(':');
  if (colon < 0) throw new Error("sign key does not contain a ':'");
  const name = trimmed.slice(0, colon).trim();
  const b64 = trimmed.slice(colon + 1).trim();
  if (name === '') throw new Error('empty key name');
  const bytes = decodeStdBase64(b64);
  if (bytes === undefined) throw new Error('failed to decode base64');
  if (bytes.length !== 32 && bytes.length !== 64) {
    throw new Error(`invalid signing key length: expected 32 or 64 bytes, got ${bytes.length}`);
  }
  const seed = bytes.subarray(0, 32);
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const pub = Buffer.from(jwk.x!, 'base64url');
  return {
    name,
    secret: `${name}:${Buffer.concat([seed, pub]).toString('base64')}`,
    publicKey: `${name}:${pub.toString('base64')}`,
    privateKey,
  };
}

/** Generates a fresh key (like `nix key generate-secret --key-name NAME`). */
export function generateSigningKey(name: string): SigningKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d!, 'base64url');
  const pub = Buffer.from(jwk.x!, 'base64url');
  return parseSigningKey(`${name}:${Buffer.concat([seed, pub]).toString('base64')}`);
}

/** The narinfo fields the server signs (spec §3.2: only these four are used). */
export interface FingerprintInput {
  storePath: string;
  narHash: string;
  narSize: number;
  references: readonly string[] | null;
}

/** Builds the fingerprint; throws niks3's validation errors (spec §4.3). */
export function narinfoFingerprint(info: FingerprintInput): string {
  if (!info.storePath.startsWith('/nix/store')) throw new Error('store path does not start with /nix/store');
  if (!info.narHash.startsWith('sha256:')) throw new Error("NAR hash must start with 'sha256:'");
  if (Buffer.byteLength(info.narHash) !== 59) {
    throw new Error(`NAR hash has invalid length: expected 59, got ${Buffer.byteLength(info.narHash)}`);
  }
  const refs = [...(info.references ?? [])];
  for (const ref of refs) {
    if (!ref.startsWith('/nix/store'))
      throw new Error(`reference path does not start with /nix/store: ${ref}`);
  }
  refs.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return `1;${info.storePath};${info.narHash};${info.narSize};${refs.join(',')}`;
}

/** Signs a fingerprint: `name:<standard padded base64 of the 64-byte signature>`. */
export function signFingerprint(key: SigningKey, fingerprint: string): string {
  const sig = cryptoSign(null, Buffer.from(fingerprint, 'utf8'), key.privateKey);
  return `${key.name}:${sig.toString('base64')}`;
}

/** One signature per key, in key order (spec §3.2). */
export function signNarinfo(keys: readonly SigningKey[], info: FingerprintInput): string[] {
  const fingerprint = narinfoFingerprint(info);
  return keys.map((k) => signFingerprint(k, fingerprint));
}
