/**
 * Adaptive rate limiting for one remote, shared by every worker talking to it: off until the first
 * throttle answer (429 or 503), then one request per time slot, starting low; it backs off to 70 % on every
 * further throttle and recovers by 10 % after every 10 successes, between 5 and 500 requests per
 * second (the rule niks3's own client follows). Without it, many workers that each retry on their
 * own after a `Retry-After` come back together and stay a herd.
 */
import type { Sleep } from './http.js';

const realSleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });

export const RATE_MIN = 5;
export const RATE_MAX = 500;
const BACKOFF = 0.7;
const RECOVERY = 1.1;
const RECOVER_AFTER = 10;

/** Statuses that mean "too many requests" (S3 SlowDown is a 503, niks3 turns it into a 429). */
export const THROTTLE_STATUSES: readonly number[] = [429, 503];

export class AdaptiveRateLimiter {
  private rate: number | undefined;
  /** When the next request may start (ms on `now`): each caller reserves its own slot, in order. */
  private nextFree = 0;
  private successes = 0;
  private readonly now: () => number;
  private readonly doSleep: Sleep;
  private readonly onChange: ((rate: number) => void) | undefined;

  constructor(options: { now?: () => number; sleep?: Sleep; onChange?: (rate: number) => void } = {}) {
    this.now = options.now ?? Date.now;
    this.doSleep = options.sleep ?? realSleep;
    this.onChange = options.onChange;
  }

  /** Requests per second now, or undefined while unlimited. */
  get currentRate(): number | undefined {
    return this.rate;
  }

  /** Waits for this request's slot (returns at once while unlimited). */
  async acquire(signal?: AbortSignal): Promise<void> {
    if (this.rate === undefined) return;
    const now = this.now();
    const start = Math.max(this.nextFree, now);
    this.nextFree = start + 1000 / this.rate;
    if (start > now) await this.doSleep(start - now, signal);
  }

  /** An answer that was not a throttle. */
  succeeded(): void {
    if (this.rate === undefined) return;
    this.successes += 1;
    if (this.successes < RECOVER_AFTER) return;
    this.successes = 0;
    this.setRate(Math.min(RATE_MAX, this.rate * RECOVERY));
  }

  /** A 429/503 answer. */
  throttled(): void {
    this.successes = 0;
    if (this.rate === undefined) {
      this.nextFree = this.now() + 1000 / RATE_MIN;
      this.setRate(RATE_MIN);
      return;
    }
    this.setRate(Math.max(RATE_MIN, this.rate * BACKOFF));
  }

  /** Records the answer of one request by its status. */
  record(status: number): void {
    if (THROTTLE_STATUSES.includes(status)) this.throttled();
    else this.succeeded();
  }

  private setRate(rate: number): void {
    if (rate === this.rate) return;
    this.rate = rate;
    this.onChange?.(rate);
  }
}
