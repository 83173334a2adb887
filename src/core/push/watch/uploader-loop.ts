/**
 * The background uploader's loop (watch mode): takes the builds the post-build hook queued, pushes
 * each batch's closures as they arrive, and records what happened to every path. A batch that
 * fails (server down, token refused) is tried again with a growing pause; when the post step asks
 * it to stop, it pushes what is still queued, tries the failures once more, writes what it could
 * not push, and exits. It never touches the build: the hook only drops files.
 */
import { appendFile, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { execFile, type ExecFn } from '../../nix/nix-command.js';
import { parseQueueFile } from './hook-script.js';
import type { JobDir, UploaderDone, UploaderEvent } from './job-dir.js';
import { validPaths } from './store-scan.js';

export interface BatchOutcome {
  readonly path: string;
  readonly status: UploaderEvent['status'];
  readonly narSize: number;
  readonly reason?: string;
}

export interface BatchResult {
  readonly outcomes: readonly BatchOutcome[];
  readonly uploadedBytes: number;
}

/** Pushes the closures of `roots`; throws when nothing could be pushed at all. */
export type PushBatch = (roots: readonly string[], final: boolean) => Promise<BatchResult>;

export interface UploaderLoopOptions {
  readonly dir: JobDir;
  readonly pushBatch: PushBatch;
  readonly logger: Logger;
  readonly exec?: ExecFn;
  readonly pollMs?: number;
  readonly now?: () => number;
  /** Attempts of a failing root while the job builds (more in the drain). */
  readonly maxAttempts?: number;
  /** Gives up after this long without a stop file (the job is gone). */
  readonly maxLifetimeMs?: number;
}

interface Retry {
  readonly path: string;
  attempts: number;
  notBefore: number;
  reason: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function runUploaderLoop(options: UploaderLoopOptions): Promise<UploaderDone> {
  const { dir, logger } = options;
  const exec = options.exec ?? execFile;
  const now = options.now ?? Date.now;
  const pollMs = options.pollMs ?? 200;
  const maxAttempts = options.maxAttempts ?? 6;
  const started = now();
  const retries = new Map<string, Retry>();
  const handled = new Set<string>();
  let uploadedBytes = 0;

  const record = async (phase: UploaderEvent['phase'], outcomes: readonly BatchOutcome[]): Promise<void> => {
    const at = now();
    const lines = outcomes.map((o) => JSON.stringify({ at, phase, ...o } satisfies UploaderEvent)).join('\n');
    if (lines) await appendFile(dir.events, `${lines}\n`);
  };

  const takeQueue = async (): Promise<string[]> => {
    let names: string[];
    try {
      names = (await readdir(dir.queue)).filter((name) => !name.startsWith('.')).sort();
    } catch {
      return [];
    }
    const roots: string[] = [];
    for (const name of names) {
      const file = join(dir.queue, name);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        continue;
      }
      const { drv, outputs } = parseQueueFile(text);
      let paths = outputs;
      if (paths.length === 0 && drv) {
        // Nix 2.8.0 sets OUT_PATHS to '' (NixOS/nix#6446): the outputs come from the derivation.
        const query = await exec('nix-store', ['--query', '--outputs', drv]);
        paths = query.code === 0 ? query.stdout.split('\n').filter((p) => p.startsWith('/')) : [];
        if (paths.length > 0) paths = await validPaths(paths, exec).catch(() => paths);
      }
      logger.info(`build finished: ${drv ?? '(no derivation)'} -> ${paths.join(' ') || '(no outputs)'}`);
      for (const path of paths) if (!handled.has(path)) roots.push(path);
      await rm(file, { force: true });
    }
    return roots;
  };

  const push = async (
    roots: readonly string[],
    phase: UploaderEvent['phase'],
    final: boolean,
  ): Promise<void> => {
    if (roots.length === 0) return;
    logger.info(`pushing ${roots.length} build output(s)…`);
    try {
      const result = await options.pushBatch(roots, final);
      uploadedBytes += result.uploadedBytes;
      const failed = result.outcomes.filter((o) => o.status === 'failed');
      await record(
        phase,
        result.outcomes.filter((o) => o.status !== 'failed'),
      );
      for (const o of result.outcomes) {
        if (o.status === 'failed') continue;
        handled.add(o.path);
        retries.delete(o.path);
        logger.info(`${o.status}: ${o.path}${o.reason ? ` (${o.reason})` : ''}`);
      }
      // A root whose closure failed is retried as a whole.
      const failedRoots = roots.filter((root) => !handled.has(root) || failed.some((f) => f.path === root));
      for (const root of failedRoots) {
        const reason = failed.find((f) => f.path === root)?.reason ?? failed[0]?.reason ?? 'not pushed';
        schedule(root, reason, final);
      }
      if (failed.length > 0) await record(phase, failed);
    } catch (error) {
      const reason = errorMessage(error);
      logger.warn(`push of ${roots.length} build output(s) failed, will retry: ${reason}`);
      for (const root of roots) schedule(root, reason, final);
    }
  };

  const schedule = (root: string, reason: string, final: boolean): void => {
    const entry = retries.get(root) ?? { path: root, attempts: 0, notBefore: 0, reason };
    entry.attempts += 1;
    entry.reason = reason;
    entry.notBefore = now() + Math.min(30_000, 1_000 * 2 ** (entry.attempts - 1));
    if (final) entry.attempts = Number.MAX_SAFE_INTEGER;
    retries.set(root, entry);
  };

  const stopRequested = async (): Promise<boolean> =>
    stat(dir.stop).then(
      () => true,
      () => false,
    );

  logger.info(`uploader started (pid ${process.pid}), watching ${dir.queue}`);
  for (;;) {
    const stopping = await stopRequested();
    const phase = stopping ? 'drain' : 'build';
    const roots = await takeQueue();
    const due = [...retries.values()]
      .filter((r) =>
        stopping ? r.attempts !== Number.MAX_SAFE_INTEGER : r.notBefore <= now() && r.attempts < maxAttempts,
      )
      .map((r) => r.path);
    const batch = [...new Set([...roots, ...due])];
    if (stopping) {
      logger.info(`stop requested: draining ${batch.length} build output(s)`);
      await push(batch, phase, true);
      break;
    }
    if (batch.length > 0) await push(batch, phase, false);
    else await sleep(pollMs);
    const dirGone = await stat(dir.root).then(
      () => false,
      () => true,
    );
    if (dirGone) {
      logger.warn(`${dir.root} is gone (the job ended without a post step): exiting`);
      return {
        at: now(),
        failed: [...retries.values()].map((r) => ({ path: r.path, reason: r.reason })),
        uploadedBytes,
      };
    }
    if (options.maxLifetimeMs !== undefined && now() - started > options.maxLifetimeMs) {
      logger.warn('no post step asked to stop within the job time limit: exiting');
      break;
    }
  }
  const done: UploaderDone = {
    at: now(),
    failed: [...retries.values()].map((r) => ({ path: r.path, reason: r.reason })),
    uploadedBytes,
  };
  await writeFile(dir.done, JSON.stringify(done));
  logger.info(`uploader done: ${done.failed.length} build output(s) not pushed`);
  return done;
}
