/**
 * Empties an R2 bucket through the REST API, a page at a time: list the first page of keys,
 * delete them (a few at once), repeat until a page comes back empty. Listing from the start each
 * time stays correct while keys disappear. One request per object and Cloudflare's 1200 requests
 * per 5 minutes make this slow for a big cache; it logs progress at least every 10 seconds.
 */
import type { Logger } from '../logger.js';
import type { R2Api } from './r2-api.js';
import type { R2Jurisdiction } from './r2-names.js';

export interface EmptyBucketOptions {
  readonly pageSize?: number;
  readonly concurrency?: number;
  readonly now?: () => number;
}

/** Deletes every object of the bucket; returns how many were deleted. */
export async function emptyBucket(
  api: R2Api,
  bucket: string,
  jurisdiction: R2Jurisdiction,
  logger: Logger,
  options: EmptyBucketOptions = {},
): Promise<number> {
  const pageSize = options.pageSize ?? 1000;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const now = options.now ?? Date.now;
  let deleted = 0;
  let lastProgress = now();
  let previousFirst: string | undefined;
  for (let page = 1; ; page++) {
    const keys = await api.listObjectKeys(bucket, jurisdiction, pageSize);
    if (keys.length === 0) break;
    if (keys[0] === previousFirst && keys.length === pageSize) {
      // The same full page again: deletes are not taking effect; stop rather than loop.
      throw new Error(`R2 bucket "${bucket}": objects listed again after they were deleted (page ${page}); re-run later`);
    }
    previousFirst = keys[0];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const key = keys[next++] ?? '';
        await api.deleteObject(bucket, jurisdiction, key);
        deleted += 1;
        if (now() - lastProgress >= 10_000) {
          lastProgress = now();
          logger.info(`Emptying R2 bucket ${bucket}: ${deleted} objects deleted so far`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, keys.length) }, () => worker()));
    logger.info(`Emptying R2 bucket ${bucket}: page ${page} done, ${deleted} objects deleted so far`);
    lastProgress = now();
  }
  return deleted;
}
