/**
 * Running programs, Nix above all: `execFile` (no shell, output collected, stdin fed), the feature
 * flags every `nix` call needs, the options shared by the Nix commands, running one (`runNix`, and
 * `nixStdout` for one that must succeed), and how Nix's own error output is shortened for a message.
 */
import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';

export interface ExecOptions {
  /** Written to the child's stdin (then closed). */
  readonly input?: string;
  /** The child's whole environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly cwd?: string | undefined;
}
export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}
export type ExecFn = (cmd: string, args: string[], opts?: ExecOptions) => Promise<ExecResult>;

/** Runs a program without a shell and collects its output. Rejects only when it cannot be started. */
export const execFile: ExecFn = (cmd, args, opts = {}) =>
  new Promise<ExecResult>((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const out = new StringDecoder('utf8');
    const err = new StringDecoder('utf8');
    let stdout = '';
    let stderr = '';
    let failed = false;
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += out.write(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += err.write(chunk);
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      failed = true;
      const hint = error.code === 'ENOENT' ? ` (is ${cmd} installed and on PATH?)` : '';
      reject(new Error(`could not run ${cmd}: ${error.message}${hint}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      if (failed) return;
      stdout += out.end();
      stderr += err.end();
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout,
        stderr: signal && code === null ? `${stderr}killed by ${signal}\n` : stderr,
      });
    });
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {}); // a child that exits without reading stdin
      child.stdin.end(opts.input);
    }
  });

export const NIX_COMMAND_FEATURES = ['--extra-experimental-features', 'nix-command'];
export const NIX_FLAKE_FEATURES = ['--extra-experimental-features', 'nix-command flakes'];

export interface NixCommandOptions {
  readonly exec?: ExecFn;
  /** Extra arguments for nix (e.g. `--store`, `--option k v`), placed before `--`. */
  readonly nixArgs?: readonly string[];
  /** The nix program (default `nix`). */
  readonly nix?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/** Runs `nix <args…> <options.nixArgs…> -- <operands…>`; `args` are the feature flags, command and flags. */
export function runNix(
  args: readonly string[],
  operands: readonly string[],
  options: NixCommandOptions,
): Promise<ExecResult> {
  const argv = [...args, ...(options.nixArgs ?? []), '--', ...operands];
  return (options.exec ?? execFile)(options.nix ?? 'nix', argv, { env: options.env, cwd: options.cwd });
}

/**
 * `runNix` for a command that must succeed: its stdout, or an Error `<what> failed for <operands>
 * (exit code N): <the last lines of its stderr>`.
 */
export async function nixStdout(
  what: string,
  args: readonly string[],
  operands: readonly string[],
  options: NixCommandOptions,
): Promise<string> {
  const result = await runNix(args, operands, options);
  if (result.code !== 0) {
    throw new Error(
      `${what} failed for ${describePaths(operands)} (exit code ${result.code}): ${lastLines(result.stderr) || 'no error output'}`,
    );
  }
  return result.stdout;
}

/** The last lines of Nix's error output, without its download warnings. */
export function lastLines(text: string, count = 20): string {
  const lines = text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '' && !/^warning: (error: )?unable to download '/.test(l));
  return lines.slice(-count).join('\n');
}

/** Up to three paths, then a count. */
export function describePaths(paths: readonly string[]): string {
  if (paths.length <= 3) return paths.join(', ');
  return `${paths.slice(0, 3).join(', ')} and ${paths.length - 3} more`;
}

/** A JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
