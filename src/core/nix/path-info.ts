/**
 * Asking Nix about store paths (niks3 spec §5.1, §5.2): `nix path-info --json` in every shape Nix and
 * Lix print (2.8's array with SRI hashes, newer object keyed by path, JSON v2 with structured hashes
 * and base names), building installables, resolving `./result`-style arguments to store paths, and
 * the store directory. Child processes run without a shell; no secret ever goes into their argv.
 */
import { spawn } from 'node:child_process';
import { lstat, readlink } from 'node:fs/promises';
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { ConfigurationError } from '../errors.js';
import { nixBase32Decode, nixBase32Encode } from './base32.js';
import { parseNarHash } from './nar-hash.js';
import {
  NIX_STORE_DIR,
  compareBytes,
  parseStorePath,
  toFullStorePath,
  topLevelStorePath,
} from './store-path.js';

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

export interface ExecOptions {
  /** Written to the child's stdin (then closed). */
  readonly input?: string;
  /** The child's whole environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly cwd?: string | undefined;
}
export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}
export type ExecFn = (cmd: string, args: string[], opts?: ExecOptions) => Promise<ExecResult>;

/** Runs a program without a shell and collects its output. Rejects only when it cannot be started. */
export const execFile: ExecFn = (cmd, args, opts = {}) =>
  new Promise<ExecResult>((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const out = new StringDecoder('utf8');
    const err = new StringDecoder('utf8');
    let stdout = '';
    let stderr = '';
    let failed = false;
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += out.write(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += err.write(chunk);
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      failed = true;
      const hint = error.code === 'ENOENT' ? ` (is ${cmd} installed and on PATH?)` : '';
      reject(new Error(`could not run ${cmd}: ${error.message}${hint}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      if (failed) return;
      stdout += out.end();
      stderr += err.end();
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout,
        stderr: signal && code === null ? `${stderr}killed by ${signal}\n` : stderr,
      });
    });
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}); // a child that exits without reading stdin
      child.stdin.end(opts.input);
    }
  });

export const NIX_COMMAND_FEATURES = ['--extra-experimental-features', 'nix-command'];
export const NIX_FLAKE_FEATURES = ['--extra-experimental-features', 'nix-command flakes'];

// ---------------------------------------------------------------------------------------------
// JSON parsing

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

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

function lastLines(text: string, count = 20): string {
  const lines = text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '' && !/^warning: (error: )?unable to download '/.test(l));
  return lines.slice(-count).join('\n');
}

function describePaths(paths: readonly string[]): string {
  if (paths.length <= 3) return paths.join(', ');
  return `${paths.slice(0, 3).join(', ')} and ${paths.length - 3} more`;
}

export interface NixCommandOptions {
  readonly exec?: ExecFn;
  /** Extra arguments for nix (e.g. `--store`, `--option k v`), placed before `--`. */
  readonly nixArgs?: readonly string[];
  /** The nix program (default `nix`). */
  readonly nix?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

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
  const exec = options.exec ?? execFile;
  const storeDir = options.storeDir ?? NIX_STORE_DIR;
  const unique = [...new Set(paths)];
  const byPath = new Map<string, PathInfo>();
  for (let i = 0; i < unique.length; i += PATH_INFO_CHUNK) {
    const chunk = unique.slice(i, i + PATH_INFO_CHUNK);
    const args = [
      ...NIX_COMMAND_FEATURES,
      'path-info',
      '--json',
      ...(options.recursive ? ['--recursive'] : []),
      ...(options.nixArgs ?? []),
      '--',
      ...chunk,
    ];
    const result = await exec(options.nix ?? 'nix', args, { env: options.env, cwd: options.cwd });
    if (result.code !== 0) {
      throw new Error(
        `nix path-info failed for ${describePaths(chunk)} (exit code ${result.code}): ${lastLines(result.stderr) || 'no error output'}`,
      );
    }
    let infos: PathInfo[];
    try {
      infos = parsePathInfoJson(JSON.parse(result.stdout) as unknown, storeDir);
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

/**
 * `nix build --no-link --json -- installables…` (flakes enabled; `--json` works on 2.8, which has no
 * `--print-out-paths`) and returns every output path built, in order, without duplicates.
 */
export async function buildInstallables(
  installables: string[],
  options: NixCommandOptions = {},
): Promise<string[]> {
  if (installables.length === 0) return [];
  const exec = options.exec ?? execFile;
  const args = [
    ...NIX_FLAKE_FEATURES,
    'build',
    '--no-link',
    '--json',
    ...(options.nixArgs ?? []),
    '--',
    ...installables,
  ];
  const result = await exec(options.nix ?? 'nix', args, { env: options.env, cwd: options.cwd });
  if (result.code !== 0) {
    throw new Error(
      `nix build failed for ${describePaths(installables)} (exit code ${result.code}): ${lastLines(result.stderr) || 'no error output'}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch {
    throw new Error(
      `nix build for ${describePaths(installables)} printed no JSON: ${result.stdout.slice(0, 200)}`,
    );
  }
  if (!Array.isArray(parsed)) throw new Error('nix build --json did not print a list');
  const out: string[] = [];
  for (const item of parsed) {
    if (!isObject(item)) continue;
    if (typeof item.path === 'string') out.push(item.path);
    if (isObject(item.outputs))
      for (const value of Object.values(item.outputs)) if (typeof value === 'string') out.push(value);
  }
  if (out.length === 0)
    throw new Error(`nix build for ${describePaths(installables)} reported no output paths`);
  return [...new Set(out)];
}

/**
 * Resolves a path argument to a top-level store path (§5.1): symlinks are followed one hop at a time
 * (a relative target is taken from the link's directory, in any component of the path) until the
 * path is inside the store, without following links inside the store; a path inside a store path is
 * reduced to the top-level store path. At most 255 hops.
 */
export async function resolvePathArgument(
  arg: string,
  cwd: string,
  storeDir: string = NIX_STORE_DIR,
): Promise<string> {
  const prefix = `${storeDir.replace(/\/+$/, '')}/`;
  let current = resolvePath(cwd, arg);
  for (let hops = 0; hops <= 255; hops++) {
    const top = topLevelStorePath(current, storeDir);
    if (top !== undefined) {
      try {
        await lstat(top);
      } catch {
        throw new ConfigurationError(
          `path does not exist: ${top} (from ${JSON.stringify(arg)}); build or substitute it first`,
        );
      }
      try {
        return parseStorePath(top, storeDir).path;
      } catch (error) {
        throw new ConfigurationError(
          `${JSON.stringify(arg)} resolves to ${top}, which is not a store path: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    // Find the first component that is a symlink and replace the path up to it with its target.
    const parts = current.split('/').filter((p) => p !== '');
    let replaced: string | undefined;
    for (let i = 1; i <= parts.length; i++) {
      const head = `/${parts.slice(0, i).join('/')}`;
      let isLink: boolean;
      try {
        isLink = (await lstat(head)).isSymbolicLink();
      } catch {
        throw new ConfigurationError(
          `path does not exist: ${current}${current === arg ? '' : ` (from ${JSON.stringify(arg)})`}`,
        );
      }
      if (!isLink) continue;
      const target = await readlink(head);
      const base = isAbsolute(target) ? target : resolvePath(dirname(head), target);
      replaced = resolvePath(base, ...parts.slice(i));
      break;
    }
    if (replaced === undefined) {
      throw new ConfigurationError(
        `${JSON.stringify(arg)} is not in the Nix store: it resolves to ${current}, outside ${prefix}. Pass a store path, a ./result link or an installable.`,
      );
    }
    current = replaced;
  }
  throw new ConfigurationError(`${JSON.stringify(arg)}: too many levels of symbolic links (more than 255)`);
}
