/**
 * Runs the real `nix-cache` binary (`node bin/nix-cache.js`, which loads the dist/cli bundle) as a
 * child process, the way a user does: argv, an environment, a working directory. The bundle is
 * rebuilt first when any source is newer than it (one build at a time across jest workers). Every
 * run is scanned for the secrets the test hands in; a leak fails the test.
 *
 * For quick iteration only, `NIX_CACHE_TEST_CLI=source` runs src/cli/index.ts through Node's type
 * stripping instead (no bundle); CI always tests the binary.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/run-action.js';
import { findLeaks } from '../helpers/secret-scan.js';

const BIN = join(ROOT, 'bin', 'nix-cache.js');
const BUNDLE = join(ROOT, 'dist', 'cli', 'index.js');
const GUARD = join(ROOT, 'test', 'helpers', 'loopback-guard.mjs');
const FROM_SOURCE = process.env['NIX_CACHE_TEST_CLI'] === 'source';
const LOCK = join(tmpdir(), 'nix-cache-cli-bundle.lock');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function bundleAge(): number | undefined {
  try {
    return statSync(BUNDLE).mtimeMs;
  } catch {
    return undefined;
  }
}

/** Builds dist/cli when it is missing or older than src/ (`npm run bundle -- cli`). */
export async function ensureCliBundle(): Promise<void> {
  if (FROM_SOURCE) return;
  for (;;) {
    const built = bundleAge();
    if (built !== undefined && built >= newestSource(join(ROOT, 'src'))) return;
    try {
      mkdirSync(LOCK, { recursive: false });
    } catch {
      // Another worker is building; a lock older than 3 minutes was left by a crashed run.
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 180_000) rmdirSync(LOCK);
      } catch {
        // gone meanwhile
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      continue;
    }
    try {
      const result = spawnSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), 'cli'], {
        cwd: ROOT,
        encoding: 'utf8',
      });
      if (result.status !== 0) throw new Error(`npm run bundle -- cli failed:\n${result.stderr}`);
      return;
    } finally {
      rmdirSync(LOCK);
    }
  }
}

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON (for `--json`), when it is JSON. */
  readonly json:
    | {
        ok: boolean;
        command: string;
        outputs: Record<string, string>;
        steps: Record<string, Record<string, string>>;
        error?: string;
      }
    | undefined;
}

export interface CliRunOptions {
  /** The whole environment of the child besides PATH, HOME, TMPDIR and the network guard. */
  readonly env?: Record<string, string | undefined>;
  readonly cwd?: string;
  /** Scanned for in stdout and stderr. */
  readonly secrets?: readonly string[];
  readonly timeoutMs?: number;
}

/** Waits while another jest worker rebuilds the bundle (index.js is missing during a build). */
async function waitForBuild(): Promise<void> {
  const deadline = Date.now() + 180_000;
  while (!FROM_SOURCE && existsSync(LOCK) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 250));
}

export async function runCli(args: readonly string[], options: CliRunOptions = {}): Promise<CliRun> {
  await waitForBuild();
  const env: Record<string, string> = {};
  for (const key of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'NIX_REMOTE', 'USER']) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  env['NODE_OPTIONS'] = `--import=${GUARD}`;
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  const entry = FROM_SOURCE
    ? ['--import', join(ROOT, 'scripts', 'register-ts.mjs'), join(ROOT, 'src', 'cli', 'index.ts')]
    : [BIN];
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: options.cwd ?? ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  clearTimeout(timer);
  const leaks = findLeaks(options.secrets ?? [], { stdout, stderr });
  if (leaks.length > 0) {
    throw new Error(
      `secret leak from nix-cache ${args.join(' ')}: ${leaks.map((l) => `secret #${l.secretIndex} (${l.form}) in ${l.where}`).join(', ')}`,
    );
  }
  let json: CliRun['json'];
  try {
    json = JSON.parse(stdout) as CliRun['json'];
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr, json };
}
