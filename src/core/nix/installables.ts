/**
 * What the push's `installables` and `paths` inputs turn into: `nix build` of installables (their
 * output paths), and path arguments (`./result` links, links to links, paths inside store paths)
 * resolved to the top-level store paths they stand for (shared/spec/niks3.md §5.1).
 */
import { lstat, readlink } from 'node:fs/promises';
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { ConfigurationError } from '../errors.js';
import {
  NIX_FLAKE_FEATURES,
  describePaths,
  isObject,
  nixStdout,
  type NixCommandOptions,
} from './nix-command.js';
import { NIX_STORE_DIR, parseStorePath, topLevelStorePath, normaliseStoreDir } from './store-path.js';

/**
 * `nix build --no-link --json -- installables…` (flakes enabled; `--json` works on 2.8, which has no
 * `--print-out-paths`) and returns every output path built, in order, without duplicates.
 */
export async function buildInstallables(
  installables: string[],
  options: NixCommandOptions = {},
): Promise<string[]> {
  if (installables.length === 0) return [];
  const stdout = await nixStdout(
    'nix build',
    [...NIX_FLAKE_FEATURES, 'build', '--no-link', '--json'],
    installables,
    options,
  );
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new Error(`nix build for ${describePaths(installables)} printed no JSON: ${stdout.slice(0, 200)}`);
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
  const prefix = `${normaliseStoreDir(storeDir)}/`;
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
