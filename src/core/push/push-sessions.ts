/**
 * The upload sessions of a push plan (shared/spec/niks3.md §3.1, §5.4): opening them (what the
 * server says is missing), which planned paths our cache lacks, and the sign request of a path.
 */
import type { Logger } from '../logger.js';
import type { PendingClosure, SignEntry } from '../niks3/api-types.js';
import type { Niks3Client } from '../niks3/niks3-client.js';
import { formatNarHash } from '../nix/nar-hash.js';
import { sessionObjects, type PlannedPath, type PushPlan, type SessionPlan } from './push-plan.js';
import { WorkerPool } from './worker-pool.js';

/** Sessions created, signed or completed at once. */
export const SESSION_CONCURRENCY = 8;

/** One upload session of the plan and the server's answer to it (what is missing). */
export interface OpenedSession {
  readonly plan: SessionPlan;
  readonly closure: PendingClosure;
}

/**
 * Opens the plan's upload sessions, a few at a time (a push of many roots is many sessions). Merged
 * later in plan order, so a later session's URL wins for a key pending in several, as in the Go client.
 */
export async function openSessions(
  plan: PushPlan,
  client: Niks3Client,
  logger: Logger,
  verifyS3 = false,
): Promise<OpenedSession[]> {
  const created = new Array<PendingClosure | undefined>(plan.sessions.length);
  const indexes = plan.sessions.map((_, index) => index);
  const outcomes = await new WorkerPool().run(indexes, SESSION_CONCURRENCY, async (index) => {
    const session = plan.sessions[index] as SessionPlan;
    created[index] = await client.createPendingClosure({
      closure: session.closureKey,
      objects: sessionObjects(session, plan),
      ...(verifyS3 ? { verify_s3: true } : {}),
    });
  });
  const failed = outcomes.find((outcome) => outcome.error !== undefined);
  if (failed) throw failed.error;
  return plan.sessions.map((session, index) => {
    const closure = created[index] as PendingClosure;
    logger.info(`session ${closure.id} for ${session.root}: ${closure.pending.size} object(s) to upload`);
    return { plan: session, closure };
  });
}

/** The planned paths that have an object pending in some opened session (our cache lacks them). */
export function pathsLacking(plan: PushPlan, opened: readonly OpenedSession[]): PlannedPath[] {
  const pending = new Set<string>();
  for (const session of opened) for (const key of session.closure.pending.keys()) pending.add(key);
  return [...plan.push.values()].filter((planned) =>
    [planned.narinfoKey, planned.narKey, planned.listingKey].some((key) => pending.has(key)),
  );
}

/** The sign request entry of one path (§3.2, §5.6). */
export function signEntry(planned: PlannedPath): SignEntry {
  const { info } = planned;
  return {
    store_path: info.path,
    url: planned.narKey,
    compression: 'zstd',
    nar_hash: formatNarHash(info.narHash),
    nar_size: info.narSize,
    references: [...info.references],
    ...(info.deriver ? { deriver: info.deriver } : {}),
    ...(info.signatures.length > 0 ? { signatures: [...info.signatures] } : {}),
    ...(info.ca ? { ca: info.ca } : {}),
  };
}
