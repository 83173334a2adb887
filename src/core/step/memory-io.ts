import { MemoryLogger } from '../logger.js';
import type { StepIO } from './step-io.js';

/** A StepIO held in memory: for unit tests of run(deps) and for the CLI's library use. */
export class MemoryStepIO implements StepIO {
  readonly logger = new MemoryLogger();
  readonly outputs = new Map<string, string>();
  readonly state = new Map<string, string>();
  /** Variables exported for the rest of the job. */
  readonly exported = new Map<string, string>();
  readonly summaries: string[] = [];
  failure: string | undefined;
  readonly env: NodeJS.ProcessEnv;
  readonly hasPostStep: boolean;
  private readonly inputs: Record<string, string>;
  private readonly minter: ((audience: string) => Promise<string>) | undefined;

  constructor(
    options: {
      inputs?: Record<string, string>;
      env?: NodeJS.ProcessEnv;
      idToken?: (audience: string) => Promise<string>;
      hasPostStep?: boolean;
    } = {},
  ) {
    this.inputs = options.inputs ?? {};
    this.env = options.env ?? {};
    this.minter = options.idToken;
    this.hasPostStep = options.hasPostStep ?? false;
  }
  input(name: string): string | undefined {
    return this.inputs[name];
  }
  setOutput(name: string, value: string): void {
    this.outputs.set(name, value);
  }
  summary(markdown: string): Promise<void> {
    this.summaries.push(markdown);
    return Promise.resolve();
  }
  fail(message: string): void {
    this.failure = message;
  }
  saveState(name: string, value: string): void {
    this.state.set(name, value);
  }
  exportVariable(name: string, value: string): void {
    this.exported.set(name, value);
  }
  getState(name: string): string {
    return this.state.get(name) ?? '';
  }
  idToken(audience: string): Promise<string> {
    if (!this.minter) return Promise.reject(new Error('no OIDC token in this context'));
    return this.minter(audience);
  }
}
