/**
 * Fault injection for the fake: rules that make chosen requests fail, stall or lose
 * their connection, deterministically (each rule draws from its own seeded PRNG), so
 * a test can say "20 % of API calls answer 503, 10 % of uploads are dropped mid-body"
 * and get the same run every time for the same request order.
 *
 * Targets: `api` (the niks3 API listener), `s3` (the presigned-URL endpoint) and
 * `public` (the public read URL). The first rule that matches and fires wins.
 */

/** Which listener a rule applies to. */
export type FaultTarget = 'api' | 's3' | 'public';

/** What happens to a request that a rule hits. */
export type FaultAction =
  /** Answer with this status instead of handling the request. Default bodies: plain text (api, public), S3 XML (s3). A 429 gets `Retry-After: 2` unless headers say otherwise. */
  | { status: number; body?: string; headers?: Record<string, string> }
  /** Destroy the connection before anything is answered. */
  | { kind: 'reset' }
  /** Requests with a body: destroy the connection after about half of it arrived (nothing is stored). Without a body: send half of the response, then destroy. */
  | { kind: 'reset-mid-body' }
  /** Wait, then handle the request normally. */
  | { kind: 'delay'; ms: number }
  /** Never answer (until the fake is closed or taken down). */
  | { kind: 'hang' };

/** A fault rule. */
export interface FaultRule {
  target: FaultTarget;
  /** Exact method (e.g. `PUT`); any method when unset. */
  method?: string;
  /** Tested against the request path (without the query); any path when unset. */
  path?: RegExp;
  /** Tested against the raw query string (without `?`), e.g. `/partNumber=/`. */
  query?: RegExp;
  /** Fire at most this many times (unlimited when unset). */
  times?: number;
  /** Chance (0..1) that a matching request is hit; 1 when unset. */
  probability?: number;
  /** Seed of this rule's PRNG (defaults to the injector's seed plus the rule id). */
  seed?: number;
  action: FaultAction;
  /** A label for counting. */
  name?: string;
}

/** A record of one injected fault. */
export interface InjectedFault {
  ruleId: number;
  name: string | undefined;
  target: FaultTarget;
  method: string;
  path: string;
  action: 'status' | 'reset' | 'reset-mid-body' | 'delay' | 'hang';
  status: number | undefined;
  /** Real time (ms since the epoch). */
  at: number;
}

/** A handle on an added rule. */
export interface FaultHandle {
  readonly id: number;
  /** How many times this rule fired. */
  hits(): number;
  remove(): void;
}

/** GC phases (spec §3.9). */
export type GcPhase =
  'cleanup_pending_uploads' | 'cleanup_old_closures' | 'cleanup_orphan_objects' | 'vacuum_tables';

/** A planned GC failure. */
export interface GcFailure {
  /** The phase that fails (default: the first, before any work is done). */
  phase?: GcPhase;
  /** The task's `error` text, e.g. `another garbage collection is already running on this database`. */
  error: string;
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

interface ActiveRule {
  id: number;
  rule: FaultRule;
  random: () => number;
  hits: number;
}

/** Hooks the fake binds so that `down()`/`up()` can reach its listeners. */
export interface ListenerControl {
  down(target?: FaultTarget): Promise<void>;
  up(target?: FaultTarget): Promise<void>;
}

export class FaultInjector {
  private readonly seed: number;
  private nextId = 1;
  private rules: ActiveRule[] = [];
  private control: ListenerControl | undefined;
  private readonly gcFailures: GcFailure[] = [];
  private gcHolds = 0;
  private gcWaiters: Array<() => void> = [];
  /** Every injected fault, in order. */
  readonly log: InjectedFault[] = [];

  constructor(seed = 1) {
    this.seed = seed;
  }

  /** Adds a rule; rules are tried in the order they were added. */
  add(rule: FaultRule): FaultHandle {
    const id = this.nextId++;
    const active: ActiveRule = { id, rule, random: mulberry32(rule.seed ?? this.seed + id * 7919), hits: 0 };
    this.rules.push(active);
    return { id, hits: () => active.hits, remove: () => this.remove(id) };
  }

  remove(id: number): void {
    this.rules = this.rules.filter((r) => r.id !== id);
  }

  /** Removes every rule, planned GC failure and GC hold (the log is kept). */
  clear(): void {
    this.rules = [];
    this.gcFailures.length = 0;
    this.gcHolds = 0;
    this.releaseGcWaiters();
  }

  /** Number of injected faults, optionally only those of one target, rule name or kind. */
  count(filter: { target?: FaultTarget; name?: string; action?: InjectedFault['action'] } = {}): number {
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

  /**
   * Picks the fault for a request, if any (called by the fake's listeners).
   * Each rule that matches the request draws once from its PRNG.
   */
  pick(target: FaultTarget, method: string, path: string, query: string): FaultAction | undefined {
    for (const r of this.rules) {
      const { rule } = r;
      if (rule.target !== target) continue;
      if (rule.method !== undefined && rule.method.toUpperCase() !== method) continue;
      if (rule.path !== undefined && !rule.path.test(path)) continue;
      if (rule.query !== undefined && !rule.query.test(query)) continue;
      if (rule.times !== undefined && r.hits >= rule.times) continue;
      if (rule.probability !== undefined && r.random() >= rule.probability) continue;
      r.hits++;
      const a = rule.action;
      this.log.push({
        ruleId: r.id,
        name: rule.name,
        target,
        method,
        path,
        action: 'status' in a ? 'status' : a.kind,
        status: 'status' in a ? a.status : undefined,
        at: Date.now(),
      });
      return a;
    }
    return undefined;
  }

  /** @internal Connects `down()`/`up()` to the fake's listeners. */
  bind(control: ListenerControl): void {
    this.control = control;
  }

  /** Closes the listeners (all, or one target): connections are refused, state is kept. */
  async down(target?: FaultTarget): Promise<void> {
    await this.control?.down(target);
  }

  /** Listens again on the same ports. */
  async up(target?: FaultTarget): Promise<void> {
    await this.control?.up(target);
  }

  /** Makes the next GC run fail (spec §3.9: `state: failed`, the phase kept, partial stats kept). */
  failNextGc(failure: GcFailure): void {
    this.gcFailures.push(failure);
  }

  /** @internal The planned failure for this phase of the running GC, if any (consumed). */
  takeGcFailure(phase: GcPhase): GcFailure | undefined {
    const first = this.gcFailures[0];
    if (first === undefined) return undefined;
    if ((first.phase ?? 'cleanup_pending_uploads') !== phase) return undefined;
    this.gcFailures.shift();
    return first;
  }

  /**
   * Holds running GC tasks before their next phase until the returned function is called,
   * so a test can observe `running`, a `202` for the same params and a `409` for others.
   */
  holdGc(): () => void {
    this.gcHolds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.gcHolds--;
      if (this.gcHolds === 0) this.releaseGcWaiters();
    };
  }

  /** @internal Resolves once no hold is active. */
  async gcGate(): Promise<void> {
    if (this.gcHolds === 0) return;
    await new Promise<void>((resolve) => this.gcWaiters.push(resolve));
  }

  private releaseGcWaiters(): void {
    const waiters = this.gcWaiters;
    this.gcWaiters = [];
    for (const w of waiters) w();
  }
}
