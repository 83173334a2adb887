/**
 * What a push run knows as it goes: the upload sessions it opened and the keys they hold pending,
 * which of those keys are stored, waived, failed or not attempted, and from that the outcome of
 * each path (uploaded, cached, failed, withheld, not attempted) that the run reports.
 */
import type { PendingObject } from '../niks3/api-types.js';
import type { PlannedPath, PushPlan } from './push-plan.js';
import type { OpenedSession } from './push-sessions.js';

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

export interface MergedPending {
  readonly object: PendingObject;
  /** Index of the (last) session that has this key pending. */
  readonly session: number;
}

export function realisationKeys(planned: PlannedPath): string[] {
  return (planned.realisations ?? []).map((realisation) => realisation.key);
}

export class PushLedger {
  readonly plan: PushPlan;
  readonly opened: OpenedSession[] = [];
  readonly merged = new Map<string, MergedPending>();
  /** Keys that are in the bucket now (stored by us, or found stored by another session). */
  readonly satisfied = new Set<string>();
  /** Pending keys we chose not to upload (a listing of a superseded NAR, a log that failed). */
  readonly waived = new Set<string>();
  readonly failures = new Map<string, string>();
  readonly notAttempted = new Set<string>();
  readonly compressed = new Map<string, number>();
  readonly warnings: string[] = [];
  readonly sessionOutcomes: SessionOutcome[] = [];
  /** A transient API failure that outlived every retry: no more session requests are made. */
  apiDown: string | undefined;

  constructor(plan: PushPlan) {
    this.plan = plan;
  }

  adopt(opened: readonly OpenedSession[]): void {
    for (const [index, session] of opened.entries()) {
      this.opened.push(session);
      for (const [key, object] of session.closure.pending) this.merged.set(key, { object, session: index });
    }
  }

  pendingObject(key: string | undefined): PendingObject | undefined {
    return key === undefined ? undefined : this.merged.get(key)?.object;
  }

  /** Whether a path and every pushed path it references are stored (memoised, cycle-safe). */
  closureStored(path: string, memo: Map<string, boolean>): boolean {
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

  /** The outcome of every planned path. */
  pathOutcomes(): Map<string, PathOutcome> {
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
    return paths;
  }
}
