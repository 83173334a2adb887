import { provisionR2, type ProvisionOptions } from '../../core/cloudflare/r2-provisioner.js';
import { actionsStepIO } from '../actions-io.js';
import { actionDeps, type ActionDeps } from '../deps.js';
import { runStep, writeSummary, type StepIO } from '../../core/step/step-io.js';
import { readProvisionInputs } from './inputs.js';
import { PROVISION_SPEC } from './spec.js';

/** The shared primitives plus the provisioner's timeouts; tests and the CLI may replace any of it. */
export type ProvisionDeps = ActionDeps & ProvisionOptions;

export function defaultDeps(): ProvisionDeps {
  return {
    ...actionDeps(),
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
