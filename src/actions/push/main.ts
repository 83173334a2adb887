import { ConfigurationError } from '../../core/errors.js';
import { oidcUnavailableReason } from '../../core/github/token-source.js';
import { Niks3Client } from '../../core/niks3/niks3-client.js';
import { PresignedUploader } from '../../core/niks3/presigned-upload.js';
import { execFile, type ExecFn } from '../../core/nix/nix-command.js';
import { NIX_STORE_DIR, normaliseStoreDir } from '../../core/nix/store-path.js';
import type { BuildLogFinder } from '../../core/push/build-log.js';
import { pinNamesFor, resolvePinName } from '../../core/push/pin-names.js';
import { pushClosure, type PushSummary } from '../../core/push/push-closure.js';
import { pushHeadline, pushOutputs, pushReport } from '../../core/push/push-report.js';
import { resolveRoots } from '../../core/push/push-roots.js';
import { Report } from '../../core/report/markdown.js';
import { actionsStepIO } from '../actions-io.js';
import { actionDeps, type ActionDeps } from '../deps.js';
import { mintOidcToken, niks3TokenSource } from '../common-inputs.js';
import { runStep, writeSummary, type StepIO } from '../../core/step/step-io.js';
import { readPushInputs, type PushInputs } from './inputs.js';
import { startJobCache } from './job-main.js';
import { PUSH_SPEC } from './spec.js';

/** The shared primitives plus the push's own: the program runner, the directory and knobs. */
export interface PushActionDeps extends ActionDeps {
  /** Runs nix and the other programs. */
  readonly exec: ExecFn;
  /** Where relative `paths` are resolved (the current directory: the workspace in Actions). */
  readonly cwd: string;
  readonly findBuildLog?: BuildLogFinder;
  readonly partSize?: number;
  readonly memoryBudget?: number;
  readonly progressIntervalMs?: number;
  /** The uploader bundle (watch mode; default: `uploader/index.js` beside the running bundle). */
  readonly uploaderScript?: string;
}

export function defaultDeps(): PushActionDeps {
  return { ...actionDeps(), exec: execFile, cwd: process.cwd() };
}

export async function run(io: StepIO = actionsStepIO(), deps: PushActionDeps = defaultDeps()): Promise<void> {
  await runStep(PUSH_SPEC, io, async (reader) => {
    const inputs = readPushInputs(reader, io.logger, io.hasPostStep);
    const { logger } = io;
    if (inputs.requestedMode !== 'explicit') {
      await startJobCache(io, inputs, deps);
      return;
    }

    if (inputs.auth === 'oidc') {
      const reason = oidcUnavailableReason(io.env);
      if (reason) {
        await noOidc(io, inputs, reason);
        return;
      }
    }
    const tokenSource = niks3TokenSource(inputs, logger, (audience) => mintOidcToken(io, audience));

    const client = new Niks3Client({
      serverUrl: inputs.serverUrl,
      tokenSource,
      logger,
      fetch: deps.fetch,
      sleep: deps.sleep,
    });
    const uploader = new PresignedUploader({ logger, sleep: deps.sleep });
    const storeDir = (io.env['NIX_STORE_DIR'] && normaliseStoreDir(io.env['NIX_STORE_DIR'])) || NIX_STORE_DIR;

    const roots = await logger.group('Store paths', () =>
      resolveRoots({
        installables: inputs.installables,
        paths: inputs.paths,
        cwd: deps.cwd,
        storeDir,
        logger,
        exec: deps.exec,
      }),
    );
    const pins = inputs.pin ? pinNamesFor(resolvePinName(inputs.pin, io.env), roots.length) : undefined;

    let summary: PushSummary;
    try {
      summary = await pushClosure(
        {
          roots,
          ...inputs.tuning,
          ...(pins ? { pins } : {}),
          verify: inputs.verify,
          verifyS3: inputs.verifyS3,
          ...(inputs.cacheUrl ? { cacheUrl: inputs.cacheUrl } : {}),
          connectTimeoutMs: inputs.connectTimeoutMs,
          storeDir,
        },
        {
          client,
          uploader,
          logger,
          exec: deps.exec,
          fetch: deps.fetch,
          sleep: deps.sleep,
          now: deps.now,
          ...(deps.findBuildLog ? { findBuildLog: deps.findBuildLog } : {}),
          ...(deps.partSize !== undefined ? { partSize: deps.partSize } : {}),
          ...(deps.memoryBudget !== undefined ? { memoryBudget: deps.memoryBudget } : {}),
          ...(deps.progressIntervalMs !== undefined ? { progressIntervalMs: deps.progressIntervalMs } : {}),
        },
      );
    } catch (error) {
      uploader.close();
      if (error instanceof ConfigurationError || inputs.onFailure === 'fail') throw error;
      // Failed before any upload (server unreachable, session refused): nothing was pushed.
      const message = error instanceof Error ? error.message : String(error);
      logger.warn(`push failed (on-failure: warn), nothing was pushed: ${message}`);
      setEmptyOutputs(io, roots, inputs);
      await writeSummary(
        io,
        new Report().heading('nix-cache push: nothing pushed').paragraph(message).toString(),
      );
      return;
    }

    uploader.close();
    for (const [name, value] of Object.entries(pushOutputs(summary))) io.setOutput(name, value);
    logger.info(pushHeadline(summary));
    await writeSummary(io, pushReport(summary, inputs.serverUrl).toString());
    if (summary.ok) return;
    const message = `push incomplete: ${summary.problems.join('\n')}`;
    if (inputs.onFailure === 'warn') {
      logger.warn(`${message}\n(on-failure: warn, so the step stays green)`);
      return;
    }
    throw new Error(message);
  });
}

/** No OIDC token in this job: warn with the reason and fix, push nothing, stay green unless told to fail. */
async function noOidc(io: StepIO, inputs: PushInputs, reason: string): Promise<void> {
  const message = `Nothing was pushed: ${reason}`;
  if (inputs.onFailure === 'fail' && inputs.onFailureGiven) throw new ConfigurationError(message);
  io.logger.warn(`${message} (set \`on-failure: fail\` to fail the step instead)`);
  setEmptyOutputs(io, [], inputs);
  await writeSummary(
    io,
    new Report().heading('nix-cache push: nothing pushed').paragraph(message).toString(),
  );
}

function setEmptyOutputs(io: StepIO, roots: readonly string[], inputs: PushInputs): void {
  const outputs: Record<string, string> = {
    'store-paths': JSON.stringify(roots),
    pushed: '0',
    'skipped-cached': '0',
    'skipped-upstream': '0',
    'skipped-filtered': '0',
    'uploaded-bytes': '0',
    'nar-bytes': '0',
    'cache-url': inputs.cacheUrl ?? '',
    'public-key': '',
  };
  for (const [name, value] of Object.entries(outputs)) io.setOutput(name, value);
}
