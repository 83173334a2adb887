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
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { constants as zlibConstants, createZstdCompress, zstdCompress, zstdCompressSync } from 'node:zlib';
import { RemoteError } from '../errors.js';
import type { CompletedPart, MultipartInfo, PendingObject } from '../niks3/api-types.js';
import type { Niks3Client } from '../niks3/niks3-client.js';
import type { PresignedUploader } from '../niks3/presigned-upload.js';
import {
  NarVerifier,
  narListing,
  narStreamWithListing,
  renderNarListing,
  type NarListing,
} from '../nix/nar-writer.js';
import { formatNarHash } from '../nix/nar-hash.js';
import { OBJECT_HEADERS } from '../nix/object-keys.js';
import type { ByteBudget } from './byte-budget.js';
import type { PlannedPath } from './push-plan.js';

const zstdCompressAsync = promisify(zstdCompress);

export const DEFAULT_PART_SIZE = 10 * 1024 * 1024;
const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
const MAX_PARTS = 10_000;

/** §5.5: 10 MiB parts, unless 9000 of them would not hold the NAR; then multiples of 16 MiB. */
export function partSizeFor(narSize: number): number {
  const needed = Math.ceil(narSize / 9000);
  if (needed <= DEFAULT_PART_SIZE) return DEFAULT_PART_SIZE;
  const sixteen = 16 * 1024 * 1024;
  return Math.min(MAX_PART_SIZE, Math.ceil(needed / sixteen) * sixteen);
}

/** A NAR whose bytes differ from what Nix reported: the path is not pushed. Not worth a retry. */
export class NarMismatchError extends Error {
  override readonly name = 'NarMismatchError';
}

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

export function zstdLevelParams(level: number): { params: Record<number, number> } {
  return { params: { [zlibConstants.ZSTD_c_compressionLevel]: level } };
}

/** A streaming zstd compressor with large output chunks (fewer callbacks and allocations than the 16 KiB default). */
function zstdStream(level: number): ReturnType<typeof createZstdCompress> {
  return createZstdCompress({ ...zstdLevelParams(level), chunkSize: 256 * 1024 });
}

/** zstd of a small object (narinfo, listing, log). */
export function compressSmall(data: string | Uint8Array, level = 3): Buffer {
  return zstdCompressSync(
    typeof data === 'string' ? Buffer.from(data, 'utf8') : data,
    zstdLevelParams(level),
  );
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
    const body = compressSmall(renderNarListing(listingDoc));
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
      const source = narStreamWithListing(info.path);
      const verifier = new NarVerifier({ narHash: info.narHash, narSize: info.narSize, path: info.path });
      const sink = new PartSink(planned, target.key, target.multipart as MultipartInfo, partSize, ctx);
      try {
        await pipeline(
          source.stream,
          verifier,
          progressTap(ctx),
          zstdStream(ctx.compressionLevel),
          sink.writable(),
          {
            signal: ctx.signal,
          },
        );
      } catch (error) {
        if (!(error instanceof SupersededUpload)) {
          await sink.settle();
          throw asNarError(error);
        }
      }
      // Unless superseded, the NAR checked out here (the pipeline fails otherwise): send the last
      // part and complete the upload.
      if (!sink.superseded) await sink.finish();
      return {
        result: {
          narStored: true,
          superseded: sink.superseded,
          compressedBytes: sink.superseded ? 0 : sink.bytes,
          parts: sink.partsDone,
        },
        listing: sink.superseded ? undefined : await source.listing,
      };
    });
  } finally {
    release();
  }
}

/** zstd's worst case for `n` input bytes (ZSTD_COMPRESSBOUND), with a little slack. */
function compressBound(n: number): number {
  return n + (n >> 8) + (n < 131_072 ? (131_072 - n) >> 11 : 0) + 1024;
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
 * A small NAR, whole: serialised into one buffer of exactly `narSize` bytes while being hashed, then
 * compressed in one go on the thread pool (no stream machinery per chunk: most paths are small).
 */
async function compressWhole(
  planned: PlannedPath,
  ctx: UploadContext,
): Promise<{ body: Buffer; listing: NarListing }> {
  const { info } = planned;
  const source = narStreamWithListing(info.path);
  const hash = createHash('sha256');
  const nar = Buffer.allocUnsafe(info.narSize);
  let size = 0;
  try {
    for await (const chunk of source.stream) {
      const bytes = chunk as Buffer;
      if (size + bytes.length > nar.length) throw mismatch(planned, `more than ${info.narSize} bytes`);
      bytes.copy(nar, size);
      hash.update(bytes);
      size += bytes.length;
      ctx.onNarBytes(bytes.length);
      if (ctx.signal.aborted)
        throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('aborted');
    }
  } finally {
    source.stream.destroy();
  }
  const digest = hash.digest();
  if (size !== info.narSize || !digest.equals(info.narHash))
    throw mismatch(planned, `${formatNarHash(digest)}, ${size} bytes`);
  // Output chunks of up to 1 MiB: a few thread-pool jobs and main-thread callbacks per NAR instead
  // of one per 16 KiB of output (node:zlib's default chunk size), without a worst-case-sized buffer.
  const body = await zstdCompressAsync(nar, {
    ...zstdLevelParams(ctx.compressionLevel),
    chunkSize: Math.min(compressBound(info.narSize), 1024 * 1024),
  });
  return { body, listing: await source.listing };
}

function mismatch(planned: PlannedPath, got: string): NarMismatchError {
  const { info } = planned;
  return new NarMismatchError(
    `the NAR serialised for ${info.path} does not match Nix's path-info (expected ${formatNarHash(info.narHash)}, ${info.narSize} bytes; got ${got}). ` +
      'The store path may be corrupt: run `nix-store --verify-path` on it, or `nix store repair`.',
  );
}

/** A pass-through that reports uncompressed NAR bytes for progress. */
function progressTap(ctx: UploadContext): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      ctx.onNarBytes(chunk.length);
      callback(null, chunk);
    },
  });
}

function asNarError(error: unknown): unknown {
  if (error instanceof Error && /does not match Nix's path-info/.test(error.message))
    return new NarMismatchError(error.message);
  return error;
}

/** Thrown into the pipeline to stop reading once another session has stored the same NAR. */
class SupersededUpload extends Error {
  override readonly name = 'SupersededUpload';
}

/**
 * Cuts the compressed stream into fixed-size parts (R2 wants equal non-final parts). A full part is
 * sent while the next one fills (two buffers, at most one part in flight per NAR, parts in order);
 * the final, partial part waits for `finish()`, which runs only after the NAR checked out.
 */
class PartSink {
  private readonly planned: PlannedPath;
  private readonly key: string;
  private readonly uploadId: string;
  private readonly partUrls: string[];
  private readonly partSize: number;
  private readonly ctx: UploadContext;
  private buffer: Buffer;
  private spare: Buffer | undefined;
  private filled = 0;
  private nextPart = 1;
  private inFlight: Promise<void> | undefined;
  private readonly done: CompletedPart[] = [];
  bytes = 0;
  superseded = false;

  constructor(
    planned: PlannedPath,
    key: string,
    multipart: MultipartInfo,
    partSize: number,
    ctx: UploadContext,
  ) {
    this.planned = planned;
    this.key = key;
    this.uploadId = multipart.uploadId;
    this.partUrls = [...multipart.partUrls];
    this.partSize = partSize;
    this.ctx = ctx;
    this.buffer = Buffer.allocUnsafe(partSize);
  }

  get partsDone(): number {
    return this.done.length;
  }

  writable(): Writable {
    return new Writable({
      highWaterMark: 1024 * 1024,
      write: (chunk: Buffer, _encoding, callback) => {
        this.accept(chunk).then(
          () => callback(),
          (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
        );
      },
    });
  }

  private async accept(chunk: Buffer): Promise<void> {
    if (this.superseded) throw new SupersededUpload(`${this.key} was stored by another upload session`);
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(chunk.length - offset, this.partSize - this.filled);
      chunk.copy(this.buffer, this.filled, offset, offset + take);
      this.filled += take;
      offset += take;
      if (this.filled === this.partSize) {
        await this.dispatch();
        if (this.superseded) throw new SupersededUpload(`${this.key} was stored by another upload session`);
      }
    }
  }

  /** Waits for the part in flight, then starts sending the filled buffer and fills the other one. */
  private async dispatch(): Promise<void> {
    await this.inFlight;
    this.inFlight = undefined;
    if (this.superseded) return;
    const body = this.buffer.subarray(0, this.filled);
    const partNumber = this.nextPart++;
    const sent = this.buffer;
    this.buffer = this.spare ?? Buffer.allocUnsafe(this.partSize);
    this.spare = undefined;
    this.filled = 0;
    const flight = this.sendPart(partNumber, body).then(() => {
      this.spare = sent;
    });
    flight.catch(() => {}); // observed by the next dispatch(), finish() or settle()
    this.inFlight = flight;
  }

  /** Waits for the part in flight, ignoring its outcome (the push is failing anyway). */
  async settle(): Promise<void> {
    await this.inFlight?.catch(() => {});
  }

  /** Sends the last part (if any bytes are left) and completes the upload. */
  async finish(): Promise<void> {
    if (!this.superseded && (this.filled > 0 || this.nextPart === 1)) await this.dispatch();
    await this.inFlight;
    this.inFlight = undefined;
    this.buffer = Buffer.alloc(0);
    this.spare = undefined;
    if (this.superseded) return;
    const result = await this.ctx.client.completeMultipart(this.key, this.uploadId, this.done);
    if (result === 'not-found') await this.probeSuperseded('multipart complete');
  }

  private async sendPart(partNumber: number, body: Buffer): Promise<void> {
    if (partNumber > MAX_PARTS)
      throw new Error(`${this.planned.path}: the NAR needs more than ${MAX_PARTS} parts`);
    let refreshed = false;
    for (;;) {
      const url = await this.partUrl(partNumber);
      if (url === undefined) return;
      const outcome = await this.ctx.uploader.put(url, body, {
        contentType: OBJECT_HEADERS.nar.contentType,
        what: `${this.key} part ${partNumber}`,
        signal: this.ctx.signal,
      });
      if (outcome.kind === 'stored') {
        if (!outcome.etag) {
          throw new RemoteError({
            remote: 'cache storage',
            operation: `PUT ${this.key} part ${partNumber}`,
            detail: 'the answer had no ETag header',
            hint: 'the storage must expose ETag (for R2 CORS: ExposeHeaders ETag)',
          });
        }
        this.done.push({ part_number: partNumber, etag: outcome.etag });
        this.bytes += body.length;
        this.ctx.onUploaded(body.length);
        return;
      }
      if (outcome.kind === 'gone') {
        await this.probeSuperseded(`part ${partNumber}`);
        return;
      }
      // 403: the part URL expired; ask for fresh ones from this part on, once.
      if (refreshed) {
        throw new RemoteError({
          remote: 'cache storage',
          operation: `PUT ${this.key} part ${partNumber}`,
          status: 403,
          detail: 'refused, also with a fresh part URL',
          hint: 'check the clock of this machine and the S3 credentials of the server',
        });
      }
      refreshed = true;
      const fresh = await this.ctx.client.requestParts(this.key, this.uploadId, partNumber, 100);
      if (fresh === 'not-found') {
        await this.probeSuperseded(`part ${partNumber}`);
        return;
      }
      this.partUrls.length = partNumber - 1;
      this.partUrls.push(...fresh);
    }
  }

  /** The URL of a part, asking the server for the next 100 when they run out. */
  private async partUrl(partNumber: number): Promise<string | undefined> {
    if (partNumber > this.partUrls.length) {
      const fresh = await this.ctx.client.requestParts(
        this.key,
        this.uploadId,
        this.partUrls.length + 1,
        100,
      );
      if (fresh === 'not-found') {
        await this.probeSuperseded(`part ${partNumber}`);
        return undefined;
      }
      this.partUrls.push(...fresh);
    }
    return this.partUrls[partNumber - 1];
  }

  /** After a 404 the upload is gone: fine if another session stored the NAR, fatal otherwise. */
  private async probeSuperseded(what: string): Promise<void> {
    const stored = this.ctx.objectStored ?? ((key: string) => this.ctx.client.objectExists(key));
    if (await stored(this.key)) {
      this.superseded = true;
      return;
    }
    throw new RemoteError({
      remote: 'niks3',
      operation: `multipart upload of ${this.key} (${what})`,
      status: 404,
      detail: 'the upload was aborted and the object does not exist',
      hint: 'the upload session was removed (a GC with a short failed-uploads-older-than?); run the push again',
    });
  }
}
