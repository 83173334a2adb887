/**
 * NAR hashes (sha256 of the uncompressed NAR) in every textual form Nix prints: SRI `sha256-<base64>`
 * (Nix 2.8 path-info), `sha256:<nix32>` (narinfo, the form signed in fingerprints), `sha256:<base64>`
 * (newer Nix's JSON v1), `sha256:<hex>`, and the bare digests. See niks3 spec §4.1, §4.2, §5.2.
 */
import { nixBase32Decode, nixBase32Encode } from './base32.js';

export const SHA256_BYTES = 32;
const NIX32_LENGTH = 52;
const HEX_LENGTH = 64;

function decodeDigest(body: string, original: string): Buffer {
  let digest: Buffer | undefined;
  if (body.length === NIX32_LENGTH) {
    digest = nixBase32Decode(body);
  } else if (body.length === HEX_LENGTH && /^[0-9a-fA-F]+$/.test(body)) {
    digest = Buffer.from(body, 'hex');
  } else if ((body.length === 44 || body.length === 43) && /^[A-Za-z0-9+/]+={0,1}$/.test(body)) {
    digest = Buffer.from(body, 'base64');
  }
  if (!digest || digest.length !== SHA256_BYTES) {
    throw new Error(
      `invalid NAR hash ${JSON.stringify(original)}: expected sha256 as SRI (sha256-<base64>), sha256:<nix32>, sha256:<base64> or sha256:<hex>`,
    );
  }
  return digest;
}

/** Parses a sha256 NAR hash in any of the forms above into its 32-byte digest. */
export function parseNarHash(text: string): Buffer {
  const trimmed = text.trim();
  let body = trimmed;
  if (trimmed.startsWith('sha256-') || trimmed.startsWith('sha256:')) body = trimmed.slice(7);
  else if (/^[a-z0-9]+[-:]/.test(trimmed)) {
    throw new Error(`invalid NAR hash ${JSON.stringify(text)}: only sha256 is supported`);
  }
  try {
    return decodeDigest(body, text);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('invalid NAR hash')) throw error;
    throw new Error(
      `invalid NAR hash ${JSON.stringify(text)}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** `sha256:<nix32>`: the narinfo `NarHash` form and the one signed in fingerprints. */
export function formatNarHash(digest: Uint8Array): string {
  if (digest.length !== SHA256_BYTES)
    throw new Error(`a NAR hash is a 32-byte sha256 digest, got ${digest.length} bytes`);
  return `sha256:${nixBase32Encode(digest)}`;
}

/** SRI form `sha256-<base64>`, as Nix 2.8 prints it in path-info. */
export function formatNarHashSri(digest: Uint8Array): string {
  if (digest.length !== SHA256_BYTES)
    throw new Error(`a NAR hash is a 32-byte sha256 digest, got ${digest.length} bytes`);
  return `sha256-${Buffer.from(digest).toString('base64')}`;
}

/** The nix32 text alone (52 characters), as used in the NAR object key. */
export function narHashNix32(digest: Uint8Array): string {
  return formatNarHash(digest).slice(7);
}

/** Normalises any accepted form to `sha256:<nix32>`. */
export function normaliseNarHash(text: string): string {
  return formatNarHash(parseNarHash(text));
}
