/**
 * PUTs to the presigned S3/R2 URLs niks3 hands out (shared/spec/niks3.md §4.8, §5.11): URLs used as
 * given, a buffered body with a known Content-Length, no `x-amz-*` headers, and never the niks3
 * token (this client sends no Authorization header at all).
 *
 * It speaks node:http(s) directly rather than fetch: fetch copies every request body (the Fetch
 * spec's "copy of the bytes held by the buffer source"), which doubles the memory of each upload
 * and costs CPU; here the caller's buffer is written to the socket as it is. Connections are kept
 * alive. Retries follow the API's policy (§5.10): 408, 429, 5xx and network errors, with back-off,
 * jitter and Retry-After. 403 (expired or refused signature) and 404 (upload aborted or completed)
 * are answers the caller handles, not errors.
 */
import { RemoteError } from '../errors.js';
import {
  networkDetail,
  parseRetryAfter,
  sleep as realSleep,
  withRetries,
  type RetryPolicy,
  type Sleep,
} from '../http.js';
import type { Logger } from '../logger.js';
import { KeptConnections, type RawResponse } from '../node-http.js';
import { USER_AGENT } from '../version.js';
import { NIKS3_RETRY } from './niks3-client.js';
import { AdaptiveRateLimiter } from '../rate-limiter.js';

export type PutOutcome =
  | { readonly kind: 'stored'; readonly etag: string | undefined; readonly attempts: number }
  /** 403: the URL expired (after 5 h) or its signature was refused. Ask the server for a new one. */
  | { readonly kind: 'expired' }
  /** 404: the multipart upload behind a part URL was completed or aborted (or there is no bucket). */
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
  readonly sleep?: Sleep;
  readonly retry?: RetryPolicy;
  /** Shared by every upload: slows all of them down after a 429/503 (S3 SlowDown); default one of its own. */
  readonly rateLimiter?: AdaptiveRateLimiter;
  /** Per-attempt timeout: no progress for this long aborts the attempt (default 2 min). */
  readonly timeoutMs?: number;
}

const REMOTE = 'cache storage';

export class PresignedUploader {
  private readonly logger: Logger;
  private readonly doSleep: Sleep;
  private readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly rateLimiter: AdaptiveRateLimiter;
  private readonly connections = new KeptConnections();

  constructor(options: PresignedUploaderOptions) {
    this.logger = options.logger;
    this.doSleep = options.sleep ?? realSleep;
    this.retry = options.retry ?? NIKS3_RETRY;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.rateLimiter =
      options.rateLimiter ??
      new AdaptiveRateLimiter({
        ...(options.sleep ? { sleep: options.sleep } : {}),
        onChange: (rate) =>
          this.logger.debug(`${REMOTE}: upload rate limited to ${rate.toFixed(1)} requests/s`),
      });
  }

  async put(url: string, body: Uint8Array, options: PutOptions): Promise<PutOutcome> {
    const headers: Record<string, string> = {
      'content-type': options.contentType,
      'content-length': String(body.length),
      'user-agent': USER_AGENT,
    };
    if (options.contentEncoding) headers['content-encoding'] = options.contentEncoding;
    const operation = `PUT ${options.what}`;
    return withRetries<PutOutcome>(
      async (attempt) => {
        let response: RawResponse;
        try {
          await this.rateLimiter.acquire(options.signal);
          response = await this.once(url, body, headers, options.signal);
          this.rateLimiter.record(response.status);
        } catch (error) {
          if (options.signal?.aborted) throw error;
          const networkError = new RemoteError(
            {
              remote: REMOTE,
              operation,
              detail: networkDetail(error),
              hint: `check that ${new URL(url).origin} (the storage niks3 presigns for) is reachable from here`,
              transient: true,
            },
            { cause: error },
          );
          return { ok: false, error: networkError, retry: true };
        }
        if (response.status >= 200 && response.status < 300) {
          const etag =
            typeof response.headers.etag === 'string'
              ? response.headers.etag.replace(/^"+|"+$/g, '') || undefined
              : undefined;
          return { ok: true, value: { kind: 'stored', etag, attempts: attempt } };
        }
        if (response.status === 403) return { ok: true, value: { kind: 'expired' } };
        if (response.status === 404) return { ok: true, value: { kind: 'gone' } };
        const transient = this.retry.retryStatuses.includes(response.status);
        const error = new RemoteError({
          remote: REMOTE,
          operation,
          status: response.status,
          detail: s3ErrorDetail(response.body.toString('utf8')),
          hint:
            response.status >= 500
              ? 'the object storage behind niks3 (R2/S3) failed; a later retry may work'
              : 'the object storage refused the upload; check the server S3 settings (endpoint, bucket, keys)',
          transient,
        });
        const retryAfter = response.headers['retry-after'];
        return {
          ok: false,
          error,
          retry: transient,
          retryAfterMs: parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : undefined),
        };
      },
      {
        policy: this.retry,
        logger: this.logger,
        what: `${REMOTE}: ${operation}`,
        sleep: this.doSleep,
        signal: options.signal,
      },
    );
  }

  /** Drops idle keep-alive connections (so a finished push does not hold the process open). */
  close(): void {
    this.connections.close();
  }

  private once(
    url: string,
    body: Uint8Array,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<RawResponse> {
    const target = new URL(url);
    this.logger.debug(`${REMOTE}: PUT ${target.origin}${target.pathname}?… (${body.length} bytes)`);
    return this.connections.send(target, {
      method: 'PUT',
      headers,
      body,
      signal,
      idleTimeoutMs: this.timeoutMs,
      maxBodyBytes: 65_536,
    });
  }
}

/** `<Code>` and `<Message>` of an S3 XML error, or the text. */
function s3ErrorDetail(text: string): string {
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  if (code || message) return [code, message].filter(Boolean).join(': ');
  return text.replace(/\s+/g, ' ').trim().slice(0, 300);
}
