/**
 * fetch with timeouts, retries and back-off. Each remote module builds its own HttpClient with
 * the retry policy written next to it; this module knows no API.
 */
import { RemoteError } from './errors.js';
import type { Logger } from './logger.js';
import { USER_AGENT } from './version.js';
import type { AdaptiveRateLimiter } from './rate-limiter.js';

export interface RetryPolicy {
  /** Total attempts, the first included. */
  readonly attempts: number;
  /** First back-off; doubles each attempt, with full jitter. */
  readonly baseDelayMs: number;
  /** Largest back-off between two attempts. */
  readonly maxDelayMs: number;
  /** Largest Retry-After we honour; a longer one is capped to this. */
  readonly retryAfterCapMs: number;
  /** HTTP statuses worth another try. */
  readonly retryStatuses: readonly number[];
  /** Give up once this much time has passed since the first attempt (ms), whatever `attempts` says. */
  readonly deadlineMs?: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  retryAfterCapMs: 60_000,
  retryStatuses: [408, 429, 500, 502, 503, 504],
};

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export const sleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Parses Retry-After (seconds or an HTTP date) into milliseconds, or undefined. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Back-off before attempt number `attempt` (1 = the first retry): full jitter, capped. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export interface HttpClientOptions {
  /** Name used in errors, e.g. "niks3". */
  readonly remote: string;
  readonly baseUrl: string;
  readonly logger: Logger;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
  readonly retry?: RetryPolicy;
  readonly sleep?: Sleep;
  /** Headers added to every request (computed per attempt, e.g. a fresh bearer token). */
  readonly headers?: () => Promise<Record<string, string>> | Record<string, string>;
  /** Maps an error response to a hint for the user. */
  readonly hint?: (status: number, operation: string) => string | undefined;
  /** Shared by every request of this remote: slows all of them down after a 429/503. */
  readonly rateLimiter?: AdaptiveRateLimiter;
}

export interface HttpRequest {
  readonly method: string;
  /** Path below the base URL (with a leading /), or an absolute URL. */
  readonly path: string;
  readonly query?: Record<string, string | number | boolean | undefined>;
  readonly json?: unknown;
  readonly body?: string | Uint8Array;
  readonly headers?: Record<string, string>;
  /** Statuses that are a normal answer (not thrown), e.g. 404 for "not found". 2xx always are. */
  readonly accept?: readonly number[];
  /** Whether a retry after an ambiguous failure (timeout, 5xx, reset) is safe. Default: GET/HEAD/PUT/DELETE. */
  readonly idempotent?: boolean;
  /** Overrides the client's retry policy for this call. */
  readonly retry?: RetryPolicy;
  readonly timeoutMs?: number;
  /** Human name of the operation for errors; default "METHOD path". */
  readonly operation?: string;
  readonly signal?: AbortSignal;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** Parsed JSON body, or undefined when the body is empty or not JSON. */
  readonly json: unknown;
  readonly attempts: number;
}

/** A small JSON-over-HTTP client with the retry policy of one remote. */
export class HttpClient {
  readonly options: HttpClientOptions;
  constructor(options: HttpClientOptions) {
    this.options = options;
  }

  url(path: string, query?: HttpRequest['query']): string {
    const base = /^https?:\/\//.test(path) ? path : `${this.options.baseUrl.replace(/\/+$/, '')}${path}`;
    const url = new URL(base);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const policy = req.retry ?? this.options.retry ?? DEFAULT_RETRY;
    const doSleep = this.options.sleep ?? sleep;
    const fetchFn = this.options.fetch ?? fetch;
    const operation = req.operation ?? `${req.method} ${req.path.replace(/\?.*$/, '')}`;
    const idempotent = req.idempotent ?? ['GET', 'HEAD', 'PUT', 'DELETE'].includes(req.method);
    const started = Date.now();
    const url = this.url(req.path, req.query);
    let lastError: RemoteError | undefined;
    for (let attempt = 1; attempt <= policy.attempts; attempt++) {
      const extra = this.options.headers ? await this.options.headers() : {};
      const headers: Record<string, string> = {
        'user-agent': USER_AGENT,
        accept: 'application/json, text/plain;q=0.9, */*;q=0.5',
        ...extra,
        ...req.headers,
      };
      let body: string | Uint8Array | undefined = req.body;
      if (req.json !== undefined) {
        body = JSON.stringify(req.json);
        headers['content-type'] = 'application/json';
      }
      const timeout = AbortSignal.timeout(req.timeoutMs ?? this.options.timeoutMs ?? 30_000);
      const signal = req.signal ? AbortSignal.any([timeout, req.signal]) : timeout;
      let retryAfterMs: number | undefined;
      try {
        this.options.logger.debug(
          `${this.options.remote}: ${req.method} ${redactUrl(url)} (attempt ${attempt})`,
        );
        await this.options.rateLimiter?.acquire(signal);
        const response = await fetchFn(url, { method: req.method, headers, body, signal });
        this.options.rateLimiter?.record(response.status);
        const text = req.method === 'HEAD' ? '' : await response.text();
        const ok = (response.status >= 200 && response.status < 300) || req.accept?.includes(response.status);
        if (ok) {
          return {
            status: response.status,
            headers: response.headers,
            text,
            json: parseJson(text),
            attempts: attempt,
          };
        }
        const transient = policy.retryStatuses.includes(response.status);
        lastError = new RemoteError({
          remote: this.options.remote,
          operation,
          status: response.status,
          detail: errorDetail(text),
          hint: this.options.hint?.(response.status, operation),
          transient,
        });
        const ambiguous = response.status >= 500 || response.status === 408;
        if (!transient || (ambiguous && !idempotent)) throw lastError;
        retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      } catch (error) {
        if (error instanceof RemoteError) {
          if (error !== lastError || !error.transient) throw error;
          if (!idempotent && (error.status === undefined || error.status >= 500 || error.status === 408))
            throw error;
        } else {
          if (req.signal?.aborted) throw error;
          const timedOut = timeout.aborted;
          lastError = new RemoteError(
            {
              remote: this.options.remote,
              operation,
              detail: timedOut
                ? `no answer within ${Math.round((req.timeoutMs ?? this.options.timeoutMs ?? 30_000) / 1000)} s`
                : networkDetail(error),
              hint: `check that ${new URL(url).origin} is reachable`,
              transient: true,
            },
            { cause: error },
          );
          if (!idempotent) throw lastError;
        }
      }
      if (attempt === policy.attempts) break;
      let delay = backoffDelay(attempt, policy);
      if (retryAfterMs !== undefined) delay = Math.max(delay, Math.min(retryAfterMs, policy.retryAfterCapMs));
      if (policy.deadlineMs !== undefined && Date.now() - started + delay > policy.deadlineMs) break;
      this.options.logger.debug(
        `${this.options.remote}: ${operation} will be retried in ${delay} ms (${lastError?.message ?? ''})`,
      );
      await doSleep(delay, req.signal);
    }
    throw (
      lastError ?? new RemoteError({ remote: this.options.remote, operation, detail: 'no attempt was made' })
    );
  }
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A short, printable error detail from a response body (JSON `error`/`message`, or the text). */
function errorDetail(text: string): string {
  const json = parseJson(text);
  if (json && typeof json === 'object') {
    const record = json as Record<string, unknown>;
    const message = record['message'] ?? record['error'];
    if (typeof message === 'string') return message;
  }
  return text
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300);
}

export function networkDetail(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause as { code?: string; message?: string } | undefined;
    if (cause?.code) return `${cause.code}${cause.message ? ` (${cause.message})` : ''}`;
    return error.message;
  }
  return String(error);
}

/** Drops the query string (presigned URLs carry signatures there) from a URL for logs. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : `${url.slice(0, q)}?…`;
}
