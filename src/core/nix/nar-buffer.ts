/**
 * The NAR of a small store path serialised straight into one buffer of the size Nix reported, with
 * its `.ls` listing from the same pass: every file is read with `readSync` directly into its place
 * in the NAR, so there is no chunk, no copy and no stream per file. The push uses it for NARs of at
 * most 10 MiB (single PUTs), which are most paths; larger NARs are streamed (`narStreamWithListing`).
 *
 * The bytes are those of `nix-store --dump` (the same rules as nar-writer.ts). A tree whose NAR
 * would not be exactly `narSize` bytes fails with NarMismatchError at the first byte too many, or
 * at the end when it is short.
 */
import type { Stats } from 'node:fs';
import { NarMismatchError, type NarExpectation } from './nar-mismatch.js';
import { describe, lstatPath, readFileInto, readLink, sortedNames } from './nar-fs.js';
import type { NarListing, NarListingDirectory, NarListingEntry, NarListingRegular } from './nar-listing.js';

const enc = (text: string): Buffer => {
  const bytes = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(8 + ((bytes.length + 7) & ~7));
  out.writeUInt32LE(bytes.length, 0);
  bytes.copy(out, 8);
  return out;
};

const MAGIC = enc('nix-archive-1');
const OPEN_TYPE = Buffer.concat([enc('('), enc('type')]);
const CLOSE = enc(')');
const REGULAR = enc('regular');
const EXECUTABLE = Buffer.concat([enc('executable'), enc('')]);
const CONTENTS = enc('contents');
const DIRECTORY = enc('directory');
const ENTRY_NAME = Buffer.concat([enc('entry'), enc('('), enc('name')]);
const NODE = enc('node');
const SYMLINK_TARGET = Buffer.concat([enc('symlink'), enc('target')]);

class Overflow extends Error {}

class BufferWriter {
  pos = 0;
  readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }

  /** Room for `n` more bytes, or Overflow. */
  private room(n: number): void {
    if (this.pos + n > this.buf.length) throw new Overflow();
  }

  token(bytes: Buffer): void {
    this.room(bytes.length);
    bytes.copy(this.buf, this.pos);
    this.pos += bytes.length;
  }

  u64(n: number): void {
    this.room(8);
    this.buf.writeUInt32LE(n % 0x1_0000_0000, this.pos);
    this.buf.writeUInt32LE(Math.floor(n / 0x1_0000_0000), this.pos + 4);
    this.pos += 8;
  }

  /** Zero padding to the next multiple of 8 after `length` bytes of a string or file. */
  pad(length: number): void {
    const pad = (8 - (length % 8)) % 8;
    if (pad === 0) return;
    this.room(pad);
    this.buf.fill(0, this.pos, this.pos + pad);
    this.pos += pad;
  }

  bytes(value: Buffer): void {
    this.u64(value.length);
    this.room(value.length);
    value.copy(this.buf, this.pos);
    this.pos += value.length;
    this.pad(value.length);
  }

  /** Reads the file (`size` bytes) straight into its place in the NAR. */
  file(path: Buffer, size: number): void {
    this.room(size);
    readFileInto(path, this.buf, this.pos, size);
    this.pos += size;
    this.pad(size);
  }
}

function node(w: BufferWriter, path: Buffer, st: Stats): NarListingEntry {
  w.token(OPEN_TYPE);
  let entry: NarListingEntry;
  if (st.isDirectory()) {
    w.token(DIRECTORY);
    const names = sortedNames(path);
    const entries = Object.create(null) as NarListingDirectory['entries'];
    for (const name of names) {
      const child = Buffer.concat([path, SLASH, name]);
      const childSt = lstatPath(child);
      w.token(ENTRY_NAME);
      w.bytes(name);
      w.token(NODE);
      entries[name.toString('utf8')] = node(w, child, childSt);
      w.token(CLOSE);
    }
    entry = { type: 'directory', entries };
  } else if (st.isFile()) {
    w.token(REGULAR);
    const executable = (st.mode & 0o100) !== 0;
    if (executable) w.token(EXECUTABLE);
    w.token(CONTENTS);
    const size = st.size;
    w.u64(size);
    const regular: NarListingRegular = { type: 'regular', size };
    if (executable) regular.executable = true;
    regular.narOffset = w.pos;
    if (size > 0) w.file(path, size);
    entry = regular;
  } else if (st.isSymbolicLink()) {
    const target = readLink(path);
    w.token(SYMLINK_TARGET);
    w.bytes(target);
    entry = { type: 'symlink', target: target.toString('utf8') };
  } else {
    throw new Error(
      `NAR serialisation: ${describe(path)} is neither a regular file, a directory nor a symlink`,
    );
  }
  w.token(CLOSE);
  return entry;
}

const SLASH = Buffer.from('/');

/**
 * The NAR of `path` in exactly `expected.narSize` bytes (the start of `into` when given and large
 * enough, else a new buffer), and its listing. Throws NarMismatchError when the tree's NAR is not
 * that long (the caller checks the hash).
 */
export function narToBuffer(
  path: string,
  expected: NarExpectation,
  into?: Buffer,
): { nar: Buffer; listing: NarListing } {
  const { narSize } = expected;
  const target = into && into.length >= narSize ? into.subarray(0, narSize) : Buffer.allocUnsafe(narSize);
  const root = Buffer.from(path, 'utf8');
  const w = new BufferWriter(target);
  const st = lstatPath(root);
  try {
    w.token(MAGIC);
    const entry = node(w, root, st);
    if (w.pos !== narSize) throw new NarMismatchError(expected, `${w.pos} bytes`);
    return { nar: w.buf, listing: { version: 1, root: entry } };
  } catch (error) {
    if (error instanceof Overflow) throw new NarMismatchError(expected, `more than ${narSize} bytes`);
    throw error;
  }
}
