/**
 * Garbage collection (spec §3.8–§3.10, §6): the asynchronous GC task with its
 * phases and statistics, `GET /api/gc/status`, and `GET /api/closures/{key}`.
 */
import type { Niks3Context } from './context.js';
import type { GcPhase } from './faults.js';
import { GoDurationError, goRfc3339, nsToWholeSeconds, parseGoDuration } from './go-duration.js';
import { drainBody, httpError, writeJson } from './http-io.js';
import { emptyGcStats, type GcTask } from './state.js';
import { abortUploads, type RouteHandler } from './uploads.js';

const PHASES: readonly GcPhase[] = [
  'cleanup_pending_uploads',
  'cleanup_old_closures',
  'cleanup_orphan_objects',
  'vacuum_tables',
];

/** Sweep batch size (spec §6.2). */
const SWEEP_BATCH = 1000;

/** The task as JSON (`GCTaskStatus`; optional fields omitted when empty). */
export function gcTaskJson(task: GcTask): Record<string, unknown> {
  const out: Record<string, unknown> = { state: task.state };
  if (task.phase !== undefined) out['phase'] = task.phase;
  out['params'] = { ...task.params };
  out['stats'] = { ...task.stats };
  if (task.error !== undefined && task.error !== '') out['error'] = task.error;
  out['started_at'] = goRfc3339(task.startedAt);
  out['updated_at'] = goRfc3339(task.updatedAt);
  if (task.finishedAt !== undefined) out['finished_at'] = goRfc3339(task.finishedAt);
  return out;
}

function parseNonNegative(
  raw: string,
  name: 'age' | 'failed-uploads-older-than',
): { ns: bigint } | { error: string } {
  try {
    const ns = parseGoDuration(raw);
    if (ns < 0n) {
      return { error: `${name === 'age' ? 'older-than' : name} must not be negative` };
    }
    return { ns };
  } catch (err) {
    if (err instanceof GoDurationError) return { error: `failed to parse ${name}: ${err.message}` };
    throw err;
  }
}

/** `DELETE /api/closures?older-than=…&failed-uploads-older-than=…&force=true` */
export const startGc: RouteHandler = async (ctx, req, res, _params, url) => {
  await drainBody(req);
  const q = url.searchParams;
  const olderRaw = q.get('older-than') ?? '';
  if (olderRaw === '') return httpError(res, 'missing age', 400);
  const older = parseNonNegative(olderRaw, 'age');
  if ('error' in older) return httpError(res, older.error, 400);
  const failedRaw = q.get('failed-uploads-older-than') || q.get('pending-older-than') || '6h';
  const failed = parseNonNegative(failedRaw, 'failed-uploads-older-than');
  if ('error' in failed) return httpError(res, failed.error, 400);
  const params = {
    older_than: olderRaw,
    failed_uploads_older_than: failedRaw,
    force: q.get('force') === 'true',
  };

  const running = ctx.state.gc.task;
  if (running?.state === 'running') {
    const same =
      running.params.older_than === params.older_than &&
      running.params.failed_uploads_older_than === params.failed_uploads_older_than &&
      running.params.force === params.force;
    if (same) return writeJson(res, 202, gcTaskJson(running));
    return writeJson(res, 409, {
      error: 'a different garbage collection is already running',
      active_task: gcTaskJson(running),
    });
  }

  const now = ctx.now();
  const task: GcTask = {
    state: 'running',
    phase: undefined,
    params,
    stats: emptyGcStats(),
    error: undefined,
    startedAt: now,
    updatedAt: now,
    finishedAt: undefined,
  };
  ctx.state.gc.task = task;
  ctx.state.gc.runs++;
  const snapshot = gcTaskJson(task);
  setImmediate(() => {
    void runGc(ctx, task, nsToWholeSeconds(older.ns), nsToWholeSeconds(failed.ns));
  });
  writeJson(res, 202, snapshot);
};

/** `GET /api/gc/status` */
export const gcStatus: RouteHandler = async (ctx, req, res) => {
  await drainBody(req);
  const task = ctx.state.gc.task;
  if (task === undefined) return httpError(res, 'no garbage collection has run yet', 404);
  writeJson(res, 200, gcTaskJson(task));
};

/** `GET /api/closures/{key}` */
export const getClosure: RouteHandler = async (ctx, req, res, params) => {
  await drainBody(req);
  const key = params['key'] ?? '';
  const closure = ctx.state.closures.get(key);
  if (closure === undefined) return httpError(res, 'closure not found', 404);
  writeJson(res, 200, {
    id: key,
    updated_at: goRfc3339(closure.updatedAt),
    objects: [...ctx.state.reachableFrom([key])].sort(),
  });
};

/** Runs one GC task in the background (it keeps going if the client goes away). */
async function runGc(ctx: Niks3Context, task: GcTask, olderSec: number, failedSec: number): Promise<void> {
  const { state } = ctx;
  const touch = (): void => {
    task.updatedAt = ctx.now();
  };
  try {
    for (const phase of PHASES) {
      await ctx.faults.gcGate();
      if (ctx.closed) return;
      task.phase = phase;
      touch();
      const failure = ctx.faults.takeGcFailure(phase);
      if (failure !== undefined) throw new Error(failure.error);
      switch (phase) {
        case 'cleanup_pending_uploads': {
          const cleanup = state.cleanupPendingBefore(ctx.now() - failedSec * 1000);
          await abortUploads(ctx, cleanup.uploadsToAbort);
          task.stats.failed_uploads_deleted = cleanup.sessionsDeleted;
          break;
        }
        case 'cleanup_old_closures':
          task.stats.old_closures_deleted = state.deleteOldClosures(ctx.now() - olderSec * 1000);
          break;
        case 'cleanup_orphan_objects': {
          const now = ctx.now();
          task.stats.objects_marked_for_deletion = state.markUnreachable(now);
          const grace = task.params.force ? 0 : failedSec * 1000;
          const keys = state.sweepable(now - grace);
          for (let i = 0; i < keys.length; i += SWEEP_BATCH) {
            for (const key of keys.slice(i, i + SWEEP_BATCH)) {
              if (ctx.closed) return;
              try {
                await ctx.store.delete(key); // a missing object counts as deleted
                state.objects.delete(key);
                task.stats.objects_deleted_after_grace_period++;
              } catch (err) {
                ctx.log(`gc: failed to delete ${key}: ${(err as Error).message}`);
                const o = state.objects.get(key);
                if (o !== undefined) {
                  o.deletedAt = undefined;
                  o.firstDeletedAt = undefined;
                }
                task.stats.objects_failed_to_delete++;
              }
            }
            touch();
          }
          break;
        }
        case 'vacuum_tables':
          break;
      }
      touch();
      if (ctx.config.gcPhaseDelayMs > 0) await new Promise((r) => setTimeout(r, ctx.config.gcPhaseDelayMs));
    }
    task.state = 'succeeded';
    task.phase = undefined;
  } catch (err) {
    task.state = 'failed';
    task.error = (err as Error).message;
  }
  touch();
  task.finishedAt = task.updatedAt;
}
