/**
 * The commands of `nix-cache`: each is a list of steps, and each step is one action's `run` with
 * the CLI's own choices for some inputs. The commands of the original stack (stack.md): plan, up,
 * deploy, gc, status, down, init-config; plus provision and push over the same actions.
 */
import { run as runDeploy } from '../actions/deploy/main.js';
import { DEPLOY_SPEC } from '../actions/deploy/spec.js';
import { run as runGc } from '../actions/gc/main.js';
import { GC_SPEC } from '../actions/gc/spec.js';
import { run as runProvision } from '../actions/provision/main.js';
import { PROVISION_SPEC } from '../actions/provision/spec.js';
import { run as runPush } from '../actions/push/main.js';
import { PUSH_SPEC } from '../actions/push/spec.js';
import { run as runStatus } from '../actions/status/main.js';
import { STATUS_SPEC } from '../actions/status/spec.js';
import { defaultBucketName } from '../core/cloudflare/r2-names.js';
import { ConfigurationError } from '../core/errors.js';
import type { ActionSpec } from '../core/settings/input-spec.js';
import type { StepIO } from '../core/step/step-io.js';
import { stackValue, type StackFile } from './stack-file.js';

export type StepRun = (io: StepIO) => Promise<void>;

export interface Step {
  /** Shown in progress lines and as the key of `--json`'s `steps`. */
  readonly label: string;
  readonly spec: ActionSpec;
  readonly run: StepRun;
  /** Inputs this step sets itself; they beat every other source and are not flags. */
  readonly fixed?: Readonly<Record<string, string>>;
  /** The CLI's own defaults (below the stack file and derived values, above the action's defaults). */
  readonly defaults?: Readonly<Record<string, string>>;
  /** Outputs of earlier steps that feed the inputs of the same name. */
  readonly carry?: readonly string[];
  /** Environment variables of the contract this step cannot do without. */
  readonly needs: readonly string[];
  /** When set, only these inputs are flags of this step (the rest still come from the stack). */
  readonly flagInputs?: readonly string[];
}

export interface CommandFlag {
  readonly name: string;
  readonly description: string;
  readonly boolean?: boolean;
}

export interface CommandContext {
  readonly flags: Readonly<Record<string, string>>;
  readonly stack: StackFile;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Whether the command cannot run without the stack file. */
  readonly needsStack: boolean;
  /** Flags of the command itself (beyond the inputs of its steps). */
  readonly flags?: readonly CommandFlag[];
  steps(ctx: CommandContext): Step[];
  /** Checks made before any step runs (throws ConfigurationError). */
  check?(ctx: CommandContext): void;
}

/** Every variable the server's deployment needs (apply and plan). */
const DEPLOY_ENV = [
  'FLY_API_TOKEN',
  'NIKS3_API_TOKEN',
  'NIKS3_DB',
  'NIKS3_S3_ACCESS_KEY',
  'NIKS3_S3_SECRET_KEY',
  'NIKS3_SIGNING_KEY',
];
const PROVISION_ENV = ['CLOUDFLARE_API_TOKEN'];
/** Provision outputs that deploy takes as inputs. */
const PROVISION_TO_DEPLOY = ['cache-url', 'bucket-name', 's3-endpoint'];

/** On a terminal there is no GitHub OIDC: the niks3 API token authenticates. */
const TOKEN_AUTH = { auth: 'token' };

function niks3Needs(flags: Readonly<Record<string, string>>): string[] {
  return (flags['auth'] ?? 'token') === 'token' ? ['NIKS3_API_TOKEN'] : [];
}

/** The bucket name of the stack: `r2_bucket_name`, or `<slug>-niks3`. */
export function stackBucketName(stack: StackFile): string | undefined {
  const name = stackValue(stack, 'stack_name');
  return stackValue(stack, 'r2_bucket_name') ?? (name ? defaultBucketName(name) : undefined);
}

const provisionStep = (mode: string | undefined): Step => ({
  label: 'provision',
  spec: PROVISION_SPEC,
  run: runProvision,
  ...(mode ? { fixed: { mode } } : {}),
  needs: PROVISION_ENV,
});

/** Deploy; `flagMode` is `--mode` of `nix-cache deploy` (destroy needs only the Fly token). */
const deployStep = (mode: string | undefined, flagMode?: string): Step => ({
  label: 'deploy',
  spec: DEPLOY_SPEC,
  run: runDeploy,
  ...(mode ? { fixed: { mode } } : {}),
  carry: PROVISION_TO_DEPLOY,
  needs: (mode ?? flagMode) === 'destroy' ? ['FLY_API_TOKEN'] : DEPLOY_ENV,
});

export const COMMANDS: readonly Command[] = [
  {
    name: 'plan',
    summary: 'show the changes `up` would make to Cloudflare R2 and Fly (reads only)',
    needsStack: true,
    steps: () => [provisionStep('plan'), deployStep('plan')],
  },
  {
    name: 'up',
    summary: 'create or converge the R2 bucket and custom domain, then deploy niks3 on Fly',
    needsStack: true,
    steps: () => [provisionStep('apply'), deployStep('apply')],
  },
  {
    name: 'provision',
    summary: 'only the Cloudflare side: converge the R2 bucket and custom domain (--mode plan|apply|destroy)',
    needsStack: true,
    steps: () => [provisionStep(undefined)],
  },
  {
    name: 'deploy',
    summary:
      'only the Fly side: sync secrets, render the machine config, deploy niks3 (--mode plan|apply|destroy)',
    needsStack: true,
    steps: ({ flags }) => [deployStep(undefined, flags['mode'])],
  },
  {
    name: 'push',
    summary: 'push Nix closures (--paths ./result, --installables .#default) to the cache',
    needsStack: false,
    steps: ({ flags }) => [
      { label: 'push', spec: PUSH_SPEC, run: runPush, defaults: TOKEN_AUTH, needs: niks3Needs(flags) },
    ],
  },
  {
    name: 'gc',
    summary: 'garbage-collect the cache (defaults: --older-than 720h, --failed-uploads-older-than 6h)',
    needsStack: false,
    steps: ({ flags }) => [
      { label: 'gc', spec: GC_SPEC, run: runGc, defaults: TOKEN_AUTH, needs: niks3Needs(flags) },
    ],
  },
  {
    name: 'status',
    summary:
      'check the server, the public URL, the signing key and usage, with a monthly cost estimate (reads only)',
    needsStack: false,
    steps: () => [{ label: 'status', spec: STATUS_SPEC, run: runStatus, needs: [] }],
  },
  {
    name: 'down',
    summary:
      'delete the Fly app, then the R2 custom domain (and with --delete-data the bucket and every object)',
    needsStack: true,
    flags: [{ name: 'confirm', description: 'The Fly app name (`fly_app_name`), to mean it. Required.' }],
    check: ({ flags, stack }) => {
      const app = stackValue(stack, 'fly_app_name');
      const confirm = flags['confirm'];
      if (!app) throw new ConfigurationError('nix-cache down needs `fly_app_name` in the stack file.');
      if (confirm !== app) {
        throw new ConfigurationError(
          `nix-cache down deletes the Fly app "${app}" with its machine, IPs and secrets, and the R2 custom domain` +
            `${flags['delete-data'] === 'true' ? `, and empties and deletes the bucket "${stackBucketName(stack) ?? '?'}"` : ' (the bucket and its objects are kept unless --delete-data)'}. ` +
            `Pass --confirm ${app} to mean it${confirm ? ` (--confirm is "${confirm}")` : ''}. Nothing was changed.`,
        );
      }
    },
    steps: ({ flags, stack }) => [
      {
        ...deployStep('destroy'),
        carry: [],
        fixed: { mode: 'destroy', confirm: flags['confirm'] ?? '' },
        flagInputs: ['fly-app-name', 'fly-api-url', 'fly-graphql-url', 'wait-timeout'],
      },
      {
        ...provisionStep(undefined),
        fixed: { mode: 'destroy', confirm: stackBucketName(stack) ?? '' },
        flagInputs: [
          'delete-data',
          'stack-name',
          'r2-bucket-name',
          'cloudflare-account-id',
          'zone-name',
          'cloudflare-zone-id',
          'cache-subdomain',
          'r2-jurisdiction',
          'cloudflare-api-url',
        ],
      },
    ],
  },
];

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((command) => command.name === name);
}
