/**
 * Store paths: `<storeDir>/<32 nix32 chars>-<name>` (niks3 spec §0.2, §5.2). The hash part keys the
 * narinfo and the listing; the name follows Nix's rules (`[A-Za-z0-9+._?=-]`, at most 211 chars).
 */
import { ConfigurationError } from '../errors.js';
import { NIX_BASE32_ALPHABET } from './base32.js';

export const NIX_STORE_DIR = '/nix/store';
export const STORE_PATH_HASH_LENGTH = 32;
const MAX_NAME_LENGTH = 211;

const HASH_RE = new RegExp(`^[${NIX_BASE32_ALPHABET}]{${STORE_PATH_HASH_LENGTH}}$`);
const NAME_RE = /^[A-Za-z0-9+._?=-]+$/;

export interface StorePath {
  /** The full path, e.g. `/nix/store/26xb…-hello-2.12.1`. */
  readonly path: string;
  /** The 32-character nix32 hash part. */
  readonly hash: string;
  /** The name after the first `-`. */
  readonly name: string;
}

/** A store directory without a trailing slash (`/` stays `/`). */
export function normaliseStoreDir(storeDir: string): string {
  return storeDir.length > 1 ? storeDir.replace(/\/+$/, '') : storeDir;
}

/** Why `baseName` (`<hash>-<name>`) is not a store path base name, or undefined when it is one. */
export function storePathBaseNameProblem(baseName: string): string | undefined {
  const dash = baseName.indexOf('-');
  if (dash < 0) return 'it has no "-" between hash and name';
  const hash = baseName.slice(0, dash);
  const name = baseName.slice(dash + 1);
  if (!HASH_RE.test(hash))
    return `its hash part ${JSON.stringify(hash)} is not ${STORE_PATH_HASH_LENGTH} nix-base32 characters`;
  if (name.length === 0) return 'its name is empty';
  if (name.length > MAX_NAME_LENGTH) return `its name is longer than ${MAX_NAME_LENGTH} characters`;
  if (!NAME_RE.test(name))
    return `its name ${JSON.stringify(name)} has characters Nix does not allow (only A-Z a-z 0-9 + - . _ ? =)`;
  return undefined;
}

/** Parses a full store path; throws ConfigurationError saying what is wrong. */
export function parseStorePath(path: string, storeDir: string = NIX_STORE_DIR): StorePath {
  const dir = normaliseStoreDir(storeDir);
  const prefix = `${dir}/`;
  if (!path.startsWith(prefix)) {
    throw new ConfigurationError(
      `${JSON.stringify(path)} is not a store path: it does not start with ${prefix}`,
    );
  }
  const baseName = path.slice(prefix.length);
  if (baseName.includes('/')) {
    throw new ConfigurationError(
      `${JSON.stringify(path)} is not a store path: it points inside one (use ${prefix}${baseName.split('/')[0]})`,
    );
  }
  const problem = storePathBaseNameProblem(baseName);
  if (problem) throw new ConfigurationError(`${JSON.stringify(path)} is not a store path: ${problem}`);
  const dash = baseName.indexOf('-');
  return { path, hash: baseName.slice(0, dash), name: baseName.slice(dash + 1) };
}

export function isStorePath(path: string, storeDir: string = NIX_STORE_DIR): boolean {
  try {
    parseStorePath(path, storeDir);
    return true;
  } catch {
    return false;
  }
}

/** The 32-character hash part of a full store path or a base name. */
export function storePathHash(pathOrBaseName: string): string {
  const base = storePathBaseName(pathOrBaseName);
  const problem = storePathBaseNameProblem(base);
  if (problem)
    throw new ConfigurationError(`${JSON.stringify(pathOrBaseName)} is not a store path: ${problem}`);
  return base.slice(0, STORE_PATH_HASH_LENGTH);
}

/** `/nix/store/abc-foo` -> `abc-foo` (a base name is returned as it is). */
export function storePathBaseName(pathOrBaseName: string): string {
  const slash = pathOrBaseName.lastIndexOf('/');
  return slash < 0 ? pathOrBaseName : pathOrBaseName.slice(slash + 1);
}

/** A base name (or a full path, returned unchanged) as a full path under `storeDir`. */
export function toFullStorePath(pathOrBaseName: string, storeDir: string = NIX_STORE_DIR): string {
  return pathOrBaseName.startsWith('/') ? pathOrBaseName : `${normaliseStoreDir(storeDir)}/${pathOrBaseName}`;
}

/**
 * The top-level store path that contains `path` (`/nix/store/x-foo/bin/hello` -> `/nix/store/x-foo`),
 * or undefined when `path` is not inside the store.
 */
export function topLevelStorePath(path: string, storeDir: string = NIX_STORE_DIR): string | undefined {
  const prefix = `${normaliseStoreDir(storeDir)}/`;
  if (!path.startsWith(prefix)) return undefined;
  const first = path.slice(prefix.length).split('/')[0] ?? '';
  return first ? `${prefix}${first}` : undefined;
}

/** Byte-wise comparison of two strings' UTF-8 encodings (Go's and Nix's sort order). */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
