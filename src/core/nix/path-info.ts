/**
 * Asking Nix about store paths (niks3 spec §5.2): `nix path-info --json` in every shape Nix and Lix
 * print (2.8's array with SRI hashes, newer object keyed by path, JSON v2 with structured hashes and
 * base names), parsed into PathInfo. Child processes run without a shell (nix-command.ts).
 */
import {
  NIX_COMMAND_FEATURES,
  describePaths,
  isObject,
  nixStdout,
  type NixCommandOptions,
} from './nix-command.js';
import { nixBase32Decode, nixBase32Encode } from './base32.js';
import { parseNarHash } from './nar-hash.js';
import { NIX_STORE_DIR, compareBytes, toFullStorePath } from './store-path.js';

export interface PathInfo {
  /** Full store path. */
  readonly path: string;
  /** 32-byte sha256 of the NAR. */
  readonly narHash: Buffer;
  readonly narSize: number;
  /** Full store paths (possibly including `path` itself). */
  readonly references: readonly string[];
  /** Full `.drv` path, when known. */
  readonly deriver?: string;
  readonly signatures: readonly string[];
  /** Content address in Nix's text form (`fixed:r:sha256:<nix32>`, `text:sha256:…`), when any. */
  readonly ca?: string;
  readonly registrationTime?: number;
}

// ---------------------------------------------------------------------------------------------
// JSON parsing

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** `{algorithm, format, hash}` (Nix 2.33+ JSON v2) -> algorithm and digest bytes. */
function decodeStructuredHash(
  value: Record<string, unknown>,
  where: string,
): { algorithm: string; digest: Buffer } {
  const algorithm = value.algorithm;
  const format = value.format;
  const hash = value.hash;
  if (typeof algorithm !== 'string' || typeof hash !== 'string')
    throw new Error(`${where}: a structured hash needs string "algorithm" and "hash"`);
  let digest: Buffer;
  switch (format) {
    case 'base64':
    case undefined:
      digest = Buffer.from(hash, 'base64');
      break;
    case 'nix32':
    case 'base32':
      digest = nixBase32Decode(hash);
      break;
    case 'base16':
      digest = Buffer.from(hash, 'hex');
      break;
    case 'sri': {
      const dash = hash.indexOf('-');
      digest = Buffer.from(dash >= 0 ? hash.slice(dash + 1) : hash, 'base64');
      break;
    }
    default:
      throw new Error(`${where}: unknown hash format ${JSON.stringify(format)}`);
  }
  return { algorithm, digest };
}

function parseNarHashField(value: unknown, where: string): Buffer {
  if (typeof value === 'string') return parseNarHash(value);
  if (isObject(value)) {
    const { algorithm, digest } = decodeStructuredHash(value, where);
    if (algorithm !== 'sha256' || digest.length !== 32)
      throw new Error(
        `${where}: narHash must be a sha256 digest, got ${algorithm} of ${digest.length} bytes`,
      );
    return digest;
  }
  throw new Error(`${where}: narHash is missing or not a string/object`);
}

const CA_METHOD_PREFIX: Record<string, string> = {
  text: 'text:',
  flat: 'fixed:',
  nar: 'fixed:r:',
  git: 'fixed:git:',
};

function parseCaField(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'string') return value;
  if (isObject(value)) {
    const method = value.method;
    const prefix = typeof method === 'string' ? CA_METHOD_PREFIX[method] : undefined;
    if (!prefix) throw new Error(`${where}: unknown content-address method ${JSON.stringify(method)}`);
    if (typeof value.hash === 'string') return `${prefix}${value.hash}`;
    if (!isObject(value.hash)) throw new Error(`${where}: content address without a hash`);
    const { algorithm, digest } = decodeStructuredHash(value.hash, where);
    return `${prefix}${algorithm}:${nixBase32Encode(digest)}`;
  }
  throw new Error(`${where}: ca is neither a string nor an object`);
}

function parseOne(pathHint: string | undefined, raw: unknown, storeDir: string): PathInfo {
  const rawPath = isObject(raw) && typeof raw.path === 'string' ? raw.path : pathHint;
  if (rawPath === undefined) throw new Error('nix path-info JSON: an entry has no "path"');
  const itemStoreDir = isObject(raw) && typeof raw.storeDir === 'string' ? raw.storeDir : storeDir;
  const path = toFullStorePath(rawPath, itemStoreDir);
  if (raw === null || (isObject(raw) && raw.valid === false)) {
    throw new Error(`path '${path}' is not valid: it is not in the Nix store (build or substitute it first)`);
  }
  if (!isObject(raw)) throw new Error(`nix path-info JSON: the entry for ${path} is not an object`);
  const where = `nix path-info JSON for ${path}`;
  const narSize = raw.narSize;
  if (typeof narSize !== 'number' || !Number.isSafeInteger(narSize) || narSize < 0)
    throw new Error(`${where}: narSize is not a non-negative integer`);
  const refs = raw.references ?? [];
  if (!Array.isArray(refs) || refs.some((r) => typeof r !== 'string'))
    throw new Error(`${where}: references is not a list of strings`);
  const sigs = raw.signatures ?? raw.sigs ?? [];
  if (!Array.isArray(sigs) || sigs.some((s) => typeof s !== 'string'))
    throw new Error(`${where}: signatures is not a list of strings`);
  const deriver = raw.deriver;
  if (deriver !== undefined && deriver !== null && typeof deriver !== 'string')
    throw new Error(`${where}: deriver is not a string`);
  const info: {
    path: string;
    narHash: Buffer;
    narSize: number;
    references: string[];
    signatures: string[];
    deriver?: string;
    ca?: string;
    registrationTime?: number;
  } = {
    path,
    narHash: parseNarHashField(raw.narHash, where),
    narSize,
    references: (refs as string[]).map((r) => toFullStorePath(r, itemStoreDir)).sort(compareBytes),
    signatures: [...(sigs as string[])],
  };
  if (typeof deriver === 'string' && deriver !== '' && deriver !== 'unknown-deriver')
    info.deriver = toFullStorePath(deriver, itemStoreDir);
  const ca = parseCaField(raw.ca, where);
  if (ca) info.ca = ca;
  if (typeof raw.registrationTime === 'number') info.registrationTime = raw.registrationTime;
  return info;
}

/**
 * Parses `nix path-info --json` output in any known shape: an array of entries with `path` (Nix 2.8
 * and Lix), or an object keyed by full path or base name (newer Nix; JSON v2 with `version`,
 * structured hashes/CA and base names). Base names are made full with the entry's `storeDir` or
 * `storeDir`. An invalid path (`valid: false` or `null`) is an error naming it.
 */
export function parsePathInfoJson(json: unknown, storeDir: string = NIX_STORE_DIR): PathInfo[] {
  const value = typeof json === 'string' ? (JSON.parse(json) as Json) : json;
  if (Array.isArray(value)) return value.map((item) => parseOne(undefined, item, storeDir));
  if (isObject(value)) return Object.entries(value).map(([key, item]) => parseOne(key, item, storeDir));
  throw new Error('nix path-info JSON is neither an array nor an object');
}

// ---------------------------------------------------------------------------------------------
// Running nix

const PATH_INFO_CHUNK = 1000;

/**
 * `nix path-info --json [--recursive] -- paths…`, in chunks of 1000 paths, merged and de-duplicated
 * in Nix's order. Fails with an Error naming the paths and Nix's stderr; checks that every asked
 * path came back.
 */
export async function queryPathInfo(
  paths: string[],
  options: { recursive: boolean; storeDir?: string } & NixCommandOptions,
): Promise<PathInfo[]> {
  const storeDir = options.storeDir ?? NIX_STORE_DIR;
  const unique = [...new Set(paths)];
  const byPath = new Map<string, PathInfo>();
  for (let i = 0; i < unique.length; i += PATH_INFO_CHUNK) {
    const chunk = unique.slice(i, i + PATH_INFO_CHUNK);
    const stdout = await nixStdout(
      'nix path-info',
      [...NIX_COMMAND_FEATURES, 'path-info', '--json', ...(options.recursive ? ['--recursive'] : [])],
      chunk,
      options,
    );
    let infos: PathInfo[];
    try {
      infos = parsePathInfoJson(JSON.parse(stdout) as unknown, storeDir);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`nix path-info for ${describePaths(chunk)}: ${message}`, { cause: error });
    }
    for (const info of infos) if (!byPath.has(info.path)) byPath.set(info.path, info);
    for (const path of chunk) {
      if (!byPath.has(path))
        throw new Error(`nix path-info did not report ${path}; is it a valid store path?`);
    }
  }
  return [...byPath.values()];
}
