/**
 * A NAR whose bytes differ from what Nix reported in path-info (shared/spec/niks3.md §4.4): the path
 * is not pushed (a NAR that differs by one byte makes a cache Nix rejects), and a retry would not
 * help. Thrown where the difference is found: the NAR writers and the NAR verifier.
 */
import { formatNarHash } from './nar-hash.js';

export interface NarExpectation {
  readonly narHash: Uint8Array;
  readonly narSize: number;
  /** The store path, for the message. */
  readonly path?: string;
}

export class NarMismatchError extends Error {
  override readonly name = 'NarMismatchError';

  /** `got`: what was found instead ("sha256-…, 123 bytes", "more than 120 bytes"). */
  constructor(expected: NarExpectation, got: string) {
    super(
      `the NAR serialised for ${expected.path ?? 'the path'} does not match Nix's path-info (expected ${formatNarHash(expected.narHash)}, ${expected.narSize} bytes; got ${got}). ` +
        'The store path may be corrupt: run `nix-store --verify-path` on it, or `nix store repair`.',
    );
  }
}
