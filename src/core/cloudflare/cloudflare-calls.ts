/**
 * How nix-cache calls the Cloudflare API through the SDK: the retry policy (written here, next to
 * the remote), and the translation of SDK errors into RemoteErrors that say what to do, naming the
 * token permission an operation needs when Cloudflare answers 403.
 *
 * Policy (shared/spec/cloudflare.md §3.3): the SDK's own retries are off. Reads, updates and deletes
 * are retried here on connection failures, timeouts, 408, 429 and 5xx, honouring Retry-After up to a
 * cap (the SDK has none: a `retry-after: 300` would stall a job for minutes per attempt). Creates
 * are sent once (`maxRetries: 0`); the applier re-reads after an ambiguous failure and converges.
 */
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from 'cloudflare/core/error';
import { ConfigurationError, RemoteError } from '../errors.js';
import {
  DEFAULT_RETRY,
  backoffDelay,
  networkDetail,
  parseRetryAfter,
  plainText,
  sleep as realSleep,
  withRetries,
  type RetryPolicy,
  type Sleep,
} from '../http.js';
import type { Logger } from '../logger.js';

export const CLOUDFLARE_REMOTE = 'Cloudflare API';

/** Permission group names as the dashboard shows them. */
export const CF_PERMISSIONS = {
  r2Read: 'Workers R2 Storage Read',
  r2Write: 'Workers R2 Storage Write',
  zoneRead: 'Zone Read',
} as const;

/** The default statuses and Retry-After cap; more attempts, a longer first back-off, a deadline. */
export const CLOUDFLARE_RETRY: RetryPolicy = {
  ...DEFAULT_RETRY,
  attempts: 6,
  baseDelayMs: 500,
  deadlineMs: 5 * 60_000,
};

/** One API operation, for logs and errors. */
export interface CfOperation {
  /** What we were doing, e.g. `create R2 bucket "x"`. */
  readonly what: string;
  /** `METHOD /path` (no query), e.g. `POST /accounts/A/r2/buckets`. */
  readonly route: string;
  /** The token permission this needs, named in the error when Cloudflare answers 403. */
  readonly permission?: string;
}

/**
 * `instanceof APIError` narrows to `APIError<any, any, any>`; this narrows to the SDK's default
 * type arguments instead (status, headers and body typed).
 */
function isApiError(error: unknown): error is APIError {
  return error instanceof APIError;
}

/** True when the error is an API answer with this status (and, if given, one of these codes). */
export function isApiStatus(error: unknown, status: number, codes?: readonly number[]): boolean {
  if (!(error instanceof APIError) || error.status !== status) return false;
  if (!codes) return true;
  return error.errors.some((e) => e.code !== undefined && codes.includes(e.code));
}

/** The status of an API error answer, if it is one. */
export function apiStatus(error: unknown): number | undefined {
  return error instanceof APIError && typeof error.status === 'number' ? error.status : undefined;
}

/**
 * A connection that broke while the body of an answer was being read (undici's `TypeError:
 * terminated`): the SDK reads the body outside its own error handling, so this one is not wrapped
 * into an APIConnectionError. For a create it is ambiguous (the create may have taken effect).
 */
export function isBrokenAnswer(error: unknown): boolean {
  const e = error as { name?: unknown; message?: unknown } | null;
  return typeof e === 'object' && e !== null && e.name === 'TypeError' && e.message === 'terminated';
}

/** Whether another try may help: connection failures, timeouts, and the retry statuses. */
export function isTransient(error: unknown, policy: RetryPolicy = CLOUDFLARE_RETRY): boolean {
  if (error instanceof APIUserAbortError) return false;
  if (error instanceof APIConnectionError || isBrokenAnswer(error)) return true;
  const status = apiStatus(error);
  return status !== undefined && policy.retryStatuses.includes(status);
}

/** `code message; code message` from an API error body, or its text. */
function errorDetail(error: APIError): string {
  if (error.errors.length > 0)
    return error.errors.map((e) => `${e.code ?? '?'} ${e.message ?? ''}`.trim()).join('; ');
  const body = error.error;
  const text = typeof body === 'string' ? body : body === undefined ? '' : JSON.stringify(body);
  return plainText(text, 200);
}

/** Turns whatever the SDK threw into an error that names the remote, the operation and a fix. */
export function cloudflareError(error: unknown, op: CfOperation): Error {
  if (error instanceof RemoteError || error instanceof ConfigurationError) return error;
  const operation = `${op.what} (${op.route})`;
  if (error instanceof APIConnectionTimeoutError) {
    return new RemoteError(
      {
        remote: CLOUDFLARE_REMOTE,
        operation,
        detail: 'no answer in time',
        hint: 'Check cloudflare-api-url and the network, then re-run',
        transient: true,
      },
      { cause: error },
    );
  }
  if (error instanceof APIConnectionError || isBrokenAnswer(error)) {
    return new RemoteError(
      {
        remote: CLOUDFLARE_REMOTE,
        operation,
        detail: isBrokenAnswer(error)
          ? `the connection broke while the answer was read (${networkDetail(error)})`
          : networkDetail((error as APIConnectionError).cause ?? error),
        hint: 'Check that cloudflare-api-url is reachable from this runner, then re-run',
        transient: true,
      },
      { cause: error },
    );
  }
  if (isApiError(error) && typeof error.status === 'number') {
    const status = error.status;
    let hint: string | undefined;
    if (status === 401) {
      hint = 'The API token was refused (unknown, expired or revoked): check the cloudflare-api-token secret';
    } else if (status === 403 && error.errors.some((e) => e.code === 10042)) {
      hint = 'R2 is not enabled on this account: enable R2 Object Storage in the Cloudflare dashboard first';
    } else if (status === 403) {
      hint = op.permission
        ? `The API token lacks the permission "${op.permission}" (needed to ${op.what}): add it to the token (dashboard: My Profile > API Tokens > Edit) and re-run`
        : 'The API token is not allowed to do this: check its permissions and the account/zone it is scoped to';
    } else if (status === 429) {
      hint = 'Cloudflare rate limit (1200 requests per 5 minutes): wait a few minutes and re-run';
    } else if (status >= 500) {
      hint = 'Cloudflare had an internal error: re-run later';
    }
    return new RemoteError(
      {
        remote: CLOUDFLARE_REMOTE,
        operation,
        status,
        detail: errorDetail(error),
        ...(hint ? { hint } : {}),
        transient: isTransient(error),
      },
      { cause: error },
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

export interface CloudflareCallsOptions {
  readonly logger: Logger;
  readonly sleep?: Sleep;
  readonly retry?: RetryPolicy;
  readonly now?: () => number;
}

/** Runs SDK calls with the policy above. */
export class CloudflareCalls {
  readonly logger: Logger;
  readonly policy: RetryPolicy;
  private readonly doSleep: Sleep;
  private readonly now: () => number;
  /** Requests that were answered with a transient failure and retried (for the summary). */
  retries = 0;

  constructor(options: CloudflareCallsOptions) {
    this.logger = options.logger;
    this.policy = options.retry ?? CLOUDFLARE_RETRY;
    this.doSleep = options.sleep ?? realSleep;
    this.now = options.now ?? Date.now;
  }

  /**
   * A call that is safe to repeat (a read, an update to fixed values, a delete): retried on
   * transient failures. `accept` turns expected errors (e.g. 404) into a value instead of a throw.
   */
  async retried<T, U = never>(
    op: CfOperation,
    fn: () => Promise<T>,
    accept?: (error: unknown) => U | undefined,
  ): Promise<T | U> {
    // The SDK's own error, for the retry line (the loop sees the translated one).
    let raw: unknown;
    return withRetries<T | U>(
      async (attempt) => {
        try {
          this.logger.debug(`Cloudflare: ${op.route} (attempt ${attempt})`);
          return { ok: true, value: await fn() };
        } catch (error) {
          if (accept) {
            const accepted = accept(error);
            if (accepted !== undefined) return { ok: true, value: accepted };
          }
          raw = error;
          return {
            ok: false,
            error: cloudflareError(error, op),
            retry: isTransient(error, this.policy),
            retryAfterMs: retryAfterOf(error),
          };
        }
      },
      {
        policy: this.policy,
        logger: this.logger,
        what: `${op.what} (${op.route})`,
        sleep: this.doSleep,
        now: this.now,
        // Provision is slow enough that a user wants to see each retry, so it is logged at info too.
        onRetry: (_error, delay) => {
          this.retries += 1;
          this.logger.info(
            `${op.what}: ${describeTransient(raw)}; retrying in ${(delay / 1000).toFixed(1)} s`,
          );
        },
      },
    );
  }

  /**
   * A call sent exactly once (a create: the SDK would repeat a 409 three times). `accept` as above;
   * anything else is translated and thrown (callers that converge catch transient ones).
   */
  async once<T, U = never>(
    op: CfOperation,
    fn: () => Promise<T>,
    accept?: (error: unknown) => U | undefined,
  ): Promise<T | U> {
    try {
      this.logger.debug(`Cloudflare: ${op.route} (once)`);
      return await fn();
    } catch (error) {
      if (accept) {
        const accepted = accept(error);
        if (accepted !== undefined) return accepted;
      }
      throw cloudflareError(error, op);
    }
  }

  /** Back-off before the next attempt: the server's Retry-After (capped) or exponential with jitter. */
  delayAfter(error: unknown, attempt: number): number {
    const delay = backoffDelay(attempt, this.policy);
    const retryAfter = retryAfterOf(error);
    return retryAfter === undefined
      ? delay
      : Math.max(delay, Math.min(retryAfter, this.policy.retryAfterCapMs));
  }

  /** Waits the back-off for a transient error (for callers that converge by re-reading). */
  async backoff(error: unknown, attempt: number, what: string): Promise<void> {
    const delay = this.delayAfter(error, attempt);
    this.retries += 1;
    this.logger.info(
      `${what}: ${describeTransient(error)}; checking again in ${(delay / 1000).toFixed(1)} s`,
    );
    await this.doSleep(delay);
  }
}

/** The Retry-After of an API error answer (`retry-after-ms` first, as the SDK reads it), in ms. */
function retryAfterOf(error: unknown): number | undefined {
  if (!isApiError(error) || !error.headers) return undefined;
  const ms = error.headers.get('retry-after-ms');
  return ms !== null && /^\d+$/.test(ms) ? Number(ms) : parseRetryAfter(error.headers.get('retry-after'));
}

function describeTransient(error: unknown): string {
  if (error instanceof APIConnectionTimeoutError) return 'no answer in time';
  if (error instanceof APIConnectionError)
    return `connection failed (${networkDetail(error.cause ?? error)})`;
  if (isBrokenAnswer(error)) return `the connection broke mid-answer (${networkDetail(error)})`;
  const status = apiStatus(error);
  return status === undefined ? 'failed' : `HTTP ${status}`;
}
