/**
 * The R2 side as data: what the user asked for (R2Config, desired state), what Cloudflare has
 * (R2Actual), and the difference as a list of changes (R2Plan). There is no state file: every run
 * reads the live resources and plans from them.
 */
import type { R2Jurisdiction, R2Location, R2StorageClass } from './r2-names.js';

export type ProvisionMode = 'plan' | 'apply' | 'destroy';

/** Everything the R2 provisioner needs, validated (see src/actions/provision/inputs.ts). */
export interface R2Config {
  readonly accountId: string;
  readonly zoneName: string;
  /** Given zone id, or undefined to look it up from zoneName. */
  readonly zoneId: string | undefined;
  readonly cacheSubdomain: string;
  /** `<subdomain>.<zone>`. */
  readonly cacheHost: string;
  readonly bucketName: string;
  /** The location hint of a new bucket; undefined (no hint) when a jurisdiction is set. */
  readonly location: R2Location | undefined;
  readonly jurisdiction: R2Jurisdiction;
  readonly storageClass: R2StorageClass;
  readonly mode: ProvisionMode;
  /** destroy: also empty and delete the bucket. */
  readonly deleteData: boolean;
  /** apply: how long to wait for the custom domain to become active (0: do not wait). */
  readonly domainWaitMs: number;
}

/** The minimum TLS version the custom domain gets (the original stack's setting). */
export const DESIRED_MIN_TLS = '1.2';

export interface ZoneInfo {
  readonly id: string;
  readonly name: string;
  readonly status: string;
}

export interface ActualBucket {
  readonly name: string;
  readonly jurisdiction: string;
  /** As Cloudflare answers (observed upper case). */
  readonly location: string | undefined;
  readonly storageClass: string | undefined;
  readonly creationDate: string | undefined;
}

export interface DomainStatus {
  readonly ownership: string;
  readonly ssl: string;
}

export interface ActualDomain {
  readonly host: string;
  readonly enabled: boolean;
  /** Missing in a degraded answer. */
  readonly minTLS: string | undefined;
  readonly zoneId: string | undefined;
  readonly zoneName: string | undefined;
  readonly status: DomainStatus;
  /** The `unknown/unknown` answer Cloudflare gives when its SSL backend is unreachable. */
  readonly degraded: boolean;
}

/** Where else the cache host is attached, when it is not attached to our bucket. */
export interface DomainElsewhere {
  readonly bucket: string;
  readonly jurisdiction: string;
}

export interface R2Actual {
  readonly bucket: ActualBucket | undefined;
  /** A bucket with our name in another jurisdiction (when ours is missing). */
  readonly bucketInOtherJurisdiction: string | undefined;
  /** The cache host as attached to our bucket. */
  readonly domain: ActualDomain | undefined;
  readonly domainElsewhere: DomainElsewhere | undefined;
  /** destroy with delete-data: whether the bucket holds any object (undefined: not checked). */
  readonly hasObjects: boolean | undefined;
  /** Facts the reader learned that belong in the summary (e.g. a scan that was cut short). */
  readonly notes: readonly string[];
}

export type R2Resource = 'r2-bucket' | 'r2-custom-domain';
export type R2Action = 'create' | 'update' | 'replace' | 'delete' | 'empty';
export type R2Value = string | boolean;

/** One change; `before`/`after` hold only the settings that change (all of them for create/delete). */
export interface R2Change {
  readonly action: R2Action;
  readonly resource: R2Resource;
  readonly name: string;
  readonly before?: Readonly<Record<string, R2Value>>;
  readonly after?: Readonly<Record<string, R2Value>>;
}

export interface R2Plan {
  readonly changes: readonly R2Change[];
  /** Drift that is reported but not changed (e.g. the location of an existing bucket). */
  readonly warnings: readonly string[];
  /** Problems that stop apply before any write, each saying what to do. */
  readonly blockers: readonly string[];
  /** Facts worth a line in the summary (e.g. "bucket kept: delete-data is false"). */
  readonly notes: readonly string[];
}

/** The word for the custom-domain-status output. */
export function domainStatusWord(domain: ActualDomain | undefined): string {
  if (!domain) return 'absent';
  const { ownership, ssl } = domain.status;
  if (ownership === 'active' && ssl === 'active') return 'active';
  if (['error', 'blocked', 'deactivated'].includes(ownership) || ['error', 'deactivated'].includes(ssl))
    return 'error';
  if (ownership === 'unknown' && ssl === 'unknown') return 'unknown';
  return 'pending';
}
