/** Inputs shared by several actions, declared once. */
import { ConfigurationError, RemoteError, errorMessage } from '../core/errors.js';
import { OidcTokenSource, StaticTokenSource, type TokenSource } from '../core/github/token-source.js';
import { maskSecret, type Logger } from '../core/logger.js';
import type { StepIO } from '../core/step/step-io.js';
import type { InputReader } from '../core/settings/input-reader.js';
import type { InputSpec } from '../core/settings/input-spec.js';

export const SERVER_URL: InputSpec = {
  name: 'server-url',
  description: 'The niks3 write/admin URL, e.g. the `server-url` output of deploy (`https://<app>.fly.dev`).',
  type: 'url',
  required: true,
  example: 'https://my-cache.fly.dev',
};

export const AUTH: InputSpec = {
  name: 'auth',
  description:
    'How to authenticate to niks3: `oidc` (a GitHub OIDC token for `audience`, re-minted before it expires; needs `permissions: id-token: write`) or `token` (the static niks3 token in `token`).',
  type: 'enum',
  values: ['oidc', 'token'],
  // No default in action.yml: a runner passes declared defaults, and then "only `token` was given"
  // could not be told apart from an explicit `auth: oidc`.
  defaultText: '`oidc`, or `token` when only `token` is given',
};

export const TOKEN: InputSpec = {
  name: 'token',
  description:
    'The niks3 API token, for `auth: token`. Never put it on a command line; pass it from a secret.',
  type: 'string',
  secret: true,
};

export const AUDIENCE: InputSpec = {
  name: 'audience',
  description: 'Audience of the GitHub OIDC token; must equal the audience in the server OIDC policy.',
  type: 'string',
  defaultText: 'the server-url',
};

export const CONNECT_TIMEOUT: InputSpec = {
  name: 'connect-timeout',
  description:
    'Seconds to keep retrying while the server wakes up (Fly auto-stop, Neon suspend) before the first request is given up.',
  type: 'integer',
  default: '120',
  min: 1,
  max: 3600,
};

export const MODE: InputSpec = {
  name: 'mode',
  description:
    '`plan` reads and lists the changes only; `apply` converges; `destroy` removes (needs `confirm`).',
  type: 'enum',
  values: ['apply', 'plan', 'destroy'],
  default: 'apply',
};

/** The `auth` of push and gc: `oidc` unless only `token` is given; `token` needs a token. */
export function readAuth(
  inputs: InputReader,
  logger: Logger,
): { auth: 'oidc' | 'token'; token: string | undefined } {
  const token = inputs.optional('token');
  const given = inputs.optional('auth') as 'oidc' | 'token' | undefined;
  let auth = given ?? 'oidc';
  if (token && given === undefined) {
    logger.info("Input 'token' is set and 'auth' is not: authenticating with the token (`auth: token`).");
    auth = 'token';
  }
  if (auth === 'token' && !token) {
    throw new ConfigurationError(
      "Input 'token' is required with `auth: token`: pass the niks3 API token from a secret (`token: ${{ secrets.NIKS3_API_TOKEN }}`), or use `auth: oidc` with `permissions: id-token: write`.",
    );
  }
  return { auth, token };
}

/**
 * The niks3 credentials of push and gc, from what `readAuth` decided: the static token (masked), or
 * OIDC tokens for `audience` from `mint`, refreshed before they expire. A step mints through its
 * StepIO (`mintOidcToken`); the detached uploader, which has none, passes its own.
 */
export function niks3TokenSource(
  auth: { readonly auth: 'oidc' | 'token'; readonly token?: string | undefined; readonly audience: string },
  logger: Logger,
  mint: (audience: string) => Promise<string>,
): TokenSource {
  if (auth.auth === 'token') {
    maskSecret(logger, auth.token);
    return new StaticTokenSource(auth.token ?? '');
  }
  return new OidcTokenSource({ audience: auth.audience, mint, logger });
}

/** A GitHub OIDC token for `audience`, with an error that says what to fix when none can be had. */
export async function mintOidcToken(io: StepIO, audience: string): Promise<string> {
  try {
    return await io.idToken(audience);
  } catch (error) {
    throw new RemoteError(
      {
        remote: 'GitHub OIDC token service',
        operation: `mint a token for audience ${audience}`,
        detail: errorMessage(error),
        hint: 'the job needs `permissions: id-token: write`; if it has it, re-run the job (the token service may be failing)',
        transient: true,
      },
      { cause: error },
    );
  }
}
