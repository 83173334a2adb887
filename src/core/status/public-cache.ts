/** Anonymous reads of the public cache URL (the R2 custom domain), as Nix makes them. */
import { DEFAULT_RETRY, HttpClient, type RetryPolicy } from '../http.js';
import type { Logger } from '../logger.js';
import type { PublicCacheReader } from './cache-status.js';

/** The default statuses; fewer attempts and shorter waits than the remotes' policies. */
const PUBLIC_RETRY: RetryPolicy = {
  ...DEFAULT_RETRY,
  attempts: 3,
  baseDelayMs: 500,
  maxDelayMs: 4_000,
  retryAfterCapMs: 10_000,
};

export function publicCacheReader(options: {
  readonly logger: Logger;
  readonly timeoutMs: number;
  readonly fetch?: typeof fetch;
}): PublicCacheReader {
  return {
    async cacheInfo(cacheUrl: string) {
      const http = new HttpClient({
        remote: 'public cache',
        baseUrl: cacheUrl,
        logger: options.logger,
        retry: PUBLIC_RETRY,
        timeoutMs: options.timeoutMs,
        ...(options.fetch ? { fetch: options.fetch } : {}),
        hint: () => `check that ${cacheUrl} is the public read URL of the cache (provision output cache-url)`,
      });
      const response = await http.request({
        method: 'GET',
        path: '/nix-cache-info',
        accept: [401, 403, 404],
        operation: 'GET /nix-cache-info',
      });
      return { status: response.status, text: response.text };
    },
  };
}
