/** The push action's inputs as one readonly typed object, with the cross-field checks. */
import type { PushTuning } from '../../core/push/push-closure.js';
import { normaliseBaseUrl } from '../../core/settings/values.js';
import { readAuth } from '../common-inputs.js';
import { ConfigurationError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { InputReader } from '../../core/settings/input-reader.js';

/**
 * The mode rule: `installables` or `paths` given -> `explicit` (push them in this step); else
 * `pull-only: true` -> `pull-only`; else `mode` (`auto` picks `watch` when a post-build hook can be
 * installed, `scan` when not; decided in the main step, which knows the Nix installation).
 */
export type RequestedMode = 'explicit' | 'pull-only' | 'auto' | 'watch' | 'scan';

export interface PushInputs {
  readonly requestedMode: RequestedMode;
  readonly drainTimeoutMs: number;
  readonly serverUrl: string;
  readonly installables: readonly string[];
  readonly paths: readonly string[];
  readonly auth: 'oidc' | 'token';
  readonly token: string | undefined;
  readonly audience: string;
  /** The tuning of every push this job makes. */
  readonly tuning: PushTuning;
  readonly pin: string | undefined;
  readonly verify: boolean;
  readonly verifyS3: boolean;
  readonly cacheUrl: string | undefined;
  readonly connectTimeoutMs: number;
  readonly onFailure: 'fail' | 'warn';
  /** True when `on-failure` was set explicitly (not the default). */
  readonly onFailureGiven: boolean;
}

export function readPushInputs(inputs: InputReader, logger: Logger, hasPostStep = true): PushInputs {
  const serverUrl = inputs.requiredUrl('server-url');
  const installables = inputs.lines('installables');
  const paths = inputs.lines('paths');
  const explicit = installables.length > 0 || paths.length > 0;
  const mode = inputs.optional('mode') ?? 'auto';
  const pullOnly = inputs.boolean('pull-only');
  if (!explicit && !hasPostStep) {
    throw new ConfigurationError(
      "Input 'paths' or 'installables' is required: nothing to push. Set `paths:` to store paths or `./result` links, or `installables:` to e.g. `.#default`.",
    );
  }
  if (explicit && mode !== 'auto') {
    throw new ConfigurationError(
      `Input 'mode' is "${mode}", but 'paths'/'installables' are given, which push them in this step (explicit mode). Remove \`mode:\`, or remove \`paths:\`/\`installables:\` to push what the job builds.`,
    );
  }
  if (explicit && pullOnly) {
    throw new ConfigurationError(
      "Input 'pull-only' is true, but 'paths'/'installables' are given to push. Remove `pull-only: true` to push them, or remove `paths:`/`installables:` to only pull from the cache.",
    );
  }
  const requestedMode: RequestedMode = explicit
    ? 'explicit'
    : pullOnly
      ? 'pull-only'
      : (mode as 'auto' | 'watch' | 'scan');
  // Pull-only needs no credentials: a missing token is fine there.
  const { auth, token } =
    requestedMode === 'pull-only' && !inputs.optional('token') && inputs.optional('auth') === 'token'
      ? { auth: 'token' as const, token: undefined }
      : readAuth(inputs, logger);
  for (const path of paths) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path) || path.includes('#')) {
      throw new ConfigurationError(
        `Input 'paths' has the line "${path}", which is not a filesystem path: put flake references and installables under \`installables:\`.`,
      );
    }
  }
  return {
    requestedMode,
    drainTimeoutMs: inputs.integer('drain-timeout') * 1000,
    serverUrl,
    installables,
    paths,
    auth,
    token,
    audience: inputs.optional('audience') ?? serverUrl,
    tuning: {
      concurrency: inputs.integer('max-concurrent-uploads'),
      compressionLevel: inputs.integer('compression-level'),
      upstream: {
        enabled: inputs.boolean('upstream-filter'),
        caches: inputs.lines('upstream-caches').map(normaliseBaseUrl),
        keyNames: inputs.lines('upstream-keys'),
      },
      filter: {
        include: inputs.lines('include'),
        exclude: inputs.lines('exclude'),
        maxPathSize: inputs.size('max-path-size'),
      },
    },
    pin: inputs.optional('pin'),
    verify: inputs.boolean('verify'),
    verifyS3: inputs.boolean('verify-s3'),
    cacheUrl: inputs.url('cache-url'),
    connectTimeoutMs: inputs.integer('connect-timeout') * 1000,
    onFailure: (inputs.optional('on-failure') ?? 'fail') as 'fail' | 'warn',
    onFailureGiven: inputs.optional('on-failure') !== undefined,
  };
}
