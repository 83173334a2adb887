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
import { BuildLogReader } from './build-log.js';
import { ByteBudget } from './byte-budget.js';
import {
  compressSmall,
  NarMismatchError,
  putSmall,
  uploadNarAndListing,
  type NarUploadResult,
  type UploadContext,
} from './nar-upload.js';
import { PushProgress } from './push-progress.js';
import {
  MAX_SESSION_PATHS,
  pathObjects,
  reachablePushed,
  sessionObjects,
  splitSession,
  type PlannedPath,
  type PushPlan,
  type SessionPlan,
} from './push-plan.js';
import { SESSION_CONCURRENCY, openSessions, signEntry, type OpenedSession } from './push-sessions.js';
import { WorkerPool } from './worker-pool.js';

export type PathStatus = 'uploaded' | 'cached' | 'failed' | 'withheld' | 'not-attempted';

export interface PathOutcome {
  readonly path: string;
  readonly status: PathStatus;
  readonly narSize: number;
  /** Compressed NAR bytes we stored for it (0 when the NAR was already there). */
  readonly compressedBytes: number;
  readonly reason?: string;
}

export interface SessionOutcome {
  readonly root: string;
  readonly id: string | undefined;
  readonly completed: boolean;
  readonly derived: boolean;
  readonly reason?: string;
}

export interface PushRunResult {
  readonly paths: ReadonlyMap<string, PathOutcome>;
  readonly sessions: readonly SessionOutcome[];
  /** Every byte stored (NARs, listings, narinfos, logs). */
  readonly uploadedBytes: number;
  readonly logsUploaded: number;
  readonly warnings: readonly string[];
  /** Why the run stopped early, when it did. */
  readonly stoppedBecause?: string;
}

export interface PushRunDeps {
  readonly client: Niks3Client;
  readonly uploader: PresignedUploader;
  readonly logger: Logger;
  readonly concurrency: number;
  readonly compressionLevel: number;
  /** Bytes of upload buffers held at once (default: min(concurrency × part size, 64 MiB), at least two parts). */
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

interface MergedPending {
  readonly object: PendingObject;
  /** Index of the (last) session that has this key pending. */
  readonly session: number;
}

const SIGN_CHUNK = 500;

function realisationKeys(planned: PlannedPath): string[] {
  return (planned.realisations ?? []).map((realisation) => realisation.key);
}
/** Sessions created or completed at once. */

export async function runPush(plan: PushPlan, deps: PushRunDeps): Promise<PushRunResult> {
  return new PushRun(plan, deps).run();
}

class PushRun {
  private readonly plan: PushPlan;
  private readonly deps: PushRunDeps;
  private readonly logger: Logger;
  private readonly opened: OpenedSession[] = [];
  private readonly merged = new Map<string, MergedPending>();
  /** Keys that are in the bucket now (stored by us, or found stored by another session). */
  private readonly satisfied = new Set<string>();
  /** Pending keys we chose not to upload (a listing of a superseded NAR, a log that failed). */
  private readonly waived = new Set<string>();
  private readonly failures = new Map<string, string>();
  private readonly notAttempted = new Set<string>();
  private readonly compressed = new Map<string, number>();
  private readonly warnings: string[] = [];
  private readonly pool = new WorkerPool();
  private readonly narinfoPool = new WorkerPool();
  private readonly progress: PushProgress;
  private readonly abort = new AbortController();
  private uploadedBytes = 0;
  private logsUploaded = 0;
  private apiDown: string | undefined;
  private transientFailures = 0;
  private currentPool: WorkerPool = this.pool;

  constructor(plan: PushPlan, deps: PushRunDeps) {
    this.plan = plan;
    this.deps = deps;
    this.logger = deps.logger;
    this.progress = new PushProgress(
      deps.logger,
      deps.progressIntervalMs !== undefined ? { intervalMs: deps.progressIntervalMs } : {},
    );
    deps.signal?.addEventListener('abort', () => this.abort.abort(deps.signal?.reason), { once: true });
  }

  async run(): Promise<PushRunResult> {
    try {
      if (this.deps.opened) this.adopt(this.deps.opened);
      else await this.logger.group('Upload sessions', () => this.openSessions());
      const work = this.pathsWithWork();
      const cachedCount = this.plan.push.size - work.length;
      this.logger.info(
        `Uploading ${work.length} path${work.length === 1 ? '' : 's'} to ${new URL(this.deps.client.serverUrl).host} (${cachedCount} already cached).`,
      );
      if (work.length > 0) await this.logger.group('Uploads', () => this.uploadAll(work));
      const writable = this.writableNarinfos();
      if (writable.length > 0) await this.logger.group('Narinfos', () => this.signAndWriteNarinfos(writable));
      await this.logger.group('Complete', () => this.completeSessions());
      if (this.sessionOutcomes.some((outcome) => !outcome.completed))
        await this.logger.group('Register stored paths', () => this.registerStored());
    } finally {
      this.progress.stop();
    }
    return this.result();
  }

  // ---- 1. sessions ----------------------------------------------------------------------------

  private async openSessions(): Promise<void> {
    this.adopt(
      await openSessions(
        this.plan,
        this.deps.client,
        this.logger,
        this.deps.verifyS3 === true,
        ...(this.deps.sleep ? [this.deps.sleep] : []),
      ),
    );
  }

  private adopt(opened: readonly OpenedSession[]): void {
    for (const [index, session] of opened.entries()) {
      this.opened.push(session);
      for (const [key, object] of session.closure.pending) this.merged.set(key, { object, session: index });
    }
  }

  private pendingObject(key: string | undefined): PendingObject | undefined {
    return key === undefined ? undefined : this.merged.get(key)?.object;
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
      if (keys.some((key) => key !== undefined && this.merged.has(key))) work.push(planned);
    }
    return work.sort((a, b) => b.info.narSize - a.info.narSize);
  }

  // ---- 2. uploads -----------------------------------------------------------------------------

  private uploadContext(): UploadContext {
    const partSize = this.deps.partSize ?? 10 * 1024 * 1024;
    const budget = new ByteBudget(
      this.deps.memoryBudget ??
        Math.max(2 * partSize, Math.min(this.deps.concurrency * partSize, 64 * 1024 * 1024)),
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
    const narBytes = work.reduce((sum, p) => sum + (this.merged.has(p.narKey) ? p.info.narSize : 0), 0);
    // Build logs go last, each its own task; their decompression starts now, in one child process.
    const logs = work.filter((planned) => planned.buildLog && this.merged.has(planned.buildLog.key));
    const logReader = new BuildLogReader(
      logs.map((planned) => planned.buildLog as NonNullable<PlannedPath['buildLog']>),
    );
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
          await this.uploadLog(planned, logReader, ctx);
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
        if (outcome.skipped) this.notAttempted.add(outcome.item.planned.path);
        else if (outcome.error !== undefined) this.recordFailure(outcome.item.planned, outcome.error);
      }
    } finally {
      this.progress.stop();
      await logReader.close();
    }
  }

  private async uploadPath(
    planned: PlannedPath,
    ctx: UploadContext,
    narJobs: Map<string, Promise<NarUploadResult>>,
  ): Promise<void> {
    const nar = this.pendingObject(planned.narKey);
    const listing = this.pendingObject(planned.listingKey);
    if (nar || listing) await this.uploadNarOf(planned, nar, listing, ctx, narJobs);
    // Realisations before the narinfo, like every other object of the path; a failure fails the path.
    for (const realisation of planned.realisations ?? []) {
      const target = this.pendingObject(realisation.key);
      if (!target || this.satisfied.has(realisation.key)) continue;
      await putSmall(planned, target, compressSmall(realisation.body, this.deps.compressionLevel), ctx);
      this.satisfied.add(realisation.key);
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
    if (nar) this.satisfied.add(planned.narKey);
    if (result.compressedBytes > 0) this.compressed.set(planned.path, result.compressedBytes);
    if (listing) (result.listingStored ? this.satisfied : this.waived).add(planned.listingKey);
  }

  /** A build log is best effort: a failure only warns, and its key is waived. */
  private async uploadLog(planned: PlannedPath, reader: BuildLogReader, ctx: UploadContext): Promise<void> {
    const log = this.pendingObject(planned.buildLog?.key);
    if (!log || !planned.buildLog || this.satisfied.has(log.key) || this.waived.has(log.key)) return;
    try {
      const text = await reader.read(planned.buildLog);
      await putSmall(planned, log, compressSmall(text, this.deps.compressionLevel), ctx);
      this.satisfied.add(log.key);
      this.logsUploaded += 1;
    } catch (error) {
      this.waived.add(log.key);
      this.logger.warn(`the build log of ${planned.path} was not uploaded: ${errorMessage(error)}`);
    }
  }

  private recordFailure(planned: PlannedPath, error: unknown): void {
    const message = error instanceof NarMismatchError ? error.message : errorMessage(error);
    this.failures.set(planned.path, message);
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

  /** Whether a path and every pushed path it references are stored (memoised, cycle-safe). */
  private closureStored(path: string, memo: Map<string, boolean>): boolean {
    const known = memo.get(path);
    if (known !== undefined) return known;
    memo.set(path, true); // self-references
    const planned = this.plan.push.get(path);
    let ok = true;
    if (planned) {
      if (this.failures.has(path) || this.notAttempted.has(path)) ok = false;
      for (const key of [planned.narKey, planned.listingKey, ...realisationKeys(planned)]) {
        if (this.merged.has(key) && !this.satisfied.has(key) && !this.waived.has(key)) ok = false;
      }
      for (const ref of planned.info.references)
        if (ok && ref !== path && !this.closureStored(ref, memo)) ok = false;
    }
    memo.set(path, ok);
    return ok;
  }

  private writableNarinfos(): PlannedPath[] {
    const memo = new Map<string, boolean>();
    const writable: PlannedPath[] = [];
    for (const planned of this.plan.push.values()) {
      if (!this.merged.has(planned.narinfoKey)) continue;
      if (this.closureStored(planned.path, memo)) writable.push(planned);
    }
    return writable;
  }

  private async signAndWriteNarinfos(writable: PlannedPath[]): Promise<void> {
    // Sign each narinfo in the session whose URL we use for it (the key is pending there).
    const bySession = new Map<number, PlannedPath[]>();
    for (const planned of writable) {
      const session = (this.merged.get(planned.narinfoKey) as MergedPending).session;
      bySession.set(session, [...(bySession.get(session) ?? []), planned]);
    }
    const signatures = new Map<string, string[]>();
    const requests: Array<{ id: string; chunk: PlannedPath[] }> = [];
    for (const [index, paths] of bySession) {
      const { closure } = this.opened[index] as { closure: PendingClosure };
      for (let i = 0; i < paths.length; i += SIGN_CHUNK)
        requests.push({ id: closure.id, chunk: paths.slice(i, i + SIGN_CHUNK) });
    }
    await new WorkerPool().run(requests, SESSION_CONCURRENCY, async ({ id, chunk }) => {
      if (this.apiDown) {
        for (const planned of chunk) this.notAttempted.add(planned.path);
        return;
      }
      const entries: Record<string, SignEntry> = {};
      for (const planned of chunk) entries[planned.narinfoKey] = signEntry(planned);
      try {
        const answer = await this.deps.client.sign(id, entries);
        for (const planned of chunk) signatures.set(planned.path, answer.get(planned.narinfoKey) ?? []);
      } catch (error) {
        for (const planned of chunk)
          this.failures.set(planned.path, `signing failed: ${errorMessage(error)}`);
        if (error instanceof RemoteError && error.transient) this.apiDown ??= error.message;
      }
    });
    const toWrite = writable.filter((planned) => signatures.has(planned.path));
    if (toWrite.length > 0 && toWrite.every((planned) => (signatures.get(planned.path) ?? []).length === 0)) {
      const warning =
        'niks3 returned no signatures (the server has no signing key): the narinfos are unsigned, and Nix with signature checking on will refuse them.';
      this.warnings.push(warning);
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
          this.satisfied.has((this.plan.push.get(ref) as PlannedPath).narinfoKey),
      );
    let remaining = toWrite;
    for (;;) {
      const wave = remaining.filter(refsStored);
      if (wave.length === 0) break;
      remaining = remaining.filter((planned) => !wave.includes(planned));
      const outcomes = await this.narinfoPool.run(wave, this.deps.concurrency, async (planned) => {
        try {
          const target = this.pendingObject(planned.narinfoKey) as PendingObject;
          const text = renderNarInfo(narInfoFromPathInfo(planned.info, signatures.get(planned.path) ?? []));
          await putSmall(planned, target, compressSmall(text), ctx);
          this.satisfied.add(planned.narinfoKey);
        } finally {
          this.progress.pathsDone += 1;
        }
      });
      for (const outcome of outcomes) {
        if (outcome.skipped) this.notAttempted.add(outcome.item.path);
        else if (outcome.error !== undefined) this.recordFailure(outcome.item, outcome.error);
      }
    }
    if (this.narinfoPool.isStopped) for (const planned of remaining) this.notAttempted.add(planned.path);
    this.progress.stop();
  }

  // ---- 4. complete ----------------------------------------------------------------------------

  private sessionProblem(index: number): string | undefined {
    const { closure } = this.opened[index] as { closure: PendingClosure };
    const missing = [...closure.pending.keys()].filter(
      (key) => !this.satisfied.has(key) && !this.waived.has(key),
    );
    if (missing.length === 0) return undefined;
    return `${missing.length} of its objects were not stored (e.g. ${missing[0] ?? ''})`;
  }

  private readonly sessionOutcomes: SessionOutcome[] = [];

  /**
   * Completes the sessions whose objects were all stored. The parts of a split session come after
   * the share that holds their root: a part completed without it would register objects no GC root
   * reaches. A part whose root's share stays open stays open too (`registerStored` takes it up).
   */
  private async completeSessions(): Promise<void> {
    const outcomes = new Array<SessionOutcome>(this.opened.length);
    const indexes = this.opened.map((_, index) => index);
    const isPart = (index: number): boolean => (this.opened[index] as OpenedSession).plan.part === true;
    await this.completeWave(
      indexes.filter((index) => !isPart(index)),
      outcomes,
    );
    const holderDone = new Set(
      indexes
        .filter((index) => !isPart(index) && outcomes[index]?.completed)
        .map((index) => (this.opened[index] as OpenedSession).plan.closureKey),
    );
    const parts = indexes.filter(isPart);
    for (const index of parts) {
      const { plan, closure } = this.opened[index] as OpenedSession;
      if (holderDone.has(plan.closureKey)) continue;
      const reason = `a part of the session of ${plan.root}, which was not completed`;
      outcomes[index] = { root: plan.root, id: closure.id, completed: false, derived: true, reason };
      this.logger.info(`session ${closure.id} is left open: ${reason}`);
    }
    await this.completeWave(
      parts.filter((index) => holderDone.has((this.opened[index] as OpenedSession).plan.closureKey)),
      outcomes,
    );
    this.sessionOutcomes.push(...outcomes);
  }

  private async completeWave(indexes: readonly number[], outcomes: SessionOutcome[]): Promise<void> {
    await new WorkerPool().run([...indexes], SESSION_CONCURRENCY, async (index) => {
      const { plan, closure } = this.opened[index] as { plan: SessionPlan; closure: PendingClosure };
      const problem = this.sessionProblem(index);
      if (problem || this.apiDown) {
        const reason = problem ?? `not attempted: ${this.apiDown ?? ''}`;
        outcomes[index] = {
          root: plan.root,
          id: closure.id,
          completed: false,
          derived: plan.derived,
          reason,
        };
        this.logger.info(`session ${closure.id} for ${plan.root} is left open: ${reason}`);
        return;
      }
      try {
        await this.deps.client.complete(closure.id);
        outcomes[index] = { root: plan.root, id: closure.id, completed: true, derived: plan.derived };
      } catch (error) {
        const reason = errorMessage(error);
        outcomes[index] = {
          root: plan.root,
          id: closure.id,
          completed: false,
          derived: plan.derived,
          reason,
        };
        this.logger.error(`completing session ${closure.id} for ${plan.root} failed: ${reason}`);
        if (error instanceof RemoteError && error.transient) this.apiDown ??= error.message;
      }
    });
  }

  /**
   * niks3 v1.7.0 registers nothing of a session that stays open: its GC deletes those objects after
   * `failed-uploads-older-than`, although their narinfos are served. So each fully stored
   * sub-closure of an open session gets a session of its own (its topmost stored paths as roots),
   * completed at once: everything in it is in the bucket already, so nothing is uploaded. What
   * cannot be registered is reported as stored but not registered.
   */
  private async registerStored(): Promise<void> {
    const registered = new Set<string>();
    for (const [index, outcome] of this.sessionOutcomes.entries())
      if (outcome.completed)
        for (const member of (this.opened[index] as { plan: SessionPlan }).plan.members)
          registered.add(member);
    const memo = new Map<string, boolean>();
    const stored = (path: string): boolean => {
      const planned = this.plan.push.get(path) as PlannedPath;
      // Narinfos written by this run (cached paths are registered already).
      return (
        this.merged.has(planned.narinfoKey) &&
        this.satisfied.has(planned.narinfoKey) &&
        this.closureStored(path, memo)
      );
    };
    const tops = new Set<string>();
    for (const [index, outcome] of this.sessionOutcomes.entries()) {
      if (outcome.completed) continue;
      const members = (this.opened[index] as { plan: SessionPlan }).plan.members.filter(
        (member) => !registered.has(member) && stored(member),
      );
      const referenced = new Set<string>();
      for (const member of members)
        for (const ref of (this.plan.push.get(member) as PlannedPath).info.references)
          if (ref !== member) referenced.add(ref);
      for (const member of members) if (!referenced.has(member)) tops.add(member);
    }
    if (tops.size === 0) return;
    const unregistered: string[] = [];
    await new WorkerPool().run([...tops], SESSION_CONCURRENCY, async (top) => {
      const session: SessionPlan = {
        root: top,
        closureKey: (this.plan.push.get(top) as PlannedPath).narinfoKey,
        members: reachablePushed(top, this.plan.closure, this.plan.push),
        derived: true,
      };
      try {
        // The share holding the root first, then its parts (see completeSessions).
        const ids: string[] = [];
        for (const share of splitSession(session, this.plan.closure, this.maxSessionPaths())) {
          const closure = await this.deps.client.createPendingClosure({
            closure: share.closureKey,
            objects: sessionObjects(share, this.plan),
          });
          await this.deps.client.complete(closure.id);
          ids.push(closure.id);
        }
        this.sessionOutcomes.push({ root: top, id: ids.join(','), completed: true, derived: true });
        this.logger.info(
          `registered ${top} and what it references (session ${ids.join(', ')}): fully stored`,
        );
      } catch (error) {
        unregistered.push(top);
        this.logger.error(`registering ${top} failed: ${errorMessage(error)}`);
      }
    });
    if (unregistered.length > 0) {
      const warning = `${unregistered.length} fully stored path(s) are stored, not registered (their upload session stayed open), so niks3's GC deletes them after failed-uploads-older-than: ${unregistered.slice(0, 5).join(', ')}${unregistered.length > 5 ? ', …' : ''}; run the push again`;
      this.warnings.push(warning);
      this.logger.warn(warning);
    }
  }

  /** The largest share of a session (what the plan was split with). */
  private maxSessionPaths(): number {
    return this.deps.maxSessionPaths ?? MAX_SESSION_PATHS;
  }

  // ---- result ---------------------------------------------------------------------------------

  private result(): PushRunResult {
    const paths = new Map<string, PathOutcome>();
    const memo = new Map<string, boolean>();
    for (const planned of this.plan.push.values()) {
      const base = {
        path: planned.path,
        narSize: planned.info.narSize,
        compressedBytes: this.compressed.get(planned.path) ?? 0,
      };
      const failure = this.failures.get(planned.path);
      let outcome: PathOutcome;
      if (failure) outcome = { ...base, status: 'failed', reason: failure };
      else if (this.notAttempted.has(planned.path)) {
        outcome = { ...base, status: 'not-attempted', reason: 'not attempted (the push stopped early)' };
      } else if (!this.merged.has(planned.narinfoKey)) outcome = { ...base, status: 'cached' };
      else if (this.satisfied.has(planned.narinfoKey)) outcome = { ...base, status: 'uploaded' };
      else if (this.opened.length < this.plan.sessions.length)
        outcome = { ...base, status: 'not-attempted', reason: 'no upload session' };
      else {
        const blocker = planned.info.references.find(
          (ref) => ref !== planned.path && this.plan.push.has(ref) && !this.closureStored(ref, memo),
        );
        outcome = {
          ...base,
          status: 'withheld',
          reason: blocker ? `its reference ${blocker} was not pushed` : 'not all of its objects were stored',
        };
      }
      paths.set(planned.path, outcome);
    }
    const stoppedBecause = this.pool.reason ?? this.narinfoPool.reason ?? this.apiDown;
    return {
      paths,
      sessions: this.sessionOutcomes,
      uploadedBytes: this.uploadedBytes,
      logsUploaded: this.logsUploaded,
      warnings: this.warnings,
      ...(stoppedBecause ? { stoppedBecause } : {}),
    };
  }
}
