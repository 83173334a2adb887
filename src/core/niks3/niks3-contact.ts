/**
 * First contact with a niks3 server that may be cold (Fly auto-stop, Neon suspend): the public
 * `/api/cache-config` (or `/health` on a server older than v1.5.0), tried again with a growing pause
 * until the server answers or the time is up, with progress in the log.
 */
import { RemoteError } from '../errors.js';
import type { HttpClient, RetryPolicy, Sleep } from '../http.js';
import type { Logger } from '../logger.js';
import { readCacheConfig, type CacheConfig } from './api-types.js';

export interface ServerContact {
  /** `/api/cache-config`, or undefined on a server older than v1.5.0. */
  readonly config: CacheConfig | undefined;
  /** Time spent before the server first answered, when it had to be woken (0 when it answered at once). */
  readonly waitedMs: number;
  readonly attempts: number;
}

/** The name of the timeout input (for hints), or `{ signal, connectTimeoutInput }`. */
export type ContactOptions =
  string | { readonly signal?: AbortSignal; readonly connectTimeoutInput?: string };

/** The server as the client sees it. */
export interface ContactTarget {
  /** Its public routes (no token). */
  readonly http: HttpClient;
  readonly serverUrl: string;
  /** The name of the input that holds the server URL, for hints. */
  readonly serverUrlInput: string;
  readonly logger: Logger;
  readonly sleep: Sleep;
  /** The retry policy of one attempt (the pauses between attempts are this loop's). */
  readonly attemptRetry: RetryPolicy;
}

/**
 * Reaches the server, waiting up to `timeoutMs` for a cold one: network errors, 408, 429 and 5xx
 * are retried with a growing pause, and progress is logged every ~10 s. Returns the cache config
 * (public, no token needed), or undefined on a pre-1.5.0 server.
 */
export async function firstContact(
  server: ContactTarget,
  timeoutMs: number,
  options: ContactOptions = {},
): Promise<ServerContact> {
  const opts = typeof options === 'string' ? { connectTimeoutInput: options } : options;
  const connectTimeoutInput = opts.connectTimeoutInput ?? 'connect-timeout';
  const signal = opts.signal;
  const started = Date.now();
  let attempts = 0;
  let lastLog = started;
  let lastError: RemoteError | undefined;
  let path = '/api/cache-config';
  for (;;) {
    attempts += 1;
    const remaining = timeoutMs - (Date.now() - started);
    try {
      const response = await server.http.request({
        method: 'GET',
        path,
        retry: server.attemptRetry,
        timeoutMs: Math.max(1_000, Math.min(30_000, remaining)),
        accept: [404],
        operation: `GET ${path} (first contact)`,
        ...(signal ? { signal } : {}),
      });
      const waitedMs = attempts > 1 ? Date.now() - started : 0;
      if (waitedMs > 0)
        server.logger.info(`niks3 answered after ${Math.round(waitedMs / 1000)} s (it was waking up).`);
      if (response.status === 404) {
        if (path === '/api/cache-config') {
          // Older than v1.5.0: no cache-config; /health tells us the server is up.
          path = '/health';
          attempts -= 1;
          continue;
        }
        throw new RemoteError({
          remote: 'niks3',
          operation: 'GET /health',
          status: 404,
          hint: `check that ${server.serverUrlInput} points at a niks3 server`,
        });
      }
      if (path === '/health') return { config: undefined, waitedMs, attempts };
      return { config: readCacheConfig(response.json), waitedMs, attempts };
    } catch (error) {
      if (signal?.aborted || !(error instanceof RemoteError) || !error.transient) throw error;
      lastError = error;
    }
    const elapsed = Date.now() - started;
    if (elapsed >= timeoutMs) break;
    if (attempts === 1)
      server.logger.info(
        `niks3 at ${server.serverUrl} is not answering yet (${lastError.message}); waiting up to ${Math.round(timeoutMs / 1000)} s for it to start.`,
      );
    else if (Date.now() - lastLog >= 10_000) {
      lastLog = Date.now();
      server.logger.info(
        `still waiting for niks3 (${Math.round(elapsed / 1000)} s so far, attempt ${attempts})…`,
      );
    }
    await server.sleep(
      Math.min(5_000, 500 * 2 ** Math.min(attempts - 1, 4), Math.max(0, timeoutMs - elapsed)),
      signal,
    );
  }
  throw new RemoteError(
    {
      remote: 'niks3',
      operation: 'first contact',
      ...(lastError?.status !== undefined ? { status: lastError.status } : {}),
      detail: `no answer within ${Math.round(timeoutMs / 1000)} s (${lastError?.message ?? 'no attempt'})`,
      hint: `check ${server.serverUrlInput} (${server.serverUrl}) and that the server is deployed and running; raise ${connectTimeoutInput} if it starts slowly`,
      transient: true,
    },
    { cause: lastError },
  );
}
