/**
 * The closure of a push's roots in the local store: the path infos from `nix path-info --recursive`
 * and the realisations of its floating content-addressed outputs.
 */
import { ConfigurationError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ExecFn } from '../nix/nix-command.js';
import { queryPathInfo, type PathInfo } from '../nix/path-info.js';
import {
  describeFailedRealisations,
  queryRealisations,
  type Realisation,
  type RealisationQuery,
} from '../nix/realisations.js';
import { formatBytes } from '../settings/values.js';

export interface LocalClosureDeps {
  readonly logger: Logger;
  readonly exec?: ExecFn;
  /** Realisations of the closure's floating content-addressed outputs (default: ask Nix). */
  readonly queryRealisations?: typeof queryRealisations;
}

export interface LocalClosure {
  readonly infos: PathInfo[];
  readonly realisations: ReadonlyMap<string, readonly Realisation[]>;
}

export async function localClosure(
  roots: readonly string[],
  storeDir: string | undefined,
  deps: LocalClosureDeps,
  warnings: string[],
): Promise<LocalClosure> {
  const { logger } = deps;
  const result = await queryClosure(roots, deps.exec, storeDir);
  const total = result.reduce((sum, info) => sum + info.narSize, 0);
  logger.info(
    `${result.length} store path(s) in the closure of ${roots.length} root(s), ${formatBytes(total)} of NAR.`,
  );
  const found = await (deps.queryRealisations ?? queryRealisations)(result, {
    ...(deps.exec ? { exec: deps.exec } : {}),
    ...(storeDir ? { storeDir } : {}),
  });
  reportRealisations(found, logger, warnings);
  return { infos: result, realisations: found.byPath };
}

async function queryClosure(
  roots: readonly string[],
  exec: ExecFn | undefined,
  storeDir: string | undefined,
): Promise<PathInfo[]> {
  try {
    return await queryPathInfo([...roots], {
      recursive: true,
      ...(exec ? { exec } : {}),
      ...(storeDir ? { storeDir } : {}),
    });
  } catch (error) {
    throw new ConfigurationError(
      `${errorMessage(error)}. Check input 'paths' / 'installables': every path must be valid in the local Nix store.`,
    );
  }
}

/**
 * Says how many realisations go up; warns when Nix could not report some (a Nix older than 2.4
 * has no `nix realisation`): those outputs are pushed without, so Nix substitutes them by store
 * path, but a build of their derivation elsewhere does not find them in the cache and builds again.
 */
function reportRealisations(found: RealisationQuery, logger: Logger, warnings: string[]): void {
  const count = [...found.byPath.values()].reduce((sum, list) => sum + list.length, 0);
  if (count > 0)
    logger.info(`${count} realisation(s) of content-addressed derivation outputs to push with their paths.`);
  if (found.failed.length > 0) {
    const warning = `Nix reported no realisation for the outputs of ${found.failed.length} content-addressed derivation(s) (${describeFailedRealisations(found.failed)}); they are pushed without: Nix substitutes them by store path, but a build of the derivation elsewhere does not find them in the cache.`;
    warnings.push(warning);
    logger.warn(warning);
  }
}
