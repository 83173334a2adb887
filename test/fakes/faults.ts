/**
 * Fault injection: one language for every stand-in (niks3, Cloudflare, Fly) and for the cutting
 * proxy of the reliability tests. A rule says which requests it matches, what happens to them, and
 * how often; each fake turns the action into its remote's own answer (Go's plain-text errors and
 * S3 XML for niks3, the v4 envelope for Cloudflare, `{ "error": … }` for Fly) and documents the
 * extras it models. Deterministic: a rule with a `probability` draws from its own seeded PRNG, so the
 * same request order gives the same faults.
 *
 * ```ts
 * niks3.faults.add({ target: 'api', probability: 0.2, action: { status: 503 }, name: 'flaky-api' });
 * cf.faults.add({ path: '/r2/buckets', method: 'POST', times: 2, action: { status: 429, headers: { 'retry-after': '1' } } });
 * fly.faults.add({ route: 'POST /v1/apps/:app/machines', times: 1, afterHandling: true, action: { kind: 'reset' } });
 * ```
 *
 * ## Matching
 * Every field a rule leaves unset matches every request: `target` (the listener: niks3 `api`, `s3`,
 * `public`; Cloudflare `api`, `s3`; Fly has one), `method` (exact, any case), `path` (a RegExp is
 * tested, a string must be contained; the path without the query, as the fake names it in its
 * request log), `query` (a RegExp on the raw query string, without `?`), `route` (the route template
 * exactly as the fake's request log writes it, e.g. Fly's `POST /v1/apps/:app/machines`; only fakes
 * that route before they handle offer it).
 *
 * ## Counting: `skip`, `times`, `probability`
 * Rules are tried in the order they were added; the first that matches and fires wins, and a rule
 * that does not fire lets the next one try. For each rule that matches a request:
 * 1. its `matched` count goes up; while it is at most `skip` (default 0), the request passes;
 * 2. once it fired `times` times, it passes every request (it stays listed until removed);
 * 3. with a `probability` (0..1, default 1), it draws once from its PRNG and passes on a miss;
 * 4. otherwise it fires: `hits` goes up and the fault is logged.
 *
 * ## `times` is unlimited unless given, in every fake
 * A rule states a condition of the remote ("the sign route answers 500"), like `down()`: it holds
 * until the test lifts it (`remove()`, `clear()`) or its `times` run out. That is what a rule with a
 * `probability` means ("20 % of API calls"), which a default of one would silently cap at a single
 * fault; and it makes a test that depends on a client surviving N failures write N (`times: 2`)
 * where it is read, instead of leaning on a default that differs between fakes.
 *
 * ## `afterHandling`
 * The fake handles the request first (a create takes effect), then the action replaces its answer:
 * the ambiguous failure of a write whose response was lost. Each fake says which actions it allows
 * with it; a rule it cannot model is refused when added.
 */

/** The answer a `status` action sends; a fake may add fields of its remote (Cloudflare: `errors`). */
export interface StatusAnswer {
  /** Answer with this status instead of handling the request. */
  readonly status: number;
  /** The body as sent; when unset, the fake's usual error body for the status. */
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** What happens to a request that a rule hits. A fake leaves out the kinds it does not model. */
export type FaultAction<Answer extends StatusAnswer = StatusAnswer> =
  | Answer
  /** Destroy the connection before anything is answered. */
  | { readonly kind: 'reset' }
  /** Requests with a body: destroy the connection after about half of it arrived. Without one: send half of the response, then destroy. */
  | { readonly kind: 'reset-mid-body' }
  /** Wait `ms` (or, given `until`, until it settles, at most `ms`), then handle the request normally. */
  | { readonly kind: 'delay'; readonly ms: number; readonly until?: Promise<unknown> }
  /** Never answer (until the fake is closed); with `ms`, destroy the connection after `ms` real milliseconds. */
  | { readonly kind: 'hang'; readonly ms?: number };

export type FaultKind = 'status' | 'reset' | 'reset-mid-body' | 'delay' | 'hang';

/** The kind of an action (`status` for an answer). */
export function faultKind(action: FaultAction): FaultKind {
  return 'status' in action ? 'status' : action.kind;
}

/** A fault rule; see the top of this file. */
export interface FaultRule<Target extends string = string, Action extends FaultAction = FaultAction> {
  /** The listener; any when unset. */
  readonly target?: Target;
  /** Exact method (any case); any when unset. */
  readonly method?: string;
  /** A RegExp is tested against the path (without the query), a string must be contained in it. */
  readonly path?: string | RegExp;
  /** Tested against the raw query string (without `?`), e.g. `/partNumber=/`. */
  readonly query?: RegExp;
  /** The route template, exactly as in the fake's request log (fakes that route first: Fly). */
  readonly route?: string;
  /** Let this many matching requests through before the rule starts to fire (default 0). */
  readonly skip?: number;
  /** Fire at most this many times: unlimited when unset (`Infinity` may be written out). */
  readonly times?: number;
  /** Chance (0..1) that a matching request is hit; 1 when unset. */
  readonly probability?: number;
  /** Seed of this rule's PRNG (default: the injector's seed plus the rule id). */
  readonly seed?: number;
  /** Handle the request first, then answer with `action` instead (a write whose answer was lost). */
  readonly afterHandling?: boolean;
  readonly action: Action;
  /** A label for counting. */
  readonly name?: string;
}

/** What a fake tells the injector about one request. */
export interface FaultRequest {
  readonly target?: string;
  readonly method: string;
  readonly path: string;
  readonly query?: string;
  readonly route?: string;
}

/** A record of one injected fault. */
export interface InjectedFault {
  readonly ruleId: number;
  readonly name: string | undefined;
  readonly target: string | undefined;
  readonly method: string;
  readonly path: string;
  readonly action: FaultKind;
  readonly status: number | undefined;
  readonly afterHandling: boolean;
  /** Real time (ms since the epoch). */
  readonly at: number;
}

/** A handle on an added rule. */
export interface FaultHandle<R extends FaultRule = FaultRule> {
  readonly id: number;
  readonly rule: R;
  /** How many times this rule fired. */
  hits(): number;
  /** How many requests it matched (fired, skipped, spent or missed by chance). */
  matched(): number;
  remove(): void;
}

/** mulberry32: a small, fast, seedable PRNG. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ActiveRule<R extends FaultRule> {
  readonly handle: FaultHandle<R>;
  readonly random: () => number;
  matched: number;
  hits: number;
}

function matches(rule: FaultRule, request: FaultRequest): boolean {
  if (rule.target !== undefined && rule.target !== request.target) return false;
  if (rule.method !== undefined && rule.method.toUpperCase() !== request.method.toUpperCase()) return false;
  if (rule.route !== undefined && rule.route !== request.route) return false;
  if (rule.path !== undefined) {
    const hit =
      typeof rule.path === 'string' ? request.path.includes(rule.path) : rule.path.test(request.path);
    if (!hit) return false;
  }
  if (rule.query !== undefined && !rule.query.test(request.query ?? '')) return false;
  return true;
}

/** The rules of one fake, the one place their matching and counting happens. */
export class FaultInjector<R extends FaultRule = FaultRule> {
  private readonly options: FaultInjectorOptions;
  private nextId = 1;
  private active: Array<ActiveRule<R>> = [];
  /** Every injected fault, in order (kept by `clear()`). */
  readonly log: InjectedFault[] = [];

  constructor(options: FaultInjectorOptions = {}) {
    this.options = options;
  }

  /** Adds a rule; rules are tried in the order they were added. Refuses one the fake does not model. */
  add(rule: R): FaultHandle<R> {
    if (this.options.support) checkRule(this.options.fake ?? 'fake', this.options.support, rule);
    const id = this.nextId++;
    const handle: FaultHandle<R> = {
      id,
      rule,
      hits: () => active.hits,
      matched: () => active.matched,
      remove: () => this.remove(id),
    };
    const active: ActiveRule<R> = {
      handle,
      random: mulberry32(rule.seed ?? (this.options.seed ?? 1) + id * 7919),
      matched: 0,
      hits: 0,
    };
    this.active.push(active);
    return handle;
  }

  remove(id: number): void {
    this.active = this.active.filter((r) => r.handle.id !== id);
  }

  /** Removes every rule (the log is kept). */
  clear(): void {
    this.active = [];
  }

  /** The rules, in the order they are tried. */
  handles(): Array<FaultHandle<R>> {
    return this.active.map((r) => r.handle);
  }

  /** Number of injected faults, optionally only those of one target, rule name or kind. */
  count(filter: { target?: string; name?: string; action?: FaultKind } = {}): number {
    return this.log.filter(
      (f) =>
        (filter.target === undefined || f.target === filter.target) &&
        (filter.name === undefined || f.name === filter.name) &&
        (filter.action === undefined || f.action === filter.action),
    ).length;
  }

  /** Total number of injected faults. */
  get injected(): number {
    return this.log.length;
  }

  /** The rule that fires for this request, if any (called by the fake); counts as described above. */
  pick(request: FaultRequest): R | undefined {
    for (const r of this.active) {
      const { rule } = r.handle;
      if (!matches(rule, request)) continue;
      r.matched += 1;
      if (r.matched <= (rule.skip ?? 0)) continue;
      if (r.hits >= (rule.times ?? Infinity)) continue;
      if (rule.probability !== undefined && r.random() >= rule.probability) continue;
      r.hits += 1;
      const action: FaultAction = rule.action;
      this.log.push({
        ruleId: r.handle.id,
        name: rule.name,
        target: request.target,
        method: request.method,
        path: request.path,
        action: faultKind(action),
        status: 'status' in action ? action.status : undefined,
        afterHandling: rule.afterHandling === true,
        at: Date.now(),
      });
      return rule;
    }
    return undefined;
  }
}

/** What a fake models: the action kinds, and those it can send after handling the request. */
export interface FaultSupport {
  readonly kinds: readonly FaultKind[];
  readonly afterHandling: readonly FaultKind[];
}

export interface FaultInjectorOptions {
  /** The fake's name, for refusals. */
  readonly fake?: string;
  /** Seed of the rules' PRNGs (default 1; rule N gets seed + N * 7919 unless it gives its own). */
  readonly seed?: number;
  /** What the fake models (default: everything). */
  readonly support?: FaultSupport;
}

/** Throws when a rule asks for something the fake does not model. */
function checkRule(fake: string, support: FaultSupport, rule: FaultRule): void {
  const kind = faultKind(rule.action);
  if (!support.kinds.includes(kind)) {
    throw new Error(`fake ${fake}: no "${kind}" faults (it models ${support.kinds.join(', ')})`);
  }
  if (rule.afterHandling === true && !support.afterHandling.includes(kind)) {
    const allowed = support.afterHandling.length > 0 ? `only ${support.afterHandling.join(', ')}` : 'none';
    throw new Error(`fake ${fake}: no "${kind}" after handling (${allowed})`);
  }
}
