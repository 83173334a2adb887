/**
 * What every handler of the fake shares: the resolved settings, the state, the
 * object store, the signing keys, the presigner and the clock.
 */
import type { ObjectStore } from '../s3-store/object-store.js';
import type { Niks3Faults } from './faults.js';
import type { OidcValidator } from './oidc.js';
import type { SigningKey } from './signing.js';
import type { Niks3State } from './state.js';

/** Behaviour that depends on the niks3 version being modelled. */
export interface VersionFeatures {
  /** `HEAD /api/objects/{key...}` [post-1.7.0]. */
  objectExistsRoute: boolean;
  /** `GET /api/cache-stats` and `GET /metrics` [post-1.7.0]. */
  statsRoutes: boolean;
  /** Multipart complete: an S3 error with the object present counts as success [post-1.7.0]. */
  completeSucceedsIfObjectExists: boolean;
  /** Multipart complete aborts other sessions' uploads of the same key [post-1.7.0]. */
  abortRedundantUploads: boolean;
}

export function featuresOf(version: '1.7.0' | 'head'): VersionFeatures {
  const head = version === 'head';
  return {
    objectExistsRoute: head,
    statsRoutes: head,
    completeSucceedsIfObjectExists: head,
    abortRedundantUploads: head,
  };
}

/** Settings after defaults were applied. */
export interface ResolvedConfig {
  version: '1.7.0' | 'head';
  features: VersionFeatures;
  apiToken: string;
  bucket: string;
  /** Public cache URL announced in cache-config and used by the root redirect; '' = unset. */
  cacheUrl: string;
  readProxy: boolean;
  presignTtlMs: number;
  /** NARs of 1 byte up to this size get one presigned PUT (10 MiB). */
  singlePutMaxNarSize: number;
  bodyLimits: { pendingClosure: number; multipart: number };
  tombstoneWait: { pollMs: number; maxAgeMs: number };
  createWork: { perObjectMs: number; writeTimeoutMs: number };
  multipartRules: { minPartSize: number; requireEqualParts: boolean };
  gcPhaseDelayMs: number;
}

export interface Niks3Context {
  readonly config: ResolvedConfig;
  readonly state: Niks3State;
  readonly store: ObjectStore;
  readonly keys: readonly SigningKey[];
  readonly oidc: OidcValidator | undefined;
  readonly faults: Niks3Faults;
  now(): number;
  /** A presigned S3 URL for `key` (PUT by default); `query` adds `partNumber`/`uploadId`. */
  presign(key: string, query?: Record<string, string>): string;
  /** Debug logging (the server's slog). */
  log(message: string): void;
  /** Set by close(): background work (GC) stops touching the store. */
  closed: boolean;
}
