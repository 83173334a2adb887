/** The gc action's inputs as one typed object, with the cross-field checks made before any request. */
import { readAuth } from '../common-inputs.js';
import { ConfigurationError } from '../../core/errors.js';
import { oidcUnavailableReason } from '../../core/github/token-source.js';
import { maskSecret, type Logger } from '../../core/logger.js';
import type { InputReader } from '../../core/settings/input-reader.js';
import { parseGoDuration, normaliseBaseUrl } from '../../core/settings/values.js';

export interface GcInputs {
  readonly serverUrl: string;
  readonly auth: 'oidc' | 'token';
  /** For `auth: token`. */
  readonly token: string | undefined;
  readonly audience: string;
  /** Go durations, passed to niks3 as written. */
  readonly olderThan: string;
  readonly failedUploadsOlderThan: string;
  readonly force: boolean;
  readonly wait: boolean;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly prunePins: boolean;
  readonly keepPins: readonly string[];
  /** For `prune-pins`. */
  readonly githubToken: string | undefined;
  readonly repository: string | undefined;
  readonly githubApiUrl: string;
}

/** niks3 cuts durations to whole seconds in a 32-bit SQL interval (§6.1). */
const MAX_DURATION_MS = (2 ** 31 - 1) * 1000;

function duration(inputs: InputReader, name: string): string {
  const text = inputs.required(name);
  const ms = parseGoDuration(text) ?? 0;
  if (ms > MAX_DURATION_MS) {
    throw new ConfigurationError(
      `Input '${name}' has an invalid value "${text}" (too large): expected a Go duration of at most 596523h (niks3 keeps durations as 32-bit seconds).`,
    );
  }
  return text;
}

export function readGcInputs(inputs: InputReader, env: NodeJS.ProcessEnv, logger: Logger): GcInputs {
  const serverUrl = inputs.requiredUrl('server-url');
  const { auth, token } = readAuth(inputs, logger);
  const olderThan = duration(inputs, 'older-than');
  const failedUploadsOlderThan = duration(inputs, 'failed-uploads-older-than');
  const force = inputs.boolean('force');
  const confirm = inputs.optional('confirm');
  if (force && confirm !== 'force') {
    throw new ConfigurationError(
      "Input 'force' is true but input 'confirm' is not \"force\": a forced GC deletes unreachable objects at once, even ones uploads in flight still need. Set `confirm: force` to mean it, or drop `force`.",
    );
  }
  if (auth === 'oidc') {
    const reason = oidcUnavailableReason(env);
    if (reason) throw new ConfigurationError(`gc with \`auth: oidc\`: ${reason}`);
  }
  const prunePins = inputs.boolean('prune-pins');
  let githubToken = inputs.optional('github-token');
  // The action.yml default is `${{ github.token }}`; outside a runner that text arrives literally.
  if (githubToken?.startsWith('${{')) githubToken = undefined;
  githubToken ??= env['GITHUB_TOKEN'] || undefined;
  maskSecret(logger, githubToken);
  const repository = env['GITHUB_REPOSITORY'] || undefined;
  if (prunePins && !githubToken) {
    throw new ConfigurationError(
      "Input 'prune-pins' needs 'github-token' (the job token `${{ github.token }}` with `contents: read`) to list branches and tags.",
    );
  }
  if (prunePins && !repository) {
    throw new ConfigurationError(
      "Input 'prune-pins' needs GITHUB_REPOSITORY (owner/name) to know which repository's branches and tags name the pins.",
    );
  }
  return {
    serverUrl,
    auth,
    token,
    audience: inputs.optional('audience') ?? serverUrl,
    olderThan,
    failedUploadsOlderThan,
    force,
    wait: inputs.boolean('wait'),
    timeoutMs: inputs.integer('timeout') * 60_000,
    connectTimeoutMs: inputs.integer('connect-timeout') * 1000,
    prunePins,
    keepPins: inputs.lines('keep-pins'),
    githubToken,
    repository,
    githubApiUrl: normaliseBaseUrl(env['GITHUB_API_URL'] || 'https://api.github.com'),
  };
}
