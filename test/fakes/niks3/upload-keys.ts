/**
 * Object keys and their validation patterns (spec §4.1, §1.7).
 */

/** The five object types a pending closure may hold. */
export const OBJECT_TYPES = ['narinfo', 'nar', 'listing', 'build_log', 'realisation'] as const;
export type ObjectType = (typeof OBJECT_TYPES)[number];

/** The nix-base32 alphabet: `0123456789abcdfghijklmnpqrsvwxyz` (no e, o, t, u). */
const N32 = '[0-9a-df-np-sv-z]';

const PATTERNS: Readonly<Record<ObjectType, RegExp>> = {
  narinfo: new RegExp(`^${N32}{32}\\.narinfo$`),
  nar: new RegExp(`^nar/${N32}{52}\\.nar(\\.zst|\\.xz|\\.bz2)?$`),
  listing: new RegExp(`^${N32}{32}\\.ls$`),
  build_log: /^log\/[A-Za-z0-9+._?=-]+\.drv$/,
  realisation: /^realisations\/[a-z0-9]+:[A-Za-z0-9+/=]+![A-Za-z0-9+._?=-]+\.doi$/,
};

/** True if a key climbs out of the bucket root (`/x`, `../x`, `x/..`, `x/../y`) or is empty. */
export function isTraversal(key: string): boolean {
  return (
    key === '' || key.startsWith('/') || key.startsWith('../') || key.endsWith('/..') || key.includes('/../')
  );
}

/** The upload check of `POST /api/pending_closures`: the key must fit its type's pattern. */
export function isValidUploadKey(type: string, key: string): boolean {
  if (isTraversal(key)) return false;
  const pattern = (PATTERNS as Record<string, RegExp | undefined>)[type];
  return pattern !== undefined && pattern.test(key);
}

/** `nar/<52 nix32>.nar[.zst|.xz|.bz2]`, as multipart routes require. */
export function isNarKey(key: string): boolean {
  return isValidUploadKey('nar', key);
}

/** Keys the read proxy serves (spec §1.7). `pins/<name>` is not among them. */
export function isReadableKey(key: string): boolean {
  if (key === '' || key.startsWith('/') || key.split('/').includes('..')) return false;
  if (key === 'nix-cache-info' || key === 'index.html') return true;
  return OBJECT_TYPES.some((t) => PATTERNS[t].test(key));
}

/** True for `<hash32>.narinfo`. */
export function isNarinfoKey(key: string): boolean {
  return PATTERNS.narinfo.test(key);
}
