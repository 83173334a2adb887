import { CliLogger } from './cli-logger.js';
import type { StepIO } from '../core/step/step-io.js';

/**
 * The StepIO of a terminal command: inputs resolved from flags, the stack file and the environment;
 * progress on stderr (through CliLogger); outputs and the summary kept for the command to print.
 */
export class CliStepIO implements StepIO {
  readonly logger: CliLogger;
  readonly env: NodeJS.ProcessEnv;
  readonly hasPostStep = false;
  readonly outputs: Record<string, string> = {};
  readonly summaries: string[] = [];
  failure: string | undefined;
  private readonly values: Record<string, string | undefined>;

  constructor(
    values: Record<string, string | undefined>,
    options: { env?: NodeJS.ProcessEnv; logger?: CliLogger } = {},
  ) {
    this.values = values;
    this.env = options.env ?? process.env;
    this.logger = options.logger ?? new CliLogger();
  }
  input(name: string): string | undefined {
    return this.values[name];
  }
  setOutput(name: string, value: string): void {
    this.outputs[name] = value;
  }
  summary(markdown: string): Promise<void> {
    this.summaries.push(markdown);
    return Promise.resolve();
  }
  fail(message: string): void {
    this.failure = message;
    this.logger.error(message);
  }
  saveState(): void {}
  getState(): string {
    return '';
  }
  idToken(): Promise<string> {
    return Promise.reject(
      new Error(
        'GitHub OIDC tokens exist only inside GitHub Actions; on a terminal use `--auth token` with NIKS3_API_TOKEN',
      ),
    );
  }
}
