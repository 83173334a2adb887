/**
 * Ed25519 signing of narinfos the way Nix and niks3 do it (niks3 spec §1.3, §4.3). Secret keys are
 * `name:base64` of a 64-byte key (seed then public key, what `nix key generate-secret` writes) or of
 * a 32-byte seed. Error messages never contain key material; callers mask the key text themselves.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { maskSecret, type Logger } from '../logger.js';
import { normaliseNarHash } from './nar-hash.js';
import { compareBytes } from './store-path.js';

export interface SecretKey {
  readonly name: string;
  /** The 32-byte Ed25519 seed. Secret. */
  readonly seed: Buffer;
  /** `name:<padded base64 of the 32-byte public key>`, as in `trusted-public-keys`. */
  readonly publicKey: string;
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const privateKeys = new WeakMap<Buffer, KeyObject>();

function privateKeyOf(key: SecretKey): KeyObject {
  let object = privateKeys.get(key.seed);
  if (!object) {
    object = createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519_PREFIX, key.seed]),
      format: 'der',
      type: 'pkcs8',
    });
    privateKeys.set(key.seed, object);
  }
  return object;
}

function rawPublicKey(privateKey: KeyObject): Buffer {
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return Buffer.from(spki.subarray(spki.length - 32));
}

function decodeBase64Strict(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) return undefined;
  return Buffer.from(text, 'base64');
}

/** Splits `name:value` trimming both parts; `what` names the thing in errors. */
function splitNamed(text: string, what: string): { name: string; value: string } {
  const trimmed = text.trim();
  const colon = trimmed.indexOf(':');
  if (colon < 0) throw new Error(`the ${what} is not of the form name:base64 (no ":" found)`);
  const name = trimmed.slice(0, colon).trim();
  const value = trimmed.slice(colon + 1).trim();
  if (!name) throw new Error(`the ${what} has an empty name before ":"`);
  if (!value) throw new Error(`the ${what} "${name}" has nothing after ":"`);
  return { name, value };
}

/**
 * Parses a secret key file's text. Accepts the 64-byte form (checks that its public half belongs to
 * the seed) and the 32-byte seed form. Never puts key material into an error message.
 */
export function parseSecretKey(text: string): SecretKey {
  const { name, value } = splitNamed(text, 'signing key');
  const bytes = decodeBase64Strict(value);
  if (!bytes) throw new Error(`the signing key "${name}" is not valid base64 after "${name}:"`);
  if (bytes.length !== 32 && bytes.length !== 64) {
    throw new Error(
      `the signing key "${name}" decodes to ${bytes.length} bytes; an Ed25519 secret key is 64 bytes (nix key generate-secret) or a 32-byte seed`,
    );
  }
  const seed = Buffer.from(bytes.subarray(0, 32));
  const key: SecretKey = { name, seed, publicKey: '' };
  let pub: Buffer;
  try {
    pub = rawPublicKey(privateKeyOf(key));
  } catch {
    throw new Error(`the signing key "${name}" is not a usable Ed25519 key`);
  }
  if (bytes.length === 64 && !pub.equals(bytes.subarray(32))) {
    throw new Error(
      `the signing key "${name}" is damaged: its second half is not the public key of its first half`,
    );
  }
  const parsed: SecretKey = { name, seed, publicKey: `${name}:${pub.toString('base64')}` };
  return parsed;
}

/**
 * Masks a secret key text and every form derived from it that could be printed: the whole text, its
 * base64 part, and the seed alone in padded/unpadded base64 and hex. Safe on unparsable text.
 */
export function maskSecretKey(logger: Pick<Logger, 'setSecret'>, text: string): void {
  const full = logger as Logger; // maskSecret only calls setSecret
  const trimmed = text.trim();
  maskSecret(full, trimmed);
  const colon = trimmed.indexOf(':');
  const value = colon >= 0 ? trimmed.slice(colon + 1).trim() : trimmed;
  maskSecret(full, value);
  const bytes = decodeBase64Strict(value);
  if (bytes && bytes.length >= 32) {
    const seed = bytes.subarray(0, 32);
    for (const form of [
      seed.toString('base64'),
      seed.toString('base64').replace(/=+$/, ''),
      seed.toString('hex'),
      seed.toString('base64url'),
    ])
      maskSecret(full, form);
  }
}

/** A fresh key pair in Nix's text forms (`nix key generate-secret` / `convert-secret-to-public`). */
export function generateSecretKey(name: string): { secretKeyText: string; publicKey: string } {
  if (!name || name.includes(':') || name.trim() !== name)
    throw new Error('a signing key name must be non-empty, without ":" or surrounding spaces');
  const { privateKey } = generateKeyPairSync('ed25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const seed = Buffer.from(pkcs8.subarray(pkcs8.length - 32));
  const pub = rawPublicKey(privateKey);
  return {
    secretKeyText: `${name}:${Buffer.concat([seed, pub]).toString('base64')}`,
    publicKey: `${name}:${pub.toString('base64')}`,
  };
}

/** The public key (`name:base64`) for a secret key text. */
export function publicKeyOf(secretKeyText: string): string {
  return parseSecretKey(secretKeyText).publicKey;
}

/**
 * `1;<storePath>;<sha256:nix32>;<narSize>;<refs sorted byte-wise, joined by ",">` (§4.3). The NAR
 * hash may be given in any accepted form and is normalised; references must be full store paths.
 */
export function fingerprint(
  storePath: string,
  narHash: string,
  narSize: number,
  references: readonly string[],
): string {
  if (!storePath.startsWith('/'))
    throw new Error(`fingerprint: store path ${JSON.stringify(storePath)} is not a full path`);
  if (!Number.isSafeInteger(narSize) || narSize < 0)
    throw new Error(`fingerprint: NAR size ${narSize} is not a non-negative integer`);
  for (const ref of references) {
    if (!ref.startsWith('/'))
      throw new Error(
        `fingerprint: reference ${JSON.stringify(ref)} of ${storePath} is not a full store path`,
      );
  }
  const refs = [...references].sort(compareBytes).join(',');
  return `1;${storePath};${normaliseNarHash(narHash)};${narSize};${refs}`;
}

/** `<keyname>:<padded base64 of the 64-byte Ed25519 signature of the fingerprint's UTF-8 bytes>`. */
export function signFingerprint(key: SecretKey, fp: string): string {
  const signature = sign(null, Buffer.from(fp, 'utf8'), privateKeyOf(key));
  return `${key.name}:${signature.toString('base64')}`;
}

/** Parses `name:base64` of a 32-byte Ed25519 public key. */
export function parsePublicKey(text: string): { name: string; key: Buffer } {
  const { name, value } = splitNamed(text, 'public key');
  const key = decodeBase64Strict(value);
  if (!key || key.length !== 32) throw new Error(`the public key "${name}" is not the base64 of 32 bytes`);
  return { name, key };
}

/**
 * True when `sig` (`name:base64`) is a valid signature of `fp` by `publicKey` (`name:base64`) and the
 * names match, as Nix checks against `trusted-public-keys`.
 */
export function verifySignature(publicKey: string, fp: string, sig: string): boolean {
  const pub = publicKeyObject(publicKey);
  if (!pub) return false;
  const colon = sig.indexOf(':');
  if (colon < 0 || sig.slice(0, colon) !== pub.name) return false;
  const raw = decodeBase64Strict(sig.slice(colon + 1));
  if (!raw || raw.length !== 64) return false;
  return verify(null, Buffer.from(fp, 'utf8'), pub.key, raw);
}

/** Parsed keys by their `name:base64` text (null: not a key): a verify of many narinfos parses each once. */
const publicKeyObjects = new Map<string, { readonly name: string; readonly key: KeyObject } | null>();

function publicKeyObject(publicKey: string): { readonly name: string; readonly key: KeyObject } | null {
  let known = publicKeyObjects.get(publicKey);
  if (known === undefined) {
    try {
      const { name, key } = parsePublicKey(publicKey);
      const der = Buffer.concat([SPKI_ED25519_PREFIX, key]);
      known = { name, key: createPublicKey({ key: der, format: 'der', type: 'spki' }) };
    } catch {
      known = null;
    }
    publicKeyObjects.set(publicKey, known);
  }
  return known;
}
