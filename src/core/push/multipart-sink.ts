/**
 * The multipart side of a large NAR's upload (shared/spec/niks3.md §3.5, §3.6, §5.5): the compressed
 * stream cut into fixed-size parts, each PUT to its presigned part URL (more URLs asked for when
 * they run out, a fresh one after a 403), at most one part in flight, and the upload completed only
 * by `finish()`, which the caller runs once the NAR checked out.
 */
import { Writable } from 'node:stream';
import { RemoteError } from '../errors.js';
import type { CompletedPart, MultipartInfo } from '../niks3/api-types.js';
import { OBJECT_HEADERS } from '../nix/object-keys.js';
import type { UploadContext } from './nar-upload.js';
import type { PlannedPath } from './push-plan.js';

const MAX_PARTS = 10_000;

/**
 * Part buffers of finished uploads, reused by the next large NARs: without them every large NAR
 * allocates two fresh parts, and each such allocation counts towards the garbage collector's next
 * full collection. A few are kept (the number of large NARs a push streams at once is small).
 */
const sparePartBuffers: Buffer[] = [];
const SPARE_PART_BUFFERS = 2;

function partBuffer(size: number): Buffer {
  const index = sparePartBuffers.findIndex((buffer) => buffer.length === size);
  return index === -1 ? Buffer.allocUnsafe(size) : (sparePartBuffers.splice(index, 1)[0] as Buffer);
}

function keepPartBuffer(buffer: Buffer | undefined): void {
  if (buffer && buffer.length > 0 && sparePartBuffers.length < SPARE_PART_BUFFERS)
    sparePartBuffers.push(buffer);
}

/** Thrown into the pipeline to stop reading once another session has stored the same NAR. */
export class SupersededUpload extends Error {
  override readonly name = 'SupersededUpload';
}

/**
 * Cuts the compressed stream into fixed-size parts (R2 wants equal non-final parts). A full part is
 * sent while the next one fills (two buffers, at most one part in flight per NAR, parts in order);
 * the final, partial part waits for `finish()`, which runs only after the NAR checked out.
 */
export class PartSink {
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
    this.buffer = partBuffer(partSize);
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
  private async dispatch(last = false): Promise<void> {
    await this.inFlight;
    this.inFlight = undefined;
    if (this.superseded) return;
    const body = this.buffer.subarray(0, this.filled);
    const partNumber = this.nextPart++;
    const sent = this.buffer;
    this.buffer = this.spare ?? (last ? Buffer.alloc(0) : partBuffer(this.partSize));
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
    if (!this.superseded && (this.filled > 0 || this.nextPart === 1)) await this.dispatch(true);
    await this.inFlight;
    this.inFlight = undefined;
    // Nothing is in flight now: both buffers go back for the next large NAR.
    keepPartBuffer(this.buffer);
    keepPartBuffer(this.spare);
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
