/**
 * Progress of a running push: counters the upload tasks bump, and a line in the log at least every
 * 10 s while work is going on (paths done, NAR bytes read, bytes stored, throughput).
 */
import type { Logger } from '../logger.js';
import { formatBytes } from '../settings/values.js';

export class PushProgress {
  pathsTotal = 0;
  pathsDone = 0;
  narBytesTotal = 0;
  narBytesRead = 0;
  uploadedBytes = 0;
  private readonly logger: Logger;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private started = 0;
  private phase = '';

  constructor(logger: Logger, options: { intervalMs?: number; now?: () => number } = {}) {
    this.logger = logger;
    this.intervalMs = options.intervalMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  start(phase: string, pathsTotal: number, narBytesTotal: number): void {
    this.stop();
    this.phase = phase;
    this.pathsTotal = pathsTotal;
    this.pathsDone = 0;
    this.narBytesTotal = narBytesTotal;
    this.narBytesRead = 0;
    this.started = this.now();
    this.timer = setInterval(() => this.report(), this.intervalMs);
    this.timer.unref();
  }

  report(): void {
    const seconds = Math.max(0.001, (this.now() - this.started) / 1000);
    const rate = formatBytes(Math.round(this.narBytesRead / seconds));
    const nar =
      this.narBytesTotal > 0
        ? `, ${formatBytes(this.narBytesRead)} of ${formatBytes(this.narBytesTotal)} NAR read (${rate}/s)`
        : '';
    this.logger.info(
      `${this.phase}: ${this.pathsDone} of ${this.pathsTotal} done${nar}, ${formatBytes(this.uploadedBytes)} stored so far`,
    );
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
