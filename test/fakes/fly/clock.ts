/**
 * The fake's clock. Machine boot, health-check grace periods, lease expiry, wait timeouts and app
 * deletion all run on it, so tests do not sit through Fly's real durations: virtual time runs
 * `speed` times faster than real time (default 1), and `advance(ms)` jumps ahead at once.
 */
export class FakeClock {
  private readonly startWall = Date.now();
  private readonly startReal = performance.now();
  private offset = 0;
  /** Virtual milliseconds per real millisecond. */
  readonly speed: number;

  constructor(speed = 1) {
    if (!(speed > 0)) throw new Error('FakeClock: speed must be positive');
    this.speed = speed;
  }

  /** Virtual time in Unix milliseconds. */
  now(): number {
    return Math.round(this.startWall + (performance.now() - this.startReal) * this.speed + this.offset);
  }

  /** Jumps virtual time forward. */
  advance(ms: number): void {
    if (ms < 0) throw new Error('FakeClock: cannot go back in time');
    this.offset += ms;
  }

  /** Real milliseconds until virtual time `at` (0 when it has passed). */
  realMsUntil(at: number): number {
    return Math.max(0, (at - this.now()) / this.speed);
  }

  /**
   * Resolves true as soon as `ready()` holds, or false once virtual time passes `deadline` or the
   * signal aborts. Polls every few real milliseconds.
   */
  async until(ready: () => boolean, deadline: number, signal?: AbortSignal): Promise<boolean> {
    for (;;) {
      if (ready()) return true;
      if (this.now() >= deadline || signal?.aborted) return false;
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(10, Math.max(1, this.realMsUntil(deadline)))),
      );
    }
  }
}
