/**
 * Checks of a NAR stream for tests: a pass-through that hashes and counts what flows through it and
 * fails at the end when it differs from Nix's path-info, and the sha256 and size of a path's NAR.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { formatNarHash } from '../../src/core/nix/nar-hash.js';
import { NarMismatchError, type NarExpectation } from '../../src/core/nix/nar-mismatch.js';
import { narStream } from '../../src/core/nix/nar-writer.js';

/**
 * A pass-through that sha256-hashes and counts the NAR flowing through it. With `expected`, it fails
 * the stream at its end when the hash or size differ from what Nix reported (§4.4: a NAR that differs
 * by one byte makes a cache Nix rejects), before downstream sees the end.
 */
export class NarVerifier extends Transform {
  size = 0;
  private readonly hash: Hash = createHash('sha256');
  private digestValue: Buffer | undefined;
  private readonly expected: NarExpectation | undefined;

  constructor(expected?: NarExpectation) {
    super();
    this.expected = expected;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    if (this.expected && this.size > this.expected.narSize) {
      callback(this.mismatch());
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.digestValue = this.hash.digest();
    if (
      this.expected &&
      (this.size !== this.expected.narSize || !this.digestValue.equals(this.expected.narHash))
    ) {
      callback(this.mismatch());
      return;
    }
    callback();
  }

  /** The sha256 of everything that passed (available after the end). */
  digest(): Buffer {
    if (!this.digestValue) throw new Error('NarVerifier: the digest is only known after the stream ended');
    return this.digestValue;
  }

  private mismatch(): Error {
    const got = this.digestValue
      ? `${formatNarHash(this.digestValue)}, ${this.size} bytes`
      : `more than ${this.expected?.narSize ?? 0} bytes`;
    return new NarMismatchError(this.expected ?? { narHash: new Uint8Array(32), narSize: 0 }, got);
  }
}

/** sha256 and size of the NAR of `path` (streams it once). */
export async function hashNar(path: string): Promise<{ narHash: Buffer; narSize: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of narStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { narHash: hash.digest(), narSize: size };
}
