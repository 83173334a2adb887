/**
 * Realisations of content-addressed derivations (niks3 spec §4.7): which output of which derivation
 * is which store path. Nix reads `realisations/<id>.doi` from a cache to substitute the output of a
 * floating content-addressed derivation (`__contentAddressed = true`) before it knows the output's
 * path; without it Nix builds the derivation again, although its output is in the cache.
 *
 * Only floating CA outputs have realisations: their derivation (the deriver) names the output with an
 * empty path. Fixed-output derivations (fetchers) carry a `ca` too but have none, and
 * `nix realisation info` fails for them, so the deriver file is read first (no process for them).
 * Nix is asked with `<drv>^*` (Nix 2.13+), then with the plain `<drv>` (Nix 2.4–2.12 read that as
 * "its outputs"); a Nix without `nix realisation` (older than 2.4) reports none, and the paths are
 * pushed without them.
 */
import { openSync, readSync, closeSync } from 'node:fs';
import { describePaths, isObject, lastLines, runNix, type NixCommandOptions } from './nix-command.js';
import { OBJECT_KEY_PATTERNS, realisationKey } from './object-keys.js';
import type { PathInfo } from './path-info.js';
import { NIX_STORE_DIR, toFullStorePath } from './store-path.js';

export interface Realisation {
  /** `<hash algo>:<hex of the derivation's hash modulo>!<output name>`, e.g. `sha256:0432…!out`. */
  readonly id: string;
  /** As Nix prints it: the output's base name (a full path is accepted too). */
  readonly outPath: string;
  readonly signatures: readonly string[];
  /** Realisation id -> output path, of the inputs it was built from (empty for most). */
  readonly dependentRealisations: Readonly<Record<string, string>>;
}

export interface RealisationQuery {
  /** Output store path -> its realisations (a path is the output of one derivation output, usually). */
  readonly byPath: ReadonlyMap<string, readonly Realisation[]>;
  /** Derivers Nix could not report on, with Nix's last error line (empty when all were answered). */
  readonly failed: ReadonlyArray<{ readonly deriver: string; readonly error: string }>;
}

/** Derivers per `nix realisation info` call (keeps the argument list well under ARG_MAX). */
const REALISATION_CHUNK = 500;
const FEATURES = ['--extra-experimental-features', 'nix-command ca-derivations'];

/** The object key of a realisation (`realisations/<id>.doi`). */
export function realisationObjectKey(realisation: Realisation): string {
  return realisationKey(realisation.id);
}

/**
 * The body niks3's own client stores (before zstd): JSON with `id`, `outPath`, then `signatures`
 * and `dependentRealisations` only when not empty, the form Nix's `Realisation::fromJSON` reads.
 */
export function realisationBody(realisation: Realisation): string {
  return JSON.stringify({
    id: realisation.id,
    outPath: realisation.outPath,
    ...(realisation.signatures.length > 0 ? { signatures: [...realisation.signatures] } : {}),
    ...(Object.keys(realisation.dependentRealisations).length > 0
      ? { dependentRealisations: { ...realisation.dependentRealisations } }
      : {}),
  });
}

/**
 * Whether the derivation file names an output without a path (a floating content-addressed
 * output). An unreadable file is "no": Nix could not report on it either.
 */
export function hasFloatingOutput(drvFile: string): boolean {
  let head: string;
  try {
    const fd = openSync(drvFile, 'r');
    try {
      const buffer = Buffer.alloc(64 * 1024);
      head = buffer.toString('utf8', 0, readSync(fd, buffer, 0, buffer.length, 0));
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
  // ATerm: Derive([("out","","r:sha256",""),…],…) — an output is (name, path, hashAlgo, hash).
  const outputs = /^Derive\(\[((?:\("[^"]*","[^"]*","[^"]*","[^"]*"\),?)*)\]/.exec(head)?.[1];
  if (outputs === undefined) return false;
  return /\("[^"]*","","[^"]*",""\)/.test(outputs);
}

/** The realisations Nix has for the floating content-addressed outputs among `infos`. */
export async function queryRealisations(
  infos: readonly PathInfo[],
  options: { storeDir?: string; isFloating?: (deriver: string) => boolean } & NixCommandOptions = {},
): Promise<RealisationQuery> {
  const storeDir = options.storeDir ?? NIX_STORE_DIR;
  const isFloating = options.isFloating ?? hasFloatingOutput;
  const wanted = new Set<string>();
  const derivers = new Set<string>();
  for (const info of infos) {
    if (!info.ca || !info.deriver || !isFloating(info.deriver)) continue;
    wanted.add(info.path);
    derivers.add(info.deriver);
  }
  const byPath = new Map<string, Realisation[]>();
  const failed: Array<{ deriver: string; error: string }> = [];
  if (derivers.size === 0) return { byPath, failed };

  const ask = async (drvs: readonly string[]): Promise<Realisation[] | string> => {
    let error = '';
    for (const form of [(d: string) => `${d}^*`, (d: string) => d]) {
      const result = await runNix([...FEATURES, 'realisation', 'info', '--json'], drvs.map(form), options);
      if (result.code === 0) {
        try {
          return parseRealisations(JSON.parse(result.stdout) as unknown);
        } catch (parseError) {
          return `nix realisation info printed JSON it does not understand: ${parseError instanceof Error ? parseError.message : String(parseError)}`;
        }
      }
      error = lastLines(result.stderr, 1) || `exit code ${result.code}`;
    }
    return error;
  };

  const list = [...derivers];
  for (let i = 0; i < list.length; i += REALISATION_CHUNK) {
    const chunk = list.slice(i, i + REALISATION_CHUNK);
    let answers: Realisation[] = [];
    const whole = await ask(chunk);
    if (typeof whole !== 'string') answers = whole;
    else if (chunk.length === 1) failed.push({ deriver: chunk[0] as string, error: whole });
    else {
      // One deriver Nix cannot report on (say, an output substituted without its realisation) fails
      // the whole call: ask for each one alone.
      for (const deriver of chunk) {
        const one = await ask([deriver]);
        if (typeof one === 'string') failed.push({ deriver, error: one });
        else answers.push(...one);
      }
    }
    for (const realisation of answers) {
      const path = toFullStorePath(realisation.outPath, storeDir);
      if (!wanted.has(path)) continue;
      const known = byPath.get(path) ?? [];
      if (!known.some((r) => r.id === realisation.id)) byPath.set(path, [...known, realisation]);
    }
  }
  return { byPath, failed };
}

/** `nix realisation info --json` output: realisations, and `{opaquePath}` entries (skipped). */
export function parseRealisations(json: unknown): Realisation[] {
  if (!Array.isArray(json)) throw new Error('not a JSON array');
  const realisations: Realisation[] = [];
  for (const entry of json) {
    if (!isObject(entry) || typeof entry.id !== 'string' || typeof entry.outPath !== 'string') continue;
    if (!OBJECT_KEY_PATTERNS.realisation.test(realisationKey(entry.id)))
      throw new Error(
        `the realisation id ${JSON.stringify(entry.id)} is not of the form <algo>:<hash>!<output>`,
      );
    const signatures = Array.isArray(entry.signatures)
      ? entry.signatures.filter((s): s is string => typeof s === 'string')
      : [];
    const dependent: Record<string, string> = {};
    if (isObject(entry.dependentRealisations))
      for (const [id, path] of Object.entries(entry.dependentRealisations))
        if (typeof path === 'string') dependent[id] = path;
    realisations.push({
      id: entry.id,
      outPath: entry.outPath,
      signatures,
      dependentRealisations: dependent,
    });
  }
  return realisations;
}

/** One line for a warning: which derivers Nix could not report on, and why. */
export function describeFailedRealisations(failed: RealisationQuery['failed']): string {
  const first = failed[0]?.error ?? '';
  return `${describePaths(failed.map((f) => f.deriver))}: ${first}`;
}
