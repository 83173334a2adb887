/**
 * Waiting for a machine to run and pass its checks (spec fly.md §4.7.5, §7): the wait endpoint for
 * `started` (looped, 60 s per call at most), then `GET` polls until every check is `passing`, all
 * within one bounded deadline, with a progress line at least every 10 s.
 */
import { RemoteError } from '../errors.js';
import type { Sleep } from '../http.js';
import type { Logger } from '../logger.js';
import type { Machine, MachineCheckStatus } from './fly-api-types.js';
import { MACHINES_REMOTE, type FlyClient } from './fly-client.js';
import { configuredCheckCount } from './machine-config.js';

export interface HealthWaitOptions {
  readonly client: FlyClient;
  readonly logger: Logger;
  readonly sleep: Sleep;
  readonly now: () => number;
  /** Absolute time (ms, `now()` clock) after which we give up. */
  readonly deadline: number;
  /** Interval of health polls. */
  readonly pollMs?: number;
  readonly progressEveryMs?: number;
}

/**
 * The options of one wait from a deploy's context: the whole `waitTimeoutMs` from the moment the
 * wait starts.
 */
export function healthWait(
  ctx: Pick<HealthWaitOptions, 'client' | 'logger' | 'sleep' | 'now' | 'pollMs'> & {
    readonly waitTimeoutMs: number;
  },
): HealthWaitOptions {
  return {
    client: ctx.client,
    logger: ctx.logger,
    sleep: ctx.sleep,
    now: ctx.now,
    deadline: ctx.now() + ctx.waitTimeoutMs,
    ...(ctx.pollMs !== undefined ? { pollMs: ctx.pollMs } : {}),
  };
}

const FATAL_STATES: readonly string[] = ['failed', 'destroyed', 'destroying', 'launch_failed'];

/** Checks the platform adds for compatibility; clients ignore them (fly-go). */
export function relevantChecks(checks: readonly MachineCheckStatus[] | undefined): MachineCheckStatus[] {
  return (checks ?? []).filter((c) => !c.name.startsWith('bg_deployments_compat'));
}

export function describeChecks(checks: readonly MachineCheckStatus[] | undefined): string {
  const relevant = relevantChecks(checks);
  if (relevant.length === 0) return 'no check results yet';
  return relevant
    .map(
      (c) =>
        `${c.name} ${c.status}${c.output && c.status !== 'passing' ? ` (${c.output.trim().slice(0, 120)})` : ''}`,
    )
    .join(', ');
}

/** Waits until the machine is `started` and every check passes; returns the last machine read. */
export async function waitUntilHealthy(
  app: string,
  machineId: string,
  version: string | undefined,
  options: HealthWaitOptions,
): Promise<Machine> {
  const { client, logger, now, deadline } = options;
  const started = now();
  const progressEvery = options.progressEveryMs ?? 10_000;
  let lastProgress = started;
  let lastStatus = '';
  const progress = (status: string): void => {
    if (status !== lastStatus || now() - lastProgress >= progressEvery) {
      logger.info(`machine ${machineId}: ${status} (${Math.round((now() - started) / 1000)} s)`);
      lastStatus = status;
      lastProgress = now();
    }
  };
  const fail = (what: string, machine?: Machine): never => {
    throw new RemoteError({
      remote: MACHINES_REMOTE,
      operation: `deploy of machine ${machineId}`,
      detail: `${what}${machine ? ` (state ${machine.state}; ${describeChecks(machine.checks)})` : ''}`,
      hint: `Look at the server log with \`fly logs -a ${app}\`; a wrong NIKS3_DB, S3 key or signing key keeps niks3 from starting`,
    });
  };

  // 1. started
  let currentVersion = version;
  for (;;) {
    const remaining = Math.floor((deadline - now()) / 1000);
    if (remaining < 1)
      fail(
        `the machine did not start within ${Math.round((deadline - started) / 1000)} s`,
        await client.getMachine(app, machineId),
      );
    progress('waiting for the machine to start');
    // A short wait per call keeps progress lines coming at least every 10 s.
    const outcome = await client.waitForState(
      app,
      machineId,
      'started',
      Math.min(remaining, Math.max(1, Math.floor(progressEvery / 1000))),
      currentVersion,
    );
    if (outcome === 'reached') break;
    if (outcome === 'missing') {
      await options.sleep(1_000); // just created: not visible to this node yet
      continue;
    }
    const machine = await client.getMachine(app, machineId);
    if (!machine) continue;
    if (FATAL_STATES.includes(machine.state)) fail(`the machine is ${machine.state}`, machine);
    if (outcome === 'replaced') currentVersion = machine.instance_id;
  }
  progress('started');

  // 2. checks
  for (;;) {
    const machine = await client.getMachine(app, machineId);
    if (!machine) fail('the machine disappeared');
    const m = machine as Machine;
    if (FATAL_STATES.includes(m.state)) fail(`the machine is ${m.state}`, m);
    if (configuredCheckCount(m.config) === 0) return m;
    const checks = relevantChecks(m.checks);
    if (checks.length > 0 && checks.every((c) => c.status === 'passing')) {
      progress(`checks passing: ${describeChecks(checks)}`);
      return m;
    }
    // `critical` is not final: a starting server may still recover (flyctl keeps polling too).
    progress(`waiting for health checks: ${describeChecks(checks)}`);
    if (now() + (options.pollMs ?? 1_500) > deadline) {
      fail(`the health checks did not pass within ${Math.round((deadline - started) / 1000)} s`, m);
    }
    await options.sleep(options.pollMs ?? 1_500);
  }
}
