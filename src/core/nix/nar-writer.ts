/**
 * NAR serialisation of a filesystem path, byte-identical to `nix-store --dump` (niks3 spec §4.4),
 * plus the `.ls` listing (§4.5) produced in the same pass. Memory stays bounded: small files are read
 * whole (at most SMALL_FILE_BYTES), large ones in fresh 1 MiB chunks, and headers are batched into
 * ~128 KiB chunks so trees of many small files do not become a flood of tiny writes.
 *
 * Speed: metadata and small files use the synchronous fs calls (a promise round trip through the
 * libuv pool per lstat/open/read/close made 20k small files ~30x slower than `nix-store --dump`);
 * the walk gives the event loop a turn at least every TIME_SLICE_MS so concurrent uploads keep
 * moving. Large files are read asynchronously.
 *
 * Linux semantics: a file is executable when its owner-execute bit is set (what Nix checks; in the
 * store every execute bit is set or none); names are raw bytes sorted byte-wise; no case-hack
 * (that is macOS only, see §11.7). Sockets, devices and FIFOs are an error.
 */
import type { Stats } from 'node:fs';
import { describe, lstatPath, readFileInto, readLink, sortedNames, wrapFsError } from './nar-fs.js';
import { open } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Readable } from 'node:stream';
import type { NarListing, NarListingEntry, NarListingRegular } from './nar-listing.js';

/**
 * Files up to this size are read with one synchronous read (from the page cache that is well under
 * a millisecond; an async open/read/close costs three thread-pool round trips and promises).
 */
const SMALL_FILE_BYTES = 1024 * 1024;
const LARGE_CHUNK_BYTES = 1024 * 1024;
const FLUSH_BYTES = 128 * 1024;
const TIME_SLICE_MS = 5;

function encodeString(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const padded = (bytes.length + 7) & ~7;
  const out = Buffer.alloc(8 + padded);
  out.writeBigUInt64LE(BigInt(bytes.length), 0);
  bytes.copy(out, 8);
  return out;
}

const T = {
  magic: encodeString('nix-archive-1'),
  open: encodeString('('),
  close: encodeString(')'),
  type: encodeString('type'),
  regular: encodeString('regular'),
  executable: encodeString('executable'),
  empty: encodeString(''),
  contents: encodeString('contents'),
  directory: encodeString('directory'),
  entry: encodeString('entry'),
  name: encodeString('name'),
  node: encodeString('node'),
  symlink: encodeString('symlink'),
  target: encodeString('target'),
};
const ZEROS = Buffer.alloc(8);
const SLASH = Buffer.from('/');

function u64(n: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeBigUInt64LE(BigInt(n), 0);
  return out;
}

function padding(length: number): number {
  return (8 - (length % 8)) % 8;
}

function joinPath(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, SLASH, name]);
}

interface WalkOptions {
  /** Build the listing. */
  readonly listing: boolean;
  /** Read and emit file contents; false = only count bytes (listing and size without reading). */
  readonly contents: boolean;
  /**
   * Large files are read into one buffer that is reused for every chunk: only for a consumer that
   * is done with each chunk before it asks for the next (`narChunksWithListing`).
   */
  readonly reuseChunks?: boolean;
}

/** The serialiser: batches small writes, tracks the NAR position, yields chunks. */
class NarWriter {
  position = 0;
  private parts: Buffer[] = [];
  private pending = 0;
  private readonly options: WalkOptions;
  private sliceStart = performance.now();
  private chunkBuffer: Buffer | undefined;

  constructor(options: WalkOptions) {
    this.options = options;
  }

  /** Gives the event loop a turn when the synchronous work of this slice took long enough. */
  private async breathe(): Promise<void> {
    const now = performance.now();
    if (now - this.sliceStart < TIME_SLICE_MS) return;
    await nextTurn();
    this.sliceStart = performance.now();
  }

  push(chunk: Buffer): void {
    this.position += chunk.length;
    if (this.options.contents) {
      this.parts.push(chunk);
      this.pending += chunk.length;
    }
  }

  /**
   * Takes the batched bytes when there are enough of them (or any, with force). Runs of small
   * pieces (headers, small files) are joined; a piece of FLUSH_BYTES or more (a file read whole)
   * goes out as it is rather than being copied.
   */
  take(force = false): Buffer[] | undefined {
    if (this.pending === 0 || (!force && this.pending < FLUSH_BYTES)) return undefined;
    const out: Buffer[] = [];
    let run: Buffer[] = [];
    let runBytes = 0;
    const flush = (): void => {
      if (run.length === 0) return;
      out.push(run.length === 1 ? (run[0] as Buffer) : Buffer.concat(run, runBytes));
      run = [];
      runBytes = 0;
    };
    for (const part of this.parts) {
      if (part.length >= FLUSH_BYTES) {
        flush();
        out.push(part);
      } else {
        run.push(part);
        runBytes += part.length;
      }
    }
    flush();
    this.parts = [];
    this.pending = 0;
    return out;
  }

  /** Any node: directories and large files need the generator, everything else is synchronous. */
  async *node(path: Buffer, st: Stats): AsyncGenerator<Buffer, NarListingEntry | undefined> {
    if (st.isDirectory()) {
      this.push(T.open);
      this.push(T.type);
      const entry = yield* this.directory(path);
      this.push(T.close);
      return entry;
    }
    if (st.isFile() && this.options.contents && st.size > SMALL_FILE_BYTES)
      return yield* this.largeFile(path, st);
    return this.leaf(path, st);
  }

  /** A symlink, a small regular file, or any regular file when contents are not read. */
  private leaf(path: Buffer, st: Stats): NarListingEntry | undefined {
    this.push(T.open);
    this.push(T.type);
    let entry: NarListingEntry | undefined;
    if (st.isFile()) {
      const { executable, narOffset } = this.regularHeader(st);
      const size = st.size;
      if (!this.options.contents) {
        this.position += size;
      } else if (size > 0) {
        this.push(readSmallFile(path, size));
      }
      const pad = padding(size);
      if (pad) this.push(ZEROS.subarray(0, pad));
      if (this.options.listing) entry = regularEntry(size, executable, narOffset);
    } else if (st.isSymbolicLink()) {
      const target = readLink(path);
      this.push(T.symlink);
      this.push(T.target);
      this.push(encodeString(target));
      if (this.options.listing) entry = { type: 'symlink', target: target.toString('utf8') };
    } else {
      throw new Error(
        `NAR serialisation: ${describe(path)} is neither a regular file, a directory nor a symlink`,
      );
    }
    this.push(T.close);
    return entry;
  }

  private regularHeader(st: Stats): { executable: boolean; narOffset: number } {
    this.push(T.regular);
    const executable = (st.mode & 0o100) !== 0;
    if (executable) {
      this.push(T.executable);
      this.push(T.empty);
    }
    this.push(T.contents);
    this.push(u64(st.size));
    return { executable, narOffset: this.position };
  }

  private async *largeFile(path: Buffer, st: Stats): AsyncGenerator<Buffer, NarListingEntry | undefined> {
    this.push(T.open);
    this.push(T.type);
    const { executable, narOffset } = this.regularHeader(st);
    const size = st.size;
    const batched = this.take(true);
    if (batched) yield* batched;
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw wrapFsError(error, 'open', path);
    }
    try {
      let done = 0;
      while (done < size) {
        const want = Math.min(LARGE_CHUNK_BYTES, size - done);
        let buffer: Buffer;
        if (this.options.reuseChunks) {
          this.chunkBuffer ??= Buffer.allocUnsafe(LARGE_CHUNK_BYTES);
          buffer = this.chunkBuffer.subarray(0, want);
        } else buffer = Buffer.allocUnsafe(want);
        let got = 0;
        while (got < want) {
          let bytesRead: number;
          try {
            ({ bytesRead } = await handle.read(buffer, got, want - got, done + got));
          } catch (error) {
            throw wrapFsError(error, 'read', path);
          }
          if (bytesRead === 0)
            throw new Error(
              `NAR serialisation: ${describe(path)} shrank while being read (expected ${size} bytes, got ${done + got})`,
            );
          got += bytesRead;
        }
        done += want;
        this.position += want;
        yield buffer;
      }
    } finally {
      await handle.close();
    }
    this.sliceStart = performance.now();
    const pad = padding(size);
    if (pad) this.push(ZEROS.subarray(0, pad));
    this.push(T.close);
    return this.options.listing ? regularEntry(size, executable, narOffset) : undefined;
  }

  private async *directory(path: Buffer): AsyncGenerator<Buffer, NarListingEntry | undefined> {
    this.push(T.directory);
    const names = sortedNames(path);
    const entries = this.options.listing
      ? (Object.create(null) as Record<string, NarListingEntry>)
      : undefined;
    for (const name of names) {
      const child = joinPath(path, name);
      const st = lstatPath(child);
      this.push(T.entry);
      this.push(T.open);
      this.push(T.name);
      this.push(encodeString(name));
      this.push(T.node);
      const entry =
        st.isDirectory() || (st.isFile() && this.options.contents && st.size > SMALL_FILE_BYTES)
          ? yield* this.node(child, st)
          : this.leaf(child, st);
      this.push(T.close);
      if (entries && entry) entries[name.toString('utf8')] = entry;
      const chunk = this.take();
      if (chunk) {
        yield* chunk;
        this.sliceStart = performance.now();
      } else {
        await this.breathe();
      }
    }
    return entries ? { type: 'directory', entries } : undefined;
  }
}

function regularEntry(size: number, executable: boolean, narOffset: number): NarListingRegular {
  const entry: NarListingRegular = { type: 'regular', size };
  if (executable) entry.executable = true;
  entry.narOffset = narOffset;
  return entry;
}

/** Reads exactly `size` bytes of a small file synchronously. */
function readSmallFile(path: Buffer, size: number): Buffer {
  const data = Buffer.allocUnsafe(size);
  readFileInto(path, data, 0, size);
  return data;
}

async function* serialise(
  root: string,
  options: WalkOptions,
  done: (root: NarListingEntry | undefined, size: number) => void,
): AsyncGenerator<Buffer> {
  const path = Buffer.from(root, 'utf8');
  const writer = new NarWriter(options);
  const st = lstatPath(path);
  writer.push(T.magic);
  const entry = yield* writer.node(path, st);
  const rest = writer.take(true);
  if (rest) yield* rest;
  done(entry, writer.position);
}

/** Streams the NAR of `path` (a store path or any file/dir/symlink). */
export function narStream(path: string): Readable {
  return Readable.from(
    serialise(path, { listing: false, contents: true }, () => {}),
    { objectMode: false },
  );
}

/**
 * One pass that yields both the NAR stream and its `.ls` listing (with `narOffset`s). The listing
 * settles when the stream has been read to its end; it rejects if the stream fails or is destroyed
 * early. (Its rejection is pre-handled, so ignoring the listing never crashes the process.)
 */
export function narStreamWithListing(path: string): { stream: Readable; listing: Promise<NarListing> } {
  const { chunks, listing } = walkWithListing(path, false);
  return { stream: Readable.from(chunks, { objectMode: false }), listing };
}

/**
 * The NAR of `path` as an async iterable of chunks, and its `.ls` listing, for a consumer that is
 * done with each chunk (hashed, handed to zstd and consumed) before it asks for the next: large files
 * are then read into one reused buffer, so a NAR of any size allocates one read buffer, not one per
 * MiB. The listing settles at the end; it rejects if the walk fails or stops early.
 */
export function narChunksWithListing(path: string): {
  chunks: AsyncGenerator<Buffer>;
  listing: Promise<NarListing>;
} {
  return walkWithListing(path, true);
}

function walkWithListing(
  path: string,
  reuseChunks: boolean,
): { chunks: AsyncGenerator<Buffer>; listing: Promise<NarListing> } {
  let resolve!: (listing: NarListing) => void;
  let reject!: (error: Error) => void;
  const listing = new Promise<NarListing>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  listing.catch(() => {});
  let settled = false;
  async function* run(): AsyncGenerator<Buffer> {
    try {
      yield* serialise(path, { listing: true, contents: true, reuseChunks }, (root) => {
        settled = true;
        resolve({ version: 1, root: root as NarListingEntry });
      });
    } catch (error) {
      settled = true;
      reject(error instanceof Error ? error : new Error(String(error)));
      throw error;
    } finally {
      if (!settled)
        reject(
          new Error(`the NAR stream of ${path} was closed before its end, so its listing is incomplete`),
        );
    }
  }
  return { chunks: run(), listing };
}

/**
 * The listing of `path` and its NAR size, by walking the tree without reading file contents
 * (the deduplicated-NAR case of §4.5). The offsets are computed exactly, so they match the NAR.
 */
export async function narListing(
  path: string,
  options: { offsets?: boolean } = {},
): Promise<{ listing: NarListing; narSize: number }> {
  let result: { listing: NarListing; narSize: number } | undefined;
  for await (const _ of serialise(path, { listing: true, contents: false }, (root, size) => {
    result = { listing: { version: 1, root: root as NarListingEntry }, narSize: size };
  })) {
    // nothing is yielded without contents
  }
  if (!result) throw new Error(`NAR listing of ${path} did not complete`);
  if (options.offsets === false) stripOffsets(result.listing.root);
  return result;
}

function stripOffsets(entry: NarListingEntry): void {
  if (entry.type === 'regular') delete entry.narOffset;
  else if (entry.type === 'directory') for (const child of Object.values(entry.entries)) stripOffsets(child);
}
