/**
 * Executes an R2Plan, change by change, and waits for the custom domain to become active.
 *
 * Creates are sent once. After an ambiguous failure (timeout, reset, 429, 5xx) the applier reads
 * again: if the resource is there the create counts as done, otherwise it is sent again, with the
 * same back-off as other calls. A 409 on create means "already there" for the bucket; for the
 * domain it is checked against our bucket, and a host held elsewhere is an error that says so.
 */
import { ConfigurationError, RemoteError } from '../errors.js';
import type { Sleep } from '../http.js';
import type { Logger } from '../logger.js';
import { abortUploads, emptyBucket, restObjects, s3Objects } from './bucket-emptier.js';
import { CLOUDFLARE_REMOTE } from './cloudflare-calls.js';
import type { R2Api } from './r2-api.js';
import {
  DESIRED_MIN_TLS,
  domainStatusWord,
  type ActualDomain,
  type R2Change,
  type R2Config,
  type R2Plan,
  type ZoneInfo,
} from './r2-model.js';
import { describeChange } from './r2-planner.js';
import type { R2S3 } from './r2-s3.js';

export interface ApplyOptions {
  readonly logger: Logger;
  readonly sleep: Sleep;
  readonly now: () => number;
  /** First pause between two status reads of the custom domain; doubles up to pollMaxMs. */
  readonly pollStartMs: number;
  readonly pollMaxMs: number;
  /** When given, a bucket is emptied through S3 (1000 objects per request) instead of the API. */
  readonly s3?: R2S3 | undefined;
}

/** Runs a create until it took effect, re-reading after ambiguous failures. */
async function converge(
  api: R2Api,
  what: string,
  create: () => Promise<'created' | 'exists'>,
  exists: () => Promise<boolean>,
): Promise<'created' | 'exists'> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await create();
    } catch (error) {
      if (!(error instanceof RemoteError && error.transient) || attempt >= api.calls.policy.attempts)
        throw error;
      await api.calls.backoff(error.cause ?? error, attempt, what);
      if (await exists()) return 'created';
    }
  }
}

/** Applies every change of the plan in order; returns the changes made. */
export async function applyR2Plan(
  api: R2Api,
  config: R2Config,
  zone: ZoneInfo | undefined,
  plan: R2Plan,
  options: ApplyOptions,
): Promise<R2Change[]> {
  const done: R2Change[] = [];
  const B = config.bucketName;
  const J = config.jurisdiction;
  const host = config.cacheHost;
  for (const change of plan.changes) {
    options.logger.info(`→ ${describeChange(change)}`);
    if (change.resource === 'r2-bucket') {
      switch (change.action) {
        case 'create': {
          const result = await converge(
            api,
            `create R2 bucket "${B}"`,
            () => api.createBucket(B, J, config.location, config.storageClass),
            async () => (await api.getBucket(B, J)) !== undefined,
          );
          if (result === 'exists') {
            // Created meanwhile by someone else (or by our own earlier attempt): reconcile its class.
            const bucket = await api.getBucket(B, J);
            if (bucket?.storageClass && bucket.storageClass !== config.storageClass)
              await api.setStorageClass(B, J, config.storageClass);
          }
          break;
        }
        case 'update':
          await api.setStorageClass(B, J, config.storageClass);
          break;
        case 'empty': {
          const objects = options.s3 ? s3Objects(options.s3) : restObjects(api, B, J);
          const count = await emptyBucket(objects, B, options.logger, { now: options.now });
          options.logger.info(`Emptied R2 bucket ${B}: ${count} objects deleted`);
          break;
        }
        case 'delete': {
          // Open multipart uploads block the delete; only S3 can abort them.
          if (options.s3) await abortUploads(options.s3, B, options.logger);
          const result = await api.deleteBucket(B, J);
          if (result === 'not-empty') {
            throw new RemoteError({
              remote: CLOUDFLARE_REMOTE,
              operation: `delete R2 bucket "${B}"`,
              status: 409,
              detail:
                'the bucket is not empty (objects, in-progress multipart uploads or event notification rules remain)',
              hint: options.s3
                ? 'Re-run to empty it again (new objects or uploads may have arrived meanwhile); remove event notification rules in the dashboard'
                : "Re-run with s3-access-key and s3-secret-key: in-progress multipart uploads can only be aborted through S3, which destroy then does first (or wait for the bucket's lifecycle rule, 7 days); remove event notification rules in the dashboard",
            });
          }
          if (result === 'absent') options.logger.info(`R2 bucket ${B} was already gone`);
          break;
        }
        default:
          throw new Error(`internal: no way to ${change.action} an R2 bucket`);
      }
    } else {
      switch (change.action) {
        case 'create':
          await attachDomain(api, config, zone, options);
          break;
        case 'update':
          await api.updateDomain(B, J, host, {
            ...(change.after?.['enabled'] !== undefined ? { enabled: true } : {}),
            ...(change.after?.['minTLS'] !== undefined ? { minTLS: DESIRED_MIN_TLS } : {}),
          });
          break;
        case 'replace':
          await api.deleteDomain(B, J, host);
          await attachDomain(api, config, zone, options);
          break;
        case 'delete': {
          const result = await api.deleteDomain(B, J, host);
          if (result === 'absent') options.logger.info(`Custom domain ${host} was already detached`);
          break;
        }
        default:
          throw new Error(`internal: no way to ${change.action} a custom domain`);
      }
    }
    done.push(change);
  }
  return done;
}

async function attachDomain(
  api: R2Api,
  config: R2Config,
  zone: ZoneInfo | undefined,
  options: ApplyOptions,
): Promise<void> {
  const B = config.bucketName;
  const J = config.jurisdiction;
  const host = config.cacheHost;
  if (!zone) throw new Error('internal: a custom domain needs its zone');
  const result = await converge(
    api,
    `attach custom domain ${host}`,
    () => api.createDomain(B, J, host, zone.id),
    async () => (await api.getDomain(B, J, host)) !== undefined,
  );
  if (result === 'created') return;
  const mine = await api.getDomain(B, J, host);
  if (!mine) {
    throw new ConfigurationError(
      `The cache host ${host} is already attached to another R2 bucket or Cloudflare resource (perhaps in another jurisdiction or account). ` +
        `Detach it there first (dashboard: R2 > that bucket > Settings > Custom Domains), or choose another cache-subdomain.`,
    );
  }
  options.logger.info(`Custom domain ${host} was already attached to ${B}`);
  const fix: { enabled?: boolean; minTLS?: typeof DESIRED_MIN_TLS } = {};
  if (mine.enabled !== true) fix.enabled = true;
  if (!mine.degraded && mine.minTLS !== undefined && mine.minTLS !== DESIRED_MIN_TLS)
    fix.minTLS = DESIRED_MIN_TLS;
  if (Object.keys(fix).length > 0) await api.updateDomain(B, J, host, fix);
}

/**
 * Reads the custom domain until it is active, fails, or `config.domainWaitMs` has passed, logging
 * its status at least every 10 seconds. Returns the last answer.
 */
export async function waitForDomain(
  api: R2Api,
  config: R2Config,
  options: ApplyOptions,
): Promise<ActualDomain | undefined> {
  const deadline = options.now() + config.domainWaitMs;
  let domain = await api.getDomain(config.bucketName, config.jurisdiction, config.cacheHost);
  let delay = options.pollStartMs;
  while (domain && ['pending', 'unknown'].includes(domainStatusWord(domain))) {
    const left = deadline - options.now();
    if (left <= 0) break;
    const pause = Math.min(delay, left, 10_000);
    options.logger.info(
      `Custom domain ${config.cacheHost}: ownership ${domain.status.ownership}, ssl ${domain.status.ssl}; checking again in ${(pause / 1000).toFixed(0)} s`,
    );
    await options.sleep(pause);
    delay = Math.min(delay * 2, options.pollMaxMs);
    domain = await api.getDomain(config.bucketName, config.jurisdiction, config.cacheHost);
  }
  return domain;
}
