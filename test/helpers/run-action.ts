/**
 * Runs an action bundle from dist/ the way a GitHub runner does: a child process of this Node (24)
 * with INPUT_* variables, GITHUB_OUTPUT / GITHUB_STATE / GITHUB_STEP_SUMMARY / GITHUB_ENV files,
 * RUNNER_TEMP, repository variables and (optionally) a local OIDC token service. Every run is
 * scanned for the secrets the test handed in; a leak fails the test.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { OidcIssuer } from './oidc-issuer.js';
import { filesUnder, findLeaks } from './secret-scan.js';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const GUARD = join(ROOT, 'test', 'helpers', 'loopback-guard.mjs');

export interface RunActionOptions {
  readonly inputs?: Record<string, string | undefined>;
  readonly env?: Record<string, string | undefined>;
  /** Provide an OIDC token service (as with `permissions: id-token: write`). */
  readonly oidc?: OidcIssuer | undefined;
  /** Secrets to scan every output for (the helper also adds every OIDC token minted). */
  readonly secrets?: readonly string[];
  /** State saved by the main step (for post). */
  readonly state?: Record<string, string>;
  readonly entry?: 'main' | 'post';
  readonly timeoutMs?: number;
  readonly cwd?: string;
  /** Send this signal to the child after `ms` (a cancelled job). */
  /**
   * `when` is asked on every stdout chunk and every 25 ms, so it may also look at a fake's state
   * (e.g. "the first upload reached the fake").
   */
  readonly kill?: {
    readonly afterMs?: number;
    readonly signal: NodeJS.Signals;
    readonly when?: (stdout: string) => boolean;
  };
  /** Skip the leak check (only for the test that plants a leak on purpose). */
  readonly allowLeaks?: boolean;
  /**
   * A job directory shared by the steps of one job (see run-job.ts): RUNNER_TEMP and the workspace
   * live there and outlive the step; each step still gets its own GITHUB_* files. Every file under
   * RUNNER_TEMP is scanned for the secrets too.
   */
  readonly jobDir?: string;
}

export interface ActionRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly outputs: Record<string, string>;
  readonly state: Record<string, string>;
  readonly summary: string;
  readonly exportedEnv: Record<string, string>;
  /** Messages of ::error:: lines. */
  readonly errors: string[];
  readonly warnings: string[];
  readonly durationMs: number;
  readonly leaks: ReturnType<typeof findLeaks>;
}

/** Parses the `name<<DELIM\nvalue\nDELIM` (and `name=value`) file commands. */
export function parseFileCommands(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const name = heredoc[1] ?? '';
      const delimiter = heredoc[2] ?? '';
      const value: string[] = [];
      i++;
      while (i < lines.length && lines[i] !== delimiter) value.push(lines[i++] ?? '');
      result[name] = value.join('\n');
    } else if (line.includes('=')) {
      const at = line.indexOf('=');
      result[line.slice(0, at)] = line.slice(at + 1);
    }
  }
  return result;
}

function workflowMessages(stdout: string, kind: string): string[] {
  const out: string[] = [];
  for (const line of stdout.split('\n')) {
    const match = new RegExp(`^::${kind}(?: [^:]*)?::(.*)$`).exec(line);
    if (match) out.push((match[1] ?? '').replace(/%0A/g, '\n').replace(/%0D/g, '\r').replace(/%25/g, '%'));
  }
  return out;
}

/** The defaults action.yml declares (a runner passes them as INPUT_* when the workflow gives none). */
export function declaredDefaults(action: string): Record<string, string> {
  const file = join(ROOT, 'actions', action, 'action.yml');
  if (!existsSync(file)) return {};
  const metadata = parseYaml(readFileSync(file, 'utf8')) as {
    inputs?: Record<string, { default?: unknown }>;
  };
  const defaults: Record<string, string> = {};
  for (const [name, input] of Object.entries(metadata.inputs ?? {})) {
    if (input.default === undefined || input.default === null) continue;
    // Runner expressions such as `${{ github.token }}` are evaluated by the runner; here they stay unset.
    const value = input.default;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    if (!text.includes('${{')) defaults[name] = text;
  }
  return defaults;
}

/** The `runs:` of an action.yml: a post step must be declared there to be run. */
export function declaredRuns(action: string): { main?: string; post?: string; 'post-if'?: string } {
  const file = join(ROOT, 'actions', action, 'action.yml');
  if (!existsSync(file)) return {};
  const metadata = parseYaml(readFileSync(file, 'utf8')) as { runs?: Record<string, string> };
  return metadata.runs ?? {};
}

export async function runAction(action: string, options: RunActionOptions = {}): Promise<ActionRun> {
  if (options.jobDir) mkdirSync(options.jobDir, { recursive: true });
  const dir = mkdtempSync(join(options.jobDir ?? tmpdir(), `nix-cache-runner-${action}-`));
  const files = {
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary'),
    GITHUB_ENV: join(dir, 'env'),
    GITHUB_PATH: join(dir, 'path'),
  };
  for (const file of Object.values(files)) writeFileSync(file, '');
  const runnerTemp = join(options.jobDir ?? dir, 'runner-temp');
  mkdirSync(runnerTemp, { recursive: true });
  const workspace = options.cwd ?? join(options.jobDir ?? dir, 'workspace');
  mkdirSync(workspace, { recursive: true });

  const env: Record<string, string> = {};
  for (const key of [
    'PATH',
    'HOME',
    'LANG',
    'TZ',
    'NIX_REMOTE',
    'NIX_CONF_DIR',
    'NIX_PATH',
    'TMPDIR',
    'USER',
  ]) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  Object.assign(env, files, {
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    RUNNER_TEMP: runnerTemp,
    RUNNER_OS: 'Linux',
    // Debug logging on, as in a re-run with debug logging: the secret scan then reads the debug lines too.
    RUNNER_DEBUG: '1',
    GITHUB_WORKSPACE: workspace,
    GITHUB_REPOSITORY: 'octo-org/octo-repo',
    GITHUB_REPOSITORY_ID: '2000002',
    GITHUB_REPOSITORY_OWNER: 'octo-org',
    GITHUB_REPOSITORY_OWNER_ID: '1000001',
    GITHUB_REF: 'refs/heads/main',
    GITHUB_REF_NAME: 'main',
    GITHUB_REF_TYPE: 'branch',
    GITHUB_SHA: 'a'.repeat(40),
    GITHUB_RUN_ID: '3000003',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_EVENT_NAME: 'push',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_API_URL: 'http://127.0.0.1:9/api',
    GITHUB_WORKFLOW: 'ci',
    GITHUB_JOB: 'test',
    GITHUB_ACTOR: 'octocat',
    NODE_OPTIONS: `--import=${GUARD}`,
  });
  if (options.oidc) Object.assign(env, options.oidc.env());
  // As a runner does: every input declared with a default in action.yml is set, then the given ones.
  const inputEnv = (name: string): string => `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
  for (const [name, value] of Object.entries(declaredDefaults(action))) env[inputEnv(name)] = value;
  for (const [name, value] of Object.entries(options.inputs ?? {})) {
    if (value !== undefined) env[inputEnv(name)] = value;
  }
  for (const [name, value] of Object.entries(options.state ?? {})) env[`STATE_${name}`] = value;
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }

  if (options.entry === 'post' && !declaredRuns(action).post) {
    throw new Error(`actions/${action}/action.yml declares no post step (runs.post)`);
  }
  const script = join(ROOT, 'dist', action, ...(options.entry === 'post' ? ['post'] : []), 'index.js');
  const started = Date.now();
  const child = spawn(process.execPath, [script], { cwd: workspace, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (options.kill?.when?.(stdout) && !child.killed) child.kill(options.kill.signal);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timers: NodeJS.Timeout[] = [];
  if (options.kill?.when) {
    const { signal, when } = options.kill;
    const poll = setInterval(() => {
      if (!child.killed && child.exitCode === null && when(stdout)) child.kill(signal);
    }, 25);
    timers.push(poll);
  }
  if (options.kill?.afterMs !== undefined) {
    const { signal, afterMs } = options.kill;
    timers.push(setTimeout(() => child.kill(signal), afterMs));
  }
  const timeoutMs = options.timeoutMs ?? 120_000;
  timers.push(setTimeout(() => child.kill('SIGKILL'), timeoutMs));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (c, s) => resolve([c, s])),
  );
  for (const timer of timers) clearTimeout(timer);

  const read = (file: string): string => readFileSync(file, 'utf8');
  const outputs = parseFileCommands(read(files.GITHUB_OUTPUT));
  const state = parseFileCommands(read(files.GITHUB_STATE));
  const summary = read(files.GITHUB_STEP_SUMMARY);
  const exportedEnv = parseFileCommands(read(files.GITHUB_ENV));

  const secrets = [...(options.secrets ?? []), ...(options.oidc?.minted ?? [])];
  const leaks = findLeaks(secrets, {
    stdout,
    stderr,
    outputs: JSON.stringify(outputs),
    state: JSON.stringify(state),
    summary,
    env: JSON.stringify(exportedEnv),
    ...filesUnder(runnerTemp, 'RUNNER_TEMP'),
  });
  rmSync(dir, { recursive: true, force: true });
  const run: ActionRun = {
    code,
    signal,
    stdout,
    stderr,
    outputs,
    state,
    summary,
    exportedEnv,
    errors: workflowMessages(stdout, 'error'),
    warnings: workflowMessages(stdout, 'warning'),
    durationMs: Date.now() - started,
    leaks,
  };
  if (leaks.length > 0 && !options.allowLeaks) {
    throw new Error(
      `secret leak in ${action}: ${leaks.map((l) => `secret #${l.secretIndex} (${l.form}) in ${l.where}`).join(', ')}`,
    );
  }
  if (code === null && signal === 'SIGKILL' && !options.kill) {
    throw new Error(
      `${action} did not finish within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`,
    );
  }
  return run;
}
