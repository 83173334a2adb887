/** The deploy inputs as one typed object; every cross-field check happens here, before any request. */
import { normaliseBaseUrl } from '../../core/settings/values.js';
import { ConfigurationError } from '../../core/errors.js';
import { maskSecret, type Logger } from '../../core/logger.js';
import type { DeploySettings } from '../../core/fly/desired-state.js';
import { parseFlyToken } from '../../core/fly/auth-header.js';
import { parseMemoryMb, vmSizeProblem } from '../../core/fly/machine-config.js';
import { parseSecretKey } from '../../core/nix/signing-key.js';
import { missingMessage, type InputReader } from '../../core/settings/input-reader.js';

export interface DeployInputs {
  readonly mode: 'apply' | 'plan' | 'destroy';
  readonly app: string;
  readonly flyToken: string;
  readonly flyApiUrl: string;
  readonly flyGraphqlUrl: string;
  readonly waitTimeoutMs: number;
  /** For apply and plan; undefined for destroy. */
  readonly settings: DeploySettings | undefined;
  /** `name:base64` derived from the signing key (apply and plan). */
  readonly publicKey: string | undefined;
}

/** Inputs that only `apply` and `plan` need (destroy must work without the server's secrets). */
const DEPLOY_ONLY = [
  'cache-url',
  'bucket-name',
  's3-endpoint',
  'niks3-api-token',
  'niks3-db',
  'niks3-s3-access-key',
  'niks3-s3-secret-key',
  'niks3-signing-key',
];

export function readDeployInputs(inputs: InputReader, env: NodeJS.ProcessEnv, logger: Logger): DeployInputs {
  const mode = inputs.enum<'apply' | 'plan' | 'destroy'>('mode');
  const app = inputs.required('fly-app-name');
  const flyToken = inputs.required('fly-api-token');
  const token = parseFlyToken(flyToken);
  if (token.macaroons.length + token.userTokens.length === 0) {
    throw new ConfigurationError(
      "Input 'fly-api-token' holds no token: pass the whole output of `fly tokens create` (e.g. `FlyV1 fm2_…`).",
    );
  }
  const flyApiUrl = inputs.requiredUrl('fly-api-url');
  // A Machines API moved elsewhere (a proxy, a local stand-in) usually serves GraphQL beside it.
  // (Compared by value: a runner passes the declared defaults as if they were given.)
  const defaultUrl = (name: string): string => normaliseBaseUrl(inputs.spec(name).default ?? '');
  const graphqlInput = inputs.requiredUrl('fly-graphql-url');
  const flyGraphqlUrl =
    graphqlInput === defaultUrl('fly-graphql-url') && flyApiUrl !== defaultUrl('fly-api-url')
      ? `${flyApiUrl}/graphql`
      : graphqlInput;
  const common = {
    mode,
    app,
    flyToken,
    flyApiUrl,
    flyGraphqlUrl,
    waitTimeoutMs: inputs.integer('wait-timeout') * 1000,
  };

  if (mode === 'destroy') {
    const confirm = inputs.optional('confirm');
    if (confirm !== app) {
      throw new ConfigurationError(
        `Input 'confirm' must equal fly-app-name ('${app}') for mode: destroy${confirm ? ` (it is '${confirm}')` : ''}. Nothing was changed. Set \`confirm: ${app}\` to delete the app with its machine, IPs and secrets.`,
      );
    }
    return { ...common, settings: undefined, publicKey: undefined };
  }

  const missing = DEPLOY_ONLY.filter((name) => inputs.optional(name) === undefined);
  if (missing.length > 0) {
    throw new ConfigurationError(missing.map((name) => missingMessage(inputs.spec(name))).join('\n'));
  }

  const cpuKind = inputs.enum<'shared' | 'performance'>('fly-vm-cpu-kind');
  const cpus = inputs.integer('fly-vm-cpus');
  const memoryText = inputs.required('fly-vm-memory');
  const memoryMb = parseMemoryMb(memoryText);
  const sizeProblem = memoryMb === undefined ? 'not a size' : vmSizeProblem(cpuKind, cpus, memoryMb);
  if (sizeProblem) {
    throw new ConfigurationError(
      `Input 'fly-vm-memory' has an invalid value "${memoryText}" (${sizeProblem}): expected a multiple of 256 MB such as \`256mb\`, \`1gb\` or \`512\`, within what fly-vm-cpus and fly-vm-cpu-kind allow.`,
    );
  }

  const signingKey = inputs.required('niks3-signing-key');
  const keyBody = signingKey.slice(signingKey.indexOf(':') + 1).trim();
  maskSecret(logger, keyBody);
  let publicKey: string;
  try {
    const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(keyBody) ? Buffer.from(keyBody, 'base64') : undefined;
    if (decoded && decoded.length !== 64) {
      throw new Error(`it decodes to ${decoded.length} bytes, not the 64 bytes of an Ed25519 secret key`);
    }
    publicKey = parseSecretKey(signingKey).publicKey;
  } catch (error) {
    throw new ConfigurationError(
      `Input 'niks3-signing-key' is not a Nix signing secret key (value hidden): ${error instanceof Error ? error.message : String(error)}. Pass the whole output of \`nix key generate-secret --key-name NAME-1\` (\`NAME-1:base64\`, a 64-byte key).`,
    );
  }

  const db = inputs.required('niks3-db');
  let dbHost = '';
  try {
    dbHost = new URL(db).hostname;
  } catch {
    dbHost = '';
  }
  if (!dbHost) {
    throw new ConfigurationError(
      "Input 'niks3-db' is not a PostgreSQL URL with a host (value hidden): expected `postgresql://USER:PASSWORD@HOST/DB?sslmode=require`.",
    );
  }

  const serverUrl = inputs.url('server-url') ?? `https://${app}.fly.dev`;
  const ownerIds = inputs.given('oidc-github-owner-ids')
    ? inputs.lines('oidc-github-owner-ids')
    : /^\d+$/.test(env['GITHUB_REPOSITORY_OWNER_ID'] ?? '')
      ? [env['GITHUB_REPOSITORY_OWNER_ID'] ?? '']
      : [];

  const settings: DeploySettings = {
    app,
    orgSlug: inputs.optional('fly-org-slug'),
    region: inputs.required('fly-primary-region'),
    image: inputs.required('niks3-image'),
    cpuKind,
    cpus,
    memoryMb: memoryMb ?? 256,
    swapMb: inputs.integer('fly-swap-size-mb'),
    cacheUrl: inputs.requiredUrl('cache-url'),
    bucket: inputs.required('bucket-name'),
    s3Endpoint: inputs.required('s3-endpoint'),
    s3Region: inputs.required('r2-s3-region'),
    s3Concurrency: inputs.integer('niks3-s3-concurrency'),
    readProxy: inputs.boolean('niks3-enable-read-proxy'),
    oidc: false, // decided by the policy in desiredState()
    serverUrl,
    secrets: {
      apiToken: inputs.required('niks3-api-token'),
      db,
      s3AccessKey: inputs.required('niks3-s3-access-key'),
      s3SecretKey: inputs.required('niks3-s3-secret-key'),
      signingKey: signingKey.trim(),
    },
    oidcSubjectPatterns: inputs.lines('oidc-github-subject-patterns'),
    oidcOwnerIds: ownerIds,
    redeploy: inputs.boolean('redeploy'),
  };
  return { ...common, settings, publicKey };
}
