/**
 * Upload routes (spec §3.1–§3.7): pending closures, signing, completing, bulk
 * cleanup, multipart part URLs and completion, and the object existence probe.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { S3Error } from '../s3-store/s3-error.js';
import type { Niks3Context } from './context.js';
import { GoDurationError, goRfc3339, nsToWholeSeconds, parseGoDuration } from './go-duration.js';
import { decodeGoJson, go, GoJsonError, goQuote } from './go-json.js';
import { BodyTooLargeError, drainBody, httpError, noContent, readBody, writeJson } from './http-io.js';
import { signNarinfo } from './signing.js';
import type { PendingClosure } from './state.js';
import { isNarKey, isValidUploadKey } from './upload-keys.js';

/** A route handler. */
export type RouteHandler = (
  ctx: Niks3Context,
  req: IncomingMessage,
  res: ServerResponse,
  params: Record<string, string>,
  url: URL,
) => Promise<void>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- request schemas (the Go structs of server/uploads.go) ----

interface ObjectWithRefs {
  key: string;
  type: string;
  refs: string[] | null;
  nar_size: number | null;
}
interface CreatePendingClosureRequest {
  closure: string | null;
  objects: ObjectWithRefs[] | null;
  verify_s3: boolean;
}
const CREATE_SCHEMA = go.struct('createPendingClosureRequest', {
  closure: go.ptr(go.string),
  objects: go.slice(
    go.struct('objectWithRefs', {
      key: go.string,
      type: go.string,
      refs: go.slice(go.string),
      nar_size: go.ptr(go.uint64),
    }),
  ),
  verify_s3: go.bool,
});

interface NarinfoMetadata {
  store_path: string;
  nar_hash: string;
  nar_size: number;
  references: string[] | null;
}
interface SignRequest {
  narinfos: Map<string, NarinfoMetadata> | null;
}
const SIGN_SCHEMA = go.struct('signNarinfosRequest', {
  narinfos: go.map(
    go.struct('NarinfoMetadata', {
      store_path: go.string,
      url: go.string,
      compression: go.string,
      nar_hash: go.string,
      nar_size: go.uint64,
      references: go.slice(go.string),
      deriver: go.ptr(go.string),
      signatures: go.slice(go.string),
      ca: go.ptr(go.string),
    }),
  ),
});

interface RequestPartsRequest {
  object_key: string;
  upload_id: string;
  start_part_number: number;
  num_parts: number;
}
const REQUEST_PARTS_SCHEMA = go.struct('requestPartsRequest', {
  object_key: go.string,
  upload_id: go.string,
  start_part_number: go.int,
  num_parts: go.int,
});

interface CompleteMultipartRequest {
  object_key: string;
  upload_id: string;
  parts: Array<{ part_number: number; etag: string }> | null;
}
const COMPLETE_MULTIPART_SCHEMA = go.struct('completeMultipartRequest', {
  object_key: go.string,
  upload_id: go.string,
  parts: go.slice(go.struct('completedPart', { part_number: go.int, etag: go.string })),
});

/**
 * Reads and decodes a JSON body. On failure it answers (413 or 400) and returns undefined.
 */
async function decodeBody<T>(
  req: IncomingMessage,
  res: ServerResponse,
  schema: Parameters<typeof decodeGoJson>[1],
  goName: string,
  limit: number | undefined,
): Promise<T | undefined> {
  let body: Buffer;
  try {
    body = await readBody(req, limit);
  } catch (err) {
    if (err instanceof BodyTooLargeError) {
      httpError(res, err.message, 413);
      return undefined;
    }
    throw err;
  }
  try {
    return decodeGoJson<T>(body, schema, goName);
  } catch (err) {
    if (err instanceof GoJsonError) {
      httpError(res, `failed to decode request: ${err.message}`, 400);
      return undefined;
    }
    throw err;
  }
}

/** Go's `strconv.ParseInt(s, 10, 32)`; returns the number or Go's error text. */
export function parseInt32(s: string): number | string {
  if (!/^[+-]?\d+$/.test(s)) return `strconv.ParseInt: parsing ${goQuote(s)}: invalid syntax`;
  const n = BigInt(s);
  if (n < -(2n ** 31n) || n > 2n ** 31n - 1n)
    return `strconv.ParseInt: parsing ${goQuote(s)}: value out of range`;
  return Number(n);
}

/** The `{id}` of sign/complete; answers 400 and returns undefined when invalid. */
function sessionId(res: ServerResponse, params: Record<string, string>): number | undefined {
  const raw = params['id'] ?? '';
  if (raw === '') {
    httpError(res, 'missing id', 400);
    return undefined;
  }
  const id = parseInt32(raw);
  if (typeof id === 'string') {
    httpError(res, `invalid id: ${id}`, 400);
    return undefined;
  }
  return id;
}

/** Part count for a multipart NAR (spec §3.1). */
export function estimatePartsNeeded(narSize: number): number {
  if (narSize === 0) return 10;
  let parts = Math.ceil(narSize / (10 * 1024 * 1024));
  parts += Math.floor(parts / 5);
  return Math.min(100, Math.max(2, parts));
}

function partUrls(ctx: Niks3Context, key: string, uploadId: string, start: number, count: number): string[] {
  const urls: string[] = [];
  for (let n = start; n < start + count; n++)
    urls.push(ctx.presign(key, { partNumber: String(n), uploadId }));
  return urls;
}

function isThrottle(err: unknown): boolean {
  return err instanceof S3Error && (err.code === 'SlowDown' || err.status === 429);
}

function rateLimited(res: ServerResponse): void {
  httpError(res, 'S3 rate limit exceeded, please retry', 429, { 'Retry-After': '2' });
}

/** `POST /api/pending_closures` */
export const createPendingClosure: RouteHandler = async (ctx, req, res) => {
  const body = await decodeBody<CreatePendingClosureRequest>(
    req,
    res,
    CREATE_SCHEMA,
    'server.createPendingClosureRequest',
    ctx.config.bodyLimits.pendingClosure,
  );
  if (body === undefined) return;
  if (body.closure === null) return httpError(res, 'missing closure key', 400);
  if (!body.closure.endsWith('.narinfo')) return httpError(res, 'closure key must end with .narinfo', 400);
  const objects = body.objects ?? [];
  if (objects.length === 0) return httpError(res, 'missing objects key', 400);
  for (const o of objects) {
    if (!isValidUploadKey(o.type, o.key)) {
      return httpError(res, `invalid object key ${goQuote(o.key)} for type ${goQuote(o.type)}`, 400);
    }
  }
  // Duplicate keys: the last entry wins.
  const byKey = new Map<string, ObjectWithRefs>();
  for (const o of objects) {
    byKey.delete(o.key);
    byKey.set(o.key, o);
  }

  const { state, store } = ctx;
  const started = Date.now();
  const session = state.createSession(body.closure, ctx.now());
  const tombstoned = [...byKey.keys()].filter((k) => state.isTombstoned(k));
  const needsUpload = [...byKey.values()].filter((o) => {
    if (!state.isLive(o.key)) return true;
    return body.verify_s3 && !store.has(o.key);
  });

  const pendingObjects = new Map<string, unknown>();
  try {
    for (const o of needsUpload) {
      const size = o.nar_size ?? undefined;
      session.objects.set(o.key, { key: o.key, type: o.type, refs: [...(o.refs ?? [])], size });
      const narSize = size ?? 0;
      if (o.type === 'nar' && !(narSize > 0 && narSize <= ctx.config.singlePutMaxNarSize)) {
        const uploadId = await store.createMultipartUpload(o.key, {
          contentType: 'application/octet-stream',
        });
        state.multipart.set(uploadId, { uploadId, key: o.key, sessionId: session.id });
        pendingObjects.set(o.key, {
          type: o.type,
          multipart_info: {
            upload_id: uploadId,
            part_urls: partUrls(ctx, o.key, uploadId, 1, estimatePartsNeeded(narSize)),
          },
        });
      } else {
        pendingObjects.set(o.key, { type: o.type, presigned_url: ctx.presign(o.key) });
      }
    }
  } catch (err) {
    // The session stays half-built, as on the real server; GC cleans it up.
    if (isThrottle(err)) return rateLimited(res);
    return httpError(res, `failed to start upload: ${(err as Error).message}`, 500);
  }

  // The server's work per object (presigning, multipart creation under S3 limits), then its write
  // timeout: a handler that ran longer cannot answer, the connection is closed (the session stays).
  const { perObjectMs, writeTimeoutMs } = ctx.config.createWork;
  if (perObjectMs > 0) await sleep(perObjectMs * byKey.size);
  await waitForTombstones(ctx, tombstoned);
  if (writeTimeoutMs > 0 && Date.now() - started > writeTimeoutMs) {
    res.destroy();
    return;
  }
  writeJson(res, 200, {
    id: String(session.id),
    started_at: goRfc3339(session.startedAt),
    pending_objects: pendingObjects,
  });
};

/**
 * Spec §3.1 step 6: with tombstoned keys in the request, wait at least one poll, and keep
 * polling while any of them was marked less than `maxAgeMs` ago. Bounded in iterations,
 * so a frozen test clock cannot stall it forever.
 */
async function waitForTombstones(ctx: Niks3Context, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  const { pollMs, maxAgeMs } = ctx.config.tombstoneWait;
  const maxPolls = Math.ceil(maxAgeMs / Math.max(1, pollMs)) + 1;
  for (let i = 0; i < maxPolls; i++) {
    await sleep(pollMs);
    const now = ctx.now();
    const young = keys.some((k) => {
      const o = ctx.state.objects.get(k);
      return o?.deletedAt !== undefined && now - o.deletedAt < maxAgeMs;
    });
    if (!young) return;
  }
}

/** `POST /api/pending_closures/{id}/sign` */
export const signPendingClosure: RouteHandler = async (ctx, req, res, params) => {
  const id = sessionId(res, params);
  if (id === undefined) return;
  const body = await decodeBody<SignRequest>(
    req,
    res,
    SIGN_SCHEMA,
    'server.signNarinfosRequest',
    ctx.config.bodyLimits.pendingClosure,
  );
  if (body === undefined) return;
  const session: PendingClosure | undefined = ctx.state.pending.get(id);
  const signatures = new Map<string, string[]>();
  for (const [key, meta] of body.narinfos ?? new Map<string, NarinfoMetadata>()) {
    if (session?.objects.has(key) !== true) {
      return httpError(res, 'invalid narinfo key: not part of this pending closure', 403);
    }
    let sigs: string[] = [];
    if (ctx.keys.length > 0) {
      try {
        sigs = signNarinfo(ctx.keys, {
          storePath: meta.store_path,
          narHash: meta.nar_hash,
          narSize: meta.nar_size,
          references: meta.references,
        });
      } catch (err) {
        return httpError(res, `failed to sign narinfo: ${(err as Error).message}`, 500);
      }
    }
    signatures.set(key, sigs);
  }
  writeJson(res, 200, { signatures });
};

/** `POST /api/pending_closures/{id}/complete` */
export const completePendingClosure: RouteHandler = async (ctx, req, res, params) => {
  const id = sessionId(res, params);
  await drainBody(req);
  if (id === undefined) return;
  if (!ctx.state.commit(id, ctx.now())) return httpError(res, 'pending closure not found', 404);
  noContent(res);
};

/** Aborts S3 uploads of cleaned-up sessions; `NoSuchUpload` and other errors are only logged. */
export async function abortUploads(
  ctx: Niks3Context,
  uploads: ReadonlyArray<{ uploadId: string; key: string }>,
): Promise<void> {
  for (const u of uploads) {
    try {
      await ctx.store.abortMultipartUpload(u.uploadId, u.key);
    } catch (err) {
      if (!(err instanceof S3Error && err.code === 'NoSuchUpload'))
        ctx.log(`abort ${u.key}: ${(err as Error).message}`);
    }
  }
}

/** `DELETE /api/pending_closures?older-than=<dur>` */
export const cleanupPendingClosures: RouteHandler = async (ctx, req, res, _params, url) => {
  await drainBody(req);
  const raw = url.searchParams.get('older-than') || '1h';
  let ns: bigint;
  try {
    ns = parseGoDuration(raw);
  } catch (err) {
    if (err instanceof GoDurationError) return httpError(res, `invalid duration: ${err.message}`, 400);
    throw err;
  }
  const cleanup = ctx.state.cleanupPendingBefore(ctx.now() - nsToWholeSeconds(ns) * 1000);
  await abortUploads(ctx, cleanup.uploadsToAbort);
  noContent(res);
};

/** `POST /api/multipart/request-parts` */
export const requestParts: RouteHandler = async (ctx, req, res) => {
  const body = await decodeBody<RequestPartsRequest>(
    req,
    res,
    REQUEST_PARTS_SCHEMA,
    'server.requestPartsRequest',
    ctx.config.bodyLimits.multipart,
  );
  if (body === undefined) return;
  if (body.object_key === '') return httpError(res, 'missing object_key', 400);
  if (!isNarKey(body.object_key))
    return httpError(res, `invalid object key ${goQuote(body.object_key)}`, 400);
  if (body.upload_id === '') return httpError(res, 'missing upload_id', 400);
  if (body.start_part_number <= 0) return httpError(res, 'start_part_number must be positive', 400);
  if (body.num_parts <= 0 || body.num_parts > 1000)
    return httpError(res, 'num_parts must be between 1 and 1000', 400);
  if (body.start_part_number + body.num_parts - 1 > 10000) {
    return httpError(res, 'requested parts exceed S3 maximum of 10000', 400);
  }
  if (ctx.state.registration(body.upload_id, body.object_key) === undefined) {
    return httpError(res, 'multipart upload not found', 404);
  }
  writeJson(res, 200, {
    part_urls: partUrls(ctx, body.object_key, body.upload_id, body.start_part_number, body.num_parts),
    start_part_number: body.start_part_number,
  });
};

/** `POST /api/multipart/complete` */
export const completeMultipart: RouteHandler = async (ctx, req, res) => {
  const body = await decodeBody<CompleteMultipartRequest>(
    req,
    res,
    COMPLETE_MULTIPART_SCHEMA,
    'server.completeMultipartRequest',
    ctx.config.bodyLimits.multipart,
  );
  if (body === undefined) return;
  if (body.object_key === '') return httpError(res, 'missing object_key', 400);
  if (!isNarKey(body.object_key))
    return httpError(res, `invalid object key ${goQuote(body.object_key)}`, 400);
  if (body.upload_id === '') return httpError(res, 'missing upload_id', 400);
  const parts = body.parts ?? [];
  if (parts.length === 0) return httpError(res, 'missing parts', 400);
  const key = body.object_key;
  if (ctx.state.registration(body.upload_id, key) === undefined) {
    return httpError(res, 'multipart upload not found', 404);
  }
  const sorted = parts
    .map((p, i) => ({ partNumber: p.part_number, etag: p.etag, i }))
    .sort((a, b) => a.partNumber - b.partNumber || a.i - b.i);
  try {
    await ctx.store.completeMultipartUpload(body.upload_id, key, sorted, ctx.config.multipartRules);
  } catch (err) {
    const exists = ctx.config.features.completeSucceedsIfObjectExists && ctx.store.has(key);
    if (!exists) {
      if (isThrottle(err)) return rateLimited(res);
      return httpError(res, `failed to complete multipart upload: ${(err as Error).message}`, 500);
    }
  }
  ctx.state.multipart.delete(body.upload_id);
  if (ctx.config.features.abortRedundantUploads) {
    const others = [...ctx.state.multipart.values()].filter((m) => m.key === key);
    for (const m of others) ctx.state.multipart.delete(m.uploadId);
    await abortUploads(ctx, others);
  }
  noContent(res);
};

/** `HEAD /api/objects/{key...}` [post-1.7.0] */
export const headObject: RouteHandler = async (ctx, req, res, params) => {
  await drainBody(req);
  const key = params['key'] ?? '';
  if (key === '') return httpError(res, 'missing object key', 400);
  noContent(res, ctx.store.has(key) ? 204 : 404);
};
