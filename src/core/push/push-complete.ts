/**
 * The end of a push run (shared/spec/niks3.md §5.7): `complete` for each session whose objects were
 * all stored, and for a session left open, a session of its own for each fully stored sub-closure,
 * so what is in the bucket is registered (v1.7.0 keeps nothing of an open session).
 */
import { RemoteError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { PendingClosure } from '../niks3/api-types.js';
import type { Niks3Client } from '../niks3/niks3-client.js';
import type { PushLedger, SessionOutcome } from './push-ledger.js';
import {
  reachablePushed,
  sessionObjects,
  splitSession,
  type PlannedPath,
  type SessionPlan,
} from './push-plan.js';
import { SESSION_CONCURRENCY, type OpenedSession } from './push-sessions.js';
import { WorkerPool } from './worker-pool.js';

export interface CompleteDeps {
  readonly client: Niks3Client;
  readonly logger: Logger;
  /** The largest share of a session (what the plan was split with). */
  readonly maxSessionPaths: number;
}

function sessionProblem(ledger: PushLedger, index: number): string | undefined {
  const { closure } = ledger.opened[index] as { closure: PendingClosure };
  const missing = [...closure.pending.keys()].filter(
    (key) => !ledger.satisfied.has(key) && !ledger.waived.has(key),
  );
  if (missing.length === 0) return undefined;
  return `${missing.length} of its objects were not stored (e.g. ${missing[0] ?? ''})`;
}

/**
 * Completes the sessions whose objects were all stored. The parts of a split session come after
 * the share that holds their root: a part completed without it would register objects no GC root
 * reaches. A part whose root's share stays open stays open too (`registerStored` takes it up).
 */
export async function completeSessions(ledger: PushLedger, deps: CompleteDeps): Promise<void> {
  const outcomes = new Array<SessionOutcome>(ledger.opened.length);
  const indexes = ledger.opened.map((_, index) => index);
  const isPart = (index: number): boolean => (ledger.opened[index] as OpenedSession).plan.part === true;
  await completeWave(
    ledger,
    deps,
    indexes.filter((index) => !isPart(index)),
    outcomes,
  );
  const holderDone = new Set(
    indexes
      .filter((index) => !isPart(index) && outcomes[index]?.completed)
      .map((index) => (ledger.opened[index] as OpenedSession).plan.closureKey),
  );
  const parts = indexes.filter(isPart);
  for (const index of parts) {
    const { plan, closure } = ledger.opened[index] as OpenedSession;
    if (holderDone.has(plan.closureKey)) continue;
    const reason = `a part of the session of ${plan.root}, which was not completed`;
    outcomes[index] = { root: plan.root, id: closure.id, completed: false, derived: true, reason };
    deps.logger.info(`session ${closure.id} is left open: ${reason}`);
  }
  await completeWave(
    ledger,
    deps,
    parts.filter((index) => holderDone.has((ledger.opened[index] as OpenedSession).plan.closureKey)),
    outcomes,
  );
  ledger.sessionOutcomes.push(...outcomes);
}

async function completeWave(
  ledger: PushLedger,
  deps: CompleteDeps,
  indexes: readonly number[],
  outcomes: SessionOutcome[],
): Promise<void> {
  await new WorkerPool().run([...indexes], SESSION_CONCURRENCY, async (index) => {
    const { plan, closure } = ledger.opened[index] as { plan: SessionPlan; closure: PendingClosure };
    const leftOpen = (reason: string): SessionOutcome => ({
      root: plan.root,
      id: closure.id,
      completed: false,
      derived: plan.derived,
      reason,
    });
    const problem = sessionProblem(ledger, index);
    if (problem || ledger.apiDown) {
      const reason = problem ?? `not attempted: ${ledger.apiDown ?? ''}`;
      outcomes[index] = leftOpen(reason);
      deps.logger.info(`session ${closure.id} for ${plan.root} is left open: ${reason}`);
      return;
    }
    try {
      await deps.client.complete(closure.id);
      outcomes[index] = { root: plan.root, id: closure.id, completed: true, derived: plan.derived };
    } catch (error) {
      const reason = errorMessage(error);
      outcomes[index] = leftOpen(reason);
      deps.logger.error(`completing session ${closure.id} for ${plan.root} failed: ${reason}`);
      if (error instanceof RemoteError && error.transient) ledger.apiDown ??= error.message;
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
export async function registerStored(ledger: PushLedger, deps: CompleteDeps): Promise<void> {
  const { plan } = ledger;
  const registered = new Set<string>();
  for (const [index, outcome] of ledger.sessionOutcomes.entries())
    if (outcome.completed)
      for (const member of (ledger.opened[index] as { plan: SessionPlan }).plan.members)
        registered.add(member);
  const memo = new Map<string, boolean>();
  const stored = (path: string): boolean => {
    const planned = plan.push.get(path) as PlannedPath;
    // Narinfos written by this run (cached paths are registered already).
    return (
      ledger.merged.has(planned.narinfoKey) &&
      ledger.satisfied.has(planned.narinfoKey) &&
      ledger.closureStored(path, memo)
    );
  };
  const tops = new Set<string>();
  for (const [index, outcome] of ledger.sessionOutcomes.entries()) {
    if (outcome.completed) continue;
    const members = (ledger.opened[index] as { plan: SessionPlan }).plan.members.filter(
      (member) => !registered.has(member) && stored(member),
    );
    const referenced = new Set<string>();
    for (const member of members)
      for (const ref of (plan.push.get(member) as PlannedPath).info.references)
        if (ref !== member) referenced.add(ref);
    for (const member of members) if (!referenced.has(member)) tops.add(member);
  }
  if (tops.size === 0) return;
  const unregistered: string[] = [];
  await new WorkerPool().run([...tops], SESSION_CONCURRENCY, async (top) => {
    const session: SessionPlan = {
      root: top,
      closureKey: (plan.push.get(top) as PlannedPath).narinfoKey,
      members: reachablePushed(top, plan.closure, plan.push),
      derived: true,
    };
    try {
      // The share holding the root first, then its parts (see completeSessions).
      const ids: string[] = [];
      for (const share of splitSession(session, plan.closure, deps.maxSessionPaths)) {
        const closure = await deps.client.createPendingClosure({
          closure: share.closureKey,
          objects: sessionObjects(share, plan),
        });
        await deps.client.complete(closure.id);
        ids.push(closure.id);
      }
      ledger.sessionOutcomes.push({ root: top, id: ids.join(','), completed: true, derived: true });
      deps.logger.info(`registered ${top} and what it references (session ${ids.join(', ')}): fully stored`);
    } catch (error) {
      unregistered.push(top);
      deps.logger.error(`registering ${top} failed: ${errorMessage(error)}`);
    }
  });
  if (unregistered.length > 0) {
    const warning = `${unregistered.length} fully stored path(s) are stored, not registered (their upload session stayed open), so niks3's GC deletes them after failed-uploads-older-than: ${unregistered.slice(0, 5).join(', ')}${unregistered.length > 5 ? ', …' : ''}; run the push again`;
    ledger.warnings.push(warning);
    deps.logger.warn(warning);
  }
}
