/**
 * One provision run of the R2 side: verify the token, read the live state, plan, then print
 * (plan), converge (apply) or remove (destroy), wait for the custom domain, and run the optional
 * S3 and database checks. Returns the outputs and the job summary; the entry point writes them.
 */
import { ConfigurationError, errorMessage } from '../errors.js';
import type { RetryPolicy, Sleep } from '../http.js';
import type { Logger } from '../logger.js';
import { CloudflareCalls } from './cloudflare-calls.js';
import { createCloudflareClient } from './cloudflare-client.js';
import { checkDatabase } from '../postgres/database-check.js';
import { R2Api } from './r2-api.js';
import { applyR2Plan, waitForDomain } from './r2-applier.js';
import {
  domainStatusWord,
  type ActualDomain,
  type R2Actual,
  type R2Change,
  type R2Config,
  type R2Plan,
  type ZoneInfo,
} from './r2-model.js';
import { cacheUrl, s3EndpointHost } from './r2-names.js';
import { describeChange, planR2 } from './r2-planner.js';
import { readR2Actual, resolveZone } from './r2-reader.js';
import { provisionReport, type CheckLine } from './r2-report.js';
import { R2S3, type S3Access } from './r2-s3.js';
import { probeS3Credentials } from './s3-probe.js';

export interface ProvisionConfig {
  readonly r2: R2Config;
  readonly apiToken: string;
  readonly apiUrl: string;
  /** The bucket through S3, when S3 keys are given: probed (checkS3), and used to empty it on destroy. */
  readonly s3: S3Access | undefined;
  /** Run the S3 probe (needs `s3`). */
  readonly checkS3: boolean;
  /** Run the database check on this URL (undefined: skip). */
  readonly databaseUrl: string | undefined;
}

/** The primitives and timeouts of one run (the provision action's deps). */
export interface ProvisionOptions {
  /** fetch for the SDK and the S3 probe. */
  readonly fetch: typeof fetch;
  readonly sleep: Sleep;
  readonly now: () => number;
  /** Per-request timeout for the Cloudflare API and the S3 endpoint (ms). */
  readonly timeoutMs: number;
  /** First and largest pause between two status reads of the custom domain (ms). */
  readonly pollStartMs: number;
  readonly pollMaxMs: number;
  readonly databaseTimeoutMs: number;
  /** Overrides the Cloudflare retry policy (tests). */
  readonly retry?: RetryPolicy;
}

/** A type literal (not an interface) so that `Object.entries` sees string values. */
export type ProvisionOutputs = {
  readonly 'bucket-name': string;
  readonly 'cache-url': string;
  readonly 's3-endpoint': string;
  readonly 'zone-id': string;
  readonly 'custom-domain-status': string;
  readonly changed: string;
  readonly plan: string;
};

export interface ProvisionOutcome {
  /** Undefined when the run failed before they were known. */
  readonly outputs: ProvisionOutputs | undefined;
  readonly summary: string;
  /** The error to fail the step with, after outputs and summary are written. */
  readonly failure: Error | undefined;
}

export async function provisionR2(
  config: ProvisionConfig,
  deps: ProvisionOptions,
  logger: Logger,
): Promise<ProvisionOutcome> {
  const r2 = config.r2;
  const client = createCloudflareClient({
    apiToken: config.apiToken,
    baseUrl: config.apiUrl,
    logger,
    timeoutMs: deps.timeoutMs,
    fetch: deps.fetch,
  });
  const calls = new CloudflareCalls({
    logger,
    sleep: deps.sleep,
    now: deps.now,
    ...(deps.retry ? { retry: deps.retry } : {}),
  });
  const api = new R2Api(client, calls, r2.accountId);
  const s3 = config.s3
    ? new R2S3(config.s3, { logger, timeoutMs: deps.timeoutMs, fetch: deps.fetch })
    : undefined;
  const applyOptions = {
    logger,
    sleep: deps.sleep,
    now: deps.now,
    pollStartMs: deps.pollStartMs,
    pollMaxMs: deps.pollMaxMs,
    s3,
  };

  let zone: ZoneInfo | undefined;
  let actual: R2Actual | undefined;
  let plan: R2Plan | undefined;
  let changes: readonly R2Change[] = [];
  let domainAfter: ActualDomain | undefined;
  const checks: CheckLine[] = [];

  const outcome = (failure: Error | undefined, outputs: ProvisionOutputs | undefined): ProvisionOutcome => ({
    outputs,
    failure,
    summary: provisionReport({
      config: r2,
      zoneId: zone?.id ?? r2.zoneId,
      actual,
      plan,
      changes,
      domainAfter,
      checks,
      failure: failure ? errorMessage(failure) : undefined,
    }),
  });

  try {
    await logger.group('Verify the Cloudflare API token', async () => {
      const identity = await api.verifyToken();
      logger.info(`API token ${identity.id} (${identity.owner}-owned) is ${identity.status}`);
    });

    await logger.group('Read the R2 side', async () => {
      if (r2.mode === 'destroy') {
        // Removing needs no zone; look it up only for the zone-id output, and never fail on it.
        try {
          zone = await resolveZone(api, r2, logger);
        } catch (error) {
          logger.warn(
            `Could not resolve zone ${r2.zoneName} (${errorMessage(error)}); the zone-id output stays empty.`,
          );
        }
      } else {
        zone = await resolveZone(api, r2, logger);
      }
      actual = await readR2Actual(api, r2, logger);
    });

    const current = actual as R2Actual;
    plan = planR2(r2, zone, current);
    const thePlan = plan;
    await logger.group('Plan', async () => {
      for (const warning of thePlan.warnings) logger.warn(warning);
      for (const note of thePlan.notes) logger.info(note);
      if (thePlan.changes.length === 0 && thePlan.blockers.length === 0) logger.info('No changes.');
      for (const change of thePlan.changes)
        logger.info(`${r2.mode === 'plan' ? 'would ' : ''}${describeChange(change)}`);
      await Promise.resolve();
    });
    if (thePlan.blockers.length > 0) {
      for (const blocker of thePlan.blockers) logger.error(blocker);
      return outcome(new ConfigurationError(thePlan.blockers.join('\n')), undefined);
    }

    if (r2.mode === 'plan') {
      changes = thePlan.changes;
      domainAfter = undefined;
    } else {
      changes = await logger.group(r2.mode === 'apply' ? 'Apply' : 'Destroy', () =>
        applyR2Plan(api, r2, zone, thePlan, applyOptions),
      );
    }

    let failure: Error | undefined;
    if (r2.mode === 'apply') {
      domainAfter = await logger.group('Wait for the custom domain', async () => {
        const domain =
          r2.domainWaitMs > 0
            ? await waitForDomain(api, r2, applyOptions)
            : await api.getDomain(r2.bucketName, r2.jurisdiction, r2.cacheHost);
        const word = domainStatusWord(domain);
        if (domain)
          logger.info(
            `Custom domain ${r2.cacheHost}: ${word} (ownership ${domain.status.ownership}, ssl ${domain.status.ssl})`,
          );
        if (word === 'pending' || word === 'unknown') {
          logger.warn(
            `Custom domain ${r2.cacheHost} is not active yet (${domain?.status.ownership}/${domain?.status.ssl}) after ${Math.round(r2.domainWaitMs / 1000)} s; it usually becomes active within minutes. Re-run provision (or status) to check.`,
          );
        }
        if (word === 'error') {
          failure = new ConfigurationError(
            `Custom domain ${r2.cacheHost} failed to activate (ownership ${domain?.status.ownership}, ssl ${domain?.status.ssl}). ` +
              `Check the zone ${r2.zoneName} (DNS record for ${r2.cacheHost}, CAA records, zone holds) in the Cloudflare dashboard, then re-run.`,
          );
        }
        return domain;
      });
    }

    if (r2.mode !== 'destroy') {
      failure = (await runChecks(config, current, deps, logger, checks)) ?? failure;
    } else if (config.checkS3 || config.databaseUrl) {
      checks.push({ name: 'S3 / database checks', result: 'skipped in destroy mode' });
    }

    const changed = changes.length > 0;
    const outputs: ProvisionOutputs = {
      'bucket-name': r2.bucketName,
      'cache-url': cacheUrl(r2.cacheSubdomain, r2.zoneName),
      's3-endpoint': s3EndpointHost(r2.accountId, r2.jurisdiction),
      'zone-id': zone?.id ?? r2.zoneId ?? '',
      'custom-domain-status':
        r2.mode === 'destroy'
          ? 'absent'
          : domainStatusWord(r2.mode === 'apply' ? domainAfter : current.domain),
      changed: String(changed),
      plan: JSON.stringify(changes),
    };
    logger.info(
      changed
        ? `${r2.mode === 'plan' ? 'Would change' : 'Changed'}: ${changes.length} change(s).`
        : 'Nothing to change.',
    );
    return outcome(failure, outputs);
  } catch (error) {
    return outcome(error instanceof Error ? error : new Error(String(error)), undefined);
  }
}

/** The S3 probe and the database check; returns the first failure, after running both. */
async function runChecks(
  config: ProvisionConfig,
  actual: R2Actual,
  deps: ProvisionOptions,
  logger: Logger,
  checks: CheckLine[],
): Promise<Error | undefined> {
  let failure: Error | undefined;
  const r2 = config.r2;
  if (config.checkS3 && config.s3) {
    const s3 = config.s3;
    await logger.group('Check the S3 credentials', async () => {
      if (r2.mode === 'plan' && !actual.bucket) {
        logger.info('The bucket does not exist yet: the S3 check runs after apply creates it.');
        checks.push({
          name: `S3 keys (${s3.endpointUrl})`,
          result: 'skipped: the bucket does not exist yet',
        });
        return;
      }
      try {
        const result = await probeS3Credentials(s3, {
          logger,
          write: r2.mode === 'apply',
          timeoutMs: deps.timeoutMs,
          fetch: deps.fetch,
        });
        for (const step of result.steps) logger.info(step);
        checks.push({
          name: `S3 keys (${s3.endpointUrl})`,
          result:
            r2.mode === 'apply'
              ? 'ok: PUT, GET and DELETE of a probe object'
              : 'ok: signed read accepted (plan writes nothing)',
        });
      } catch (error) {
        logger.error(errorMessage(error));
        checks.push({ name: `S3 keys (${s3.endpointUrl})`, result: `FAILED: ${errorMessage(error)}` });
        failure ??= error instanceof Error ? error : new Error(String(error));
      }
    });
  }
  if (config.databaseUrl) {
    const url = config.databaseUrl;
    await logger.group('Check the database', async () => {
      try {
        const result = await checkDatabase(url, { timeoutMs: deps.databaseTimeoutMs });
        logger.info(
          `SELECT 1 answered (PostgreSQL ${result.serverVersion}, ${result.tls ? 'TLS' : 'no TLS'})`,
        );
        checks.push({
          name: 'database (database-url)',
          result: `ok: SELECT 1 on PostgreSQL ${result.serverVersion}${result.tls ? ' over TLS' : ''}`,
        });
      } catch (error) {
        logger.error(errorMessage(error));
        checks.push({ name: 'database (database-url)', result: `FAILED: ${errorMessage(error)}` });
        failure ??= error instanceof Error ? error : new Error(String(error));
      }
    });
  }
  return failure;
}
