import * as core from '@actions/core';
import { ActionsLogger } from '../actions-logger.js';
import type { StepIO } from './step-io.js';

/** The StepIO of a GitHub Actions step, through @actions/core. */
export function actionsStepIO(): StepIO {
  return {
    logger: new ActionsLogger(),
    env: process.env,
    hasPostStep: true,
    input: (name) => core.getInput(name),
    setOutput: (name, value) => core.setOutput(name, value),
    summary: async (markdown) => {
      if (!process.env['GITHUB_STEP_SUMMARY']) return;
      await core.summary.addRaw(markdown, true).write();
    },
    fail: (message) => core.setFailed(message),
    saveState: (name, value) => core.saveState(name, value),
    exportVariable: (name, value) => core.exportVariable(name, value),
    getState: (name) => core.getState(name),
    idToken: (audience) => core.getIDToken(audience),
  };
}
