/**
 * The `cloudflare` SDK client, built from explicit options only (shared/spec/cloudflare.md §2): the
 * token and base URL are always passed, the legacy key/email and user service key are forced off,
 * debug logging (which prints bodies) is never enabled, and the SDK's own retries are off: retries
 * are ours (cloudflare-calls.ts), with a cap on Retry-After that the SDK lacks.
 *
 * The tree-shakable client lists the resources used. (With ncc it does not shrink the bundle: the
 * SDK's client module imports every resource either way; it still documents what is called, and a
 * narrower type is easier to stand in for.)
 */
import { createClient } from 'cloudflare/tree-shakable';
import { BaseTokens as BaseAccountTokens } from 'cloudflare/resources/accounts/tokens/tokens';
import { BaseBuckets } from 'cloudflare/resources/r2/buckets/buckets';
import { BaseCustom } from 'cloudflare/resources/r2/buckets/domains/custom';
import { BaseObjects } from 'cloudflare/resources/r2/buckets/objects';
import { BaseTokens as BaseUserTokens } from 'cloudflare/resources/user/tokens/tokens';
import { BaseZones } from 'cloudflare/resources/zones/zones';
import { VERSION as SDK_VERSION } from 'cloudflare/version';
import type { Logger } from '../logger.js';
import { USER_AGENT } from '../version.js';

export const CLOUDFLARE_API_URL = 'https://api.cloudflare.com/client/v4';

const RESOURCES = [
  BaseBuckets,
  BaseCustom,
  BaseObjects,
  BaseZones,
  BaseAccountTokens,
  BaseUserTokens,
] as const;

function build(options: Parameters<typeof createClient<typeof RESOURCES>>[0]) {
  return createClient(options);
}

/** The client type: only the resources listed above. */
export type CloudflareClient = ReturnType<typeof build>;

export interface CloudflareClientOptions {
  readonly apiToken: string;
  /** API base URL, e.g. https://api.cloudflare.com/client/v4 or a local stand-in. */
  readonly baseUrl: string;
  readonly logger: Logger;
  /** Per-attempt timeout (ms). */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

export function createCloudflareClient(options: CloudflareClientOptions): CloudflareClient {
  const forward = (message: string): void => options.logger.warn(`Cloudflare SDK: ${message}`);
  return build({
    resources: RESOURCES,
    apiToken: options.apiToken,
    apiKey: null,
    apiEmail: null,
    userServiceKey: null,
    baseURL: options.baseUrl,
    maxRetries: 0,
    timeout: options.timeoutMs ?? 30_000,
    // Never 'debug': it logs request and response bodies. Only the message is forwarded, never the
    // extra arguments (they can hold request details).
    logLevel: 'warn',
    logger: { error: forward, warn: forward, info: () => undefined, debug: () => undefined },
    // Overrides anything CLOUDFLARE_CUSTOM_HEADERS would add under these names.
    defaultHeaders: {
      'user-agent': `${USER_AGENT} Cloudflare/JS ${SDK_VERSION}`,
      'x-auth-key': null,
      'x-auth-email': null,
    },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}
