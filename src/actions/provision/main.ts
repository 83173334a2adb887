import { createCloudflareClient } from '../../core/cloudflare/cloudflare-client.js';
import { provisionR2, type ProvisionDeps } from '../../core/cloudflare/r2-provisioner.js';
import { sleep } from '../../core/http.js';
import { actionsStepIO } from '../actions-io.js';
import { runStep, writeSummary, type StepIO } from '../../core/step/step-io.js';
import { readProvisionInputs } from './inputs.js';
import { PROVISION_SPEC } from './spec.js';

/** What provision needs from the outside world; tests and the CLI may replace any of it. */
export function defaultDeps(): ProvisionDeps {
  return {
    createClient: createCloudflareClient,
    fetch: undefined,
    sleep,
    now: Date.now,
    timeoutMs: 30_000,
    pollStartMs: 1_000,
    pollMaxMs: 10_000,
    databaseTimeoutMs: 10_000,
  };
}

export async function run(io: StepIO = actionsStepIO(), deps: ProvisionDeps = defaultDeps()): Promise<void> {
  await runStep(PROVISION_SPEC, io, async (inputs) => {
    const config = readProvisionInputs(inputs, io.logger);
    const outcome = await provisionR2(config, deps, io.logger);
    if (outcome.outputs) {
      for (const [name, value] of Object.entries(outcome.outputs)) io.setOutput(name, value);
    }
    await writeSummary(io, outcome.summary);
    if (outcome.failure) throw outcome.failure;
  });
}
