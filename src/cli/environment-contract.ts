/**
 * The environment contract of the original stack (shared/spec/stack.md): which variable holds
 * which secret, which actions' inputs it feeds, and the original's `bws run` re-exec when the
 * variables are missing and Bitwarden Secrets Manager is set up. Secrets never come from flags.
 */
import { spawnSync } from 'node:child_process';
import { ConfigurationError } from '../core/errors.js';

/** Variable -> the input names it feeds (per action: provision, deploy, push, gc, status). */
export const SECRET_ENV: Readonly<Record<string, readonly string[]>> = {
  CLOUDFLARE_API_TOKEN: ['cloudflare-api-token'],
  FLY_API_TOKEN: ['fly-api-token'],
  NIKS3_API_TOKEN: ['niks3-api-token', 'token'],
  NIKS3_DB: ['niks3-db', 'database-url'],
  NIKS3_S3_ACCESS_KEY: ['niks3-s3-access-key', 's3-access-key'],
  NIKS3_S3_SECRET_KEY: ['niks3-s3-secret-key', 's3-secret-key'],
  NIKS3_SIGNING_KEY: ['niks3-signing-key'],
};

/** What each variable is, for help texts. */
export const SECRET_ENV_DESCRIPTIONS: Readonly<Record<string, string>> = {
  CLOUDFLARE_API_TOKEN: 'token that can manage R2 buckets and R2 custom domains',
  FLY_API_TOKEN: 'token that can create, deploy and destroy the app',
  NIKS3_API_TOKEN: 'random bearer token of the niks3 server (admin: gc; push on a terminal)',
  NIKS3_DB: 'PostgreSQL connection string (Neon)',
  NIKS3_S3_ACCESS_KEY: 'R2 S3 API access key id',
  NIKS3_S3_SECRET_KEY: 'R2 S3 API secret access key',
  NIKS3_SIGNING_KEY: 'private Nix signing key, the output of `nix key generate-secret --key-name NAME-1`',
};

/** The variable that feeds an input, if any. */
export function envVariableOf(input: string): string | undefined {
  return Object.entries(SECRET_ENV).find(([, inputs]) => inputs.includes(input))?.[0];
}

/** The variables of `needed` that are unset or empty. */
export function missingVariables(needed: readonly string[], env: NodeJS.ProcessEnv): string[] {
  return [...new Set(needed)].filter((name) => !env[name]?.trim());
}

export function missingVariablesError(
  command: string,
  missing: readonly string[],
  afterBws: boolean,
): ConfigurationError {
  const plural = missing.length > 1;
  const list = missing.map((name) => `  ${name}: ${SECRET_ENV_DESCRIPTIONS[name] ?? ''}`).join('\n');
  const fix = afterBws
    ? 'They are not in the Bitwarden Secrets Manager project either (BWS_PROJECT_ID): add them there, or export them.'
    : 'Export them (never put secrets on the command line), or set BWS_ACCESS_TOKEN and BWS_PROJECT_ID with `bws` on PATH to read them from Bitwarden Secrets Manager.';
  return new ConfigurationError(
    `nix-cache ${command} needs the environment variable${plural ? 's' : ''} ${missing.join(', ')}, which ${plural ? 'are' : 'is'} not set:\n${list}\n${fix}`,
  );
}

/** Set in the environment of the re-run, so it never loops. */
export const BWS_REEXEC_MARK = 'NIX_CACHE_BWS_REEXEC';

/**
 * Re-runs this command under `bws run` (the original's secret injection) when BWS_ACCESS_TOKEN and
 * BWS_PROJECT_ID are set and `bws` is on PATH. Returns its exit code, or undefined when that is not
 * possible (the caller then reports the missing variables). The access token reaches bws by env only.
 */
export function bwsReexec(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  script: string | undefined,
): number | undefined {
  if (env[BWS_REEXEC_MARK] || !env['BWS_ACCESS_TOKEN'] || !env['BWS_PROJECT_ID'] || !script) return undefined;
  const which = spawnSync('sh', ['-c', 'command -v bws'], { encoding: 'utf8', env });
  if (which.status !== 0) return undefined;
  // `bws run` joins its arguments with spaces and hands them to `sh -c`, so each one is quoted.
  const command = [process.execPath, script, ...argv].map(shellQuote).join(' ');
  const child = spawnSync('bws', ['run', '--project-id', env['BWS_PROJECT_ID'], '--', command], {
    stdio: 'inherit',
    env: { ...env, [BWS_REEXEC_MARK]: '1' },
  });
  return child.status ?? 1;
}

/** Quotes one argument for `sh -c`. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
