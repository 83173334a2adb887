/**
 * Fault injection (spec fly.md §8.7). A rule names a route as the router does
 * (`POST /v1/apps/:app/machines`, or `*` for any) and a number of calls it applies to.
 */
export type Fault =
  /** Answer with this status instead (e.g. 429 with Retry-After, 500, 502, 503, 408). */
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly retryAfter?: string;
      readonly body?: Record<string, unknown>;
    }
  /** Send nothing; after `ms` real milliseconds (if given) drop the connection. */
  | { readonly kind: 'hang'; readonly ms?: number }
  /** Drop the connection at once (connection reset). */
  | { readonly kind: 'reset' }
  /** Do the work (state changes happen), then answer with `then` instead: the ambiguous failure. */
  | { readonly kind: 'after-commit'; readonly then: Exclude<Fault, { kind: 'after-commit' }> };

export interface FaultRule {
  /** `METHOD /route/:param` as in the request log's `route`, or `*`. */
  readonly route: string;
  readonly fault: Fault;
  /** Calls left to hit. */
  remaining: number;
}

export class FaultPlan {
  private readonly rules: FaultRule[] = [];

  add(route: string, fault: Fault, times = 1): void {
    this.rules.push({ route, fault, remaining: times });
  }

  /** The fault for this call, consuming one use of the first matching rule. */
  take(route: string): Fault | undefined {
    const rule = this.rules.find((r) => r.remaining > 0 && (r.route === '*' || r.route === route));
    if (!rule) return undefined;
    rule.remaining -= 1;
    return rule.fault;
  }

  clear(): void {
    this.rules.length = 0;
  }

  /** Rules that still have uses left (a test may assert its faults were all hit). */
  pending(): FaultRule[] {
    return this.rules.filter((r) => r.remaining > 0);
  }
}
