/**
 * Real Nix for the job-wide push tests and the mode bench: a private Nix settings directory (no
 * substituter but the ones a job adds, no negative narinfo cache, single-user as root), derivation
 * files whose builds run through a job's environment (so the job's post-build hook sees them), and
 * helpers to read the fake's request log.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FakeNiks3 } from '../fakes/niks3/index.js';
import { uniqueSalt } from '../helpers/nix-fixtures.js';
import { storeHash } from './push-test-support.js';

export const FEATURES = ['--extra-experimental-features', 'nix-command'];

export interface NixSandbox {
  /** NIX_CONF_DIR and XDG_CACHE_HOME for every Nix call of the test (and the action's steps). */
  readonly env: Record<string, string>;
  readonly dir: string;
  close(): void;
}

export function nixSandbox(): NixSandbox {
  const dir = mkdtempSync(join(tmpdir(), 'nix-watch-'));
  const confDir = join(dir, 'conf');
  mkdirSync(confDir);
  writeFileSync(
    join(confDir, 'nix.conf'),
    [
      'build-users-group =',
      'sandbox = false',
      // Only the substituters a job adds (tests are loopback-only).
      'substituters =',
      'connect-timeout = 1',
      // A narinfo the cache did not have a second ago may be there now.
      'narinfo-cache-negative-ttl = 0',
      'experimental-features = nix-command',
      '',
    ].join('\n'),
  );
  const cache = join(dir, 'cache');
  mkdirSync(cache);
  return {
    dir,
    env: { NIX_CONF_DIR: confDir, XDG_CACHE_HOME: cache, XDG_CONFIG_HOME: join(dir, 'config') },
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface DerivationFile {
  readonly file: string;
  readonly attrs: readonly string[];
  /** attribute -> output path */
  readonly paths: Readonly<Record<string, string>>;
}

/**
 * Writes one derivation per script (builder `/bin/sh -e -c script`; `${other}` refers to another
 * attribute's output) into a file and evaluates the output paths (nothing is built).
 */
export function writeDerivations(
  dir: string,
  scripts: Record<string, string>,
  options: { salt?: string; prefix?: string; env?: Record<string, string> } = {},
): DerivationFile {
  const salt = options.salt ?? uniqueSalt();
  const prefix = options.prefix ?? 'w-';
  const attrs = Object.keys(scripts);
  const escape = (text: string): string =>
    text.replace(/''/g, "'''").replace(/\$\{(?![A-Za-z_][A-Za-z0-9_-]*\})/g, "''${");
  const body = attrs
    .map((name) => `  ${name} = mk "${prefix}${name}" ''\n${escape(scripts[name] ?? '')}\n'';`)
    .join('\n');
  const expr = `let\n  salt = "${salt}";\n  mk = name: script: derivation {\n    inherit name salt;\n    system = builtins.currentSystem;\n    builder = "/bin/sh";\n    args = [ "-e" "-c" script ];\n  };\nin rec {\n${body}\n}\n`;
  const file = join(dir, `drvs-${salt}.nix`);
  writeFileSync(file, expr);
  const out = execFileSync(
    'nix',
    [...FEATURES, 'eval', '--json', '-f', file, '--apply', 'builtins.mapAttrs (n: d: d.outPath)', ''],
    { encoding: 'utf8', env: { ...process.env, ...options.env } },
  );
  return { file, attrs, paths: JSON.parse(out) as Record<string, string> };
}

export interface NixRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `nix build --no-link -L -f file attrs…` with the given environment. */
export function nixBuild(
  drvs: DerivationFile,
  env: NodeJS.ProcessEnv,
  extraArgs: readonly string[] = [],
  attrs: readonly string[] = drvs.attrs,
): Promise<NixRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'nix',
      [...FEATURES, 'build', '--no-link', '-L', ...extraArgs, '-f', drvs.file, ...attrs],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** When the fake stored this path's narinfo (ms, from its request log), or undefined. */
export function narinfoStoredAt(fake: FakeNiks3, path: string): number | undefined {
  const key = `/${storeHash(path)}.narinfo`;
  const hit = fake.requests.find(
    (r) => r.target === 's3' && r.method === 'PUT' && r.path.endsWith(key) && r.status === 200,
  );
  return hit?.realAt;
}

export function inCache(fake: FakeNiks3, path: string): boolean {
  return fake.objectKeys().includes(`${storeHash(path)}.narinfo`);
}

/** Removes store paths (and nothing else): a fresh machine for the second job. */
export function deleteFromStore(paths: readonly string[]): void {
  execFileSync('nix-store', ['--delete', ...paths], { stdio: 'pipe' });
}

/**
 * Why Nix cannot run a post-build hook here, or undefined: one tiny real build with a script hook
 * decides. Nix enters its saved mount namespace (setns) before it runs a hook, and in a chroot that
 * puts the hook outside the chroot, where the hook file does not exist (ENOENT). A real machine,
 * container or runner is not a chroot; the fresh-machine check of the project's set-up is one.
 */
export function postBuildHookUnavailable(): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'hook-probe-'));
  try {
    const marker = join(dir, 'ran');
    writeFileSync(join(dir, 'hook'), `#!/bin/sh\n: > '${marker}'\n`, { mode: 0o755 });
    writeFileSync(join(dir, 'nix.conf'), `post-build-hook = ${join(dir, 'hook')}\n`);
    writeFileSync(
      join(dir, 'probe.nix'),
      `derivation { name = "hook-probe-${uniqueSalt()}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; }`,
    );
    let output = '';
    try {
      execFileSync('nix-build', [join(dir, 'probe.nix'), '--no-out-link', '--option', 'substituters', ''], {
        env: { ...process.env, NIX_USER_CONF_FILES: join(dir, 'nix.conf') },
        stdio: 'pipe',
      });
    } catch (error) {
      output = String((error as { stderr?: unknown }).stderr ?? error);
    }
    if (existsSync(marker)) return undefined;
    const why = /post-build-hook: error: ([^\n]*)/.exec(output)?.[1] ?? 'the hook did not run';
    return `Nix cannot run a post-build hook here (${why}); in a chroot Nix runs hooks in its mount namespace, outside the chroot`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `describe` where Nix can run a post-build hook; elsewhere skipped, saying why. */
export function describeWithHooks(name: string, fn: () => void): void {
  const reason = postBuildHookUnavailable();
  if (reason) {
    process.stderr.write(`skipped "${name}": ${reason}\n`);
    describe.skip(name, fn);
  } else describe(name, fn);
}
