import { actionsStepIO } from '../../core/step/actions-io.js';
import { runStep } from '../../core/step/step-io.js';
import { GC_SPEC } from './spec.js';

export async function run(io = actionsStepIO()): Promise<void> {
  await runStep(GC_SPEC, io, async (inputs) => {
    io.setOutput('state', inputs.requiredUrl('server-url'));
    await Promise.resolve();
  });
}
