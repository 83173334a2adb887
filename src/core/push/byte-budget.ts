/**
 * A counting semaphore over bytes: every upload buffer (a whole small NAR, one part of a large one)
 * is taken from one budget before it is filled, so the memory a push holds stays bounded whatever
 * the closure looks like. A request larger than the whole budget is clamped to it (it then runs
 * alone), so nothing can wait forever.
 */
export class ByteBudget {
  readonly total: number;
  private available: number;
  private readonly waiters: Array<{ bytes: number; resolve: () => void }> = [];

  constructor(total: number) {
    this.total = Math.max(1, Math.floor(total));
    this.available = this.total;
  }

  /**
   * Waits until `bytes` are free, takes them, and returns the function that gives them back.
   * `release(keep)` gives back all but `keep` bytes (a small NAR keeps only its compressed size
   * once its uncompressed buffer is done with); a later `release()` gives back the rest.
   */
  async acquire(bytes: number): Promise<(keep?: number) => void> {
    const amount = Math.max(1, Math.min(this.total, Math.ceil(bytes)));
    if (this.waiters.length === 0 && this.available >= amount) {
      this.available -= amount;
    } else {
      await new Promise<void>((resolve) => this.waiters.push({ bytes: amount, resolve }));
    }
    let held = amount;
    return (keep = 0) => {
      const back = held - Math.max(0, Math.min(held, Math.ceil(keep)));
      if (back <= 0) return;
      held -= back;
      this.available += back;
      this.wake();
    };
  }

  get inUse(): number {
    return this.total - this.available;
  }

  private wake(): void {
    // First come, first served: a large request at the head is not starved by small ones.
    while (this.waiters.length > 0) {
      const head = this.waiters[0];
      if (!head || head.bytes > this.available) return;
      this.waiters.shift();
      this.available -= head.bytes;
      head.resolve();
    }
  }
}
