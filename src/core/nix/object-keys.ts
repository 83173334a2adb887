/**
 * Cache bucket keys and the headers each object is PUT with (niks3 spec §4.1, §4.8), and the
 * server's upload-key patterns so clients can check a key before sending it.
 */
import { narHashNix32, parseNarHash } from './nar-hash.js';
import { storePathBaseName, storePathHash } from './store-path.js';

export type ObjectType = 'narinfo' | 'nar' | 'listing' | 'build_log' | 'realisation';

/** `<hash32>.narinfo` for a store path hash (or a full path / base name). */
export function narInfoKey(hashOrPath: string): string {
  return `${hashOf(hashOrPath)}.narinfo`;
}

/** `<hash32>.ls` for a store path hash (or a full path / base name). */
export function listingKey(hashOrPath: string): string {
  return `${hashOf(hashOrPath)}.ls`;
}

/** `nar/<nix32 of the uncompressed NAR's sha256>.nar.zst`; the NAR hash may be in any accepted form. */
export function narKey(
  narHash: string | Uint8Array,
  extension: '.nar.zst' | '.nar' | '.nar.xz' | '.nar.bz2' = '.nar.zst',
): string {
  const digest = typeof narHash === 'string' ? parseNarHash(narHash) : narHash;
  return `nar/${narHashNix32(digest)}${extension}`;
}

/** `log/<drv base name>` for a deriver path or base name. */
export function buildLogKey(deriver: string): string {
  return `log/${storePathBaseName(deriver)}`;
}

/** `realisations/<id>.doi`, e.g. id `sha256:<hex>!out`. */
export function realisationKey(id: string): string {
  return `realisations/${id}.doi`;
}

function hashOf(hashOrPath: string): string {
  return /^[0-9a-df-np-sv-z]{32}$/.test(hashOrPath) ? hashOrPath : storePathHash(hashOrPath);
}

/** The server's validation patterns for upload keys (HEAD, v1.6.0+). */
export const OBJECT_KEY_PATTERNS: Readonly<Record<ObjectType, RegExp>> = {
  narinfo: /^[0-9a-df-np-sv-z]{32}\.narinfo$/,
  nar: /^nar\/[0-9a-df-np-sv-z]{52}\.nar(\.zst|\.xz|\.bz2)?$/,
  listing: /^[0-9a-df-np-sv-z]{32}\.ls$/,
  build_log: /^log\/[A-Za-z0-9+._?=-]+\.drv$/,
  realisation: /^realisations\/[a-z0-9]+:[A-Za-z0-9+/=]+![A-Za-z0-9+._?=-]+\.doi$/,
};

/** The object type the server would give `key`, or undefined when it would refuse the key. */
export function objectTypeOfKey(key: string): ObjectType | undefined {
  if (!key || key.startsWith('/') || key.startsWith('../') || key.endsWith('/..') || key.includes('/../'))
    return undefined;
  for (const [type, pattern] of Object.entries(OBJECT_KEY_PATTERNS) as [ObjectType, RegExp][]) {
    if (pattern.test(key)) return type;
  }
  return undefined;
}

export interface ObjectHeaders {
  readonly contentType: string;
  /** `zstd` when the body is zstd with Content-Encoding; undefined for opaque bodies (NARs). */
  readonly contentEncoding?: 'zstd';
}

/** Content-Type / Content-Encoding of each object type's PUT (§4.8). Every body is zstd-compressed. */
export const OBJECT_HEADERS: Readonly<Record<ObjectType, ObjectHeaders>> = {
  nar: { contentType: 'application/octet-stream' },
  narinfo: { contentType: 'text/x-nix-narinfo', contentEncoding: 'zstd' },
  listing: { contentType: 'application/octet-stream', contentEncoding: 'zstd' },
  build_log: { contentType: 'text/plain; charset=utf-8', contentEncoding: 'zstd' },
  realisation: { contentType: 'application/octet-stream', contentEncoding: 'zstd' },
};

/** The headers for a PUT of `type` as a plain record (only the ones that apply). */
export function objectPutHeaders(type: ObjectType): Record<string, string> {
  const h = OBJECT_HEADERS[type];
  return h.contentEncoding
    ? { 'Content-Type': h.contentType, 'Content-Encoding': h.contentEncoding }
    : { 'Content-Type': h.contentType };
}
