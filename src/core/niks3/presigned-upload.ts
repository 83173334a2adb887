/**
 * PUTs to the presigned S3/R2 URLs niks3 hands out (shared/spec/niks3.md §4.8, §5.11): URLs used as
 * given, a buffered body with a known Content-Length, no `x-amz-*` headers, and never the niks3
 * token (this client has no Authorization header at all). Retries follow the same policy as the
 * API; 403 (expired or refused signature) and 404 (upload aborted or completed) are answers the
 * caller handles, not errors.
 */
import { HttpClient, type RetryPolicy, type Sleep } from '../http.js';
import type { Logger } from '../logger.js';
import { NIKS3_RETRY } from './niks3-client.js';

export type PutOutcome =
  | { readonly kind: 'stored'; readonly etag: string | undefined; readonly attempts: number }
  /** 403: the URL expired (after 5 h) or its signature was refused. Ask the server for a new one. */
  | { readonly kind: 'expired' }
  /** 404: the multipart upload behind a part URL was completed or aborted. */
  | { readonly kind: 'gone' };

export interface PutOptions {
  readonly contentType: string;
  readonly contentEncoding?: string;
  /** The object key (and part), for logs and errors; the URL itself is never printed. */
  readonly what: string;
  readonly signal?: AbortSignal;
}

export interface PresignedUploaderOptions {
  readonly logger: Logger;
  readonly fetch?: typeof fetch;
  readonly sleep?: Sleep;
  readonly retry?: RetryPolicy;
  /** Per-attempt timeout (default 5 min: a 10 MiB part over a slow link). */
  readonly timeoutMs?: number;
}

export class PresignedUploader {
  private readonly http: HttpClient;

  constructor(options: PresignedUploaderOptions) {
    this.http = new HttpClient({
      remote: 'cache storage',
      baseUrl: 'http://unused.invalid',
      logger: options.logger,
      retry: options.retry ?? NIKS3_RETRY,
      timeoutMs: options.timeoutMs ?? 300_000,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.sleep ? { sleep: options.sleep } : {}),
      hint: (status) =>
        status >= 500
          ? 'the object storage behind niks3 (R2/S3) failed; a later retry may work'
          : 'the object storage refused the upload; check the server S3 settings (endpoint, bucket, keys)',
    });
  }

  async put(url: string, body: Uint8Array, options: PutOptions): Promise<PutOutcome> {
    const headers: Record<string, string> = { 'content-type': options.contentType };
    if (options.contentEncoding) headers['content-encoding'] = options.contentEncoding;
    const response = await this.http.request({
      method: 'PUT',
      path: url,
      body,
      headers,
      idempotent: true,
      accept: [403, 404],
      operation: `PUT ${options.what}`,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    if (response.status === 403) return { kind: 'expired' };
    if (response.status === 404) return { kind: 'gone' };
    const etag = response.headers.get('etag')?.replace(/^"+|"+$/g, '') || undefined;
    return { kind: 'stored', etag, attempts: response.attempts };
  }
}
