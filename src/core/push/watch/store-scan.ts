/**
 * What appeared in the store during the job. The main step records the store directory's entries
 * (a directory read: fast on any store size); the post step reads it again and keeps, of the new
 * entries, the store paths Nix registers as valid: a path still being built, a lock (`.lock`), a
 * `--check` output (`.check`), a derivation (`.drv`) and Nix's own `.links` are never candidates.
 *
 * A candidate is pushed only when this job could have made it:
 * - it is "ultimate" (built or added on this machine): a substituted path came from a cache that
 *   already serves it (ours: counted as pulled from the cache; another: not ours to re-publish);
 * - it was registered after the main step ran;
 * - on a store this user writes itself (single-user), it is owned by this user: a path owned by
 *   another uid was added by another user. Through a daemon every path is owned by root; there
 *   another local user could only add paths the daemon built itself or content-addressed files
 *   (`nix-store --add`), so on a shared machine narrow the push with `include`/`exclude`.
 */
import { lstat, readdir } from 'node:fs/promises';
import { execFile, NIX_COMMAND_FEATURES, type ExecFn } from '../../nix/nix-command.js';
import { parsePathInfoJson, type PathInfo } from '../../nix/path-info.js';

const SKIPPED_SUFFIXES = ['.drv', '.lock', '.check', '.chroot', '.tmp'];

export async function storeEntries(storeDir: string): Promise<string[]> {
  return (await readdir(storeDir)).filter((name) => !name.startsWith('.'));
}

/** New entries that could be store paths we push (no `.drv`, `.lock`, `.check`…). */
export function newCandidates(
  before: ReadonlySet<string>,
  after: readonly string[],
  storeDir: string,
): string[] {
  return after
    .filter((name) => !before.has(name))
    .filter((name) => /^[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+$/.test(name))
    .filter((name) => !SKIPPED_SUFFIXES.some((suffix) => name.endsWith(suffix)))
    .map((name) => `${storeDir}/${name}`);
}

/** The valid ones among `paths` (no substitution is tried: `nix-store --check-validity`). */
export async function validPaths(paths: readonly string[], exec: ExecFn = execFile): Promise<string[]> {
  const invalid = new Set<string>();
  for (let i = 0; i < paths.length; i += 1000) {
    const chunk = paths.slice(i, i + 1000);
    const result = await exec('nix-store', ['--check-validity', '--print-invalid', ...chunk]);
    if (result.code !== 0) throw new Error(`nix-store --check-validity failed: ${result.stderr.trim()}`);
    for (const line of result.stdout.split('\n')) if (line.trim()) invalid.add(line.trim());
  }
  return paths.filter((path) => !invalid.has(path));
}

export interface ScannedPath {
  readonly info: PathInfo;
  readonly ultimate: boolean;
}

/** `nix path-info --json` of valid paths, with the `ultimate` flag that PathInfo leaves out. */
export async function scanPathInfo(
  paths: readonly string[],
  options: { exec?: ExecFn; storeDir?: string } = {},
): Promise<ScannedPath[]> {
  const exec = options.exec ?? execFile;
  const out: ScannedPath[] = [];
  for (let i = 0; i < paths.length; i += 1000) {
    const chunk = paths.slice(i, i + 1000);
    const result = await exec('nix', [...NIX_COMMAND_FEATURES, 'path-info', '--json', '--', ...chunk]);
    if (result.code !== 0) throw new Error(`nix path-info failed: ${result.stderr.trim()}`);
    const raw = JSON.parse(result.stdout) as unknown;
    const entries: Array<Record<string, unknown>> = Array.isArray(raw)
      ? (raw as Array<Record<string, unknown>>)
      : Object.entries(raw as Record<string, Record<string, unknown>>).map(([path, value]) => ({
          path,
          ...value,
        }));
    const live = entries.filter((entry) => entry && entry['valid'] !== false);
    const infos = parsePathInfoJson(live, options.storeDir);
    infos.forEach((info, index) => out.push({ info, ultimate: live[index]?.['ultimate'] === true }));
  }
  return out;
}

export interface Classified {
  /** Made by this job: to push. */
  readonly made: readonly PathInfo[];
  /** Substituted from our cache (signed by one of its keys). */
  readonly pulled: readonly PathInfo[];
  readonly skipped: ReadonlyArray<{ readonly path: string; readonly reason: string }>;
}

export async function classify(
  scanned: readonly ScannedPath[],
  options: {
    /** Seconds since the epoch when the main step recorded the store. */
    readonly sinceSeconds: number;
    /** Key names (before the `:`) of our cache. */
    readonly ourKeyNames: readonly string[];
    /** Single-user store: check owners. */
    readonly checkOwner: boolean;
    readonly uid: number | undefined;
  },
): Promise<Classified> {
  const made: PathInfo[] = [];
  const pulled: PathInfo[] = [];
  const skipped: Array<{ path: string; reason: string }> = [];
  for (const { info, ultimate } of scanned) {
    const ours = info.signatures.some((sig) => options.ourKeyNames.includes(sig.slice(0, sig.indexOf(':'))));
    if (!ultimate) {
      if (ours) pulled.push(info);
      else skipped.push({ path: info.path, reason: 'substituted from another cache' });
      continue;
    }
    if (info.registrationTime !== undefined && info.registrationTime + 1 < options.sinceSeconds) {
      skipped.push({ path: info.path, reason: 'registered before the push step ran' });
      continue;
    }
    if (options.checkOwner && options.uid !== undefined) {
      const owner = await lstat(info.path).then(
        (stat) => stat.uid,
        () => undefined,
      );
      if (owner !== undefined && owner !== options.uid) {
        skipped.push({ path: info.path, reason: `owned by uid ${owner}: added by another user` });
        continue;
      }
    }
    made.push(info);
  }
  return { made, pulled, skipped };
}

/** The paths of `infos` that no other path of `infos` refers to: the roots of their closures. */
export function topPaths(infos: readonly PathInfo[]): string[] {
  const referenced = new Set<string>();
  for (const info of infos) for (const ref of info.references) if (ref !== info.path) referenced.add(ref);
  return infos.map((info) => info.path).filter((path) => !referenced.has(path));
}
