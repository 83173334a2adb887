/**
 * Empties an R2 bucket a page at a time: list the first page of keys, delete them, repeat until a
 * page comes back empty (listing from the start each time stays correct while keys disappear).
 * Progress is logged at least every 10 seconds.
 *
 * Two ways to reach the objects:
 * - through the S3 endpoint (when S3 keys are given): ListObjectsV2 and DeleteObjects, 1000 keys
 *   per request; the right tool for a real cache;
 * - through the REST API (only the API token): one request per object, under Cloudflare's 1200
 *   requests per 5 minutes, so about 4 objects a second: fine for small buckets only.
 */
import type { Logger } from '../logger.js';
import type { R2Api } from './r2-api.js';
import type { R2Jurisdiction } from './r2-names.js';
import type { R2S3 } from './r2-s3.js';

/** Listing and deleting the objects of one bucket. */
export interface BucketObjects {
  /** How the objects are reached, for logs. */
  readonly via: string;
  /** The largest page worth asking for. */
  readonly pageSize: number;
  listKeys(max: number): Promise<string[]>;
  /** Deletes the keys; calls `deleted(n)` as they go. */
  deleteKeys(keys: readonly string[], deleted: (n: number) => void): Promise<void>;
}

export function restObjects(
  api: R2Api,
  bucket: string,
  jurisdiction: R2Jurisdiction,
  concurrency = 4,
): BucketObjects {
  return {
    via: 'the Cloudflare API (one request per object; give s3-access-key and s3-secret-key to delete 1000 per request)',
    pageSize: 1000,
    listKeys: (max) => api.listObjectKeys(bucket, jurisdiction, max),
    async deleteKeys(keys, deleted) {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < keys.length) {
          const key = keys[next++] ?? '';
          await api.deleteObject(bucket, jurisdiction, key);
          deleted(1);
        }
      };
      await Promise.all(
        Array.from({ length: Math.min(Math.max(1, concurrency), keys.length) }, () => worker()),
      );
    },
  };
}

export function s3Objects(s3: R2S3): BucketObjects {
  return {
    via: `the S3 endpoint (${new URL(s3.access.endpointUrl).host}, 1000 objects per request)`,
    pageSize: 1000,
    listKeys: (max) => s3.listKeys(max),
    async deleteKeys(keys, deleted) {
      await s3.deleteKeys(keys);
      deleted(keys.length);
    },
  };
}

/** Deletes every object of the bucket; returns how many were deleted. */
export async function emptyBucket(
  objects: BucketObjects,
  bucket: string,
  logger: Logger,
  options: { now?: () => number } = {},
): Promise<number> {
  const now = options.now ?? Date.now;
  let deleted = 0;
  let lastProgress = now();
  let previousFirst: string | undefined;
  logger.info(`Emptying R2 bucket ${bucket} through ${objects.via}`);
  for (let page = 1; ; page++) {
    const keys = await objects.listKeys(objects.pageSize);
    if (keys.length === 0) break;
    if (keys[0] === previousFirst && keys.length === objects.pageSize) {
      // The same full page again: deletes are not taking effect; stop rather than loop.
      throw new Error(
        `R2 bucket "${bucket}": objects listed again after they were deleted (page ${page}); re-run later`,
      );
    }
    previousFirst = keys[0];
    await objects.deleteKeys(keys, (n) => {
      deleted += n;
      if (now() - lastProgress >= 10_000) {
        lastProgress = now();
        logger.info(`Emptying R2 bucket ${bucket}: ${deleted} objects deleted so far`);
      }
    });
    logger.info(`Emptying R2 bucket ${bucket}: page ${page} done, ${deleted} objects deleted so far`);
    lastProgress = now();
  }
  return deleted;
}

/**
 * Aborts every in-progress multipart upload of the bucket through S3 (the REST API has no
 * multipart calls), a page at a time; a bucket with open uploads cannot be deleted. Returns how
 * many were aborted.
 */
export async function abortUploads(s3: R2S3, bucket: string, logger: Logger): Promise<number> {
  let aborted = 0;
  let previousFirst: string | undefined;
  for (;;) {
    const uploads = await s3.listUploads(1000);
    if (uploads.length === 0) break;
    if (uploads[0]?.uploadId === previousFirst) {
      throw new Error(
        `R2 bucket "${bucket}": multipart uploads listed again after they were aborted; re-run later`,
      );
    }
    previousFirst = uploads[0]?.uploadId;
    for (const upload of uploads) {
      await s3.abortUpload(upload.key, upload.uploadId);
      aborted += 1;
    }
  }
  if (aborted > 0) logger.info(`Aborted ${aborted} incomplete multipart upload(s) in R2 bucket ${bucket}`);
  return aborted;
}
