/**
 * Serving stored objects over GET/HEAD, in the three flavours the fake needs:
 *
 * - `public`: the public read URL (an R2 custom domain): stored `Content-Type`,
 *   `Content-Encoding`, `ETag`, `Last-Modified` and `Content-Length` are sent as
 *   stored; single byte ranges and conditionals work; a missing key is `404`.
 * - `s3`: the same, for presigned GETs on the S3 endpoint.
 * - `proxy`: niks3's read proxy (spec §1.7): narinfos are decompressed and sent as
 *   `text/x-nix-narinfo`; other objects pass through **without** their
 *   `Content-Encoding`; `Accept-Ranges: bytes`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { zstdDecompressSync } from 'node:zlib';
import type { ObjectStore, StoredObject } from '../s3-store/object-store.js';
import { isNarinfoKey } from './upload-keys.js';

export type ServeMode = 'public' | 's3' | 'proxy';

function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** One `bytes=` range; undefined = serve everything; 'unsatisfiable' = 416. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null) return undefined; // multi-range, malformed or another unit: ignored
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (start >= size) return 'unsatisfiable';
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (end < start) return undefined;
  return { start, end };
}

function notModified(req: IncomingMessage, obj: StoredObject): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) return inm === obj.etag;
  const ims = req.headers['if-modified-since'];
  if (ims !== undefined) {
    const t = Date.parse(ims);
    if (!Number.isNaN(t)) return Math.floor(obj.lastModified / 1000) * 1000 <= t;
  }
  return false;
}

/** Serves `key` from `store`; answers 404 (via `onMissing`) when absent. */
export async function serveObject(
  req: IncomingMessage,
  res: ServerResponse,
  store: ObjectStore,
  key: string,
  mode: ServeMode,
  onMissing: () => void,
): Promise<void> {
  const obj = store.head(key);
  if (obj === undefined) return onMissing();
  const head = req.method === 'HEAD';
  const base: Record<string, string> = {
    ETag: obj.etag,
    'Last-Modified': httpDate(obj.lastModified),
  };

  if (notModified(req, obj)) {
    res.writeHead(304, base);
    res.end();
    return;
  }

  if (mode === 'proxy' && isNarinfoKey(key)) {
    if (head) {
      res.writeHead(200, { 'Content-Type': 'text/x-nix-narinfo' });
      res.end();
      return;
    }
    let body = await store.readBuffer(key);
    if (obj.contentEncoding?.toLowerCase() === 'zstd') body = zstdDecompressSync(body);
    res.writeHead(200, {
      ...base,
      'Content-Type': 'text/x-nix-narinfo',
      'Content-Length': String(body.length),
    });
    res.end(body);
    return;
  }

  const headers: Record<string, string> = {
    ...base,
    'Content-Type': obj.contentType,
    'Accept-Ranges': 'bytes',
  };
  if (mode !== 'proxy' && obj.contentEncoding !== undefined)
    headers['Content-Encoding'] = obj.contentEncoding;
  const range = parseRange(req.headers.range, obj.size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'Content-Range': `bytes */${obj.size}` });
    res.end();
    return;
  }
  if (range !== undefined) {
    headers['Content-Range'] = `bytes ${range.start}-${range.end}/${obj.size}`;
    headers['Content-Length'] = String(range.end - range.start + 1);
    res.writeHead(206, headers);
  } else {
    headers['Content-Length'] = String(obj.size);
    res.writeHead(200, headers);
  }
  if (head || obj.size === 0) {
    res.end();
    return;
  }
  const stream = store.read(key, range);
  await new Promise<void>((resolve) => {
    stream.on('error', () => {
      res.destroy();
      resolve();
    });
    res.on('close', () => {
      stream.destroy();
      resolve();
    });
    stream.pipe(res);
  });
}
