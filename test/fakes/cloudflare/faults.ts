/**
 * Fault injection for the Cloudflare stand-in (spec §8 items 13 and 15), in the language of every
 * fake (`../faults.ts`: matching, `skip`, `times` unlimited unless given, `probability` and `seed`).
 * What is Cloudflare's own:
 *
 * - targets `api` (the v4 API) and `s3` (the S3 endpoints); an API `path` is the one below the API
 *   prefix (e.g. `/accounts/A/r2/buckets/b`), an S3 path the request path;
 * - a `status` answer on the API is an envelope with `errors` (default by status: 10058
 *   TooManyRequests for a 429, 10001 InternalError for a 5xx, 10000 otherwise), or a raw `body`
 *   (e.g. {@link HTML_502}, Cloudflare's HTML error page) sent as `contentType` (default
 *   `text/html`); on S3 an S3 XML error. `retry-after` / `retry-after-ms` / `x-should-retry` go in
 *   `headers`;
 * - `reset`, `delay` and `hang`; `afterHandling` with a `status` answer on the API (a create takes
 *   effect, its answer is lost);
 * - a global rate limit that answers 429 after N requests in a window (`rateLimit`).
 */
import { FaultInjector, type FaultAction, type FaultRule, type StatusAnswer } from '../faults.js';
import type { CfErrorItem } from './envelope.js';

export type FaultService = 'api' | 's3';

/** A `status` answer with Cloudflare's envelope errors. */
export interface CloudflareAnswer extends StatusAnswer {
  readonly errors?: readonly CfErrorItem[];
  /** The content type of a raw `body` (default `text/html`). */
  readonly contentType?: string;
}

export type CloudflareFaultAction = Exclude<FaultAction<CloudflareAnswer>, { kind: 'reset-mid-body' }>;

/** A fault rule of the Cloudflare stand-in. */
export type CloudflareFaultRule = FaultRule<FaultService, CloudflareFaultAction>;

export interface RateLimitSetting {
  /** Requests allowed per window. */
  readonly limit: number;
  readonly windowMs: number;
  /** Seconds sent in `retry-after` (default: the rest of the window, rounded up). */
  readonly retryAfterSeconds?: number;
}

/** The envelope errors of an injected status without its own. */
export function defaultErrors(status: number): readonly CfErrorItem[] {
  if (status === 429) return [{ code: 10058, message: 'TooManyRequests' }];
  if (status >= 500) return [{ code: 10001, message: 'InternalError' }];
  return [{ code: 10000, message: 'Injected error' }];
}

export class CloudflareFaults extends FaultInjector<CloudflareFaultRule> {
  private rate: RateLimitSetting | undefined;
  private windowStart = 0;
  private windowCount = 0;
  /** How many requests the global rate limit refused. */
  rateLimited = 0;
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    super({
      fake: 'Cloudflare',
      support: { kinds: ['status', 'reset', 'delay', 'hang'], afterHandling: ['status'] },
    });
    this.now = now;
  }

  /** Turns the global rate limit on (or off with undefined). */
  rateLimit(setting: RateLimitSetting | undefined): void {
    this.rate = setting;
    this.windowStart = this.now();
    this.windowCount = 0;
  }

  /** Removes every rule and the rate limit. */
  override clear(): void {
    super.clear();
    this.rateLimit(undefined);
    this.rateLimited = 0;
  }

  /** The global rate limit's answer to this API request, if it refuses it. */
  rateLimitAnswer(): CloudflareAnswer | undefined {
    if (!this.rate) return undefined;
    const now = this.now();
    if (now - this.windowStart >= this.rate.windowMs) {
      this.windowStart = now;
      this.windowCount = 0;
    }
    this.windowCount += 1;
    if (this.windowCount <= this.rate.limit) return undefined;
    this.rateLimited += 1;
    const rest = Math.max(1, Math.ceil((this.windowStart + this.rate.windowMs - now) / 1000));
    return {
      status: 429,
      errors: [{ code: 971, message: 'Please wait and consider throttling your request speed' }],
      headers: { 'retry-after': String(this.rate.retryAfterSeconds ?? rest) },
    };
  }
}

/** Cloudflare's edge answers some 5xx with an HTML page, not an envelope. */
export const HTML_502 =
  '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>';
