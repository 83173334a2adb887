/**
 * Where each input of a step comes from on a terminal, highest first: what the command fixes
 * (e.g. `mode: plan` for `nix-cache plan`), flags, the environment contract (secrets), the stack
 * file, outputs of an earlier step (`up`: provision -> deploy), values derived from the stack as
 * the original did, the CLI's own defaults, and last the action's declared defaults.
 */
import { cacheHost, cacheUrl, s3EndpointHost, type R2Jurisdiction } from '../core/cloudflare/r2-names.js';
import type { Logger } from '../core/logger.js';
import { parseSecretKey } from '../core/nix/signing-key.js';
import type { InputSpec } from '../core/settings/input-spec.js';
import { stackBucketName, type Step } from './commands.js';
import { SECRET_ENV, envVariableOf } from './environment-contract.js';
import { STACK_SETTINGS, stackValue, type StackFile } from './stack-file.js';

export type InputValues = Record<string, string | undefined>;

/** Values derived from the stack file, per action (stack.md "Derived values"). */
function derivedValues(step: Step, stack: StackFile, env: NodeJS.ProcessEnv, logger: Logger): InputValues {
  const zone = stackValue(stack, 'zone_name');
  const account = stackValue(stack, 'cloudflare_account_id');
  const jurisdiction = (stackValue(stack, 'r2_jurisdiction') ?? 'default') as R2Jurisdiction;
  const app = stackValue(stack, 'fly_app_name');
  const writeUrl = app ? `https://${app}.fly.dev` : undefined;
  const subdomain = stackValue(stack, 'cache_subdomain') ?? 'cache';
  switch (step.spec.name) {
    case 'deploy':
      return {
        'cache-url': zone ? cacheUrl(subdomain, zone) : undefined,
        'bucket-name': stackBucketName(stack),
        's3-endpoint': account ? s3EndpointHost(account, jurisdiction) : undefined,
      };
    case 'push':
    case 'gc':
      return { 'server-url': writeUrl };
    case 'status':
      return {
        'server-url': writeUrl,
        'r2-bucket-name': stackBucketName(stack),
        // The custom domain provision attached to the bucket, whatever URL the server announces.
        'cache-domain': zone ? cacheHost(subdomain, zone) : undefined,
        'expected-public-key': expectedPublicKey(env, logger),
      };
    default:
      return {};
  }
}

/** The public key of NIKS3_SIGNING_KEY, which the server must announce. */
function expectedPublicKey(env: NodeJS.ProcessEnv, logger: Logger): string | undefined {
  const text = env['NIKS3_SIGNING_KEY']?.trim();
  if (!text) return undefined;
  try {
    return parseSecretKey(text).publicKey;
  } catch (error) {
    logger.warn(
      `NIKS3_SIGNING_KEY is not a Nix signing key (${error instanceof Error ? error.message : String(error)}); the public key check is skipped.`,
    );
    return undefined;
  }
}

/** Resolves every input of one step. */
export function resolveInputs(options: {
  readonly step: Step;
  readonly flags: Readonly<Record<string, string>>;
  readonly stack: StackFile;
  readonly env: NodeJS.ProcessEnv;
  /** Outputs of the earlier steps of this command. */
  readonly previous: Readonly<Record<string, string>>;
  readonly logger: Logger;
}): InputValues {
  const { step, flags, stack, env, previous, logger } = options;
  const names = new Set(step.spec.inputs.map((input) => input.name));
  const values: InputValues = {};
  const put = (source: Readonly<Record<string, string | undefined>>): void => {
    for (const [name, value] of Object.entries(source)) {
      if (names.has(name) && value !== undefined && value.trim() !== '') values[name] = value;
    }
  };

  put(step.defaults ?? {});
  put(derivedValues(step, stack, env, logger));
  put(Object.fromEntries((step.carry ?? []).map((name) => [name, previous[name]])));
  for (const setting of STACK_SETTINGS) {
    const value = stackValue(stack, setting.key);
    put(Object.fromEntries(setting.inputs.map((input) => [input, value])));
  }
  for (const [variable, inputs] of Object.entries(SECRET_ENV)) {
    put(Object.fromEntries(inputs.map((input) => [input, env[variable]])));
  }
  put(flags);
  put(step.fixed ?? {});

  if (step.spec.name === 'status') {
    // The R2 and Fly reports are optional: without the stack values they need, leave them out.
    if (!values['cloudflare-account-id'] || !values['r2-bucket-name']) delete values['cloudflare-api-token'];
    if (!values['fly-app-name']) delete values['fly-api-token'];
  }
  return values;
}

/** Where a user sets an input on a terminal, for messages and help. */
export function inputSources(input: InputSpec): string[] {
  const sources: string[] = [];
  const variable = envVariableOf(input.name);
  if (variable) return [`environment variable ${variable}`];
  sources.push(`--${input.name}`);
  const setting = STACK_SETTINGS.find((s) => s.inputs.includes(input.name));
  if (setting) sources.push(`\`${setting.key}\` in the stack file`);
  return sources;
}

/** Messages for required inputs that no source gave, phrased for a terminal. */
export function missingInputs(step: Step, values: InputValues): string[] {
  const messages: string[] = [];
  for (const input of step.spec.inputs) {
    if (!input.required || values[input.name]?.trim() || input.default) continue;
    if (envVariableOf(input.name)) continue; // reported with the environment contract
    const extra =
      input.name === 'server-url' ? ' (or `fly_app_name`, which gives https://<app>.fly.dev)' : '';
    messages.push(
      `${step.label}: '${input.name}' is required: ${input.description.replace(/\.$/, '')}. Set ${inputSources(input).join(' or ')}${extra}.`,
    );
  }
  return messages;
}
