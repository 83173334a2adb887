/**
 * The niks3 HTTP API (shared/spec/niks3.md §3), one method per route: upload sessions, multipart,
 * sign, complete, object probes, GC, pins, cache-config, cache-stats, health. Authentication is a
 * bearer token from a TokenSource, fetched per attempt; a 401 drops the cached token and tries once
 * more (an OIDC token may have expired mid-push). The retry policy is the Go client's (§5.10). The
 * answers are read in `api-types.ts`; the patient first contact with a cold server is `niks3-contact.ts`.
 */
import { normaliseBaseUrl } from '../settings/values.js';
import { RemoteError } from '../errors.js';
import {
  HttpClient,
  sleep as realSleep,
  type HttpRequest,
  type HttpResponse,
  type RetryPolicy,
  type Sleep,
} from '../http.js';
import type { Logger } from '../logger.js';
import type { TokenSource } from '../github/token-source.js';
import {
  readCacheConfig,
  readCacheStats,
  readClosure,
  readGcStart,
  readGcTask,
  readPartUrls,
  readPendingClosure,
  readPins,
  readSignatures,
  type CacheConfig,
  type CacheStats,
  type ClosureInfo,
  type CompletedPart,
  type CreateClosureRequest,
  type GcParams,
  type GcStart,
  type PendingClosure,
  type Pin,
  type SignEntry,
} from './api-types.js';
import { AdaptiveRateLimiter } from '../rate-limiter.js';
import { firstContact, type ContactOptions, type ServerContact } from './niks3-contact.js';

/** §5.10: 1 try plus up to 5 retries on 408, 429 and 5xx (507 included), back-off doubling from ~100 ms to 30 s. */
export const NIKS3_RETRY: RetryPolicy = {
  attempts: 6,
  baseDelayMs: 200,
  maxDelayMs: 30_000,
  retryAfterCapMs: 60_000,
  retryStatuses: [408, 429, 500, 502, 503, 504, 507],
};

/** niks3's `WriteTimeout` (server/server.go): a handler that runs longer cannot answer. */
export const SERVER_WRITE_TIMEOUT_MS = 60_000;
/** Per-attempt timeout of a session creation: above the server's write timeout. */
export const CREATE_TIMEOUT_MS = SERVER_WRITE_TIMEOUT_MS + 15_000;

export interface Niks3ClientOptions {
  /** The niks3 base URL (API paths are joined under it, so a path prefix works). */
  readonly serverUrl: string;
  /** Bearer tokens for protected routes; without one only the public routes work. */
  readonly tokenSource?: TokenSource;
  readonly logger: Logger;
  readonly fetch?: typeof fetch;
  readonly sleep?: Sleep;
  readonly retry?: RetryPolicy;
  /** Per-attempt timeout of API calls (default 60 s). */
  readonly timeoutMs?: number;
  /**
   * Per-attempt timeout of `POST /api/pending_closures` (default 75 s): longer than the server's
   * 60 s write timeout, so any answer the server can still send arrives (past 60 s it cannot).
   */
  readonly createTimeoutMs?: number;
  /** The name of the input that holds the server URL, for hints (default `server-url`). */
  readonly serverUrlInput?: string;
}

export class Niks3Client {
  readonly serverUrl: string;
  /** Protected routes: a bearer token on every attempt. */
  private readonly http: HttpClient;
  /** Public routes (health, cache-config, cache-stats): never a token, so no OIDC token is minted for them. */
  private readonly publicHttp: HttpClient;
  private readonly tokenSource: TokenSource | undefined;
  private readonly logger: Logger;
  private readonly doSleep: Sleep;
  private readonly serverUrlInput: string;
  private readonly createTimeoutMs: number;

  constructor(options: Niks3ClientOptions) {
    this.serverUrl = normaliseBaseUrl(options.serverUrl);
    this.tokenSource = options.tokenSource;
    this.logger = options.logger;
    this.doSleep = options.sleep ?? realSleep;
    this.serverUrlInput = options.serverUrlInput ?? 'server-url';
    this.createTimeoutMs = options.createTimeoutMs ?? CREATE_TIMEOUT_MS;
    const tokenSource = options.tokenSource;
    const common = {
      remote: 'niks3',
      baseUrl: this.serverUrl,
      logger: options.logger,
      retry: options.retry ?? NIKS3_RETRY,
      timeoutMs: options.timeoutMs ?? 60_000,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.sleep ? { sleep: options.sleep } : {}),
      hint: (status: number, operation: string) => this.hint(status, operation),
    };
    this.publicHttp = new HttpClient(common);
    this.http = new HttpClient({
      ...common,
      // Protected routes only: the first contact with a cold server keeps its own patient retries.
      rateLimiter: new AdaptiveRateLimiter({
        ...(options.sleep ? { sleep: options.sleep } : {}),
        onChange: (rate) => this.logger.debug(`niks3: API requests limited to ${rate.toFixed(1)}/s`),
      }),
      headers: async (): Promise<Record<string, string>> => {
        if (!tokenSource) return {};
        const token = await tokenSource.get();
        return token ? { authorization: `Bearer ${token}` } : {};
      },
    });
  }

  // ---- first contact --------------------------------------------------------------------------

  /**
   * Reaches the server, waiting up to `timeoutMs` for a cold one (see `firstContact`). `options` is
   * the name of the timeout input (for hints), or `{ signal, connectTimeoutInput }`.
   */
  async connect(timeoutMs: number, options: ContactOptions = {}): Promise<ServerContact> {
    return firstContact(
      {
        http: this.publicHttp,
        serverUrl: this.serverUrl,
        serverUrlInput: this.serverUrlInput,
        logger: this.logger,
        sleep: this.doSleep,
        attemptRetry: { ...NIKS3_RETRY, attempts: 1 },
      },
      timeoutMs,
      options,
    );
  }

  // ---- public routes --------------------------------------------------------------------------

  /** `GET /health`: true when the server answers 200. Never throws for a non-2xx answer. */
  async health(): Promise<boolean> {
    const response = await this.publicHttp.request({
      method: 'GET',
      path: '/health',
      accept: [404, 500, 502, 503, 504],
      retry: { ...NIKS3_RETRY, attempts: 2 },
    });
    return response.status === 200;
  }

  /** `GET /api/cache-config[?issuer=]`, or undefined when the server is older than v1.5.0. */
  async cacheConfig(issuer?: string): Promise<CacheConfig | undefined> {
    const response = await this.publicHttp.request({
      method: 'GET',
      path: '/api/cache-config',
      ...(issuer ? { query: { issuer } } : {}),
      accept: [404],
    });
    return response.status === 404 ? undefined : readCacheConfig(response.json);
  }

  /** `GET /api/cache-stats`, or undefined when the server does not have it (v1.7.0 and older). */
  async cacheStats(): Promise<CacheStats | undefined> {
    const response = await this.publicHttp.request({
      method: 'GET',
      path: '/api/cache-stats',
      accept: [404],
    });
    return response.status === 404 ? undefined : readCacheStats(response.json);
  }

  // ---- upload sessions ------------------------------------------------------------------------

  /**
   * `POST /api/pending_closures`: starts a session and says which objects need uploading. A retry
   * after a lost answer makes a second session; the orphan is harmless (GC removes it, §5.9).
   * With `retryWithoutAnswer: false`, an attempt that got no answer (the server took longer than
   * its write timeout, or the connection was cut) throws at once instead of sending the same slow
   * request again: the caller splits the session (see `openSessions`).
   */
  async createPendingClosure(
    request: CreateClosureRequest,
    options: { readonly retryWithoutAnswer?: boolean } = {},
  ): Promise<PendingClosure> {
    const response = await this.authed({
      method: 'POST',
      path: '/api/pending_closures',
      json: request,
      idempotent: true,
      timeoutMs: this.createTimeoutMs,
      ...(options.retryWithoutAnswer === false ? { retryWithoutAnswer: false } : {}),
    });
    return readPendingClosure(response.json);
  }

  /** `POST /api/pending_closures/{id}/sign`: one list of signatures per narinfo key. */
  async sign(id: string, narinfos: Readonly<Record<string, SignEntry>>): Promise<Map<string, string[]>> {
    const response = await this.authed({
      method: 'POST',
      path: `/api/pending_closures/${encodeURIComponent(id)}/sign`,
      json: { narinfos },
      idempotent: true,
      operation: 'POST /api/pending_closures/{id}/sign',
    });
    return readSignatures(response.json, id);
  }

  /**
   * `POST /api/pending_closures/{id}/complete`: commits the session. A 404 on a retry means the
   * first try went through and its answer was lost, so it counts as done.
   */
  async complete(id: string): Promise<void> {
    const response = await this.authed({
      method: 'POST',
      path: `/api/pending_closures/${encodeURIComponent(id)}/complete`,
      body: '',
      headers: { 'content-type': 'application/json' },
      idempotent: true,
      accept: [404],
      operation: 'POST /api/pending_closures/{id}/complete',
    });
    if (response.status === 404) {
      if (response.attempts > 1) {
        this.logger.debug(`niks3: session ${id} was already completed by an earlier attempt`);
        return;
      }
      throw new RemoteError({
        remote: 'niks3',
        operation: `complete upload session ${id}`,
        status: 404,
        detail: response.text,
        hint: 'the session is gone (removed by a GC with a short failed-uploads-older-than?); run the push again',
      });
    }
  }

  /** `DELETE /api/pending_closures?older-than=`: removes stale sessions (the Go CLI never calls it). */
  async deletePendingClosures(olderThan = '1h'): Promise<void> {
    await this.authed({
      method: 'DELETE',
      path: '/api/pending_closures',
      query: { 'older-than': olderThan },
    });
  }

  /** `GET /api/closures/{key}`: the object keys of a committed closure, or undefined when unknown. */
  async getClosure(narinfoKey: string): Promise<ClosureInfo | undefined> {
    const response = await this.authed({
      method: 'GET',
      path: `/api/closures/${encodeURIComponent(narinfoKey)}`,
      accept: [404],
      operation: 'GET /api/closures/{key}',
    });
    return response.status === 404 ? undefined : readClosure(response.json);
  }

  // ---- multipart and objects ------------------------------------------------------------------

  /**
   * `POST /api/multipart/request-parts`: more presigned part URLs (fresh ones also replace expired
   * ones). Returns 'not-found' when the upload is no longer registered (completed or aborted).
   */
  async requestParts(
    objectKey: string,
    uploadId: string,
    startPartNumber: number,
    numParts: number,
  ): Promise<string[] | 'not-found'> {
    const count = Math.max(1, Math.min(1000, numParts, 10_000 - startPartNumber + 1));
    const response = await this.authed({
      method: 'POST',
      path: '/api/multipart/request-parts',
      json: {
        object_key: objectKey,
        upload_id: uploadId,
        start_part_number: startPartNumber,
        num_parts: count,
      },
      idempotent: true,
      accept: [404],
    });
    if (response.status === 404) return 'not-found';
    return readPartUrls(response.json, startPartNumber);
  }

  /**
   * `POST /api/multipart/complete`. Returns 'not-found' when the upload is not registered (a retry
   * after a lost answer, or another session finished the same NAR): probe with `objectExists`.
   */
  async completeMultipart(
    objectKey: string,
    uploadId: string,
    parts: readonly CompletedPart[],
  ): Promise<'completed' | 'not-found'> {
    const response = await this.authed({
      method: 'POST',
      path: '/api/multipart/complete',
      json: { object_key: objectKey, upload_id: uploadId, parts },
      idempotent: true,
      accept: [404],
    });
    return response.status === 404 ? 'not-found' : 'completed';
  }

  /** `HEAD /api/objects/{key}` (post-1.7.0): true on 204, false on 404 (also what older servers say). */
  async objectExists(key: string): Promise<boolean> {
    const response = await this.authed({
      method: 'HEAD',
      path: `/api/objects/${key.split('/').map(encodeURIComponent).join('/')}`,
      accept: [404],
      operation: 'HEAD /api/objects/{key}',
    });
    return response.status >= 200 && response.status < 300;
  }

  // ---- GC -------------------------------------------------------------------------------------

  /**
   * `DELETE /api/closures`: starts a GC. 202 → `started` (poll `gcStatus()`); 200 from a v1.4.0
   * server → `finished` with the stats; 409 → `conflict` with the running task.
   */
  async startGc(params: GcParams): Promise<GcStart> {
    const response = await this.authed({
      method: 'DELETE',
      path: '/api/closures',
      query: {
        'older-than': params.olderThan,
        ...(params.failedUploadsOlderThan
          ? { 'failed-uploads-older-than': params.failedUploadsOlderThan }
          : {}),
        ...(params.force ? { force: 'true' } : {}),
      },
      accept: [409],
    });
    return readGcStart(response.status, response.json, response.text);
  }

  /** `GET /api/gc/status`: the latest task, or undefined when this server process has run none. */
  async gcStatus(): Promise<ReturnType<typeof readGcTask> | undefined> {
    const response = await this.authed({ method: 'GET', path: '/api/gc/status', accept: [404] });
    if (response.status === 404) return undefined;
    return readGcTask(response.json, 'GET /api/gc/status');
  }

  // ---- pins -----------------------------------------------------------------------------------

  async listPins(): Promise<Pin[]> {
    const response = await this.authed({ method: 'GET', path: '/api/pins' });
    return readPins(response.json ?? []);
  }

  /** `POST /api/pins/{name}`: creates or re-points a pin. The store path must be a pushed root. */
  async putPin(name: string, storePath: string): Promise<void> {
    await this.authed({
      method: 'POST',
      path: `/api/pins/${encodeURIComponent(name)}`,
      json: { store_path: storePath },
      idempotent: true,
      operation: 'POST /api/pins/{name}',
    });
  }

  /** `DELETE /api/pins/{name}`: true when deleted, false when there was no such pin. */
  async deletePin(name: string): Promise<boolean> {
    const response = await this.authed({
      method: 'DELETE',
      path: `/api/pins/${encodeURIComponent(name)}`,
      accept: [404],
      operation: 'DELETE /api/pins/{name}',
    });
    return response.status !== 404;
  }

  // ---- plumbing -------------------------------------------------------------------------------

  /** A protected request: on 401, the cached token is dropped and the request made once more. */
  private async authed(request: HttpRequest): Promise<HttpResponse> {
    try {
      return await this.http.request(request);
    } catch (error) {
      if (!(error instanceof RemoteError) || error.status !== 401 || !this.tokenSource) throw error;
      this.logger.debug(`niks3: ${error.operation} answered 401; getting a fresh token and trying once more`);
      this.tokenSource.invalidate();
      return this.http.request(request);
    }
  }

  private hint(status: number, operation: string): string | undefined {
    if (status === 401) {
      if (!this.tokenSource) return 'this route needs a token';
      return this.tokenSource.kind === 'oidc'
        ? "the server refused the GitHub OIDC token: check that input 'audience' (default: the server-url) equals the audience of the server's OIDC policy, and that this repository and ref match its subject patterns (deploy's oidc-subjects), or use `auth: token`"
        : "the server refused the token: check input 'token' (it must be the server's NIKS3_API_TOKEN)";
    }
    if (status === 404 && /pins/.test(operation))
      return 'pins need niks3 v1.7.0 or newer, and only a pushed root can be pinned';
    if (status === 404 && /gc\/status/.test(operation)) return 'async GC needs niks3 v1.5.0 or newer';
    if (status === 413) return 'the request is larger than the server accepts; push fewer paths at once';
    if (status === 403 && /sign/.test(operation))
      return 'the upload session does not hold these narinfos (it was completed or removed); run the push again';
    if (status === 405 || status === 404)
      return `check that ${this.serverUrlInput} (${this.serverUrl}) points at a niks3 server`;
    if (status >= 500) return 'the server failed; its logs (fly logs) say why. A retry later may work';
    return undefined;
  }
}
