/**
 * The upload sessions of a push plan (shared/spec/niks3.md §3.1, §5.4): opening them (what the
 * server says is missing), which planned paths our cache lacks, and the sign request of a path.
 */
import { RemoteError, errorMessage } from '../errors.js';
import { sleep as realSleep, type Sleep } from '../http.js';
import type { Logger } from '../logger.js';
import type { PendingClosure, SignEntry } from '../niks3/api-types.js';
import type { Niks3Client } from '../niks3/niks3-client.js';
import { formatNarHash } from '../nix/nar-hash.js';
import {
  sessionObjects,
  splitSession,
  type PlannedPath,
  type PushPlan,
  type SessionPlan,
} from './push-plan.js';
import { WorkerPool } from './worker-pool.js';

/** Sessions created, signed or completed at once. */
export const SESSION_CONCURRENCY = 8;

/** One upload session of the plan and the server's answer to it (what is missing). */
export interface OpenedSession {
  readonly plan: SessionPlan;
  readonly closure: PendingClosure;
}

/** First pause before the halves of a session whose creation got no answer (doubles per split). */
export const SPLIT_BACKOFF_MS = 2_000;

/**
 * Opens the plan's upload sessions, a few at a time (a push of many roots is many sessions). Merged
 * later in plan order, so a later session's URL wins for a key pending in several, as in the Go client.
 *
 * A creation that gets no answer (niks3 took longer than its 60 s write timeout, or the connection
 * was cut) is not sent again as it is: the same request would be as slow and leave one more orphan
 * session each time. After a pause (the server may still be working on it), the session is split in
 * two (`splitSession`) and each half is created, down to one path, which is retried as any request.
 */
export async function openSessions(
  plan: PushPlan,
  client: Niks3Client,
  logger: Logger,
  verifyS3 = false,
  sleep: Sleep = realSleep,
): Promise<OpenedSession[]> {
  const open = async (session: SessionPlan, depth: number): Promise<OpenedSession[]> => {
    try {
      const closure = await client.createPendingClosure(
        {
          closure: session.closureKey,
          objects: sessionObjects(session, plan),
          ...(verifyS3 ? { verify_s3: true } : {}),
        },
        { retryWithoutAnswer: session.members.length <= 1 },
      );
      return [{ plan: session, closure }];
    } catch (error) {
      if (!gotNoAnswer(error) || session.members.length <= 1) throw error;
      const halves = splitSession(session, plan.closure, Math.ceil(session.members.length / 2));
      const pause = SPLIT_BACKOFF_MS * 2 ** depth;
      logger.warn(
        `creating the upload session for ${session.root} (${session.members.length} paths) got no answer (${errorMessage(error)}); ` +
          `its session, if the server made one, is left for the server's GC. In ${Math.round(pause / 1000)} s: ${halves.length} smaller sessions.`,
      );
      await sleep(pause);
      const opened: OpenedSession[] = [];
      for (const half of halves) opened.push(...(await open(half, depth + 1)));
      return opened;
    }
  };
  const created = new Array<OpenedSession[] | undefined>(plan.sessions.length);
  const indexes = plan.sessions.map((_, index) => index);
  const outcomes = await new WorkerPool().run(indexes, SESSION_CONCURRENCY, async (index) => {
    created[index] = await open(plan.sessions[index] as SessionPlan, 0);
  });
  const failed = outcomes.find((outcome) => outcome.error !== undefined);
  if (failed) throw failed.error;
  const opened = created.flatMap((sessions) => sessions ?? []);
  // One line per session with something to upload; the cached ones (all of a re-push) in one line.
  let cached = 0;
  for (const { plan: session, closure } of opened) {
    if (closure.pending.size === 0) cached++;
    else
      logger.info(
        `session ${closure.id} for ${session.root}${session.part ? ` (a part, ${session.members.length} paths)` : ''}: ${closure.pending.size} object(s) to upload`,
      );
  }
  if (cached > 0) logger.info(`${cached} session(s) with nothing to upload (all their objects are cached)`);
  return opened;
}

/** A request that got no answer at all: a timeout or a cut connection, not an HTTP status. */
function gotNoAnswer(error: unknown): boolean {
  return error instanceof RemoteError && error.status === undefined && error.transient;
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
