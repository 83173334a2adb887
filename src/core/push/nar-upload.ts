/**
 * One store path's NAR on its way to the cache (shared/spec/niks3.md §4.4, §5.5, §5.11): serialised
 * from the filesystem, sha256-hashed and counted on the way (a NAR that differs from Nix's path-info
 * is never uploaded: a single PUT is not sent, a multipart upload is never completed), compressed
 * with zstd from node:zlib, and sent either as one presigned PUT (buffered, known length) or as
 * fixed-size parts of a multipart upload, asking for more part URLs when they run out. The `.ls`
 * listing produced in the same pass follows.
 *
 * Memory: every buffer comes out of the push's ByteBudget first (a small NAR's whole compressed
 * form; two parts of a large one: the one being filled and the one being sent). CPU: serialising
 * and compressing holds one of a few `cpuSlots` (about the number of cores), so many uploads can be
 * in flight without as many zstd contexts and read buffers alive at once.
 */
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { createZstdCompress } from 'node:zlib';
import { RemoteError } from '../errors.js';
import type { MultipartInfo, PendingObject } from '../niks3/api-types.js';
import type { Niks3Client } from '../niks3/niks3-client.js';
import type { PresignedUploader } from '../niks3/presigned-upload.js';
import { renderNarListing, type NarListing } from '../nix/nar-listing.js';
import { narChunksWithListing, narListing } from '../nix/nar-writer.js';
import { narToBuffer } from '../nix/nar-buffer.js';
import { formatNarHash } from '../nix/nar-hash.js';
import { NarMismatchError } from '../nix/nar-mismatch.js';
import { OBJECT_HEADERS } from '../nix/object-keys.js';
import type { ByteBudget } from './byte-budget.js';
import { PartSink, SupersededUpload } from './multipart-sink.js';
import type { PlannedPath } from './push-plan.js';
import { compressBound, zstdLevelParams, zstdOnce } from '../compress/zstd-once.js';

export const DEFAULT_PART_SIZE = 10 * 1024 * 1024;
const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;

/** §5.5: 10 MiB parts, unless 9000 of them would not hold the NAR; then multiples of 16 MiB. */
export function partSizeFor(narSize: number): number {
  const needed = Math.ceil(narSize / 9000);
  if (needed <= DEFAULT_PART_SIZE) return DEFAULT_PART_SIZE;
  const sixteen = 16 * 1024 * 1024;
  return Math.min(MAX_PART_SIZE, Math.ceil(needed / sixteen) * sixteen);
}

export { NarMismatchError } from '../nix/nar-mismatch.js';

export interface UploadContext {
  readonly client: Niks3Client;
  readonly uploader: PresignedUploader;
  readonly budget: ByteBudget;
  /** A counting semaphore (acquire(1)) for NAR serialisation + compression. */
  readonly cpuSlots: ByteBudget;
  readonly compressionLevel: number;
  readonly signal: AbortSignal;
  /** Overrides the part size (tests use small parts); default `partSizeFor(narSize)`. */
  readonly partSize?: number;
  /** Uncompressed NAR bytes read so far (for progress). */
  readonly onNarBytes: (bytes: number) => void;
  /** Bytes stored in the cache (each successful PUT once). */
  readonly onUploaded: (bytes: number) => void;
  /**
   * A fresh presigned URL for `key` of this path after a 403 (URLs expire after 5 h), or
   * undefined when the server says the object is present now (nothing to upload).
   */
  readonly refreshUrl: (planned: PlannedPath, key: string) => Promise<string | undefined>;
  /**
   * Whether `key` is stored, after a 404 on its multipart upload (default: the server's
   * `HEAD /api/objects`, which v1.7.0 lacks; the push also asks the public URL).
   */
  readonly objectStored?: (key: string) => Promise<boolean>;
}

export interface NarUploadResult {
  /** The NAR object is in the cache (uploaded by us, or by another session in the meantime). */
  readonly narStored: boolean;
  /** Another session completed the same NAR first; our upload was superseded (§5.5). */
  readonly superseded: boolean;
  readonly listingStored: boolean;
  /** Compressed bytes of the NAR we stored. */
  readonly compressedBytes: number;
  readonly parts: number;
}

/** A streaming zstd compressor with large output chunks (fewer callbacks and allocations than the 16 KiB default). */
function zstdStream(level: number): ReturnType<typeof createZstdCompress> {
  return createZstdCompress({ ...zstdLevelParams(level), chunkSize: 256 * 1024 });
}

/**
 * Uploads the NAR (when `nar` is pending) and then the listing (when `listing` is pending). With
 * only the listing pending (the NAR is shared with another path), the listing is built by walking
 * the tree without reading file contents.
 */
export async function uploadNarAndListing(
  planned: PlannedPath,
  nar: PendingObject | undefined,
  listing: PendingObject | undefined,
  ctx: UploadContext,
): Promise<NarUploadResult> {
  let result: NarUploadResult = {
    narStored: false,
    superseded: false,
    listingStored: false,
    compressedBytes: 0,
    parts: 0,
  };
  let listingDoc: NarListing | undefined;
  if (nar) {
    const upload = await uploadNar(planned, nar, ctx);
    result = { ...result, ...upload.result };
    listingDoc = upload.listing;
  }
  if (listing && !result.superseded) {
    listingDoc ??= (await narListing(planned.path)).listing;
    const body = zstdOnce(renderNarListing(listingDoc), 3);
    await putSmall(planned, listing, body, ctx);
    result = { ...result, listingStored: true };
  }
  return result;
}

/** PUTs a small, already compressed object to its presigned URL, refreshing the URL once on 403. */
export async function putSmall(
  planned: PlannedPath,
  target: PendingObject,
  body: Uint8Array,
  ctx: UploadContext,
): Promise<'stored' | 'not-needed'> {
  const headers = OBJECT_HEADERS[target.type];
  let url = target.presignedUrl;
  if (!url)
    throw new RemoteError({
      remote: 'niks3',
      operation: `upload ${target.key}`,
      detail: 'the server gave no presigned URL for it',
    });
  for (let round = 0; round < 2; round++) {
    const outcome = await ctx.uploader.put(url, body, {
      contentType: headers.contentType,
      ...(headers.contentEncoding ? { contentEncoding: headers.contentEncoding } : {}),
      what: target.key,
      signal: ctx.signal,
    });
    if (outcome.kind === 'stored') {
      ctx.onUploaded(body.length);
      return 'stored';
    }
    if (outcome.kind === 'gone') {
      throw new RemoteError({
        remote: 'cache storage',
        operation: `PUT ${target.key}`,
        status: 404,
        hint: 'the bucket behind niks3 seems to be missing; check the server S3 settings',
      });
    }
    if (round === 1) break;
    const fresh = await ctx.refreshUrl(planned, target.key);
    if (fresh === undefined) return 'not-needed';
    url = fresh;
  }
  throw new RemoteError({
    remote: 'cache storage',
    operation: `PUT ${target.key}`,
    status: 403,
    detail: 'the presigned URL was refused, also after asking the server for a new one',
    hint: 'check the clock of this machine and the S3 credentials of the server',
  });
}

async function uploadNar(
  planned: PlannedPath,
  target: PendingObject,
  ctx: UploadContext,
): Promise<{ result: Omit<NarUploadResult, 'listingStored'>; listing: NarListing | undefined }> {
  const { info } = planned;
  if (!target.multipart) {
    // Small NAR (≤ 10 MiB): compress into one buffer, check the hash, then one PUT.
    const release = await ctx.budget.acquire(info.narSize + compressBound(info.narSize));
    try {
      const { body, listing } = await withSlot(ctx, () => compressWhole(planned, ctx));
      release(body.length);
      const stored = await putSmall(planned, target, body, ctx);
      return {
        result: {
          narStored: true,
          superseded: stored === 'not-needed',
          compressedBytes: stored === 'stored' ? body.length : 0,
          parts: 1,
        },
        listing,
      };
    } finally {
      release();
    }
  }
  const partSize = ctx.partSize ?? partSizeFor(info.narSize);
  const release = await ctx.budget.acquire(2 * partSize);
  try {
    return await withSlot(ctx, async () => {
      const sink = new PartSink(planned, target.key, target.multipart as MultipartInfo, partSize, ctx);
      const listing = await streamNar(planned, ctx, sink);
      // Unless superseded, the NAR checked out here (streamNar fails otherwise): send the last part
      // and complete the upload.
      if (!sink.superseded) await sink.finish();
      return {
        result: {
          narStored: true,
          superseded: sink.superseded,
          compressedBytes: sink.superseded ? 0 : sink.bytes,
          parts: sink.partsDone,
        },
        listing: sink.superseded ? undefined : listing,
      };
    });
  } finally {
    release();
  }
}

/**
 * Streams a large NAR into the part sink: each chunk is hashed and counted, then written to zstd,
 * and the next chunk is read only once zstd has consumed this one (so the NAR writer reuses one read
 * buffer). The compressed side flows into the sink with back-pressure. Resolves with the listing
 * when the NAR matched Nix's path-info; throws NarMismatchError (the final part is never sent then)
 * or the sink's error. Returns early, without a listing, when another session stored the NAR.
 */
async function streamNar(
  planned: PlannedPath,
  ctx: UploadContext,
  sink: PartSink,
): Promise<NarListing | undefined> {
  const { info } = planned;
  const expected = { narHash: info.narHash, narSize: info.narSize, path: info.path };
  const source = narChunksWithListing(info.path);
  const zstd = zstdStream(ctx.compressionLevel);
  const drained = pipeline(zstd, sink.writable(), { signal: ctx.signal });
  drained.catch(() => {}); // awaited below, or superseded by the error that stopped the input
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of source.chunks) {
      size += chunk.length;
      if (size > info.narSize) throw new NarMismatchError(expected, `more than ${info.narSize} bytes`);
      hash.update(chunk);
      ctx.onNarBytes(chunk.length);
      await new Promise<void>((resolve, reject) => {
        zstd.write(chunk, (error) => (error ? reject(error) : resolve()));
      });
    }
    const digest = hash.digest();
    if (size !== info.narSize || !digest.equals(info.narHash))
      throw new NarMismatchError(expected, `${formatNarHash(digest)}, ${size} bytes`);
    zstd.end();
    await drained;
  } catch (error) {
    if (sink.superseded || error instanceof SupersededUpload) {
      await source.chunks.return(undefined);
      return undefined;
    }
    zstd.destroy();
    await source.chunks.return(undefined);
    await sink.settle();
    // The sink's own failure (a part PUT that failed) tells more than the aborted write.
    const sinkError = await drained.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    throw error instanceof NarMismatchError || sinkError === undefined || isAbortLike(sinkError)
      ? error
      : sinkError;
  }
  return source.listing;
}

function isAbortLike(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === 'AbortError' || (error as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE')
  );
}

async function withSlot<T>(ctx: UploadContext, fn: () => Promise<T>): Promise<T> {
  const release = await ctx.cpuSlots.acquire(1);
  try {
    return await fn();
  } finally {
    release();
  }
}

/**
 * A small NAR, whole: serialised straight into one buffer of exactly `narSize` bytes (files read
 * into their place), hashed in one call, then compressed in one call (no stream machinery per
 * chunk: most paths are small).
 */
async function compressWhole(
  planned: PlannedPath,
  ctx: UploadContext,
): Promise<{ body: Buffer; listing: NarListing }> {
  const { info } = planned;
  const expected = { narHash: info.narHash, narSize: info.narSize, path: info.path };
  const scratch = narScratch.pop();
  const own = scratch && scratch.length >= info.narSize ? scratch : undefined;
  let nar: Buffer | undefined;
  try {
    const serialised = narToBuffer(info.path, expected, own);
    nar = serialised.nar;
    const digest = createHash('sha256').update(nar).digest();
    if (!digest.equals(info.narHash))
      throw new NarMismatchError(expected, `${formatNarHash(digest)}, ${nar.length} bytes`);
    ctx.onNarBytes(nar.length);
    if (ctx.signal.aborted)
      throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('aborted');
    // One call on this thread (measured on Node 24: about 40 % less CPU than the same on the
    // thread pool), with a kept context and output buffer (zstd-once.ts).
    const body = zstdOnce(nar, ctx.compressionLevel);
    return { body, listing: serialised.listing };
  } finally {
    // The buffer goes back for the next small NAR: ours, or the new one when it was larger.
    const fresh = !own && nar && nar.length >= SCRATCH_MIN && nar.length <= SCRATCH_MAX ? nar : undefined;
    const back = fresh ?? scratch;
    if (back) narScratch.push(back);
  }
}

/**
 * NAR buffers of finished small NARs, reused by the next ones (each is filled, hashed and handed to
 * zstd while its path holds a CPU slot, so at most cpuSlots of them are in use): most of a push's
 * bytes then need no fresh allocation, and the garbage collector has little to do.
 */
const narScratch: Buffer[] = [];
const SCRATCH_MIN = 256 * 1024;
const SCRATCH_MAX = DEFAULT_PART_SIZE + 1024 * 1024;
