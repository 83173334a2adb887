/**
 * The gc command end to end, for the action and the CLI alike: reach the server (waking it if it
 * sleeps), prune pins of deleted refs, read the cache size, run (or follow) the GC, read the size
 * again. A failure of the pruning does not stop the GC; it is reported with the result.
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { CacheStats, GcParams } from '../niks3/api-types.js';
import type { Sleep } from '../http.js';
import type { GcResult } from './gc-report.js';
import { runGc, type GcApi } from './gc-run.js';
import { prunePins, type PinApi, type RepositoryRefs } from './pin-pruning.js';

/** What the command needs of the niks3 client (Niks3Client has all of it). */
export interface GcClient extends GcApi, PinApi {
  readonly serverUrl: string;
  connect(timeoutMs: number, connectTimeoutInput?: string): Promise<unknown>;
  cacheStats(): Promise<CacheStats | undefined>;
}

export interface CollectGarbageOptions {
  readonly client: GcClient;
  readonly logger: Logger;
  readonly params: Required<GcParams>;
  readonly wait: boolean;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Set to prune pins of deleted branches and tags first. */
  readonly pruning?: { readonly refs: RepositoryRefs; readonly keep: readonly string[] };
  readonly sleep?: Sleep;
  readonly now?: () => number;
  readonly pollIntervalMs?: number;
}

export interface CollectGarbageResult extends GcResult {
  /** Why pruning failed (the GC still ran). */
  readonly pruningError: unknown;
}

async function readStats(client: GcClient, logger: Logger): Promise<CacheStats | undefined> {
  try {
    return await client.cacheStats();
  } catch (error) {
    logger.warn(`could not read /api/cache-stats: ${errorMessage(error)}`);
    return undefined;
  }
}

export async function collectGarbage(options: CollectGarbageOptions): Promise<CollectGarbageResult> {
  const { client, logger } = options;
  await logger.group('Connect to niks3', async () => {
    await client.connect(options.connectTimeoutMs);
    logger.info(`niks3 at ${client.serverUrl} answers`);
  });

  let pruning: GcResult['pruning'];
  let pruningError: unknown;
  if (options.pruning) {
    const { refs, keep } = options.pruning;
    await logger.group('Prune pins of deleted branches and tags', async () => {
      try {
        pruning = await prunePins({ api: client, refs, logger, keep });
      } catch (error) {
        pruningError = error;
        logger.error(`pin pruning failed, the GC runs anyway: ${errorMessage(error)}`);
      }
    });
  }

  const before = await readStats(client, logger);
  const outcome = await logger.group('Garbage collection', () =>
    runGc({
      api: client,
      params: options.params,
      logger,
      wait: options.wait,
      timeoutMs: options.timeoutMs,
      ...(options.sleep ? { sleep: options.sleep } : {}),
      ...(options.now ? { now: options.now } : {}),
      ...(options.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}),
    }),
  );
  const after = outcome.state === 'running' ? undefined : await readStats(client, logger);
  return { serverUrl: client.serverUrl, outcome, pruning, before, after, pruningError };
}
