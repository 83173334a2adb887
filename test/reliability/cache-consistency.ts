/**
 * What "a consistent cache" means in the reliability tests, checked on a fake niks3:
 *
 * - `auditCache(fake)`: every narinfo in the bucket parses, its NAR object (`URL:`) is in the bucket,
 *   and every path it references has a narinfo too (so Nix can substitute the whole closure). This
 *   must hold after ANY run, a failed or a killed one included.
 * - `expectCommitted(fake, paths)`: after a successful push, each path's narinfo and NAR are live
 *   objects of the server's database (a GC cannot mistake them for orphans) and each root is a closure.
 * - `substituteAll(fake, paths)`: one real `nix copy --from <public URL>` of all the paths into a fresh
 *   store, with signatures required and only the fake's keys trusted.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import type { FakeNiks3 } from '../fakes/niks3/index.js';
import { NIX_TEST_ARGS, removeStoreRoot } from '../helpers/nix-fixtures.js';

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** The 32-character hash part of a store path or base name. */
export function hashPart(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return base.slice(0, 32);
}

/** The fields of a stored narinfo that the checks need. */
export interface StoredNarInfo {
  readonly storePath: string;
  /** The NAR object key. */
  readonly url: string;
  /** Base names. */
  readonly references: readonly string[];
}

/**
 * The narinfo stored under `key` (decompressed when stored with zstd), or undefined. Lenient: only
 * StorePath and URL are required (seeded test closures carry no NarHash).
 */
export async function readNarInfo(fake: FakeNiks3, key: string): Promise<StoredNarInfo | undefined> {
  const raw = await fake.getObject(key);
  if (raw === undefined) return undefined;
  const text = raw.subarray(0, 4).equals(ZSTD_MAGIC)
    ? zstdDecompressSync(raw).toString('utf8')
    : raw.toString('utf8');
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(': ');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 2));
    else if (line.endsWith(':')) fields.set(line.slice(0, -1), '');
  }
  const storePath = fields.get('StorePath');
  const url = fields.get('URL');
  if (!storePath || !url) throw new Error(`corrupt narinfo: ${JSON.stringify(text.slice(0, 200))}`);
  return { storePath, url, references: (fields.get('References') ?? '').split(' ').filter((r) => r !== '') };
}

export interface CacheAudit {
  /** Narinfo keys in the bucket. */
  readonly narinfos: readonly string[];
  /** Everything wrong, one line each (empty when the cache is consistent). */
  readonly problems: readonly string[];
}

/** Checks that no narinfo in the bucket lacks its NAR or a referenced narinfo. */
export async function auditCache(fake: FakeNiks3): Promise<CacheAudit> {
  const keys = new Set(fake.objectKeys());
  const narinfos = [...keys].filter((key) => key.endsWith('.narinfo')).sort();
  const problems: string[] = [];
  for (const key of narinfos) {
    let info: StoredNarInfo | undefined;
    try {
      info = await readNarInfo(fake, key);
    } catch (error) {
      problems.push(`${key}: does not parse (${String(error)})`);
      continue;
    }
    if (!info) continue;
    if (!keys.has(info.url))
      problems.push(`${key} (${info.storePath}): its NAR ${info.url} is not in the bucket`);
    for (const ref of info.references) {
      if (!keys.has(`${hashPart(ref)}.narinfo`))
        problems.push(`${key} (${info.storePath}): its reference ${ref} has no narinfo`);
    }
  }
  return { narinfos, problems };
}

/** Each path's narinfo and NAR are live in the server's database; each root is a committed closure. */
export async function committedProblems(
  fake: FakeNiks3,
  paths: readonly string[],
  roots: readonly string[],
): Promise<string[]> {
  const problems: string[] = [];
  for (const path of paths) {
    const key = `${hashPart(path)}.narinfo`;
    const info = await readNarInfo(fake, key);
    if (!info) {
      problems.push(`${path}: no narinfo`);
      continue;
    }
    if (!fake.state.isLive(key)) problems.push(`${path}: narinfo is not a live object in the database`);
    if (!fake.state.isLive(info.url))
      problems.push(`${path}: NAR ${info.url} is not a live object in the database`);
  }
  for (const root of roots) {
    if (!fake.state.closures.has(`${hashPart(root)}.narinfo`))
      problems.push(`${root}: not a committed closure`);
  }
  return problems;
}

export interface Substitution {
  readonly code: number;
  readonly stderr: string;
}

/**
 * `nix copy --from <public URL> --to <fresh store> <paths…>` with signatures required and only the
 * fake's public keys trusted. The temporary store is removed afterwards.
 */
export async function substituteAll(fake: FakeNiks3, paths: readonly string[]): Promise<Substitution> {
  const storeRoot = mkdtempSync(join(tmpdir(), 'nix-store-reliability-'));
  try {
    return await new Promise<Substitution>((resolve, reject) => {
      const child = spawn(
        'nix',
        [
          '--extra-experimental-features',
          'nix-command',
          'copy',
          '--from',
          fake.publicUrl,
          '--to',
          storeRoot,
          '--option',
          'trusted-public-keys',
          fake.publicKeys.join(' '),
          '--option',
          'require-sigs',
          'true',
          ...NIX_TEST_ARGS,
          ...paths,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
    });
  } finally {
    removeStoreRoot(storeRoot);
  }
}
