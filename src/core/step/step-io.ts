/**
 * What an entry point gives the core: inputs, outputs, summary, state, OIDC and the logger.
 * The Actions implementation is src/actions/actions-io.ts; the CLI has its own (src/cli/cli-io.ts); tests
 * may build a MemoryStepIO. The core never imports @actions/core directly.
 */
import { ConfigurationError, RemoteError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { InputReader } from '../settings/input-reader.js';
import type { ActionSpec } from '../settings/input-spec.js';

export interface StepIO {
  readonly logger: Logger;
  readonly env: NodeJS.ProcessEnv;
  /** The raw value of an input ('' or undefined when not given). */
  input(name: string): string | undefined;
  setOutput(name: string, value: string): void;
  /** Appends Markdown to the job summary. A failure to write only warns. */
  summary(markdown: string): Promise<void>;
  /** Marks the step failed (exit code 1) with this message. */
  fail(message: string): void;
  saveState(name: string, value: string): void;
  /** Sets an environment variable for the rest of the job (Actions: GITHUB_ENV); absent in the CLI. */
  exportVariable?(name: string, value: string): void;
  getState(name: string): string;
  /** Mints a GitHub OIDC token for the audience. */
  idToken(audience: string): Promise<string>;
  /** Whether a post step exists to save state for (false in the CLI). */
  readonly hasPostStep: boolean;
}

/**
 * Runs one step: parses every input of the spec once (so bad values fail before any request),
 * calls the body, and turns whatever it throws into one clear failure.
 */
export async function runStep(
  spec: ActionSpec,
  io: StepIO,
  body: (inputs: InputReader) => Promise<void>,
): Promise<boolean> {
  try {
    const inputs = new InputReader(spec.inputs, (name) => io.input(name), io.logger);
    await body(inputs);
    return true;
  } catch (error) {
    if (error instanceof ConfigurationError || error instanceof RemoteError) {
      io.fail(error.message);
    } else {
      if (error instanceof Error && error.stack) io.logger.debug(error.stack);
      io.fail(`${spec.name} failed: ${errorMessage(error)}`);
    }
    return false;
  }
}

/** Writes the summary, warning (not failing) when it cannot be written. */
export async function writeSummary(io: StepIO, markdown: string): Promise<void> {
  try {
    await io.summary(markdown);
  } catch (error) {
    io.logger.warn(`could not write the job summary: ${errorMessage(error)}`);
  }
}
