/**
 * The verify step of a push: which roots are checked at the public URL (every root the run uploaded
 * something for, a random few of the cached ones), the check itself (`cache-verify`), and the
 * result after the roots whose NAR was missing were pushed again and checked a second time.
 */
import type { Logger } from '../logger.js';
import { verifyAtPublicUrl, type VerifyOptions, type VerifyResult } from './cache-verify.js';
import type { PathOutcome } from './push-ledger.js';
import type { PushPlan } from './push-plan.js';

/** At most this many roots of a run that uploaded nothing for them are verified (a random few). */
export const CACHED_ROOTS_VERIFIED = 8;

/**
 * The roots to check at the public URL: every root this run uploaded something for, and of the
 * roots that were cached already (the server answered that nothing was missing) a random few, so
 * a re-push of a large cached closure makes no requests per root beyond its session, while a
 * bucket that lost objects is still found within a few runs (`verify-s3` checks them all).
 */
export function rootsToVerify(
  plan: PushPlan,
  completed: readonly string[],
  outcomes: readonly PathOutcome[],
): string[] {
  const uploaded = new Set(outcomes.filter((o) => o.status === 'uploaded').map((o) => o.path));
  const members = new Map(plan.sessions.map((session) => [session.root, session.members]));
  const fresh = new Set<string>();
  const cached: string[] = [];
  for (const root of completed) {
    if ((members.get(root) ?? [root]).some((path) => uploaded.has(path))) fresh.add(root);
    else cached.push(root);
  }
  for (let i = cached.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [cached[i], cached[j]] = [cached[j] as string, cached[i] as string];
  }
  const sampled = new Set(cached.slice(0, CACHED_ROOTS_VERIFIED));
  return completed.filter((root) => fresh.has(root) || sampled.has(root));
}

export interface VerifyStepOptions extends Omit<VerifyOptions, 'cacheUrl' | 'narKeys'> {
  /** The public cache URL; without one nothing is checked, and a warning says so. */
  readonly cacheUrl: string | undefined;
  readonly logger: Logger;
  readonly warnings: string[];
  /** How many roots the run completed (those not in `toVerify` are counted as not checked). */
  readonly completed: number;
}

/** Checks `toVerify` at the public URL; undefined when there is no URL to check at. */
export async function verifyRoots(
  plan: PushPlan,
  toVerify: readonly string[],
  options: VerifyStepOptions,
): Promise<VerifyResult | undefined> {
  const { cacheUrl, logger, warnings, completed, ...check } = options;
  if (!cacheUrl) {
    const warning =
      'not verified: the server announces no public cache URL; set `cache-url` to check the push from the reader side.';
    warnings.push(warning);
    logger.warn(warning);
    return undefined;
  }
  return logger.group('Verify', async () => {
    const result = await verifyAtPublicUrl(toVerify, {
      ...check,
      cacheUrl,
      narKeys: new Map(
        toVerify.map((root) => [root, (plan.push.get(root) ?? plan.closure.get(root))?.narKey ?? '']),
      ),
    });
    const unchecked = completed - toVerify.length;
    logger.info(
      `${result.verified.length} of ${toVerify.length} root narinfo(s) verified at ${cacheUrl}` +
        (unchecked > 0
          ? ` (${unchecked} other root(s) were cached already and are not checked this time; verify-s3 has the server check them all)`
          : ''),
    );
    return result;
  });
}

/** The first check, with its missing NARs replaced by the second check of those roots. */
export function mergeReverified(first: VerifyResult, again: VerifyResult | undefined): VerifyResult {
  const missing = new Set(first.missingNars);
  return {
    verified: [...first.verified, ...(again?.verified ?? [])],
    problems: [
      ...first.problems.filter((p) => ![...missing].some((root) => p.includes(`(the NAR of ${root})`))),
      ...(again?.problems ?? []),
    ],
    missingNars: again?.missingNars ?? [],
  };
}
