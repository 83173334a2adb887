/**
 * The roots of a push: installables built with `nix build --no-link` and path arguments (store
 * paths, `./result` links, paths inside a store path) resolved to top-level store paths. Errors name
 * the input they came from.
 */
import { ConfigurationError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { buildInstallables, resolvePathArgument } from '../nix/installables.js';
import type { ExecFn } from '../nix/nix-command.js';

export interface RootArguments {
  readonly installables: readonly string[];
  readonly paths: readonly string[];
  readonly cwd: string;
  readonly storeDir: string;
  readonly exec?: ExecFn;
  readonly logger: Logger;
}

export async function resolveRoots(args: RootArguments): Promise<string[]> {
  const roots: string[] = [];
  if (args.installables.length > 0) {
    args.logger.info(`nix build --no-link ${args.installables.join(' ')}`);
    try {
      roots.push(
        ...(await buildInstallables([...args.installables], {
          cwd: args.cwd,
          ...(args.exec ? { exec: args.exec } : {}),
        })),
      );
    } catch (error) {
      throw new ConfigurationError(
        `Input 'installables': ${errorMessage(error)}. Check that each line is an installable Nix can build here (e.g. \`.#default\`).`,
      );
    }
  }
  for (const path of args.paths) {
    try {
      roots.push(await resolvePathArgument(path, args.cwd, args.storeDir));
    } catch (error) {
      throw new ConfigurationError(`Input 'paths': ${errorMessage(error)}`);
    }
  }
  const unique = [...new Set(roots)];
  for (const root of unique) args.logger.info(`root: ${root}`);
  return unique;
}
