/**
 * fetch with timeouts, retries and back-off. Each remote module builds its own HttpClient with
 * the retry policy written next to it; this module knows no API.
 */
import { RemoteError } from './errors.js';
import type { Logger } from './logger.js';
import { normaliseBaseUrl } from './settings/values.js';
import { USER_AGENT } from './version.js';
import type { AdaptiveRateLimiter } from './rate-limiter.js';
import { fetchWhole, nodeFetch, type HeaderReader } from './node-http.js';

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

/**
 * The policy of an HttpClient given none, and the base of the remotes' own policies: 408, 429 and
 * 5xx are worth another try, and a Retry-After is honoured up to a minute.
 */
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

/** What one attempt came to: a value, or an error that another attempt may (retry) or may not cure. */
export type AttemptOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | {
      readonly ok: false;
      readonly error: Error;
      /** True when another attempt may help (a transient failure that is safe to repeat). */
      readonly retry: boolean;
      /** The remote's Retry-After, when it sent one (ms). */
      readonly retryAfterMs?: number | undefined;
    };

export interface RetryLoopOptions {
  readonly policy: RetryPolicy;
  readonly logger: Logger;
  /** For the retry line, e.g. "niks3: POST /api/pending_closures". */
  readonly what: string;
  readonly sleep?: Sleep | undefined;
  readonly now?: (() => number) | undefined;
  /** Aborts the wait between attempts. */
  readonly signal?: AbortSignal | undefined;
  /** Told before each wait (e.g. to count retries for a summary). */
  readonly onRetry?: ((error: Error, delayMs: number, attempt: number) => void) | undefined;
}

/**
 * The one retry loop of the suite: `send` makes one attempt and classifies its outcome (or throws
 * for a failure that must not be retried); this repeats it with full-jitter back-off, honours the
 * remote's Retry-After up to the policy's cap, and stops after `attempts` or once the next wait
 * would pass `deadlineMs`, throwing the last error. Every retry is logged at debug level.
 */
export async function withRetries<T>(
  send: (attempt: number) => Promise<AttemptOutcome<T>>,
  options: RetryLoopOptions,
): Promise<T> {
  const { policy } = options;
  const now = options.now ?? Date.now;
  const doSleep = options.sleep ?? sleep;
  const started = now();
  for (let attempt = 1; ; attempt++) {
    const outcome = await send(attempt);
    if (outcome.ok) return outcome.value;
    if (!outcome.retry || attempt >= policy.attempts) throw outcome.error;
    let delay = backoffDelay(attempt, policy);
    if (outcome.retryAfterMs !== undefined)
      delay = Math.max(delay, Math.min(outcome.retryAfterMs, policy.retryAfterCapMs));
    if (policy.deadlineMs !== undefined && now() - started + delay > policy.deadlineMs) throw outcome.error;
    options.onRetry?.(outcome.error, delay, attempt);
    options.logger.debug(`${options.what} will be retried in ${delay} ms (${outcome.error.message})`);
    await doSleep(delay, options.signal);
  }
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
  /**
   * False: an attempt that got no answer at all (timeout, connection closed) is not repeated, the
   * error is thrown at once; for requests the caller would rather change than send again as they are.
   */
  readonly retryWithoutAnswer?: boolean;
  /** Overrides the client's retry policy for this call. */
  readonly retry?: RetryPolicy;
  readonly timeoutMs?: number;
  /** Human name of the operation for errors; default "METHOD path". */
  readonly operation?: string;
  readonly signal?: AbortSignal;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: HeaderReader;
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
    const base = /^https?:\/\//.test(path) ? path : `${normaliseBaseUrl(this.options.baseUrl)}${path}`;
    const url = new URL(base);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const policy = req.retry ?? this.options.retry ?? DEFAULT_RETRY;
    const fetchFn = this.options.fetch ?? nodeFetch;
    const operation = req.operation ?? `${req.method} ${req.path.replace(/\?.*$/, '')}`;
    const idempotent = req.idempotent ?? ['GET', 'HEAD', 'PUT', 'DELETE'].includes(req.method);
    const url = this.url(req.path, req.query);
    const timeoutMs = req.timeoutMs ?? this.options.timeoutMs ?? 30_000;
    const send = async (attempt: number): Promise<AttemptOutcome<HttpResponse>> => {
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
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = req.signal ? AbortSignal.any([timeout, req.signal]) : timeout;
      let response: { readonly status: number; readonly headers: HeaderReader };
      let text: string;
      try {
        this.options.logger.debug(
          `${this.options.remote}: ${req.method} ${redactUrl(url)} (attempt ${attempt})`,
        );
        await this.options.rateLimiter?.acquire(signal);
        const init: RequestInit = {
          method: req.method,
          headers,
          signal,
          ...(body !== undefined ? { body } : {}),
        };
        const answer = await fetchWhole(fetchFn, url, init);
        response = answer;
        text = answer.body.toString('utf8');
        this.options.rateLimiter?.record(response.status);
      } catch (error) {
        if (req.signal?.aborted) throw error;
        const networkError = new RemoteError(
          {
            remote: this.options.remote,
            operation,
            detail: timeout.aborted
              ? `no answer within ${Math.round(timeoutMs / 1000)} s`
              : networkDetail(error),
            hint: `check that ${new URL(url).origin} is reachable`,
            transient: true,
          },
          { cause: error },
        );
        // A request that may have taken effect is repeated only when that is safe.
        return { ok: false, error: networkError, retry: idempotent && req.retryWithoutAnswer !== false };
      }
      if ((response.status >= 200 && response.status < 300) || req.accept?.includes(response.status)) {
        return {
          ok: true,
          value: {
            status: response.status,
            headers: response.headers,
            text,
            json: parseJson(text),
            attempts: attempt,
          },
        };
      }
      const transient = policy.retryStatuses.includes(response.status);
      const error = new RemoteError({
        remote: this.options.remote,
        operation,
        status: response.status,
        detail: errorDetail(text),
        hint: this.options.hint?.(response.status, operation),
        transient,
      });
      const ambiguous = response.status >= 500 || response.status === 408;
      return {
        ok: false,
        error,
        retry: transient && (idempotent || !ambiguous),
        retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
      };
    };
    return withRetries(send, {
      policy,
      logger: this.options.logger,
      what: `${this.options.remote}: ${operation}`,
      sleep: this.options.sleep,
      signal: req.signal,
    });
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
  return plainText(text, 300);
}

/** An error body as one short line of text: HTML tags dropped, white space folded, cut at `max`. */
export function plainText(text: string, max: number): string {
  return text
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, max);
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
