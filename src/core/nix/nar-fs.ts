/**
 * The filesystem steps both NAR writers share: byte-sorted directory entries, lstat, readlink and
 * whole-file reads, each failing with a message that names the path and what could not be done.
 */
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from 'node:fs';

/** A path for messages, quoted. */
export function describe(path: Buffer): string {
  return JSON.stringify(path.toString('utf8'));
}

/** A filesystem error of the NAR walk, naming the action and the path. */
export function wrapFsError(error: unknown, action: string, path: Buffer): Error {
  const message = error instanceof Error ? error.message : String(error);
  return new Error(`NAR serialisation: cannot ${action} ${describe(path)}: ${message}`, { cause: error });
}

/** The entries of a directory as raw names, sorted byte-wise (the NAR order). */
export function sortedNames(path: Buffer): Buffer[] {
  let names: Buffer[];
  try {
    names = readdirSync(path, { encoding: 'buffer' });
  } catch (error) {
    throw wrapFsError(error, 'list the directory', path);
  }
  return names.sort((a, b) => Buffer.compare(a, b));
}

/** A symlink's target as raw bytes. */
export function readLink(path: Buffer): Buffer {
  try {
    return readlinkSync(path, { encoding: 'buffer' });
  } catch (error) {
    throw wrapFsError(error, 'read the symlink', path);
  }
}

/** lstat that names the path when it fails. */
export function lstatPath(path: Buffer): Stats {
  try {
    return lstatSync(path);
  } catch (error) {
    throw wrapFsError(error, 'stat', path);
  }
}

/** Reads the whole file (`size` bytes) synchronously into `target` at `offset`. */
export function readFileInto(path: Buffer, target: Buffer, offset: number, size: number): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw wrapFsError(error, 'open', path);
  }
  try {
    let got = 0;
    while (got < size) {
      const n = readSync(fd, target, offset + got, size - got, got);
      if (n === 0)
        throw new Error(
          `NAR serialisation: ${describe(path)} shrank while being read (expected ${size} bytes, got ${got})`,
        );
      got += n;
    }
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('NAR serialisation')) throw error;
    throw wrapFsError(error, 'read', path);
  } finally {
    closeSync(fd);
  }
}
