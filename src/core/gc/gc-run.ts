/**
 * One garbage collection, as the niks3 CLI runs it (shared/spec/niks3.md §3.9, §3.10, §6.3), with
 * what the CLI lacks: a GC already running with other parameters (409) is followed to its end
 * instead of failing, the wait is bounded, progress is logged at least every 10 s, and the outcome
 * keeps the phases seen, the stats and the timings for the report.
 */
import { RemoteError } from '../errors.js';
import { sleep as realSleep, type Sleep } from '../http.js';
import type { Logger } from '../logger.js';
import type { GcParams, GcStats, GcTaskStatus } from '../niks3/api-types.js';

/** The GC phases in the order the server runs them (§6.2). */
export const GC_PHASES = [
  'cleanup_pending_uploads',
  'cleanup_old_closures',
  'cleanup_orphan_objects',
  'vacuum_tables',
] as const;

export type GcPhaseName = (typeof GC_PHASES)[number];

/** The five counters of a GC run, always all present (missing ones read as 0). */
export const GC_STAT_FIELDS = [
  'failed_uploads_deleted',
  'old_closures_deleted',
  'objects_marked_for_deletion',
  'objects_deleted_after_grace_period',
  'objects_failed_to_delete',
] as const satisfies ReadonlyArray<keyof GcStats>;

/** What runGc needs of the niks3 client (Niks3Client has these). */
export interface GcApi {
  startGc(
    params: GcParams,
  ): Promise<
    | { readonly kind: 'started'; readonly task: GcTaskStatus }
    | { readonly kind: 'finished'; readonly stats: Partial<GcStats> }
    | { readonly kind: 'conflict'; readonly error: string; readonly activeTask: GcTaskStatus | undefined }
  >;
  gcStatus(): Promise<GcTaskStatus | undefined>;
}

export interface GcRunOptions {
  readonly api: GcApi;
  readonly params: Required<GcParams>;
  readonly logger: Logger;
  /** Poll until the run ends (true), or return right after starting it. */
  readonly wait: boolean;
  /** Upper bound of the wait, from the start request (ms). */
  readonly timeoutMs: number;
  readonly sleep?: Sleep;
  readonly now?: () => number;
  /** First pause between two status polls; it doubles up to `maxPollIntervalMs`. */
  readonly pollIntervalMs?: number;
  /** The niks3 CLI polls every 2 s. */
  readonly maxPollIntervalMs?: number;
  /** A progress line at least this often while waiting (ms). */
  readonly progressEveryMs?: number;
}

export type GcFinalState = 'succeeded' | 'failed' | 'running';

export interface GcOutcome {
  /** `succeeded`/`failed`, or `running` when not waited for or the wait timed out. */
  readonly state: GcFinalState;
  /** True when the run was started by someone else (a 409) and we followed it. */
  readonly followed: boolean;
  /** The parameters of the run that was followed to the end (ours, or the other run's). */
  readonly params: {
    readonly olderThan: string;
    readonly failedUploadsOlderThan: string;
    readonly force: boolean;
  };
  readonly stats: GcStats;
  /** The phase the run is in (running) or failed in (failed); undefined after success. */
  readonly phase: string | undefined;
  /** Phases in the order we saw them (quick phases may be missed between two polls). */
  readonly phasesSeen: readonly string[];
  readonly error: string | undefined;
  /** The run's duration: from the server's times when it reported them, else as we measured it. */
  readonly durationMs: number;
  /** True when the wait ended at `timeoutMs` with the run still going. */
  readonly timedOut: boolean;
  /** True when a v1.4.0 server ran the GC synchronously (no phases, no status). */
  readonly synchronous: boolean;
  readonly startedAt: string | undefined;
  readonly finishedAt: string | undefined;
}

/** All five counters, 0 where the server sent none. */
export function fullStats(stats: Partial<GcStats> | undefined): GcStats {
  const result = {} as Record<keyof GcStats, number>;
  for (const field of GC_STAT_FIELDS) {
    const value = stats?.[field];
    result[field] = typeof value === 'number' && Number.isFinite(value) ? value : 0;
  }
  return result;
}

function paramsOf(task: GcTaskStatus | undefined, fallback: Required<GcParams>): GcOutcome['params'] {
  return {
    olderThan: task?.params?.older_than ?? fallback.olderThan,
    failedUploadsOlderThan: task?.params?.failed_uploads_older_than ?? fallback.failedUploadsOlderThan,
    force: task?.params?.force ?? fallback.force,
  };
}

function serverDurationMs(task: GcTaskStatus): number | undefined {
  const start = task.started_at ? Date.parse(task.started_at) : NaN;
  const end = task.finished_at
    ? Date.parse(task.finished_at)
    : task.updated_at
      ? Date.parse(task.updated_at)
      : NaN;
  return Number.isFinite(start) && Number.isFinite(end) && end >= start ? end - start : undefined;
}

function describeParams(params: GcOutcome['params']): string {
  return `older-than ${params.olderThan}, failed-uploads-older-than ${params.failedUploadsOlderThan}${params.force ? ', force' : ''}`;
}

/**
 * Starts a GC (or joins the one running) and, with `wait`, polls it to its end. A failed run is
 * returned, not thrown (the caller reports it first); a lost run (the server restarted and forgot
 * it) and an unreachable server are thrown as RemoteError.
 */
export async function runGc(options: GcRunOptions): Promise<GcOutcome> {
  const { api, logger, params } = options;
  const now = options.now ?? Date.now;
  const doSleep = options.sleep ?? realSleep;
  const started = now();
  const phasesSeen: string[] = [];
  const seePhase = (phase: string | undefined): void => {
    if (phase && phasesSeen[phasesSeen.length - 1] !== phase) {
      phasesSeen.push(phase);
      logger.info(`phase: ${phase}`);
    }
  };

  logger.info(`starting GC: ${describeParams(paramsOf(undefined, params))}`);
  const start = await api.startGc(params);
  if (start.kind === 'finished') {
    logger.info('the server ran the GC synchronously (niks3 older than v1.5.0)');
    return {
      state: 'succeeded',
      followed: false,
      params: paramsOf(undefined, params),
      stats: fullStats(start.stats),
      phase: undefined,
      phasesSeen,
      error: undefined,
      durationMs: now() - started,
      timedOut: false,
      synchronous: true,
      startedAt: undefined,
      finishedAt: undefined,
    };
  }

  let followed = false;
  let task: GcTaskStatus;
  if (start.kind === 'conflict') {
    followed = true;
    const other = start.activeTask;
    logger.warn(
      `niks3: ${start.error}${other?.phase ? ` (phase: ${other.phase})` : ''}; following that run to its end instead of starting another` +
        (other ? ` (it runs with ${describeParams(paramsOf(other, params))})` : ''),
    );
    task = other ?? { state: 'running' };
  } else {
    task = start.task;
    logger.info('the server accepted the GC (202); it runs in the background');
  }
  seePhase(task.phase);

  const outcome = (final: GcTaskStatus, timedOut: boolean): GcOutcome => ({
    state: final.state,
    followed,
    params: paramsOf(final, params),
    stats: fullStats(final.stats),
    phase: final.phase,
    phasesSeen,
    error: final.error,
    durationMs: serverDurationMs(final) ?? now() - started,
    timedOut,
    synchronous: false,
    startedAt: final.started_at,
    finishedAt: final.finished_at,
  });

  if (!options.wait || task.state !== 'running') return outcome(task, false);

  const deadline = started + options.timeoutMs;
  const maxInterval = options.maxPollIntervalMs ?? 2_000;
  const progressEvery = options.progressEveryMs ?? 10_000;
  let interval = Math.min(options.pollIntervalMs ?? 250, maxInterval);
  let lastProgress = now();
  let pollFailures = 0;
  for (;;) {
    const left = deadline - now();
    if (left <= 0) {
      logger.warn(
        `the GC is still running after ${Math.round((now() - started) / 1000)} s (phase: ${task.phase ?? 'starting'}); it goes on on the server`,
      );
      return outcome(task, true);
    }
    await doSleep(Math.min(interval, left));
    interval = Math.min(interval * 2, maxInterval);
    let status: GcTaskStatus | undefined;
    try {
      status = await api.gcStatus();
      pollFailures = 0;
    } catch (error) {
      // The GC runs on regardless; a status poll that fails (after the client's own retries) is
      // tried again until the deadline, so one bad minute does not lose a long run.
      if (!(error instanceof RemoteError) || !error.transient) throw error;
      pollFailures += 1;
      if (pollFailures === 1 || now() - lastProgress >= progressEvery) {
        lastProgress = now();
        logger.warn(`could not read the GC status (${error.message}); trying again`);
      }
      continue;
    }
    if (status === undefined) {
      throw new RemoteError({
        remote: 'niks3',
        operation: 'GET /api/gc/status',
        status: 404,
        detail: 'the server no longer knows the GC it was running',
        hint: 'niks3 keeps the GC status in memory, so the server restarted (a deploy, a crash or Fly auto-stop) and the run was cut short; run gc again',
      });
    }
    task = status;
    seePhase(task.phase);
    if (task.state !== 'running') {
      const seconds = Math.round((serverDurationMs(task) ?? now() - started) / 1000);
      if (task.state === 'succeeded') logger.info(`the GC succeeded in ${seconds} s`);
      else
        logger.error(
          `the GC failed in phase ${task.phase ?? '(unknown)'}: ${task.error ?? '(no error text)'}`,
        );
      return outcome(task, false);
    }
    if (now() - lastProgress >= progressEvery) {
      lastProgress = now();
      const stats = fullStats(task.stats);
      logger.info(
        `still running: phase ${task.phase ?? 'starting'}, ${Math.round((now() - started) / 1000)} s so far ` +
          `(closures dropped ${stats.old_closures_deleted}, objects marked ${stats.objects_marked_for_deletion}, deleted ${stats.objects_deleted_after_grace_period})`,
      );
    }
  }
}

/**
 * Where each phase stands, derived from the final task (phases run strictly in order): before the
 * current or failed phase everything is done; after success all are.
 */
export function phaseProgress(
  outcome: GcOutcome,
): Array<{ phase: GcPhaseName; status: 'done' | 'running' | 'failed' | 'not run' | 'unknown' }> {
  if (outcome.synchronous)
    return GC_PHASES.map((phase) => ({ phase, status: outcome.state === 'succeeded' ? 'done' : 'unknown' }));
  const at = outcome.phase ? GC_PHASES.indexOf(outcome.phase as GcPhaseName) : -1;
  return GC_PHASES.map((phase, index) => {
    if (outcome.state === 'succeeded') return { phase, status: 'done' };
    // No phase: a run that has not begun its first phase, or that failed before it (the lock).
    if (at === -1)
      return { phase, status: outcome.state === 'running' && index === 0 ? 'running' : 'not run' };
    if (index < at) return { phase, status: 'done' };
    if (index === at) return { phase, status: outcome.state === 'failed' ? 'failed' : 'running' };
    return { phase, status: 'not run' };
  });
}
