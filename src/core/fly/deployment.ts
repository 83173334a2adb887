/**
 * The deploy of the niks3 app as one call per mode: read the actual state, plan, and (for `apply`)
 * apply and wait until healthy; or destroy the app and wait until it is gone.
 */
import { ConfigurationError, RemoteError } from '../errors.js';
import type { Sleep } from '../http.js';
import type { Logger } from '../logger.js';
import { readActualState } from './actual-state.js';
import { applyPlan } from './applier.js';
import type { DesiredState } from './desired-state.js';
import type { FlyApp, Machine } from './fly-api-types.js';
import { MACHINES_REMOTE, type FlyClient } from './fly-client.js';
import { LeaseKeeper, withLeases, type SignalSource } from './lease-keeper.js';
import { describeChecks, healthWait, relevantChecks, waitUntilHealthy } from './machine-health.js';
import { appScope, resolveOrganization } from './organization.js';
import { describeChange, planDeploy, planDestroy, type Change, type FlyPlan } from './plan.js';

export interface DeploymentContext {
  readonly client: FlyClient;
  readonly logger: Logger;
  readonly sleep: Sleep;
  readonly now: () => number;
  /** Unique per run (tags created machines; part of the lease description). */
  readonly launchId: string;
  readonly waitTimeoutMs: number;
  readonly pollMs?: number;
  readonly reconcileDelayMs?: number;
  /** Releases leases on SIGTERM/SIGINT when given (then calls `exit`). */
  readonly signals?: SignalSource;
  readonly exit?: (code: number) => void;
  /** How long a destroy waits for the app to disappear (ms). */
  readonly destroyTimeoutMs?: number;
}

export interface DeployOutcome {
  readonly mode: 'apply' | 'plan';
  readonly plan: FlyPlan;
  /** Changes made (apply) or to be made (plan). */
  readonly changes: readonly Change[];
  readonly changed: boolean;
  readonly app: FlyApp | undefined;
  readonly orgSlug: string | undefined;
  /** The niks3 machine after the run (apply), or as it is now (plan). */
  readonly machine: Machine | undefined;
}

/** Machine states on the way to `started` (fly.md §4.7). */
const BOOTING_STATES: readonly string[] = ['created', 'starting', 'replacing', 'updating'];

export async function deployApp(
  desired: DesiredState,
  mode: 'apply' | 'plan',
  ctx: DeploymentContext,
): Promise<DeployOutcome> {
  const { client, logger } = ctx;
  const actual = await logger.group('Read the Fly app', () => readActualState(client, desired.app));
  if (actual.access === 'forbidden') {
    throw new ConfigurationError(
      `The Fly app name '${desired.app}' belongs to an app this token cannot see (another organisation, or outside the apps a deploy token may manage)${actual.forbiddenDetail ? `: ${actual.forbiddenDetail}` : ''}. Choose another fly-app-name, or use a token of the app's organisation.`,
    );
  }
  let orgSlug = desired.orgSlug ?? actual.app?.organization?.slug;
  let tokenApps: string[] | undefined;
  if (actual.access === 'missing') ({ orgSlug, tokenApps } = await organizationForCreate(desired, ctx));
  else if (
    desired.orgSlug &&
    actual.app?.organization?.slug &&
    actual.app.organization.slug !== desired.orgSlug
  ) {
    logger.warn(
      `App ${desired.app} is in organisation ${actual.app.organization.slug}, not ${desired.orgSlug}; it is updated where it is.`,
    );
  }

  const plan = planDeploy({ ...desired, orgSlug }, actual);
  await logger.group(`Plan (${plan.changes.length} change${plan.changes.length === 1 ? '' : 's'})`, () => {
    if (plan.changes.length === 0)
      logger.info('No changes: the app, its secrets and its machine are as desired.');
    for (const change of plan.changes) logger.info(`- ${describeChange(change)}`);
    return Promise.resolve();
  });
  if (mode === 'plan' || plan.changes.length === 0) {
    let machine = plan.machine;
    // Nothing to change, but the machine is still booting (an earlier run was cancelled while it
    // waited): wait for it, so this apply too ends with a started, healthy machine.
    if (mode === 'apply' && machine && BOOTING_STATES.includes(machine.state)) {
      const booting = machine;
      machine = await logger.group(`Wait for machine ${booting.id} (${booting.state})`, () =>
        waitUntilHealthy(desired.app, booting.id, booting.instance_id, healthWait(ctx)),
      );
    }
    const critical = relevantChecks(machine?.checks).filter((c) => c.status !== 'passing');
    if (machine?.state === 'started' && critical.length > 0) {
      logger.warn(
        `Machine ${machine.id} runs but fails its checks (${describeChecks(critical)}); see \`fly logs -a ${desired.app}\`.`,
      );
    }
    return {
      mode,
      plan,
      changes: plan.changes,
      changed: plan.changes.length > 0,
      app: actual.app,
      orgSlug,
      machine,
    };
  }

  const keeper = new LeaseKeeper({
    client,
    logger,
    sleep: ctx.sleep,
    now: ctx.now,
    description: `nix-cache deploy ${ctx.launchId}`,
  });
  const result = await logger.group('Apply', () =>
    withLeases(keeper, ctx.signals, ctx.exit ?? (() => undefined), () =>
      applyPlan(plan, desired, actual, {
        client,
        logger,
        sleep: ctx.sleep,
        now: ctx.now,
        keeper,
        launchId: ctx.launchId,
        orgSlug,
        tokenApps,
        waitTimeoutMs: ctx.waitTimeoutMs,
        ...(ctx.pollMs !== undefined ? { pollMs: ctx.pollMs } : {}),
        ...(ctx.reconcileDelayMs !== undefined ? { reconcileDelayMs: ctx.reconcileDelayMs } : {}),
      }),
    ),
  );
  let app = actual.app;
  if (!app) {
    const lookup = await client.getApp(desired.app);
    if (lookup.kind === 'found') app = lookup.app;
  }
  return {
    mode,
    plan,
    changes: result.applied,
    changed: result.applied.length > 0,
    app,
    orgSlug,
    machine: result.machine,
  };
}

/**
 * For a missing app: find the organisation to create it in. What the token may do is only hinted
 * at by the undocumented `apps` field of `/v1/tokens/current`, so an app-scoped look is logged, not
 * refused: the create is tried, and a refusal then names the power that is missing.
 */
async function organizationForCreate(
  desired: DesiredState,
  ctx: DeploymentContext,
): Promise<{ orgSlug: string; tokenApps: string[] | undefined }> {
  const tokens = await ctx.client.currentTokens();
  const scope = appScope(tokens);
  if (scope) {
    ctx.logger.info(
      `The Fly token reports itself limited to ${scope.map((a) => `'${a}'`).join(', ')} (a deploy token cannot create apps); trying to create '${desired.app}' anyway.`,
    );
  }
  const org = await resolveOrganization(ctx.client, ctx.logger, desired.orgSlug, tokens);
  return { orgSlug: org.slug, tokenApps: scope };
}

export interface DestroyOutcome {
  readonly changed: boolean;
  readonly plan: FlyPlan;
}

/** Deletes the app (cascading to machines, IPs and secrets) and waits until it is gone. */
export async function destroyApp(app: string, ctx: DeploymentContext): Promise<DestroyOutcome> {
  const { client, logger } = ctx;
  const lookup = await client.getApp(app);
  if (lookup.kind === 'forbidden') {
    throw new ConfigurationError(
      `The Fly app '${app}' belongs to an organisation this token cannot see; nothing was deleted.`,
    );
  }
  const plan = planDestroy(app, {
    access: lookup.kind,
    app: lookup.kind === 'found' ? lookup.app : undefined,
    ips: [],
    secrets: [],
    machines: [],
  });
  if (lookup.kind === 'missing') {
    logger.info(`App ${app} does not exist; nothing to destroy.`);
    return { changed: false, plan };
  }
  await logger.group(`Delete app ${app}`, async () => {
    if ((await client.deleteApp(app)) === 'absent') return;
    const started = ctx.now();
    const deadline = started + (ctx.destroyTimeoutMs ?? 120_000);
    let lastProgress = started;
    let delay = 500;
    for (;;) {
      if ((await client.getApp(app)).kind !== 'found') break;
      if (ctx.now() + delay > deadline) {
        throw new RemoteError({
          remote: MACHINES_REMOTE,
          operation: `delete app ${app}`,
          detail: `the app still exists ${Math.round((ctx.now() - started) / 1000)} s after the delete was accepted`,
          hint: 'Run the destroy again later; Fly finishes deletions in the background',
        });
      }
      if (ctx.now() - lastProgress >= 10_000) {
        logger.info(`still deleting ${app} (${Math.round((ctx.now() - started) / 1000)} s)`);
        lastProgress = ctx.now();
      }
      await ctx.sleep(delay);
      delay = Math.min(delay * 2, 5_000);
    }
    logger.info(`App ${app} is gone.`);
  });
  return { changed: true, plan };
}
