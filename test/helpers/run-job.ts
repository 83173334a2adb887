/**
 * One runner job of several steps for an action with a post step: `main()` runs the bundle's main
 * entry, `run()` stands for a later `run:` step (the environment the job exported through
 * GITHUB_ENV applies to it), `post()` runs the post entry with the state the main step saved (as
 * `STATE_*`), the same inputs and the exported environment. RUNNER_TEMP and the workspace are
 * shared by the steps and scanned for secrets after each one. `close()` kills any process group the
 * job left behind (a background uploader) and removes the job's directory.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OidcIssuer } from './oidc-issuer.js';
import { runAction, type ActionRun, type RunActionOptions } from './run-action.js';

export interface JobOptions {
  readonly inputs?: Record<string, string | undefined>;
  /** Environment of every step (on top of the runner's). */
  readonly env?: Record<string, string | undefined>;
  readonly oidc?: OidcIssuer;
  readonly secrets?: readonly string[];
}

export interface CommandRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly startedAt: number;
  readonly endedAt: number;
}

export class RunnerJob {
  readonly dir: string;
  readonly runnerTemp: string;
  state: Record<string, string> = {};
  exported: Record<string, string> = {};
  readonly runs: ActionRun[] = [];
  private readonly action: string;
  private readonly options: JobOptions;
  private readonly groups = new Set<number>();

  constructor(action: string, options: JobOptions = {}) {
    this.action = action;
    this.options = options;
    this.dir = mkdtempSync(join(tmpdir(), `nix-cache-job-${action}-`));
    this.runnerTemp = join(this.dir, 'runner-temp');
  }

  private async step(entry: 'main' | 'post', extra: Partial<RunActionOptions>): Promise<ActionRun> {
    const run = await runAction(this.action, {
      ...(this.options.inputs ? { inputs: this.options.inputs } : {}),
      ...(this.options.oidc ? { oidc: this.options.oidc } : {}),
      secrets: this.options.secrets ?? [],
      env: { ...this.options.env, ...this.exported, ...extra.env },
      entry,
      state: entry === 'post' ? this.state : {},
      jobDir: this.dir,
      ...(extra.timeoutMs ? { timeoutMs: extra.timeoutMs } : {}),
      ...(extra.kill ? { kill: extra.kill } : {}),
    });
    this.runs.push(run);
    if (entry === 'main') {
      this.state = run.state;
      this.exported = { ...this.exported, ...run.exportedEnv };
      const pid = this.uploaderPid();
      if (pid) this.groups.add(pid);
    }
    return run;
  }

  main(extra: Partial<RunActionOptions> = {}): Promise<ActionRun> {
    return this.step('main', extra);
  }

  post(extra: Partial<RunActionOptions> = {}): Promise<ActionRun> {
    return this.step('post', extra);
  }

  /** The background uploader's pid from the saved state, if any. */
  uploaderPid(): number | undefined {
    const job = this.state['job'];
    if (!job) return undefined;
    return (JSON.parse(job) as { uploaderPid?: number }).uploaderPid;
  }

  /** The environment a `run:` step of this job sees. */
  stepEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, RUNNER_TEMP: this.runnerTemp };
    for (const [key, value] of Object.entries({ ...this.options.env, ...this.exported, ...extra })) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
    return env;
  }

  /** A `run:` step: a command with the job's environment. */
  run(
    cmd: string,
    args: readonly string[],
    extra: Record<string, string | undefined> = {},
  ): Promise<CommandRun> {
    const startedAt = Date.now();
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, [...args], { env: this.stepEnv(extra), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      child.on('error', reject);
      child.on('close', (code) =>
        resolve({ code: code ?? 1, stdout, stderr, startedAt, endedAt: Date.now() }),
      );
    });
  }

  close(): void {
    for (const pid of this.groups) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** True while a process with this pid exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
