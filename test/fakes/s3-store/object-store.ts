/**
 * An S3-like object store on local disk, shared by the fakes.
 *
 * - Each object is one file under `<dir>/objects/`; its metadata (size, ETag,
 *   Content-Type, Content-Encoding, last-modified) lives in memory.
 * - Writes are atomic: the bytes go to a temporary file first and are renamed
 *   into place only once the whole body arrived with exactly the expected length.
 *   A connection reset mid-body therefore never leaves a partial object, and a
 *   reader sees either the old or the new object, never a mix.
 * - Multipart uploads keep each part as a file; completing an upload checks the
 *   parts the way S3 (and R2) do and assembles them atomically.
 *
 * The store knows nothing of HTTP or signatures: the S3 endpoint of a fake
 * translates requests into these calls, and `S3Error`s back into responses.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { S3Error, s3Errors } from './s3-error.js';

/** S3 limits that apply to every PUT and multipart upload. */
export const S3_LIMITS = {
  maxObjectSize: 5 * 1024 ** 4, // 5 TiB
  maxSinglePutSize: 5 * 1024 ** 3, // 5 GiB
  maxPartSize: 5 * 1024 ** 3, // 5 GiB
  minPartSize: 5 * 1024 ** 2, // 5 MiB, for every part but the last
  maxPartNumber: 10000,
} as const;

/** Metadata of a stored object. */
export interface StoredObject {
  readonly key: string;
  readonly size: number;
  /** Quoted, as S3 sends it: `"<md5 hex>"`, or `"<md5 of md5s>-<parts>"` for multipart. */
  readonly etag: string;
  readonly contentType: string;
  readonly contentEncoding: string | undefined;
  /** Milliseconds since the epoch (the store's clock). */
  readonly lastModified: number;
}

/** Headers stored with an object. */
export interface PutOptions {
  contentType?: string | undefined;
  contentEncoding?: string | undefined;
  /** When set, the write fails with `IncompleteBody` unless exactly this many bytes arrive. */
  expectedLength?: number | undefined;
}

/** One uploaded part of a multipart upload. */
export interface UploadedPart {
  readonly partNumber: number;
  readonly size: number;
  readonly etag: string;
}

/** An in-progress multipart upload. */
export interface MultipartUpload {
  readonly uploadId: string;
  readonly key: string;
  readonly contentType: string;
  readonly initiated: number;
  readonly parts: ReadonlyMap<number, UploadedPart & { readonly file: string }>;
}

/** Rules checked when a multipart upload is completed. */
export interface CompleteRules {
  /** Smallest size of every part but the last (S3: 5 MiB). */
  minPartSize?: number;
  /** Cloudflare R2: every part but the last must have the same size, and the last may not be larger. */
  requireEqualParts?: boolean;
}

/** Options of a store. */
export interface ObjectStoreOptions {
  /** Directory that holds the object files (created if missing). */
  dir: string;
  /** Clock in milliseconds, for `lastModified` and upload times. */
  now?: () => number;
}

/** Counts and hashes the bytes flowing through it. */
class Digest extends Transform {
  bytes = 0;
  readonly md5 = createHash('md5');

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.md5.update(chunk);
    cb(null, chunk);
  }
}

/** Strips surrounding double quotes from an ETag. */
export function unquoteEtag(etag: string): string {
  return etag.replace(/^"+|"+$/g, '');
}

type MutablePart = UploadedPart & { file: string };
interface MutableUpload {
  uploadId: string;
  key: string;
  contentType: string;
  initiated: number;
  parts: Map<number, MutablePart>;
}

/**
 * A disk-backed object store. Create it with {@link ObjectStore.open}.
 */
export class ObjectStore {
  readonly dir: string;
  private readonly now: () => number;
  private readonly index = new Map<string, StoredObject & { file: string }>();
  private readonly uploads = new Map<string, MutableUpload>();

  private constructor(opts: ObjectStoreOptions) {
    this.dir = opts.dir;
    this.now = opts.now ?? Date.now;
  }

  /** Opens (creates) a store in `opts.dir`. Existing files there are ignored. */
  static async open(opts: ObjectStoreOptions): Promise<ObjectStore> {
    const store = new ObjectStore(opts);
    await mkdir(join(store.dir, 'objects'), { recursive: true });
    await mkdir(join(store.dir, 'tmp'), { recursive: true });
    await mkdir(join(store.dir, 'uploads'), { recursive: true });
    return store;
  }

  /**
   * A fresh file name for a version of `key`: the key (readable when short, hashed when long)
   * plus a random suffix, so that a write racing a delete of the same key never unlinks the
   * newer version.
   */
  private fileFor(key: string): string {
    const readable = encodeURIComponent(key).replace(/^\./, '%2E');
    const name = readable.length <= 180 ? readable : createHash('sha256').update(key).digest('hex');
    return join(this.dir, 'objects', `${name}~${randomBytes(4).toString('hex')}`);
  }

  private tmpFile(): string {
    return join(this.dir, 'tmp', `${randomBytes(12).toString('hex')}.part`);
  }

  /** Streams `source` into a fresh temporary file; returns its size and MD5. Removes it on any failure. */
  private async writeTemp(
    source: Readable | Buffer | string,
    expectedLength: number | undefined,
    maxLength: number,
  ): Promise<{ file: string; size: number; md5: Buffer }> {
    const file = this.tmpFile();
    const digest = new Digest();
    const input =
      typeof source === 'string' || Buffer.isBuffer(source) ? Readable.from([Buffer.from(source)]) : source;
    try {
      await pipeline(input, digest, createWriteStream(file, { flags: 'wx' }));
      if (expectedLength !== undefined && digest.bytes !== expectedLength) throw s3Errors.incompleteBody();
      if (digest.bytes > maxLength) throw s3Errors.entityTooLarge();
    } catch (err) {
      await rm(file, { force: true });
      throw err;
    }
    return { file, size: digest.bytes, md5: digest.md5.digest() };
  }

  /** Metadata of `key`, or undefined. */
  head(key: string): StoredObject | undefined {
    const o = this.index.get(key);
    if (o === undefined) return undefined;
    const { file: _file, ...meta } = o;
    return meta;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  /** All keys, sorted. */
  keys(): string[] {
    return [...this.index.keys()].sort();
  }

  /** A stream of the object's bytes (optionally a byte range, both ends inclusive). */
  read(key: string, range?: { start: number; end: number }): Readable {
    const o = this.index.get(key);
    if (o === undefined) throw s3Errors.noSuchKey();
    return createReadStream(o.file, range);
  }

  /** The whole object in memory (for small objects such as narinfos). */
  async readBuffer(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.read(key)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** Writes an object atomically; overwrites are allowed. */
  async put(key: string, source: Readable | Buffer | string, opts: PutOptions = {}): Promise<StoredObject> {
    const tmp = await this.writeTemp(source, opts.expectedLength, S3_LIMITS.maxSinglePutSize);
    return this.commit(key, tmp.file, {
      size: tmp.size,
      etag: `"${tmp.md5.toString('hex')}"`,
      contentType: opts.contentType ?? 'binary/octet-stream',
      contentEncoding: opts.contentEncoding,
    });
  }

  private async commit(
    key: string,
    tmpFile: string,
    meta: { size: number; etag: string; contentType: string; contentEncoding: string | undefined },
  ): Promise<StoredObject> {
    const file = this.fileFor(key);
    await rename(tmpFile, file);
    const previous = this.index.get(key);
    this.index.set(key, { key, ...meta, lastModified: this.now(), file });
    if (previous !== undefined) await unlink(previous.file).catch(() => undefined);
    return this.head(key)!;
  }

  /** Deletes an object; true if it existed. Deleting a missing key is not an error (as in S3). */
  async delete(key: string): Promise<boolean> {
    const o = this.index.get(key);
    if (o === undefined) return false;
    this.index.delete(key);
    await unlink(o.file).catch(() => undefined);
    return true;
  }

  /** Starts a multipart upload and returns its upload id. */
  async createMultipartUpload(key: string, opts: { contentType?: string } = {}): Promise<string> {
    const uploadId = randomUUID().replace(/-/g, '') + randomBytes(8).toString('hex');
    await mkdir(join(this.dir, 'uploads', uploadId), { recursive: true });
    this.uploads.set(uploadId, {
      uploadId,
      key,
      contentType: opts.contentType ?? 'binary/octet-stream',
      initiated: this.now(),
      parts: new Map(),
    });
    return uploadId;
  }

  /** An in-progress upload (optionally only if it belongs to `key`). */
  upload(uploadId: string, key?: string): MultipartUpload | undefined {
    const u = this.uploads.get(uploadId);
    if (u === undefined || (key !== undefined && u.key !== key)) return undefined;
    return u;
  }

  /** All in-progress uploads. */
  listUploads(): MultipartUpload[] {
    return [...this.uploads.values()];
  }

  /** Stores one part (replacing an earlier part with the same number). */
  async uploadPart(
    uploadId: string,
    key: string,
    partNumber: number,
    source: Readable | Buffer,
    expectedLength?: number,
  ): Promise<UploadedPart> {
    if (this.upload(uploadId, key) === undefined) throw s3Errors.noSuchUpload();
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > S3_LIMITS.maxPartNumber) {
      throw s3Errors.invalidArgument('Part number must be an integer between 1 and 10000, inclusive');
    }
    const tmp = await this.writeTemp(source, expectedLength, S3_LIMITS.maxPartSize);
    // The upload may have been completed or aborted while the body was arriving.
    const u = this.uploads.get(uploadId);
    if (u === undefined) {
      await rm(tmp.file, { force: true });
      throw s3Errors.noSuchUpload();
    }
    const file = join(this.dir, 'uploads', uploadId, String(partNumber));
    await rename(tmp.file, file);
    const part = { partNumber, size: tmp.size, etag: `"${tmp.md5.toString('hex')}"`, file };
    u.parts.set(partNumber, part);
    return { partNumber, size: part.size, etag: part.etag };
  }

  /**
   * Completes a multipart upload from the listed parts (which must be in ascending order,
   * with matching ETags, quoted or not). Parts not listed are discarded.
   */
  async completeMultipartUpload(
    uploadId: string,
    key: string,
    parts: ReadonlyArray<{ partNumber: number; etag: string }>,
    rules: CompleteRules = {},
  ): Promise<StoredObject> {
    const u = this.uploads.get(uploadId);
    if (u === undefined || u.key !== key) throw s3Errors.noSuchUpload();
    if (parts.length === 0) {
      throw new S3Error(
        400,
        'MalformedXML',
        'The XML you provided was not well-formed or did not validate against our published schema.',
      );
    }
    const minPartSize = rules.minPartSize ?? S3_LIMITS.minPartSize;
    const chosen: MutablePart[] = [];
    let previous = 0;
    for (const p of parts) {
      if (p.partNumber <= previous) throw s3Errors.invalidPartOrder();
      previous = p.partNumber;
      const have = u.parts.get(p.partNumber);
      if (have === undefined || unquoteEtag(have.etag) !== unquoteEtag(p.etag)) throw s3Errors.invalidPart();
      chosen.push(have);
    }
    for (let i = 0; i < chosen.length - 1; i++) {
      if (chosen[i]!.size < minPartSize) throw s3Errors.entityTooSmall();
    }
    if (rules.requireEqualParts === true && chosen.length > 1) {
      const size = chosen[0]!.size;
      const bad = chosen.slice(0, -1).some((p) => p.size !== size) || chosen[chosen.length - 1]!.size > size;
      if (bad) throw s3Errors.invalidPart('All non-trailing parts must have the same length.');
    }
    const total = chosen.reduce((n, p) => n + p.size, 0);
    if (total > S3_LIMITS.maxObjectSize) throw s3Errors.entityTooLarge();

    // Assemble into a temporary file, then rename into place.
    const tmpFile = this.tmpFile();
    try {
      const out = createWriteStream(tmpFile, { flags: 'wx' });
      await pipeline(async function* () {
        for (const p of chosen) yield* createReadStream(p.file);
      }, out);
    } catch (err) {
      await rm(tmpFile, { force: true });
      throw err;
    }
    // Another completion or an abort may have won the race while we were copying.
    if (this.uploads.get(uploadId) !== u) {
      await rm(tmpFile, { force: true });
      throw s3Errors.noSuchUpload();
    }
    this.uploads.delete(uploadId);
    const md5s = Buffer.concat(chosen.map((p) => Buffer.from(unquoteEtag(p.etag), 'hex')));
    const etag = `"${createHash('md5').update(md5s).digest('hex')}-${chosen.length}"`;
    const obj = await this.commit(key, tmpFile, {
      size: total,
      etag,
      contentType: u.contentType,
      contentEncoding: undefined,
    });
    await rm(join(this.dir, 'uploads', uploadId), { recursive: true, force: true });
    return obj;
  }

  /** Aborts an upload and drops its parts. Throws `NoSuchUpload` if it does not exist. */
  async abortMultipartUpload(uploadId: string, key?: string): Promise<void> {
    const u = this.uploads.get(uploadId);
    if (u === undefined || (key !== undefined && u.key !== key)) throw s3Errors.noSuchUpload();
    this.uploads.delete(uploadId);
    await rm(join(this.dir, 'uploads', uploadId), { recursive: true, force: true });
  }

  /** Bytes used by committed objects (sum of sizes). */
  totalBytes(): number {
    let n = 0;
    for (const o of this.index.values()) n += o.size;
    return n;
  }

  /** Size on disk of an object file (for tests that check nothing partial was written). */
  async fileSize(key: string): Promise<number | undefined> {
    const o = this.index.get(key);
    if (o === undefined) return undefined;
    return (await stat(o.file)).size;
  }

  /** Removes everything from disk. */
  async destroy(): Promise<void> {
    this.index.clear();
    this.uploads.clear();
    await rm(this.dir, { recursive: true, force: true });
  }
}
