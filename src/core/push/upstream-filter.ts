/**
 * Which closure members an upstream cache already serves, so they need not be pushed: a path signed
 * by one of the upstream key names is skipped without a request; for the others, a HEAD of
 * `<upstream>/<hash>.narinfo`, many at once. An upstream that cannot be reached counts as "not
 * there" (the path is pushed), with one warning, and is not asked again: no long stall.
 */
import { networkDetail } from '../http.js';
import type { Logger } from '../logger.js';
import { USER_AGENT } from '../version.js';
import { WorkerPool } from './worker-pool.js';

export interface UpstreamFilterOptions {
  readonly caches: readonly string[];
  readonly keyNames: readonly string[];
  readonly logger: Logger;
  readonly fetch?: typeof fetch;
  /** Per-request timeout (default 5 s). */
  readonly timeoutMs?: number;
  /** HEADs in flight at once (default 32). */
  readonly concurrency?: number;
}

export interface UpstreamCandidate {
  readonly path: string;
  /** The 32-character hash part. */
  readonly hash: string;
  readonly signatures: readonly string[];
}

/** Path -> why it is skipped ("signed by cache.nixos.org-1", "served by https://cache.nixos.org"). */
export type UpstreamVerdicts = Map<string, string>;

export async function findUpstreamPaths(
  candidates: readonly UpstreamCandidate[],
  options: UpstreamFilterOptions,
): Promise<UpstreamVerdicts> {
  const verdicts: UpstreamVerdicts = new Map();
  const keyNames = new Set(options.keyNames);
  const toAsk: UpstreamCandidate[] = [];
  for (const candidate of candidates) {
    const signer = candidate.signatures
      .map((sig) => sig.slice(0, sig.indexOf(':')))
      .find((name) => keyNames.has(name));
    if (signer) verdicts.set(candidate.path, `signed by ${signer}`);
    else toAsk.push(candidate);
  }
  const caches = options.caches.map((url) => url.replace(/\/+$/, ''));
  if (toAsk.length === 0 || caches.length === 0) return verdicts;

  const fetchFn = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const down = new Set<string>();
  const warned = new Set<string>();
  const markDown = (cache: string, why: string): void => {
    down.add(cache);
    if (warned.has(cache)) return;
    warned.add(cache);
    options.logger.warn(
      `upstream cache ${cache} could not be asked (${why}); paths it may serve are pushed anyway.`,
    );
  };

  const ask = async (candidate: UpstreamCandidate): Promise<void> => {
    for (const cache of caches) {
      if (down.has(cache)) continue;
      try {
        const response = await fetchFn(`${cache}/${candidate.hash}.narinfo`, {
          method: 'HEAD',
          headers: { 'user-agent': USER_AGENT },
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (response.status >= 200 && response.status < 300) {
          verdicts.set(candidate.path, `served by ${cache}`);
          return;
        }
        // 404 (and 403 from a bucket without list rights) = not there. Anything else: unusable.
        if (![403, 404, 410].includes(response.status))
          markDown(cache, `it answered HTTP ${response.status}`);
      } catch (error) {
        const timedOut =
          error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
        markDown(
          cache,
          timedOut ? `no answer within ${Math.round(timeoutMs / 1000)} s` : networkDetail(error),
        );
      }
    }
  };
  await new WorkerPool().run(toAsk, options.concurrency ?? 32, ask);
  return verdicts;
}
