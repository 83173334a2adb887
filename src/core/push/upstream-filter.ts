/**
 * Which closure members an upstream cache already serves, so they need not be pushed. Two steps:
 *
 * - `signedUpstream`: a path signed by one of the upstream key names is skipped without a request.
 * - `askUpstream`: for the others, a HEAD of `<upstream>/<hash>.narinfo`, many at once. The push asks
 *   only about paths that our own cache lacks (the pending-closure answer settles the rest), so a
 *   re-push of a cached closure asks upstream nothing.
 *
 * The first request to each upstream is a probe with a short timeout (default 1 s); the others wait
 * for it. An upstream that refuses connections, does not resolve or never answers therefore costs
 * one short timeout for the whole push, with one warning, and is not asked again: paths it may serve
 * are pushed. Once the probe answered, the remaining HEADs get the longer per-request timeout.
 */
import { normaliseBaseUrl } from '../settings/values.js';
import { networkDetail } from '../http.js';
import type { Logger } from '../logger.js';
import { USER_AGENT } from '../version.js';
import { WorkerPool } from './worker-pool.js';
import { nodeFetch } from '../node-http.js';

export interface UpstreamFilterOptions {
  readonly caches: readonly string[];
  readonly logger: Logger;
  readonly fetch?: typeof fetch;
  /** Timeout of the first request to each upstream, which decides whether it is usable (default 1 s). */
  readonly probeTimeoutMs?: number;
  /** Per-request timeout once an upstream has answered (default 5 s). */
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

export const UPSTREAM_PROBE_TIMEOUT_MS = 1_000;

/** Paths signed by one of the upstream key names: no request needed. */
export function signedUpstream(
  candidates: readonly UpstreamCandidate[],
  keyNames: readonly string[],
): UpstreamVerdicts {
  const verdicts: UpstreamVerdicts = new Map();
  const names = new Set(keyNames);
  for (const candidate of candidates) {
    const signer = candidate.signatures
      .map((sig) => sig.slice(0, sig.indexOf(':')))
      .find((name) => names.has(name));
    if (signer) verdicts.set(candidate.path, `signed by ${signer}`);
  }
  return verdicts;
}

type Answer = 'served' | 'absent' | 'down';

export async function askUpstream(
  candidates: readonly UpstreamCandidate[],
  options: UpstreamFilterOptions,
): Promise<UpstreamVerdicts> {
  const verdicts: UpstreamVerdicts = new Map();
  const caches = options.caches.map(normaliseBaseUrl);
  if (candidates.length === 0 || caches.length === 0) return verdicts;

  const fetchFn = options.fetch ?? nodeFetch;
  const probeTimeoutMs = options.probeTimeoutMs ?? UPSTREAM_PROBE_TIMEOUT_MS;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const down = new Set<string>();
  /** Per upstream: the probe (its first request); settles true when the upstream is usable. */
  const probes = new Map<string, Promise<boolean>>();
  const markDown = (cache: string, why: string): void => {
    if (down.has(cache)) return;
    down.add(cache);
    options.logger.warn(
      `upstream cache ${cache} could not be asked (${why}); paths it may serve are pushed anyway.`,
    );
  };

  const head = async (cache: string, hash: string, limitMs: number): Promise<Answer> => {
    try {
      const response = await fetchFn(`${cache}/${hash}.narinfo`, {
        method: 'HEAD',
        headers: { 'user-agent': USER_AGENT },
        signal: AbortSignal.timeout(limitMs),
      });
      if (response.status >= 200 && response.status < 300) return 'served';
      // 404 (and 403 from a bucket without list rights) = not there. Anything else: unusable.
      if ([403, 404, 410].includes(response.status)) return 'absent';
      markDown(cache, `it answered HTTP ${response.status}`);
    } catch (error) {
      const timedOut =
        error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
      markDown(cache, timedOut ? `no answer within ${formatSeconds(limitMs)}` : networkDetail(error));
    }
    return 'down';
  };

  const askOne = async (cache: string, hash: string): Promise<Answer> => {
    const probe = probes.get(cache);
    if (!probe) {
      let settle: (usable: boolean) => void = () => {};
      probes.set(cache, new Promise<boolean>((resolve) => (settle = resolve)));
      const answer = await head(cache, hash, probeTimeoutMs);
      settle(answer !== 'down');
      return answer;
    }
    if (!(await probe) || down.has(cache)) return 'down';
    return head(cache, hash, timeoutMs);
  };

  const ask = async (candidate: UpstreamCandidate): Promise<void> => {
    for (const cache of caches) {
      if (down.has(cache)) continue;
      if ((await askOne(cache, candidate.hash)) === 'served') {
        verdicts.set(candidate.path, `served by ${cache}`);
        return;
      }
    }
  };
  await new WorkerPool().run(candidates, options.concurrency ?? 32, ask);
  return verdicts;
}

function formatSeconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}
