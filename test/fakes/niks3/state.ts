/**
 * The fake's "database" (spec §8), kept in memory and open for tests to seed and read:
 * committed objects with their refs and deletion marks, closures (GC roots), pending
 * closures (upload sessions) with their objects, multipart registrations, pins, and
 * the in-memory GC task. The operations here are the SQL of niks3 in plain code.
 */
import type { GcPhase } from './faults.js';

/** A committed cache object (`objects` table). */
export interface CommittedObject {
  key: string;
  /** Direct references, as object keys. */
  refs: Set<string>;
  /** From `nar_size`, when known. */
  size: number | undefined;
  /** When it was last marked for deletion (ms), or undefined when live. */
  deletedAt: number | undefined;
  /** When it was first marked; the grace period counts from here. */
  firstDeletedAt: number | undefined;
}

/** A GC root (`closures` table): a top-level narinfo key and its last commit time. */
export interface ClosureRow {
  key: string;
  updatedAt: number;
}

/** An object of an upload session (`pending_objects`). */
export interface PendingObject {
  key: string;
  type: string;
  refs: string[];
  size: number | undefined;
}

/** An upload session (`pending_closures`). */
export interface PendingClosure {
  id: number;
  closureKey: string;
  startedAt: number;
  objects: Map<string, PendingObject>;
}

/** A registered multipart upload (`multipart_uploads`): one per NAR per session. */
export interface MultipartRegistration {
  uploadId: string;
  key: string;
  sessionId: number;
}

/** A pin (`pins`). */
export interface PinRow {
  name: string;
  narinfoKey: string;
  storePath: string;
  createdAt: number;
  updatedAt: number;
}

/** GC statistics (field names as on the wire). */
export interface GcStats {
  failed_uploads_deleted: number;
  old_closures_deleted: number;
  objects_marked_for_deletion: number;
  objects_deleted_after_grace_period: number;
  objects_failed_to_delete: number;
}

/** The GC task status (spec §3.9), times in ms. */
export interface GcTask {
  state: 'running' | 'succeeded' | 'failed';
  phase: GcPhase | undefined;
  params: { older_than: string; failed_uploads_older_than: string; force: boolean };
  stats: GcStats;
  error: string | undefined;
  startedAt: number;
  updatedAt: number;
  finishedAt: number | undefined;
}

export function emptyGcStats(): GcStats {
  return {
    failed_uploads_deleted: 0,
    old_closures_deleted: 0,
    objects_marked_for_deletion: 0,
    objects_deleted_after_grace_period: 0,
    objects_failed_to_delete: 0,
  };
}

/** What cleaning up expired sessions leaves for the caller to do in S3. */
export interface PendingCleanup {
  sessionsDeleted: number;
  /** Multipart uploads of the deleted sessions, to abort. */
  uploadsToAbort: MultipartRegistration[];
}

export class Niks3State {
  /** Committed objects by key. */
  readonly objects = new Map<string, CommittedObject>();
  /** Closures (GC roots) by narinfo key. */
  readonly closures = new Map<string, ClosureRow>();
  /** Upload sessions by id. */
  readonly pending = new Map<number, PendingClosure>();
  /** Multipart registrations by upload id. */
  readonly multipart = new Map<string, MultipartRegistration>();
  /** Pins by name. */
  readonly pins = new Map<string, PinRow>();
  /** The GC task of this "process": the latest one, or undefined before the first run. */
  readonly gc: { task: GcTask | undefined; runs: number } = { task: undefined, runs: 0 };
  /** Next session id (a Postgres bigint sequence starting at 1). */
  nextSessionId = 1;

  /** Live: committed and never marked for deletion since its last revive. */
  isLive(key: string): boolean {
    const o = this.objects.get(key);
    return o !== undefined && o.firstDeletedAt === undefined && o.deletedAt === undefined;
  }

  /** Tombstoned: committed but marked for deletion. */
  isTombstoned(key: string): boolean {
    const o = this.objects.get(key);
    return o !== undefined && (o.firstDeletedAt !== undefined || o.deletedAt !== undefined);
  }

  /** Creates an empty session. */
  createSession(closureKey: string, now: number): PendingClosure {
    const session: PendingClosure = {
      id: this.nextSessionId++,
      closureKey,
      startedAt: now,
      objects: new Map(),
    };
    this.pending.set(session.id, session);
    return session;
  }

  /** Deletes a session together with its pending objects and multipart registrations. */
  deleteSession(id: number): MultipartRegistration[] {
    this.pending.delete(id);
    const regs = [...this.multipart.values()].filter((m) => m.sessionId === id);
    for (const m of regs) this.multipart.delete(m.uploadId);
    return regs;
  }

  /** The registration of (upload id, key), if any. */
  registration(uploadId: string, key: string): MultipartRegistration | undefined {
    const r = this.multipart.get(uploadId);
    return r !== undefined && r.key === key ? r : undefined;
  }

  /** True if some session has this key pending. */
  isPendingAnywhere(key: string): boolean {
    for (const s of this.pending.values()) if (s.objects.has(key)) return true;
    return false;
  }

  /**
   * The atomic commit of `POST /api/pending_closures/{id}/complete` (spec §3.3).
   * Returns false when the session does not exist.
   */
  commit(id: number, now: number): boolean {
    const session = this.pending.get(id);
    if (session === undefined) return false;
    this.closures.set(session.closureKey, { key: session.closureKey, updatedAt: now });
    for (const p of session.objects.values()) {
      const existing = this.objects.get(p.key);
      if (existing === undefined) {
        this.objects.set(p.key, {
          key: p.key,
          refs: new Set(p.refs),
          size: p.size,
          deletedAt: undefined,
          firstDeletedAt: undefined,
        });
      } else {
        for (const r of p.refs) existing.refs.add(r);
        existing.size ??= p.size;
        existing.deletedAt = undefined;
        existing.firstDeletedAt = undefined;
      }
    }
    this.deleteSession(id);
    return true;
  }

  /** Every committed object key reachable from `roots` through refs (roots included when they are objects). */
  reachableFrom(roots: Iterable<string>): Set<string> {
    const seen = new Set<string>();
    const stack = [...roots].filter((k) => this.objects.has(k));
    while (stack.length > 0) {
      const key = stack.pop()!;
      if (seen.has(key)) continue;
      seen.add(key);
      for (const r of this.objects.get(key)?.refs ?? [])
        if (this.objects.has(r) && !seen.has(r)) stack.push(r);
    }
    return seen;
  }

  /**
   * GC phase 1 and `DELETE /api/pending_closures` (spec §6.2): sessions started before
   * `cutoff` are deleted; their pending keys that are not committed objects are inserted
   * as objects marked for deletion since `cutoff`.
   */
  cleanupPendingBefore(cutoff: number): PendingCleanup {
    const uploadsToAbort: MultipartRegistration[] = [];
    let sessionsDeleted = 0;
    for (const session of [...this.pending.values()]) {
      if (!(session.startedAt < cutoff)) continue;
      for (const p of session.objects.values()) {
        if (this.objects.has(p.key)) continue;
        this.objects.set(p.key, {
          key: p.key,
          refs: new Set(p.refs),
          size: p.size,
          deletedAt: cutoff,
          firstDeletedAt: cutoff,
        });
      }
      uploadsToAbort.push(...this.deleteSession(session.id));
      sessionsDeleted++;
    }
    return { sessionsDeleted, uploadsToAbort };
  }

  /** GC phase 2: drops closures not updated since `cutoff`, except pinned ones. */
  deleteOldClosures(cutoff: number): number {
    const pinned = new Set([...this.pins.values()].map((p) => p.narinfoKey));
    let n = 0;
    for (const c of [...this.closures.values()]) {
      if (c.updatedAt < cutoff && !pinned.has(c.key)) {
        this.closures.delete(c.key);
        n++;
      }
    }
    return n;
  }

  /** GC phase 3, mark: live objects unreachable from every closure and pending in no session. */
  markUnreachable(now: number): number {
    const reachable = this.reachableFrom(this.closures.keys());
    const pending = new Set<string>();
    for (const s of this.pending.values()) for (const k of s.objects.keys()) pending.add(k);
    let n = 0;
    for (const o of this.objects.values()) {
      if (o.deletedAt !== undefined) continue;
      if (reachable.has(o.key) || pending.has(o.key)) continue;
      o.deletedAt = now;
      o.firstDeletedAt ??= now;
      n++;
    }
    return n;
  }

  /** GC phase 3, sweep candidates: marked objects whose first mark is at or before `cutoff`. */
  sweepable(cutoff: number): string[] {
    const keys: string[] = [];
    for (const o of this.objects.values()) {
      if (o.deletedAt !== undefined && o.firstDeletedAt !== undefined && o.firstDeletedAt <= cutoff)
        keys.push(o.key);
    }
    return keys.sort();
  }

  /** Live committed objects and the sum of their known sizes (`/api/cache-stats`). */
  stats(): { objects: number; logicalBytes: number } {
    let objects = 0;
    let logicalBytes = 0;
    for (const o of this.objects.values()) {
      if (o.deletedAt !== undefined || o.firstDeletedAt !== undefined) continue;
      objects++;
      logicalBytes += o.size ?? 0;
    }
    return { objects, logicalBytes };
  }
}
