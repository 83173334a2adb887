/**
 * Nix's own base-32 ("nix32"): alphabet `0123456789abcdfghijklmnpqrsvwxyz` (no e, o, t, u), characters
 * emitted from the most significant 5-bit group down, so it is NOT RFC 4648 base32. A 20-byte store
 * path digest gives 32 characters, a 32-byte sha256 gives 52 (niks3 spec §0.2, §4.1).
 */

export const NIX_BASE32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

const DIGITS = new Int8Array(128).fill(-1);
for (let i = 0; i < NIX_BASE32_ALPHABET.length; i++) DIGITS[NIX_BASE32_ALPHABET.charCodeAt(i)] = i;

/** Length of the nix32 text for `byteLength` bytes: ⌊(8·n − 1) / 5⌋ + 1 (0 for no bytes). */
export function nixBase32Length(byteLength: number): number {
  return byteLength === 0 ? 0 : Math.floor((byteLength * 8 - 1) / 5) + 1;
}

export function nixBase32Encode(bytes: Uint8Array): string {
  const length = nixBase32Length(bytes.length);
  let out = '';
  for (let n = length - 1; n >= 0; n--) {
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    const low = (bytes[i] ?? 0) >> j;
    const high = i >= bytes.length - 1 ? 0 : (bytes[i + 1] ?? 0) << (8 - j);
    out += NIX_BASE32_ALPHABET[(low | high) & 0x1f];
  }
  return out;
}

/** True when `text` is valid nix32 of some whole number of bytes. */
export function isNixBase32(text: string): boolean {
  try {
    nixBase32Decode(text);
    return true;
  } catch {
    return false;
  }
}

/** Decodes nix32; throws on a character outside the alphabet, an impossible length or stray high bits. */
export function nixBase32Decode(text: string): Buffer {
  const size = Math.floor((text.length * 5) / 8);
  if (nixBase32Length(size) !== text.length) {
    throw new Error(`invalid nix-base32 text: length ${text.length} does not encode a whole number of bytes`);
  }
  const out = Buffer.alloc(size);
  for (let n = 0; n < text.length; n++) {
    const code = text.charCodeAt(text.length - n - 1);
    const digit = code < 128 ? (DIGITS[code] ?? -1) : -1;
    if (digit < 0) {
      throw new Error(
        `invalid nix-base32 text: character ${JSON.stringify(text[text.length - n - 1])} is not in the nix-base32 alphabet`,
      );
    }
    const b = n * 5;
    const i = b >> 3;
    const j = b & 7;
    out[i] = (out[i] ?? 0) | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (i < size - 1) out[i + 1] = (out[i + 1] ?? 0) | carry;
    else if (carry) throw new Error('invalid nix-base32 text: it has bits beyond its byte length');
  }
  return out;
}
