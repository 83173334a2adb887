/**
 * The one adapter to @actions/core: the Logger and the StepIO of a GitHub Actions step, and the
 * OIDC token request (also of the detached uploader, which has no step). Every other module reaches
 * the runner only through these seams, so the core never imports @actions/core.
 */
import * as core from '@actions/core';
import type { Logger } from '../core/logger.js';
import type { StepIO } from '../core/step/step-io.js';

/**
 * The Logger of an action step: workflow commands through @actions/core. Debug lines are written
 * only when the run has debug logging on (`RUNNER_DEBUG=1`): otherwise the runner drops them, and
 * a push would spend a write per request on lines nobody sees.
 */
export class ActionsLogger implements Logger {
  private readonly debugging = core.isDebug();
  debug(message: string): void {
    if (this.debugging) core.debug(message);
  }
  info(message: string): void {
    core.info(message);
  }
  warn(message: string): void {
    core.warning(message);
  }
  error(message: string): void {
    core.error(message);
  }
  group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return core.group(name, fn);
  }
  setSecret(value: string): void {
    core.setSecret(value);
  }
}

/** A GitHub OIDC token for `audience`, from the runner's token service. */
export function actionsIdToken(audience: string): Promise<string> {
  return core.getIDToken(audience);
}

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
    idToken: actionsIdToken,
  };
}
