import { CLOUDFLARE_RETRY, CloudflareCalls } from '../../core/cloudflare/cloudflare-calls.js';
import { createCloudflareClient } from '../../core/cloudflare/cloudflare-client.js';
import { R2Api } from '../../core/cloudflare/r2-api.js';
import { RemoteError } from '../../core/errors.js';
import { FLY_RETRY, FlyClient } from '../../core/fly/fly-client.js';
import { NIKS3_RETRY, Niks3Client } from '../../core/niks3/niks3-client.js';
import {
  readCacheStatus,
  type PublicCacheReader,
  type StatusFly,
  type StatusNiks3,
  type StatusR2,
} from '../../core/status/cache-status.js';
import { publicCacheReader } from '../../core/status/public-cache.js';
import { statusOutputs, statusReport } from '../../core/status/status-report.js';
import { actionsStepIO } from '../actions-io.js';
import { runStep, writeSummary, type StepIO } from '../../core/step/step-io.js';
import { readStatusInputs, type StatusInputs } from './inputs.js';
import { STATUS_SPEC } from './spec.js';

export interface StatusDeps {
  readonly niks3: (options: { serverUrl: string; timeoutMs: number; io: StepIO }) => StatusNiks3;
  readonly publicCache: (options: { timeoutMs: number; io: StepIO }) => PublicCacheReader;
  readonly r2: (options: NonNullable<StatusInputs['r2']> & { timeoutMs: number; io: StepIO }) => StatusR2;
  readonly fly: (options: NonNullable<StatusInputs['fly']> & { timeoutMs: number; io: StepIO }) => StatusFly;
}

// `timeout` is per check: retries stop once it is used up (a remote that is down fails its check in
// about that time, not after the whole retry policy).
export function defaultDeps(): StatusDeps {
  return {
    niks3: ({ serverUrl, timeoutMs, io }) =>
      new Niks3Client({
        serverUrl,
        logger: io.logger,
        timeoutMs,
        retry: { ...NIKS3_RETRY, deadlineMs: timeoutMs },
      }),
    publicCache: ({ timeoutMs, io }) => publicCacheReader({ logger: io.logger, timeoutMs }),
    r2: ({ apiToken, apiUrl, accountId, timeoutMs, io }) =>
      new R2Api(
        createCloudflareClient({ apiToken, baseUrl: apiUrl, logger: io.logger, timeoutMs }),
        new CloudflareCalls({ logger: io.logger, retry: { ...CLOUDFLARE_RETRY, deadlineMs: timeoutMs } }),
        accountId,
      ),
    fly: ({ apiToken, apiUrl, timeoutMs, io }) =>
      // Status only reads the Machines API; the GraphQL URL is never called.
      new FlyClient({
        token: apiToken,
        apiUrl,
        graphqlUrl: 'https://api.fly.io/graphql',
        logger: io.logger,
        timeoutMs,
        retry: { ...FLY_RETRY, deadlineMs: timeoutMs },
      }),
  };
}

export async function run(io: StepIO = actionsStepIO(), deps: StatusDeps = defaultDeps()): Promise<void> {
  await runStep(STATUS_SPEC, io, async (reader) => {
    const inputs = readStatusInputs(reader);
    const { timeoutMs } = inputs;
    const status = await readCacheStatus({
      niks3: deps.niks3({ serverUrl: inputs.serverUrl, timeoutMs, io }),
      publicCache: deps.publicCache({ timeoutMs, io }),
      logger: io.logger,
      cacheUrl: inputs.cacheUrl,
      expectedPublicKey: inputs.expectedPublicKey,
      timeoutMs,
      ...(inputs.r2
        ? {
            r2: {
              api: deps.r2({ ...inputs.r2, timeoutMs, io }),
              bucket: inputs.r2.bucket,
              jurisdiction: inputs.r2.jurisdiction,
              domain: inputs.r2.domain,
            },
          }
        : {}),
      ...(inputs.fly
        ? { fly: { api: deps.fly({ ...inputs.fly, timeoutMs, io }), app: inputs.fly.app } }
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
