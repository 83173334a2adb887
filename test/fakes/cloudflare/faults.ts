/**
 * Fault injection for the Cloudflare stand-in (spec §8 items 13 and 15): per route and per request
 * count, any status with any envelope or a raw body (Cloudflare's HTML 502), `retry-after` /
 * `retry-after-ms` / `x-should-retry` headers, a delay, a hang (no answer until the client gives
 * up), a connection reset; and a global rate limit that answers 429 after N requests in a window.
 */
import type { CfErrorItem } from './envelope.js';

export type FaultService = 'api' | 's3';

export interface FaultRule {
  /** Which server: the v4 API (default) or the S3 endpoint. */
  readonly service?: FaultService | undefined;
  /** HTTP method to match (any when unset). */
  readonly method?: string | undefined;
  /**
   * Path to match, below the API prefix (e.g. `/accounts/A/r2/buckets/b`): a string matches when
   * the path contains it, a RegExp when it matches.
   */
  readonly path?: string | RegExp | undefined;
  /** Let this many matching requests through before the fault starts. */
  readonly skip?: number;
  /** How many matching requests get the fault (default 1; Infinity for all). */
  readonly times?: number;
  /**
   * respond: answer `status` with `errors` (or `body`); delay: wait `delayMs`, then answer normally;
   * hang: never answer (until the server closes); reset: destroy the socket.
   */
  readonly action?: 'respond' | 'delay' | 'hang' | 'reset';
  readonly status?: number;
  readonly errors?: readonly CfErrorItem[];
  /** A raw body instead of the envelope (e.g. an HTML error page). */
  readonly body?: string;
  readonly contentType?: string;
  readonly headers?: Record<string, string>;
  readonly delayMs?: number;
  /**
   * respond only: handle the request first (so a create takes effect), then answer with the fault,
   * as when a response is lost after the server acted. API only.
   */
  readonly afterHandling?: boolean;
}

/** A rule as stored: with how often it matched and fired. */
export interface ActiveFault {
  readonly rule: FaultRule;
  matched: number;
  fired: number;
}

export interface RateLimitSetting {
  /** Requests allowed per window. */
  readonly limit: number;
  readonly windowMs: number;
  /** Seconds sent in `retry-after` (default: the rest of the window, rounded up). */
  readonly retryAfterSeconds?: number;
}

/** The decision for one request. */
export type FaultDecision =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'respond';
      readonly status: number;
      readonly errors: readonly CfErrorItem[];
      readonly body?: string;
      readonly contentType?: string;
      readonly headers: Record<string, string>;
      readonly afterHandling?: boolean;
    }
  | { readonly kind: 'delay'; readonly delayMs: number }
  | { readonly kind: 'hang' }
  | { readonly kind: 'reset' };

export class Faults {
  readonly active: ActiveFault[] = [];
  private rate: RateLimitSetting | undefined;
  private windowStart = 0;
  private windowCount = 0;
  /** How many requests the global rate limit refused. */
  rateLimited = 0;
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Adds a rule; returns it so a test can read `matched` / `fired`. */
  add(rule: FaultRule): ActiveFault {
    const fault = { rule, matched: 0, fired: 0 };
    this.active.push(fault);
    return fault;
  }

  /** Shorthand: the next `times` requests matching `path` (and method) answer `status`. */
  status(
    status: number,
    match: {
      path?: string | RegExp;
      method?: string;
      times?: number;
      retryAfterSeconds?: number;
      service?: FaultService;
    } = {},
  ): ActiveFault {
    const headers: Record<string, string> = {};
    if (match.retryAfterSeconds !== undefined) headers['retry-after'] = String(match.retryAfterSeconds);
    const code = status === 429 ? 10058 : status >= 500 ? 10001 : 10000;
    return this.add({
      service: match.service,
      path: match.path,
      method: match.method,
      times: match.times ?? 1,
      status,
      errors: [
        {
          code,
          message: status === 429 ? 'TooManyRequests' : status >= 500 ? 'InternalError' : 'Injected error',
        },
      ],
      headers,
    });
  }

  /** Turns the global rate limit on (or off with undefined). */
  rateLimit(setting: RateLimitSetting | undefined): void {
    this.rate = setting;
    this.windowStart = this.now();
    this.windowCount = 0;
  }

  clear(): void {
    this.active.length = 0;
    this.rateLimit(undefined);
    this.rateLimited = 0;
  }

  /** Decides what happens to one request. */
  decide(service: FaultService, method: string, path: string): FaultDecision {
    if (service === 'api' && this.rate) {
      const now = this.now();
      if (now - this.windowStart >= this.rate.windowMs) {
        this.windowStart = now;
        this.windowCount = 0;
      }
      this.windowCount += 1;
      if (this.windowCount > this.rate.limit) {
        this.rateLimited += 1;
        const rest = Math.max(1, Math.ceil((this.windowStart + this.rate.windowMs - now) / 1000));
        return {
          kind: 'respond',
          status: 429,
          errors: [{ code: 971, message: 'Please wait and consider throttling your request speed' }],
          headers: { 'retry-after': String(this.rate.retryAfterSeconds ?? rest) },
        };
      }
    }
    for (const fault of this.active) {
      const rule = fault.rule;
      if ((rule.service ?? 'api') !== service) continue;
      if (rule.method && rule.method.toUpperCase() !== method.toUpperCase()) continue;
      if (rule.path !== undefined) {
        const hit = typeof rule.path === 'string' ? path.includes(rule.path) : rule.path.test(path);
        if (!hit) continue;
      }
      fault.matched += 1;
      if (fault.matched <= (rule.skip ?? 0)) continue;
      if (fault.fired >= (rule.times ?? 1)) continue;
      fault.fired += 1;
      const action = rule.action ?? 'respond';
      if (action === 'hang') return { kind: 'hang' };
      if (action === 'reset') return { kind: 'reset' };
      if (action === 'delay') return { kind: 'delay', delayMs: rule.delayMs ?? 1000 };
      return {
        kind: 'respond',
        status: rule.status ?? 500,
        errors: rule.errors ?? [{ code: 10001, message: 'InternalError' }],
        ...(rule.body !== undefined ? { body: rule.body } : {}),
        ...(rule.contentType !== undefined ? { contentType: rule.contentType } : {}),
        headers: rule.headers ?? {},
        ...(rule.afterHandling ? { afterHandling: true } : {}),
      };
    }
    return { kind: 'none' };
  }
}

/** Cloudflare's edge answers some 5xx with an HTML page, not an envelope. */
export const HTML_502 =
  '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>';
