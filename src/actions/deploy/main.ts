import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { desiredState } from '../../core/fly/desired-state.js';
import { deployReport, destroyReport } from '../../core/fly/deploy-report.js';
import { deployApp, destroyApp, type DeploymentContext } from '../../core/fly/deployment.js';
import { FlyClient } from '../../core/fly/fly-client.js';
import { renderFlyToml } from '../../core/fly/fly-toml.js';
import type { SignalSource } from '../../core/fly/lease-keeper.js';
import { actionsStepIO } from '../actions-io.js';
import { actionDeps, type ActionDeps } from '../deps.js';
import { runStep, writeSummary, type StepIO } from '../../core/step/step-io.js';
import { readDeployInputs } from './inputs.js';
import { DEPLOY_SPEC } from './spec.js';

/** The shared primitives plus the deploy's own: signals, exit, launch id and knobs. */
export interface DeployDeps extends ActionDeps {
  /** SIGTERM/SIGINT source: leases are released before the process ends. */
  readonly signals: SignalSource | undefined;
  readonly exit: (code: number) => void;
  /** A unique id for this run (tags the machine it creates). */
  readonly launchId: (env: NodeJS.ProcessEnv) => string;
  /** Health poll interval (ms). */
  readonly pollMs?: number;
  /** Pause before looking for a machine after an ambiguous create (ms). */
  readonly reconcileDelayMs?: number;
  /** Per-request timeout of the Fly client (ms). */
  readonly httpTimeoutMs?: number;
}

export function defaultDeps(): DeployDeps {
  return {
    ...actionDeps(),
    signals: process,
    exit: (code) => process.exit(code),
    launchId: (env) => {
      const run = env['GITHUB_RUN_ID']
        ? `gh-${env['GITHUB_RUN_ID']}-${env['GITHUB_RUN_ATTEMPT'] ?? '1'}-`
        : 'nc-';
      return `${run}${randomBytes(4).toString('hex')}`;
    },
  };
}

export async function run(io: StepIO = actionsStepIO(), deps: DeployDeps = defaultDeps()): Promise<void> {
  await runStep(DEPLOY_SPEC, io, async (reader) => {
    const inputs = readDeployInputs(reader, io.env, io.logger);
    const client = new FlyClient({
      token: inputs.flyToken,
      apiUrl: inputs.flyApiUrl,
      graphqlUrl: inputs.flyGraphqlUrl,
      logger: io.logger,
      fetch: deps.fetch,
      sleep: deps.sleep,
      ...(deps.httpTimeoutMs !== undefined
        ? { timeoutMs: deps.httpTimeoutMs, writeTimeoutMs: deps.httpTimeoutMs }
        : {}),
    });
    const ctx: DeploymentContext = {
      client,
      logger: io.logger,
      sleep: deps.sleep,
      now: deps.now,
      launchId: deps.launchId(io.env),
      waitTimeoutMs: inputs.waitTimeoutMs,
      ...(deps.signals ? { signals: deps.signals } : {}),
      exit: deps.exit,
      ...(deps.pollMs !== undefined ? { pollMs: deps.pollMs } : {}),
      ...(deps.reconcileDelayMs !== undefined ? { reconcileDelayMs: deps.reconcileDelayMs } : {}),
    };

    if (inputs.mode === 'destroy') {
      const outcome = await destroyApp(inputs.app, ctx);
      io.setOutput('changed', String(outcome.changed));
      io.setOutput('plan', JSON.stringify(outcome.plan.changes));
      await writeSummary(io, destroyReport(inputs.app, outcome));
      return;
    }

    const settings = inputs.settings;
    const publicKey = inputs.publicKey;
    if (!settings || !publicKey) throw new Error('internal: deploy settings missing');
    const desired = desiredState(settings);
    // Every secret value (and its base64 form, i.e. the file secrets) was masked when read.
    const flyToml = writeFlyToml(
      io.env,
      desired.app,
      renderFlyToml({ app: desired.app, region: desired.region, config: desired.config }),
    );
    const outcome = await deployApp(desired, inputs.mode, ctx);

    io.setOutput('server-url', desired.serverUrl);
    io.setOutput('public-key', publicKey);
    io.setOutput('machine-id', outcome.machine?.id ?? '');
    io.setOutput(
      'image',
      outcome.mode === 'apply' ? (outcome.machine?.config?.image ?? desired.image) : desired.image,
    );
    io.setOutput('changed', String(outcome.changed));
    io.setOutput('fly-toml', flyToml);
    io.setOutput('plan', JSON.stringify(outcome.changes));
    await writeSummary(io, deployReport({ desired, outcome, cacheUrl: settings.cacheUrl, publicKey }));
  });
}

/** Writes the rendered fly.toml under RUNNER_TEMP (or the system temp dir) and returns its path. */
function writeFlyToml(env: NodeJS.ProcessEnv, app: string, text: string): string {
  const dir = join(env['RUNNER_TEMP'] || tmpdir(), `nix-cache-deploy-${app}`);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'fly.toml');
  writeFileSync(path, text);
  return path;
}
