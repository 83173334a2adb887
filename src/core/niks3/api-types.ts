/**
 * The niks3 wire formats (shared/spec/niks3.md §3) and strict readers for the server's answers: a
 * response that does not have the documented shape is an error naming the route, not a crash later.
 */
import { RemoteError } from '../errors.js';

export type ObjectType = 'narinfo' | 'nar' | 'listing' | 'build_log' | 'realisation';

/** One entry of `objects` in `POST /api/pending_closures` (§3.1). */
export interface ClosureObject {
  readonly key: string;
  readonly type: ObjectType;
  readonly refs: readonly string[];
  /** Sent for NARs only (the server picks single PUT or multipart from it). */
  readonly nar_size?: number;
}

export interface CreateClosureRequest {
  /** `<hash>.narinfo` of the top-level path. */
  readonly closure: string;
  readonly objects: readonly ClosureObject[];
  readonly verify_s3?: boolean;
}

export interface MultipartInfo {
  readonly uploadId: string;
  readonly partUrls: readonly string[];
}

/** Where one object that needs uploading goes: a single presigned PUT or a multipart upload. */
export interface PendingObject {
  readonly key: string;
  readonly type: ObjectType;
  readonly presignedUrl?: string;
  readonly multipart?: MultipartInfo;
}

/** An upload session (a "pending closure"). */
export interface PendingClosure {
  /** Decimal string (a Postgres bigint). */
  readonly id: string;
  readonly startedAt: string;
  /** Only the keys that need uploading; everything else is already cached. */
  readonly pending: ReadonlyMap<string, PendingObject>;
}

/** One narinfo to sign (§3.2); the server uses only store_path, nar_hash, nar_size and references. */
export interface SignEntry {
  readonly store_path: string;
  readonly url: string;
  readonly compression: string;
  /** `sha256:<nix32>`, 59 characters. */
  readonly nar_hash: string;
  readonly nar_size: number;
  /** Full store paths. */
  readonly references: readonly string[];
  readonly deriver?: string;
  readonly signatures?: readonly string[];
  readonly ca?: string;
}

export interface CompletedPart {
  readonly part_number: number;
  readonly etag: string;
}

export interface GcParams {
  /** Go duration, e.g. `720h`. */
  readonly olderThan: string;
  /** Go duration; the server defaults to `6h`. */
  readonly failedUploadsOlderThan?: string;
  readonly force?: boolean;
}

export interface GcStats {
  readonly failed_uploads_deleted: number;
  readonly old_closures_deleted: number;
  readonly objects_marked_for_deletion: number;
  readonly objects_deleted_after_grace_period: number;
  readonly objects_failed_to_delete: number;
}

export interface GcTaskStatus {
  readonly state: 'running' | 'succeeded' | 'failed';
  readonly phase?: string;
  readonly params?: {
    readonly older_than?: string;
    readonly failed_uploads_older_than?: string;
    readonly force?: boolean;
  };
  readonly stats?: Partial<GcStats>;
  readonly error?: string;
  readonly started_at?: string;
  readonly updated_at?: string;
  readonly finished_at?: string;
}

/**
 * The answer to starting a GC (§3.9, §9): `started` (202, poll `gcStatus()`), `finished` (a
 * v1.4.0 server ran it synchronously and answered 200 with the stats), or `conflict` (409: a GC
 * with other parameters is running).
 */
export type GcStart =
  | { readonly kind: 'started'; readonly task: GcTaskStatus }
  | { readonly kind: 'finished'; readonly stats: Partial<GcStats> }
  | { readonly kind: 'conflict'; readonly error: string; readonly activeTask: GcTaskStatus | undefined };

export interface Pin {
  readonly name: string;
  readonly storePath: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** `GET /api/cache-config` (§3.15). */
export interface CacheConfig {
  /** `--cache-url`, or '' when the server has none. */
  readonly substituterUrl: string;
  /** `name:base64` public keys, in the server's order. */
  readonly publicKeys: readonly string[];
  /** Present only when asked with `?issuer=` for a configured issuer. */
  readonly oidcAudience?: string;
}

/** `GET /api/cache-stats` (§3.16, post-1.7.0). */
export interface CacheStats {
  readonly objects: number;
  readonly logicalBytes: number;
}

/** Reads a JSON answer, throwing a RemoteError that names the route when the shape is wrong. */
export class ResponseReader {
  private readonly operation: string;
  constructor(operation: string) {
    this.operation = operation;
  }

  fail(what: string): never {
    throw new RemoteError({
      remote: 'niks3',
      operation: this.operation,
      detail: `unexpected answer: ${what}`,
      hint: 'check that server-url points at a niks3 server (v1.5.0 or newer)',
    });
  }

  object(value: unknown, what = 'the body'): Record<string, unknown> {
    if (!value || typeof value !== 'object' || Array.isArray(value))
      this.fail(`${what} is not a JSON object`);
    return value as Record<string, unknown>;
  }

  string(record: Record<string, unknown>, field: string, optional = false): string {
    const value = record[field];
    if (value === undefined && optional) return '';
    if (typeof value !== 'string') this.fail(`"${field}" is not a string`);
    return value;
  }

  number(record: Record<string, unknown>, field: string): number {
    const value = record[field];
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(`"${field}" is not a number`);
    return value;
  }

  strings(value: unknown, what: string): string[] {
    if (value === null || value === undefined) return [];
    if (!Array.isArray(value) || value.some((entry) => typeof entry !== 'string'))
      this.fail(`${what} is not a list of strings`);
    return value as string[];
  }
}

const OBJECT_TYPES: readonly string[] = ['narinfo', 'nar', 'listing', 'build_log', 'realisation'];

export function readPendingClosure(json: unknown): PendingClosure {
  const reader = new ResponseReader('POST /api/pending_closures');
  const body = reader.object(json);
  const rawId = body['id'];
  // The server sends a decimal string; accept a number too, to be lenient with forks.
  const id = typeof rawId === 'number' ? String(rawId) : reader.string(body, 'id');
  if (!/^\d+$/.test(id)) reader.fail(`"id" is not a decimal number`);
  const startedAt = typeof body['started_at'] === 'string' ? body['started_at'] : '';
  const pending = new Map<string, PendingObject>();
  const rawPending = body['pending_objects'] ?? {};
  for (const [key, value] of Object.entries(reader.object(rawPending, '"pending_objects"'))) {
    const entry = reader.object(value, `pending object ${key}`);
    const type = reader.string(entry, 'type', true);
    const presignedUrl =
      typeof entry['presigned_url'] === 'string' && entry['presigned_url']
        ? entry['presigned_url']
        : undefined;
    let multipart: MultipartInfo | undefined;
    if (entry['multipart_info'] !== undefined && entry['multipart_info'] !== null) {
      const info = reader.object(entry['multipart_info'], `multipart_info of ${key}`);
      const uploadId = reader.string(info, 'upload_id');
      const partUrls = reader.strings(info['part_urls'], `part_urls of ${key}`);
      if (!uploadId || partUrls.length === 0 || partUrls.some((url) => !url))
        reader.fail(`multipart_info of ${key} is incomplete`);
      multipart = { uploadId, partUrls };
    }
    if (!presignedUrl && !multipart)
      reader.fail(`pending object ${key} has neither presigned_url nor multipart_info`);
    pending.set(key, {
      key,
      type: (OBJECT_TYPES.includes(type) ? type : 'nar') as ObjectType,
      ...(presignedUrl ? { presignedUrl } : {}),
      ...(multipart ? { multipart } : {}),
    });
  }
  return { id, startedAt, pending };
}

export function readSignatures(json: unknown, id: string): Map<string, string[]> {
  const reader = new ResponseReader(`POST /api/pending_closures/${id}/sign`);
  const body = reader.object(json);
  const result = new Map<string, string[]>();
  for (const [key, value] of Object.entries(reader.object(body['signatures'] ?? {}, '"signatures"'))) {
    result.set(key, reader.strings(value, `signatures of ${key}`));
  }
  return result;
}

export function readPartUrls(json: unknown, start: number): string[] {
  const reader = new ResponseReader('POST /api/multipart/request-parts');
  const body = reader.object(json);
  const urls = reader.strings(body['part_urls'], '"part_urls"');
  if (body['start_part_number'] !== start) reader.fail(`"start_part_number" does not echo ${start}`);
  if (urls.length === 0 || urls.some((url) => !url))
    reader.fail('"part_urls" is empty or holds an empty URL');
  return urls;
}

export function readGcTask(json: unknown, operation: string): GcTaskStatus {
  const reader = new ResponseReader(operation);
  const body = reader.object(json);
  const state = reader.string(body, 'state');
  if (!['running', 'succeeded', 'failed'].includes(state)) reader.fail(`unknown GC state "${state}"`);
  return body as unknown as GcTaskStatus;
}

/** `GET /api/closures/{key}`: a committed closure. */
export interface ClosureInfo {
  id: string;
  updatedAt: string;
  objects: string[];
}

export function readClosure(json: unknown): ClosureInfo {
  const reader = new ResponseReader('GET /api/closures/{key}');
  const body = reader.object(json);
  return {
    id: reader.string(body, 'id'),
    updatedAt: reader.string(body, 'updated_at', true),
    objects: reader.strings(body['objects'], '"objects"'),
  };
}

/** The answer to `DELETE /api/closures`: 409 a conflict, 200 (v1.4.0) finished, else started. */
export function readGcStart(status: number, json: unknown, text: string): GcStart {
  if (status === 409) {
    const body = json && typeof json === 'object' ? (json as Record<string, unknown>) : {};
    const active = body['active_task'];
    return {
      kind: 'conflict',
      error:
        typeof body['error'] === 'string'
          ? body['error']
          : text.trim() || 'a different garbage collection is already running',
      activeTask:
        active && typeof active === 'object' ? readGcTask(active, 'DELETE /api/closures') : undefined,
    };
  }
  if (status === 200) {
    const body = (json ?? {}) as Record<string, unknown>;
    const stats = (
      body['stats'] && typeof body['stats'] === 'object' ? body['stats'] : body
    ) as Partial<GcStats>;
    return { kind: 'finished', stats };
  }
  return { kind: 'started', task: readGcTask(json, 'DELETE /api/closures') };
}

export function readPins(json: unknown): Pin[] {
  const reader = new ResponseReader('GET /api/pins');
  if (json === null || json === undefined) return [];
  if (!Array.isArray(json)) reader.fail('the body is not a JSON list');
  return (json as unknown[]).map((value, index) => {
    const entry = reader.object(value, `pin #${index + 1}`);
    return {
      name: reader.string(entry, 'name'),
      storePath: reader.string(entry, 'store_path'),
      createdAt: reader.string(entry, 'created_at', true),
      updatedAt: reader.string(entry, 'updated_at', true),
    };
  });
}

export function readCacheConfig(json: unknown): CacheConfig {
  const reader = new ResponseReader('GET /api/cache-config');
  const body = reader.object(json);
  const audience = body['oidc_audience'];
  return {
    substituterUrl: reader.string(body, 'substituter_url', true),
    publicKeys: reader.strings(body['public_keys'], '"public_keys"'),
    ...(typeof audience === 'string' && audience ? { oidcAudience: audience } : {}),
  };
}

export function readCacheStats(json: unknown): CacheStats {
  const reader = new ResponseReader('GET /api/cache-stats');
  const body = reader.object(json);
  return { objects: reader.number(body, 'objects'), logicalBytes: reader.number(body, 'logical_bytes') };
}
