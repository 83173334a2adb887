/**
 * Executes a plan against the Machines API, in dependency order: app, secrets (their version goes
 * into the machine as `min_secrets_version`), IPs, then the machine (created, or updated in place
 * under a lease with its nonce), a wait for `started` and passing checks, and last the removal of
 * extra machines. Leases are released by `withLeases` on every path (see lease-keeper.ts).
 */
import { ConfigurationError, RemoteError, errorMessage } from '../errors.js';
import type { Sleep } from '../http.js';
import type { Logger } from '../logger.js';
import type { ActualState } from './actual-state.js';
import { secretsFingerprint, type DesiredState, type IpType } from './desired-state.js';
import {
  hasIncompleteConfig,
  isPublicV6,
  isSharedV4,
  type FlyApp,
  type Machine,
  type MachineRequest,
} from './fly-api-types.js';
import { MACHINES_REMOTE, type FlyClient } from './fly-client.js';
import { tokenPower } from './fly-hints.js';
import type { LeaseKeeper } from './lease-keeper.js';
import { METADATA, type MachineConfig } from './machine-config.js';
import { healthWait, waitUntilHealthy } from './machine-health.js';
import { describeChange, type Change, type FlyPlan } from './plan.js';

export interface ApplyContext {
  readonly client: FlyClient;
  readonly logger: Logger;
  readonly sleep: Sleep;
  readonly now: () => number;
  readonly keeper: LeaseKeeper;
  /** Unique per run; tags the created machine so an ambiguous create can be found again. */
  readonly launchId: string;
  /** Organisation for app creation and IP allocation. */
  readonly orgSlug: string | undefined;
  /** Bound of the wait for a started, healthy machine (ms). */
  readonly waitTimeoutMs: number;
  /** Health poll interval (ms). */
  readonly pollMs?: number;
  /** Pause before looking for a machine after an ambiguous create (ms). */
  readonly reconcileDelayMs?: number;
  /** How long to wait for a new app to become visible (ms). */
  readonly appVisibleTimeoutMs?: number;
  /** Apps `/v1/tokens/current` says the token is limited to: a hint for messages, never a refusal. */
  readonly tokenApps?: readonly string[] | undefined;
}

export interface ApplyResult {
  readonly machine: Machine | undefined;
  readonly applied: readonly Change[];
  readonly secretsVersion: number | undefined;
}

export async function applyPlan(
  plan: FlyPlan,
  desired: DesiredState,
  actual: ActualState,
  ctx: ApplyContext,
): Promise<ApplyResult> {
  const { client, logger } = ctx;
  const applied: Change[] = [];
  const done = (change: Change): void => {
    applied.push(change);
    logger.info(`done: ${describeChange(change)}`);
  };
  let app: FlyApp | undefined = actual.app;
  let orgSlug = ctx.orgSlug ?? app?.organization?.slug;

  const createApp = plan.changes.find((c) => c.action === 'create-app');
  if (createApp) {
    if (!orgSlug) throw new Error('internal: no organisation resolved for the app create');
    app = await ensureApp(desired.app, orgSlug, ctx);
    done(createApp);
  }
  orgSlug ??= app?.organization?.slug ?? 'personal';

  // Secrets: the version for min_secrets_version and the vault's digests for the fingerprint.
  const keptMeta = plan.machine?.config?.metadata ?? {};
  const previousVersion = Number(keptMeta[METADATA.secretsVersion]);
  let secretsVersion: number | undefined =
    Number.isInteger(previousVersion) && previousVersion > 0 ? previousVersion : undefined;
  let digests = new Map(actual.secrets.map((s) => [s.name, s.digest]));
  const secretsChange = plan.changes.find((c) => c.action === 'set-secrets');
  if (secretsChange) {
    const values: Record<string, string | null> = {};
    for (const name of secretsChange.set) values[name] = desired.secrets[name] ?? null;
    for (const name of secretsChange.unset) values[name] = null;
    const result = await client.setSecrets(desired.app, values);
    secretsVersion = result.version;
    // The store is eventually consistent: ask for at least the version just written, or a stale
    // list would put old digests into the fingerprint (and the next run would set them again).
    digests = new Map((await client.listSecrets(desired.app, result.version)).map((s) => [s.name, s.digest]));
    done(secretsChange);
  }

  for (const change of plan.changes) {
    if (change.action !== 'allocate-ip') continue;
    await allocateIp(desired.app, change.type, orgSlug, ctx);
    done(change);
  }

  const metadata: Record<string, string> = {
    ...desired.config.metadata,
    [METADATA.configHash]: desired.configHash,
    [METADATA.secretsHash]: desired.secretsHash,
    [METADATA.secretsFingerprint]: secretsFingerprint(digests, Object.keys(desired.secrets)),
    [METADATA.launchId]: keptMeta[METADATA.launchId] ?? ctx.launchId,
  };
  if (secretsVersion !== undefined) metadata[METADATA.secretsVersion] = String(secretsVersion);
  const config: MachineConfig = { ...desired.config, metadata };
  let machine = plan.machine;
  const create = plan.changes.find((c) => c.action === 'create-machine');
  const update = plan.changes.find((c) => c.action === 'update-machine');
  if (create) {
    const request: MachineRequest = {
      region: desired.region,
      config: { ...config, metadata: { ...metadata, [METADATA.launchId]: ctx.launchId } },
      lease_ttl: Math.ceil(ctx.waitTimeoutMs / 1000) + 60,
      ...(secretsVersion !== undefined ? { min_secrets_version: secretsVersion } : {}),
      skip_launch: false,
      skip_service_registration: false,
      skip_secrets: false,
    };
    const created = await createMachineOnce(desired.app, request, ctx);
    logger.info(
      `machine ${created.id} created (${created.state}); waiting for it to start and pass its checks`,
    );
    machine = await waitUntilHealthy(desired.app, created.id, created.instance_id, healthWait(ctx));
    await ctx.keeper.release(created.id);
    done(create);
  } else if (update && machine) {
    const id = machine.id;
    const lease = await ctx.keeper.acquire(desired.app, id);
    const request: MachineRequest = {
      region: machine.region,
      config,
      ...(secretsVersion !== undefined ? { min_secrets_version: secretsVersion } : {}),
      // Boot even an autostopped machine, so the new config is verified (fly.md §6.1).
      skip_launch: false,
      skip_service_registration: false,
      skip_secrets: false,
    };
    const updated = await client.updateMachine(desired.app, id, request, lease.nonce);
    logger.info(
      `machine ${id} updated (version ${updated.instance_id}); waiting for it to start and pass its checks`,
    );
    machine = await waitUntilHealthy(desired.app, id, updated.instance_id, healthWait(ctx));
    await ctx.keeper.release(id);
    done(update);
  }

  for (const change of plan.changes) {
    if (change.action !== 'destroy-machine') continue;
    const target = actual.machines.find((m) => m.id === change.machineId);
    if (target && hasIncompleteConfig(target)) {
      // Its host is unhealthy: a lease may not be had; destroy it by force (flyctl replaces such
      // machines too). If even that fails, the new machine serves and the next run tries again.
      try {
        await client.destroyMachine(desired.app, change.machineId, undefined);
        done(change);
      } catch (error) {
        logger.warn(
          `could not destroy machine ${change.machineId} on its unhealthy host (${errorMessage(error)}); the next deploy tries again`,
        );
      }
      continue;
    }
    const lease = await ctx.keeper.acquire(desired.app, change.machineId);
    await client.destroyMachine(desired.app, change.machineId, lease.nonce);
    await ctx.keeper.release(change.machineId);
    done(change);
  }
  return { machine, applied, secretsVersion };
}

/**
 * Creates the app and waits until the API shows it. The create's `idempotency_key` is sent but not
 * relied on (only the API reference has it): after an ambiguous first attempt, the retry may get
 * 422 `name_taken` for the app that attempt created. So a `taken` right after our own attempt is
 * not believed at once: the app is read for a bounded window, 404 and 401 counting as "not visible
 * yet" (as flyctl's WaitForApp does), and only a 403 or the end of the window says "taken".
 */
async function ensureApp(name: string, orgSlug: string, ctx: ApplyContext): Promise<FlyApp> {
  const { client, logger } = ctx;
  let outcome: 'created' | 'taken';
  try {
    outcome = await client.createApp(name, orgSlug, `nix-cache-${name}-${ctx.launchId}`);
  } catch (error) {
    if (error instanceof RemoteError && (error.status === 401 || error.status === 403)) {
      throw new ConfigurationError(
        `The Fly app '${name}' does not exist, and fly-api-token may not create it in organisation ${orgSlug} (HTTP ${error.status}${error.detail ? `: ${error.detail}` : ''}): ${tokenPower('create app') ?? ''}. ` +
          `Create the app with an org token (\`fly tokens create org\`) as fly-api-token, or check fly-app-name and fly-org-slug.${ctx.tokenApps && ctx.tokenApps.length > 0 ? ` (The token reports itself limited to ${ctx.tokenApps.map((a) => `'${a}'`).join(', ')}.)` : ''}`,
      );
    }
    throw error;
  }
  if (outcome === 'taken')
    logger.info(`app name ${name} answered as taken; checking whether it is the app our own attempt created`);
  const timeoutMs = ctx.appVisibleTimeoutMs ?? 60_000;
  const visibleBy = ctx.now() + timeoutMs;
  let delay = 500;
  for (;;) {
    const lookup = await client.getApp(name, true);
    if (lookup.kind === 'found') {
      const owner = lookup.app.organization?.slug;
      if (outcome === 'taken' && owner && owner !== orgSlug && orgSlug !== 'personal') {
        throw new ConfigurationError(
          `The Fly app name '${name}' is taken by an app in organisation ${owner}. Choose another fly-app-name.`,
        );
      }
      return lookup.app;
    }
    if (lookup.kind === 'forbidden') {
      throw new ConfigurationError(
        `The Fly app name '${name}' is taken by an app this token cannot see. Choose another fly-app-name.`,
      );
    }
    if (ctx.now() + delay > visibleBy) {
      if (outcome === 'taken') {
        throw new ConfigurationError(
          `The Fly app name '${name}' is taken, and no app of that name became visible to this token within ${Math.round(timeoutMs / 1000)} s. Choose another fly-app-name, or run again if the app was being created.`,
        );
      }
      throw new RemoteError({
        remote: MACHINES_REMOTE,
        operation: `create app ${name}`,
        detail: `the app was created but is still not visible after ${Math.round(timeoutMs / 1000)} s`,
        hint: `Check the billing state of organisation ${orgSlug} (a payment method may be needed) and that the token belongs to it`,
      });
    }
    await ctx.sleep(delay);
    delay = Math.min(delay * 2, 4_000);
  }
}

/** Allocates one IP; after an ambiguous failure, re-lists before trying again (v6 is not idempotent). */
async function allocateIp(app: string, type: IpType, orgSlug: string, ctx: ApplyContext): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await ctx.client.assignIp(app, type, orgSlug);
      return;
    } catch (error) {
      if (!(error instanceof RemoteError) || !error.transient || attempt >= 3) throw error;
      ctx.logger.info(
        `allocating a ${type} IP was ambiguous (${errorMessage(error)}); checking before retrying`,
      );
      await ctx.sleep(ctx.reconcileDelayMs ?? 2_000);
      const ips = await ctx.client.listIps(app);
      if (type === 'v6' ? ips.some(isPublicV6) : ips.some(isSharedV4)) return;
    }
  }
}

/**
 * Creates the machine exactly once. The create endpoint has no idempotency key, so a 408, 5xx or
 * lost answer is ambiguous: the machine may exist. The request carries `niks3_launch_id` in its
 * metadata; after such a failure we look for a machine with that id (a few times, as lists can lag
 * a create) and only create again when there is none (fly.md §3.4, §4.7.2).
 */
async function createMachineOnce(app: string, request: MachineRequest, ctx: ApplyContext): Promise<Machine> {
  const { client, logger } = ctx;
  const launchId = ctx.launchId;
  for (let attempt = 1; ; attempt++) {
    try {
      const machine = await client.createMachine(app, request);
      if (machine.nonce) ctx.keeper.adopt(app, machine.id, { nonce: machine.nonce }, request.lease_ttl);
      return machine;
    } catch (error) {
      const ambiguous =
        error instanceof RemoteError &&
        (error.status === undefined || error.status === 408 || error.status >= 500);
      if (!ambiguous || attempt >= 3) throw error;
      logger.warn(
        `creating the machine was ambiguous (${errorMessage(error)}); looking for it by launch id ${launchId} before retrying`,
      );
    }
    for (let look = 1; look <= 2; look++) {
      await ctx.sleep(ctx.reconcileDelayMs ?? 2_000);
      const found = (await client.listMachines(app, { [METADATA.launchId]: launchId })).find(
        (m) => m.config?.metadata?.[METADATA.launchId] === launchId,
      );
      if (found) {
        logger.info(`found machine ${found.id} from the ambiguous create; not creating another`);
        const lease = await client.getLease(app, found.id).catch(() => undefined);
        if (lease?.nonce) ctx.keeper.adopt(app, found.id, lease, request.lease_ttl);
        else logger.debug(`no lease nonce for machine ${found.id}; its create lease lapses by itself`);
        return found;
      }
    }
  }
}
