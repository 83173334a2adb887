/**
 * The narinfo text (niks3 spec §4.2): written by the client, signed by the server. Field order and
 * the `References: ` line with a trailing space when empty follow the Go client exactly.
 */
import { formatNarHash, parseNarHash } from './nar-hash.js';
import { narKey } from './object-keys.js';
import type { PathInfo } from './path-info.js';
import { compareBytes, storePathBaseName } from './store-path.js';

export { narInfoKey } from './object-keys.js';

export interface NarInfo {
  /** Full store path. */
  storePath: string;
  /** The NAR object key, e.g. `nar/<nix32>.nar.zst`. */
  url: string;
  compression: string;
  fileHash?: string;
  fileSize?: number;
  /** `sha256:<nix32>`. */
  narHash: string;
  narSize: number;
  /** Base names (`<hash>-<name>`); full paths are accepted and stripped when rendering. */
  references: string[];
  /** Base name of the deriver (a full path is stripped when rendering). */
  deriver?: string;
  sigs: string[];
  ca?: string;
}

function checkLineValue(field: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`narinfo field ${field} must not contain a line break`);
  return value;
}

/**
 * Renders the narinfo text exactly as the niks3 client writes it: StorePath, URL, Compression,
 * [FileHash, FileSize], NarHash, NarSize, References (sorted, base names), [Deriver], Sig lines
 * (sorted), [CA]; every line ends with `\n`.
 */
export function renderNarInfo(info: NarInfo): string {
  const refs = info.references.map(storePathBaseName).sort(compareBytes);
  const lines = [
    `StorePath: ${checkLineValue('StorePath', info.storePath)}`,
    `URL: ${checkLineValue('URL', info.url)}`,
    `Compression: ${checkLineValue('Compression', info.compression)}`,
  ];
  if (info.fileHash !== undefined) lines.push(`FileHash: ${checkLineValue('FileHash', info.fileHash)}`);
  if (info.fileSize !== undefined) lines.push(`FileSize: ${info.fileSize}`);
  lines.push(`NarHash: ${checkLineValue('NarHash', info.narHash)}`);
  lines.push(`NarSize: ${info.narSize}`);
  lines.push(`References: ${refs.map((r) => checkLineValue('References', r)).join(' ')}`);
  if (info.deriver) lines.push(`Deriver: ${checkLineValue('Deriver', storePathBaseName(info.deriver))}`);
  for (const sig of [...info.sigs].sort()) lines.push(`Sig: ${checkLineValue('Sig', sig)}`);
  if (info.ca) lines.push(`CA: ${checkLineValue('CA', info.ca)}`);
  return `${lines.join('\n')}\n`;
}

/** Parses narinfo text (Nix's rules: unknown fields ignored, Compression defaults to bzip2). */
export function parseNarInfo(text: string): NarInfo {
  const fields = new Map<string, string>();
  const sigs: string[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '');
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`corrupt narinfo: line ${index + 1} is not "Key: value"`);
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^ /, '');
    if (key === 'Sig') sigs.push(value);
    else fields.set(key, value);
  }
  const required = (key: string): string => {
    const value = fields.get(key);
    if (value === undefined || value === '') throw new Error(`corrupt narinfo: the ${key} field is missing`);
    return value;
  };
  const integer = (key: string, value: string): number => {
    if (!/^\d+$/.test(value))
      throw new Error(`corrupt narinfo: ${key} ${JSON.stringify(value)} is not a non-negative integer`);
    return Number(value);
  };
  const references = (fields.get('References') ?? '').split(' ').filter((r) => r !== '');
  const deriver = fields.get('Deriver');
  const info: NarInfo = {
    storePath: required('StorePath'),
    url: required('URL'),
    compression: fields.get('Compression') || 'bzip2',
    narHash: required('NarHash'),
    narSize: integer('NarSize', required('NarSize')),
    references,
    sigs,
  };
  const fileHash = fields.get('FileHash');
  if (fileHash) info.fileHash = fileHash;
  const fileSize = fields.get('FileSize');
  if (fileSize) info.fileSize = integer('FileSize', fileSize);
  if (deriver && deriver !== 'unknown-deriver') info.deriver = deriver;
  const ca = fields.get('CA');
  if (ca) info.ca = ca;
  return info;
}

/**
 * The narinfo the niks3 client writes for a path (§4.2, §5.6): URL = NAR key, zstd, NarHash as
 * `sha256:<nix32>`, references as base names, deriver and CA when known, the server's signatures.
 * Signatures path-info reported are NOT included (as in the Go client).
 */
export function narInfoFromPathInfo(info: PathInfo, sigs: readonly string[] = []): NarInfo {
  const result: NarInfo = {
    storePath: info.path,
    url: narKey(info.narHash),
    compression: 'zstd',
    narHash: formatNarHash(info.narHash),
    narSize: info.narSize,
    references: info.references.map(storePathBaseName).sort(compareBytes),
    sigs: [...sigs].sort(),
  };
  if (info.deriver) result.deriver = storePathBaseName(info.deriver);
  if (info.ca) result.ca = info.ca;
  return result;
}

/** The narinfo's NAR hash as a digest (any accepted form). */
export function narInfoDigest(info: Pick<NarInfo, 'narHash'>): Buffer {
  return parseNarHash(info.narHash);
}
