/**
 * Fault injection for the niks3 stand-in, in the language of every fake (`../faults.ts`: matching,
 * `skip`, `times` unlimited unless given, `probability` and `seed`). What is niks3's own:
 *
 * - targets `api` (the niks3 API listener), `s3` (the presigned-URL endpoint) and `public` (the
 *   public read URL); `path` is the raw request path, `query` the raw query string;
 * - every action kind, `reset-mid-body` included; none after handling;
 * - a `status` answer without a body is Go's plain text (`http.Error`) on `api` and `public`, with
 *   `S3 rate limit exceeded, please retry` for a 429 on `api`, and an S3 XML error on `s3`; a 429
 *   gets `Retry-After: 2` unless its headers say otherwise;
 * - `down()` / `up()` of the listeners, planned GC failures (`failNextGc`) and GC holds (`holdGc`).
 */
import { FaultInjector, type FaultAction, type FaultRule } from '../faults.js';

/** Which listener a rule applies to. */
export type FaultTarget = 'api' | 's3' | 'public';

/** A fault rule of the niks3 stand-in. */
export type Niks3FaultRule = FaultRule<FaultTarget, FaultAction>;

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

/** Hooks the fake binds so that `down()`/`up()` can reach its listeners. */
export interface ListenerControl {
  down(target?: FaultTarget): Promise<void>;
  up(target?: FaultTarget): Promise<void>;
}

export class Niks3Faults extends FaultInjector<Niks3FaultRule> {
  private control: ListenerControl | undefined;
  private readonly gcFailures: GcFailure[] = [];
  private gcHolds = 0;
  private gcWaiters: Array<() => void> = [];

  constructor(seed = 1) {
    super({
      fake: 'niks3',
      seed,
      support: { kinds: ['status', 'reset', 'reset-mid-body', 'delay', 'hang'], afterHandling: [] },
    });
  }

  /** Removes every rule, planned GC failure and GC hold (the log is kept). */
  override clear(): void {
    super.clear();
    this.gcFailures.length = 0;
    this.gcHolds = 0;
    this.releaseGcWaiters();
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
