/**
 * Names and derived values of the R2 side (shared/spec/stack.md): the stack slug, the default
 * bucket name, the public cache host and URL, and the S3 endpoint host of each jurisdiction.
 */

export const R2_LOCATIONS = ['apac', 'eeur', 'enam', 'weur', 'wnam', 'oc'] as const;
/** `us` is the newer one (its own S3 host, shared/spec/cloudflare.md §5); the original stack had the rest. */
export const R2_JURISDICTIONS = ['default', 'eu', 'us', 'fedramp'] as const;
export const R2_STORAGE_CLASSES = ['Standard', 'InfrequentAccess'] as const;

export type R2Location = (typeof R2_LOCATIONS)[number];
export type R2Jurisdiction = (typeof R2_JURISDICTIONS)[number];
export type R2StorageClass = (typeof R2_STORAGE_CLASSES)[number];

/**
 * The location hints that lie inside each jurisdiction. A bucket with a jurisdiction gets no hint
 * (the dashboard offers the two as alternatives), but a hint outside it is a contradiction worth
 * refusing before any request.
 */
export const JURISDICTION_LOCATIONS: Readonly<
  Record<Exclude<R2Jurisdiction, 'default'>, readonly R2Location[]>
> = {
  eu: ['weur', 'eeur'],
  us: ['enam', 'wnam'],
  fedramp: ['enam', 'wnam'],
};

/** R2 bucket names: 3 to 63 of `a-z 0-9 -`, starting and ending with a letter or digit. */
export const R2_BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/** The stack slug: lower-case, every character outside `[a-z0-9-]` replaced by `-`. */
export function stackSlug(stackName: string): string {
  return stackName.toLowerCase().replace(/[^a-z0-9-]/g, '-');
}

/** The bucket name used when none is given: `<slug>-niks3`. */
export function defaultBucketName(stackName: string): string {
  return `${stackSlug(stackName)}-niks3`;
}

/** Why a bucket name breaks R2's rules, or undefined when it is fine. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3) return 'shorter than 3 characters';
  if (name.length > 63) return 'longer than 63 characters';
  if (/[^a-z0-9-]/.test(name)) return 'only a-z, 0-9 and - are allowed';
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'must start and end with a letter or digit';
  return undefined;
}

/** The public cache host: `<subdomain>.<zone>`. */
export function cacheHost(subdomain: string, zoneName: string): string {
  return `${subdomain}.${zoneName}`.toLowerCase();
}

export function cacheUrl(subdomain: string, zoneName: string): string {
  return `https://${cacheHost(subdomain, zoneName)}`;
}

/** The R2 S3 endpoint host (no scheme) of an account and jurisdiction. */
export function s3EndpointHost(accountId: string, jurisdiction: R2Jurisdiction): string {
  return jurisdiction === 'default'
    ? `${accountId}.r2.cloudflarestorage.com`
    : `${accountId}.${jurisdiction}.r2.cloudflarestorage.com`;
}
