/** The push action's inputs as one readonly typed object, with the cross-field checks. */
import { normaliseBaseUrl } from '../../core/settings/values.js';
import { readAuth } from '../common-inputs.js';
import { ConfigurationError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { InputReader } from '../../core/settings/input-reader.js';

export interface PushInputs {
  readonly serverUrl: string;
  readonly installables: readonly string[];
  readonly paths: readonly string[];
  readonly auth: 'oidc' | 'token';
  readonly token: string | undefined;
  readonly audience: string;
  readonly maxConcurrentUploads: number;
  readonly compressionLevel: number;
  readonly upstreamFilter: boolean;
  readonly upstreamCaches: readonly string[];
  readonly upstreamKeys: readonly string[];
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly maxPathSize: number;
  readonly pin: string | undefined;
  readonly verify: boolean;
  readonly verifyS3: boolean;
  readonly cacheUrl: string | undefined;
  readonly connectTimeoutMs: number;
  readonly onFailure: 'fail' | 'warn';
  /** True when `on-failure` was set explicitly (not the default). */
  readonly onFailureGiven: boolean;
}

export function readPushInputs(inputs: InputReader, logger: Logger): PushInputs {
  const serverUrl = inputs.requiredUrl('server-url');
  const installables = inputs.lines('installables');
  const paths = inputs.lines('paths');
  if (installables.length === 0 && paths.length === 0) {
    throw new ConfigurationError(
      "Input 'paths' or 'installables' is required: nothing to push. Set `paths:` to store paths or `./result` links, or `installables:` to e.g. `.#default`.",
    );
  }
  const { auth, token } = readAuth(inputs, logger);
  for (const path of paths) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path) || path.includes('#')) {
      throw new ConfigurationError(
        `Input 'paths' has the line "${path}", which is not a filesystem path: put flake references and installables under \`installables:\`.`,
      );
    }
  }
  return {
    serverUrl,
    installables,
    paths,
    auth,
    token,
    audience: inputs.optional('audience') ?? serverUrl,
    maxConcurrentUploads: inputs.integer('max-concurrent-uploads'),
    compressionLevel: inputs.integer('compression-level'),
    upstreamFilter: inputs.boolean('upstream-filter'),
    upstreamCaches: inputs.lines('upstream-caches').map(normaliseBaseUrl),
    upstreamKeys: inputs.lines('upstream-keys'),
    include: inputs.lines('include'),
    exclude: inputs.lines('exclude'),
    maxPathSize: inputs.size('max-path-size'),
    pin: inputs.optional('pin'),
    verify: inputs.boolean('verify'),
    verifyS3: inputs.boolean('verify-s3'),
    cacheUrl: inputs.url('cache-url'),
    connectTimeoutMs: inputs.integer('connect-timeout') * 1000,
    onFailure: (inputs.optional('on-failure') ?? 'fail') as 'fail' | 'warn',
    onFailureGiven: inputs.optional('on-failure') !== undefined,
  };
}
