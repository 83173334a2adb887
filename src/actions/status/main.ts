import { CLOUDFLARE_RETRY, CloudflareCalls } from '../../core/cloudflare/cloudflare-calls.js';
import { createCloudflareClient } from '../../core/cloudflare/cloudflare-client.js';
import { R2Api } from '../../core/cloudflare/r2-api.js';
import { RemoteError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { FLY_RETRY, FlyClient } from '../../core/fly/fly-client.js';
import { NIKS3_RETRY, Niks3Client } from '../../core/niks3/niks3-client.js';
import { readCacheStatus } from '../../core/status/cache-status.js';
import { publicCacheReader } from '../../core/status/public-cache.js';
import { statusOutputs, statusReport } from '../../core/status/status-report.js';
import { actionsStepIO } from '../actions-io.js';
import { actionDeps, type ActionDeps } from '../deps.js';
import { runStep, writeSummary, type StepIO } from '../../core/step/step-io.js';
import { readStatusInputs, type StatusInputs } from './inputs.js';
import { STATUS_SPEC } from './spec.js';

/** Status needs only the shared primitives. */
export type StatusDeps = ActionDeps;

export function defaultDeps(): StatusDeps {
  return actionDeps();
}

export async function run(io: StepIO = actionsStepIO(), deps: StatusDeps = defaultDeps()): Promise<void> {
  await runStep(STATUS_SPEC, io, async (reader) => {
    const inputs = readStatusInputs(reader);
    const { timeoutMs } = inputs;
    const { logger } = io;
    // `timeout` is per check: retries stop once it is used up (a remote that is down fails its check
    // in about that time, not after the whole retry policy).
    const status = await readCacheStatus({
      niks3: new Niks3Client({
        serverUrl: inputs.serverUrl,
        logger,
        timeoutMs,
        retry: { ...NIKS3_RETRY, deadlineMs: timeoutMs },
        fetch: deps.fetch,
        sleep: deps.sleep,
      }),
      publicCache: publicCacheReader({ logger, timeoutMs, fetch: deps.fetch }),
      logger,
      cacheUrl: inputs.cacheUrl,
      expectedPublicKey: inputs.expectedPublicKey,
      timeoutMs,
      ...(inputs.r2
        ? {
            r2: {
              api: r2Api(inputs.r2, timeoutMs, logger, deps),
              bucket: inputs.r2.bucket,
              jurisdiction: inputs.r2.jurisdiction,
              domain: inputs.r2.domain,
            },
          }
        : {}),
      ...(inputs.fly
        ? {
            fly: {
              api: flyApi(inputs.fly, timeoutMs, logger, deps),
              app: inputs.fly.app,
            },
          }
        : {}),
      prices: inputs.prices,
    });
    for (const [name, value] of Object.entries(statusOutputs(status, inputs.expectedPublicKey)))
      io.setOutput(name, value);
    await writeSummary(io, statusReport(status, inputs.prices).toString());
    io.logger.info(
      `estimated monthly cost: $${status.cost.total.toFixed(2)} (prices as of ${inputs.prices.date})`,
    );
    if (!status.healthy) {
      const failed = status.checks.filter((check) => check.status === 'fail');
      throw new RemoteError({
        remote: 'nix-cache status',
        operation: `${failed.length} of ${status.checks.length} checks`,
        detail: failed.map((check) => `${check.name}: ${check.detail}`).join('; '),
        hint: 'the job summary has the whole health table',
      });
    }
  });
}

function r2Api(
  r2: NonNullable<StatusInputs['r2']>,
  timeoutMs: number,
  logger: Logger,
  deps: StatusDeps,
): R2Api {
  return new R2Api(
    createCloudflareClient({
      apiToken: r2.apiToken,
      baseUrl: r2.apiUrl,
      logger,
      timeoutMs,
      fetch: deps.fetch,
    }),
    new CloudflareCalls({
      logger,
      retry: { ...CLOUDFLARE_RETRY, deadlineMs: timeoutMs },
      sleep: deps.sleep,
      now: deps.now,
    }),
    r2.accountId,
  );
}

function flyApi(
  fly: NonNullable<StatusInputs['fly']>,
  timeoutMs: number,
  logger: Logger,
  deps: StatusDeps,
): FlyClient {
  // Status only reads the Machines API; the GraphQL URL is never called.
  return new FlyClient({
    token: fly.apiToken,
    apiUrl: fly.apiUrl,
    graphqlUrl: 'https://api.fly.io/graphql',
    logger,
    timeoutMs,
    retry: { ...FLY_RETRY, deadlineMs: timeoutMs },
    fetch: deps.fetch,
    sleep: deps.sleep,
  });
}
