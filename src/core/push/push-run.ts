/**
 * Runs a PushPlan against niks3 (shared/spec/niks3.md §5.4–§5.7):
 *
 *  1. one upload session per planned root; the server says what is missing;
 *  2. NARs (streamed, verified, zstd, single PUT or multipart), listings and build logs, many at once,
 *     largest first, within a memory budget;
 *  3. narinfos signed by the server and PUT **last**, only for paths whose NAR is stored and whose
 *     pushed references all made it (so every narinfo in the cache has a substitutable closure);
 *  4. `complete` for each session whose objects were all stored. A session with a failure is left
 *     open: completing it would register objects that are not in the bucket; its fully stored
 *     sub-closures are then registered through sessions of their own (v1.7.0 keeps nothing of an
 *     open session).
 *
 * A path that fails does not stop the others; a transient failure that outlived every retry (the
 * server or the storage stopped answering) stops new work, and the result says what was and was
 * not pushed.
 */
import { availableParallelism } from 'node:os';
import { RemoteError, errorMessage } from '../errors.js';
import type { Sleep } from '../http.js';
import type { Logger } from '../logger.js';
import type { PendingClosure, PendingObject, SignEntry } from '../niks3/api-types.js';
import type { Niks3Client } from '../niks3/niks3-client.js';
import type { PresignedUploader } from '../niks3/presigned-upload.js';
import { narInfoFromPathInfo, renderNarInfo } from '../nix/narinfo.js';
import { readBuildLog } from './build-log.js';
import { ByteBudget } from './byte-budget.js';
import {
  NarMismatchError,
  putSmall,
  uploadNarAndListing,
  type NarUploadResult,
  type UploadContext,
} from './nar-upload.js';
import { completeSessions, registerStored, type CompleteDeps } from './push-complete.js';
import { PushLedger, realisationKeys, type MergedPending, type PushRunResult } from './push-ledger.js';
import { PushProgress } from './push-progress.js';
import { MAX_SESSION_PATHS, pathObjects, type PlannedPath, type PushPlan } from './push-plan.js';
import { SESSION_CONCURRENCY, openSessions, signEntry, type OpenedSession } from './push-sessions.js';
import { WorkerPool } from './worker-pool.js';
import { zstdOnce } from '../compress/zstd-once.js';

export interface PushRunDeps {
  readonly client: Niks3Client;
  readonly uploader: PresignedUploader;
  readonly logger: Logger;
  readonly concurrency: number;
  readonly compressionLevel: number;
  /** Bytes of upload buffers held at once (default: min(concurrency × part size, 48 MiB), at least two parts). */
  readonly memoryBudget?: number;
  /** Part size override (tests). */
  readonly partSize?: number;
  readonly progressIntervalMs?: number;
  /** NARs serialised and compressed at once (default: cores + 2). */
  readonly cpuSlots?: number;
  readonly signal?: AbortSignal;
  /** Send `verify_s3`: the server checks that what its database calls stored is in the bucket. */
  readonly verifyS3?: boolean;
  /** Whether an object is stored (after a 404 on its upload); default the server's `HEAD /api/objects`. */
  readonly objectStored?: (key: string) => Promise<boolean>;
  /** Sessions already opened for exactly this plan (by `openSessions`); else the run opens them. */
  readonly opened?: readonly OpenedSession[];
  /** Pauses (before the halves of a session whose creation got no answer). */
  readonly sleep?: Sleep;
  /** Largest session registered at once by `registerStored` (default MAX_SESSION_PATHS). */
  readonly maxSessionPaths?: number;
}

const SIGN_CHUNK = 500;

export async function runPush(plan: PushPlan, deps: PushRunDeps): Promise<PushRunResult> {
  return new PushRun(plan, deps).run();
}

class PushRun {
  private readonly plan: PushPlan;
  private readonly deps: PushRunDeps;
  private readonly logger: Logger;
  private readonly ledger: PushLedger;
  private readonly pool = new WorkerPool();
  private readonly narinfoPool = new WorkerPool();
  private readonly progress: PushProgress;
  private readonly abort = new AbortController();
  private uploadedBytes = 0;
  private logsUploaded = 0;
  private transientFailures = 0;
  private currentPool: WorkerPool = this.pool;

  constructor(plan: PushPlan, deps: PushRunDeps) {
    this.plan = plan;
    this.deps = deps;
    this.ledger = new PushLedger(plan);
    this.logger = deps.logger;
    this.progress = new PushProgress(
      deps.logger,
      deps.progressIntervalMs !== undefined ? { intervalMs: deps.progressIntervalMs } : {},
    );
    deps.signal?.addEventListener('abort', () => this.abort.abort(deps.signal?.reason), { once: true });
  }

  async run(): Promise<PushRunResult> {
    try {
      if (this.deps.opened) this.ledger.adopt(this.deps.opened);
      else await this.logger.group('Upload sessions', () => this.openSessions());
      const work = this.pathsWithWork();
      const cachedCount = this.plan.push.size - work.length;
      this.logger.info(
        `Uploading ${work.length} path${work.length === 1 ? '' : 's'} to ${new URL(this.deps.client.serverUrl).host} (${cachedCount} already cached).`,
      );
      if (work.length > 0) await this.logger.group('Uploads', () => this.uploadAll(work));
      const writable = this.writableNarinfos();
      if (writable.length > 0) await this.logger.group('Narinfos', () => this.signAndWriteNarinfos(writable));
      await this.logger.group('Complete', () => completeSessions(this.ledger, this.completeDeps()));
      if (this.ledger.sessionOutcomes.some((outcome) => !outcome.completed))
        await this.logger.group('Register stored paths', () =>
          registerStored(this.ledger, this.completeDeps()),
        );
    } finally {
      this.progress.stop();
    }
    return this.result();
  }

  // ---- 1. sessions ----------------------------------------------------------------------------

  private async openSessions(): Promise<void> {
    this.ledger.adopt(
      await openSessions(
        this.plan,
        this.deps.client,
        this.logger,
        this.deps.verifyS3 === true,
        ...(this.deps.sleep ? [this.deps.sleep] : []),
      ),
    );
  }

  /** Paths with something to upload, largest NAR first (keeps the tail of the pool short). */
  private pathsWithWork(): PlannedPath[] {
    const work: PlannedPath[] = [];
    for (const planned of this.plan.push.values()) {
      const keys = [
        planned.narinfoKey,
        planned.narKey,
        planned.listingKey,
        planned.buildLog?.key,
        ...realisationKeys(planned),
      ];
      if (keys.some((key) => key !== undefined && this.ledger.merged.has(key))) work.push(planned);
    }
    return work.sort((a, b) => b.info.narSize - a.info.narSize);
  }

  // ---- 2. uploads -----------------------------------------------------------------------------

  private uploadContext(): UploadContext {
    const partSize = this.deps.partSize ?? 10 * 1024 * 1024;
    const budget = new ByteBudget(
      this.deps.memoryBudget ??
        Math.max(2 * partSize, Math.min(this.deps.concurrency * partSize, 48 * 1024 * 1024)),
    );
    const cpuSlots = new ByteBudget(
      this.deps.cpuSlots ?? Math.max(2, Math.min(this.deps.concurrency, availableParallelism() + 2)),
    );
    return {
      client: this.deps.client,
      uploader: this.deps.uploader,
      budget,
      cpuSlots,
      compressionLevel: this.deps.compressionLevel,
      signal: this.abort.signal,
      ...(this.deps.partSize ? { partSize: this.deps.partSize } : {}),
      onNarBytes: (bytes) => (this.progress.narBytesRead += bytes),
      onUploaded: (bytes) => {
        this.uploadedBytes += bytes;
        this.progress.uploadedBytes += bytes;
      },
      refreshUrl: (planned, key) => this.refreshUrl(planned, key),
      ...(this.deps.objectStored ? { objectStored: this.deps.objectStored } : {}),
    };
  }

  private async uploadAll(work: PlannedPath[]): Promise<void> {
    const ctx = this.uploadContext();
    const narBytes = work.reduce(
      (sum, p) => sum + (this.ledger.merged.has(p.narKey) ? p.info.narSize : 0),
      0,
    );
    // Build logs go last, each its own task (read and, for `.bz2`, decompressed when its turn comes).
    const logs = work.filter((planned) => planned.buildLog && this.ledger.merged.has(planned.buildLog.key));
    const tasks: Array<{ planned: PlannedPath; log: boolean }> = [
      ...work.map((planned) => ({ planned, log: false })),
      ...logs.map((planned) => ({ planned, log: true })),
    ];
    this.progress.start('uploading', work.length, narBytes);
    // Paths with identical contents share one NAR object: the first uploads it, the others wait.
    const narJobs = new Map<string, Promise<NarUploadResult>>();
    try {
      const outcomes = await this.pool.run(tasks, this.deps.concurrency, async ({ planned, log }) => {
        if (log) {
          await this.uploadLog(planned, ctx);
          return;
        }
        try {
          await this.uploadPath(planned, ctx, narJobs);
        } finally {
          this.progress.pathsDone += 1;
        }
      });
      for (const outcome of outcomes) {
        if (outcome.item.log) continue;
        if (outcome.skipped) this.ledger.notAttempted.add(outcome.item.planned.path);
        else if (outcome.error !== undefined) this.recordFailure(outcome.item.planned, outcome.error);
      }
    } finally {
      this.progress.stop();
    }
  }

  private async uploadPath(
    planned: PlannedPath,
    ctx: UploadContext,
    narJobs: Map<string, Promise<NarUploadResult>>,
  ): Promise<void> {
    const nar = this.ledger.pendingObject(planned.narKey);
    const listing = this.ledger.pendingObject(planned.listingKey);
    if (nar || listing) await this.uploadNarOf(planned, nar, listing, ctx, narJobs);
    // Realisations before the narinfo, like every other object of the path; a failure fails the path.
    for (const realisation of planned.realisations ?? []) {
      const target = this.ledger.pendingObject(realisation.key);
      if (!target || this.ledger.satisfied.has(realisation.key)) continue;
      await putSmall(planned, target, zstdOnce(realisation.body, this.deps.compressionLevel), ctx);
      this.ledger.satisfied.add(realisation.key);
    }
  }

  private async uploadNarOf(
    planned: PlannedPath,
    nar: PendingObject | undefined,
    listing: PendingObject | undefined,
    ctx: UploadContext,
    narJobs: Map<string, Promise<NarUploadResult>>,
  ): Promise<void> {
    let result: NarUploadResult;
    const running = narJobs.get(planned.narKey);
    if (nar && !running) {
      const job = uploadNarAndListing(planned, nar, listing, ctx);
      narJobs.set(planned.narKey, job);
      result = await job;
    } else {
      if (running) await running;
      result = await uploadNarAndListing(planned, undefined, listing, ctx);
    }
    if (nar) this.ledger.satisfied.add(planned.narKey);
    if (result.compressedBytes > 0) this.ledger.compressed.set(planned.path, result.compressedBytes);
    if (listing) (result.listingStored ? this.ledger.satisfied : this.ledger.waived).add(planned.listingKey);
  }

  /** A build log is best effort: a failure only warns, and its key is waived. */
  private async uploadLog(planned: PlannedPath, ctx: UploadContext): Promise<void> {
    const log = this.ledger.pendingObject(planned.buildLog?.key);
    if (!log || !planned.buildLog || this.ledger.satisfied.has(log.key) || this.ledger.waived.has(log.key))
      return;
    try {
      const text = await readBuildLog(planned.buildLog);
      await putSmall(planned, log, zstdOnce(text, this.deps.compressionLevel), ctx);
      this.ledger.satisfied.add(log.key);
      this.logsUploaded += 1;
    } catch (error) {
      this.ledger.waived.add(log.key);
      this.logger.warn(`the build log of ${planned.path} was not uploaded: ${errorMessage(error)}`);
    }
  }

  private recordFailure(planned: PlannedPath, error: unknown): void {
    const message = error instanceof NarMismatchError ? error.message : errorMessage(error);
    this.ledger.failures.set(planned.path, message);
    this.logger.error(`${planned.path}: ${message}`);
    // A failure that outlived every retry: on a network error (nothing answers), or the third such
    // failure, start no new uploads; the server or the storage is down.
    if (error instanceof RemoteError && error.transient) {
      this.transientFailures += 1;
      if (error.status === undefined || this.transientFailures >= 3) this.currentPool.stop(error.message);
    }
  }

  /** A fresh presigned URL for one object after a 403 (a new session just for that path). */
  private async refreshUrl(planned: PlannedPath, key: string): Promise<string | undefined> {
    this.logger.info(`the upload URL of ${key} was refused (expired?); asking niks3 for a new one`);
    const closure = await this.deps.client.createPendingClosure({
      closure: planned.narinfoKey,
      objects: pathObjects(planned),
    });
    const fresh = closure.pending.get(key);
    if (!fresh) return undefined;
    if (!fresh.presignedUrl) throw new Error(`internal: a fresh URL for ${key} came as a multipart upload`);
    return fresh.presignedUrl;
  }

  // ---- 3. narinfos ----------------------------------------------------------------------------

  private writableNarinfos(): PlannedPath[] {
    const memo = new Map<string, boolean>();
    const writable: PlannedPath[] = [];
    for (const planned of this.plan.push.values()) {
      if (!this.ledger.merged.has(planned.narinfoKey)) continue;
      if (this.ledger.closureStored(planned.path, memo)) writable.push(planned);
    }
    return writable;
  }

  private async signAndWriteNarinfos(writable: PlannedPath[]): Promise<void> {
    // Sign each narinfo in the session whose URL we use for it (the key is pending there).
    const bySession = new Map<number, PlannedPath[]>();
    for (const planned of writable) {
      const session = (this.ledger.merged.get(planned.narinfoKey) as MergedPending).session;
      bySession.set(session, [...(bySession.get(session) ?? []), planned]);
    }
    const signatures = new Map<string, string[]>();
    const requests: Array<{ id: string; chunk: PlannedPath[] }> = [];
    for (const [index, paths] of bySession) {
      const { closure } = this.ledger.opened[index] as { closure: PendingClosure };
      for (let i = 0; i < paths.length; i += SIGN_CHUNK)
        requests.push({ id: closure.id, chunk: paths.slice(i, i + SIGN_CHUNK) });
    }
    await new WorkerPool().run(requests, SESSION_CONCURRENCY, async ({ id, chunk }) => {
      if (this.ledger.apiDown) {
        for (const planned of chunk) this.ledger.notAttempted.add(planned.path);
        return;
      }
      const entries: Record<string, SignEntry> = {};
      for (const planned of chunk) entries[planned.narinfoKey] = signEntry(planned);
      try {
        const answer = await this.deps.client.sign(id, entries);
        for (const planned of chunk) signatures.set(planned.path, answer.get(planned.narinfoKey) ?? []);
      } catch (error) {
        for (const planned of chunk)
          this.ledger.failures.set(planned.path, `signing failed: ${errorMessage(error)}`);
        if (error instanceof RemoteError && error.transient) this.ledger.apiDown ??= error.message;
      }
    });
    const toWrite = writable.filter((planned) => signatures.has(planned.path));
    if (toWrite.length > 0 && toWrite.every((planned) => (signatures.get(planned.path) ?? []).length === 0)) {
      const warning =
        'niks3 returned no signatures (the server has no signing key): the narinfos are unsigned, and Nix with signature checking on will refuse them.';
      this.ledger.warnings.push(warning);
      this.logger.warn(warning);
    }

    const ctx = this.uploadContext();
    this.progress.start('writing narinfos', toWrite.length, 0);
    this.currentPool = this.narinfoPool;
    // References first, in waves: a narinfo is written only after the narinfos of the paths it
    // references (those of this run) are stored, so a cancelled job, or a narinfo that could not be
    // signed or written, never leaves a narinfo whose closure Nix cannot substitute. A path whose
    // reference never got its narinfo is withheld (result() names the reference).
    const ofThisRun = new Set(writable.map((planned) => planned.path));
    const refsStored = (planned: PlannedPath): boolean =>
      planned.info.references.every(
        (ref) =>
          ref === planned.path ||
          !ofThisRun.has(ref) ||
          this.ledger.satisfied.has((this.plan.push.get(ref) as PlannedPath).narinfoKey),
      );
    let remaining = toWrite;
    for (;;) {
      const wave = remaining.filter(refsStored);
      if (wave.length === 0) break;
      remaining = remaining.filter((planned) => !wave.includes(planned));
      const outcomes = await this.narinfoPool.run(wave, this.deps.concurrency, async (planned) => {
        try {
          const target = this.ledger.pendingObject(planned.narinfoKey) as PendingObject;
          const text = renderNarInfo(narInfoFromPathInfo(planned.info, signatures.get(planned.path) ?? []));
          await putSmall(planned, target, zstdOnce(text, 3), ctx);
          this.ledger.satisfied.add(planned.narinfoKey);
        } finally {
          this.progress.pathsDone += 1;
        }
      });
      for (const outcome of outcomes) {
        if (outcome.skipped) this.ledger.notAttempted.add(outcome.item.path);
        else if (outcome.error !== undefined) this.recordFailure(outcome.item, outcome.error);
      }
    }
    if (this.narinfoPool.isStopped)
      for (const planned of remaining) this.ledger.notAttempted.add(planned.path);
    this.progress.stop();
  }

  // ---- 4. complete ----------------------------------------------------------------------------

  private completeDeps(): CompleteDeps {
    return {
      client: this.deps.client,
      logger: this.logger,
      maxSessionPaths: this.deps.maxSessionPaths ?? MAX_SESSION_PATHS,
    };
  }

  // ---- result ---------------------------------------------------------------------------------

  private result(): PushRunResult {
    const paths = this.ledger.pathOutcomes();
    const stoppedBecause = this.pool.reason ?? this.narinfoPool.reason ?? this.ledger.apiDown;
    return {
      paths,
      sessions: this.ledger.sessionOutcomes,
      uploadedBytes: this.uploadedBytes,
      logsUploaded: this.logsUploaded,
      warnings: this.ledger.warnings,
      ...(stoppedBecause ? { stoppedBecause } : {}),
    };
  }
}
