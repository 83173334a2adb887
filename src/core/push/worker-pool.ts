/**
 * Runs tasks with at most `concurrency` at a time. A task's failure is recorded, not thrown, so one
 * bad path does not stop the others; `stop()` (e.g. when the server stopped answering) lets the
 * running tasks finish and starts no new ones.
 */
export interface PoolOutcome<T> {
  readonly item: T;
  readonly error?: unknown;
  /** True when the pool was stopped before this item started. */
  readonly skipped?: boolean;
}

export class WorkerPool {
  private stopped = false;
  private stopReason: string | undefined;

  stop(reason: string): void {
    if (!this.stopped) {
      this.stopped = true;
      this.stopReason = reason;
    }
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  get reason(): string | undefined {
    return this.stopReason;
  }

  async run<T>(
    items: readonly T[],
    concurrency: number,
    task: (item: T) => Promise<void>,
  ): Promise<PoolOutcome<T>[]> {
    const outcomes: PoolOutcome<T>[] = new Array<PoolOutcome<T>>(items.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const index = next++;
        if (index >= items.length) return;
        const item = items[index] as T;
        if (this.stopped) {
          outcomes[index] = { item, skipped: true };
          continue;
        }
        try {
          await task(item);
          outcomes[index] = { item };
        } catch (error) {
          outcomes[index] = { item, error };
        }
      }
    };
    const workers = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, () => worker());
    await Promise.all(workers);
    return outcomes;
  }
}
