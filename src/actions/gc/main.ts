import { collectGarbage } from '../../core/gc/collect-garbage.js';
import { gcOutputs, gcReport } from '../../core/gc/gc-report.js';
import { githubRepositoryRefs } from '../../core/gc/repository-refs.js';
import { RemoteError, errorMessage } from '../../core/errors.js';
import { mintOidcToken, niks3TokenSource } from '../common-inputs.js';
import { Niks3Client } from '../../core/niks3/niks3-client.js';
import { actionsStepIO } from '../actions-io.js';
import { actionDeps, type ActionDeps } from '../deps.js';
import { runStep, writeSummary, type StepIO } from '../../core/step/step-io.js';
import { readGcInputs } from './inputs.js';
import { GC_SPEC } from './spec.js';

/** The shared primitives plus the GC status poll interval. */
export interface GcDeps extends ActionDeps {
  /** Pause between two reads of the GC status (ms; default in core/gc). */
  readonly pollIntervalMs?: number;
}

export function defaultDeps(): GcDeps {
  return actionDeps();
}

export async function run(io: StepIO = actionsStepIO(), deps: GcDeps = defaultDeps()): Promise<void> {
  await runStep(GC_SPEC, io, async (reader) => {
    const inputs = readGcInputs(reader, io.env, io.logger);
    const client = new Niks3Client({
      serverUrl: inputs.serverUrl,
      tokenSource: niks3TokenSource(inputs, io.logger, (audience) => mintOidcToken(io, audience)),
      logger: io.logger,
      fetch: deps.fetch,
      sleep: deps.sleep,
    });
    const refs =
      inputs.prunePins && inputs.githubToken && inputs.repository
        ? githubRepositoryRefs({
            token: inputs.githubToken,
            repository: inputs.repository,
            apiUrl: inputs.githubApiUrl,
          })
        : undefined;
    const result = await collectGarbage({
      client,
      logger: io.logger,
      params: {
        olderThan: inputs.olderThan,
        failedUploadsOlderThan: inputs.failedUploadsOlderThan,
        force: inputs.force,
      },
      wait: inputs.wait,
      timeoutMs: inputs.timeoutMs,
      connectTimeoutMs: inputs.connectTimeoutMs,
      ...(refs ? { pruning: { refs, keep: inputs.keepPins } } : {}),
      sleep: deps.sleep,
      now: deps.now,
      ...(deps.pollIntervalMs !== undefined ? { pollIntervalMs: deps.pollIntervalMs } : {}),
    });
    for (const [name, value] of Object.entries(gcOutputs(result))) io.setOutput(name, value);
    await writeSummary(io, gcReport(result).toString());

    const { outcome } = result;
    if (outcome.state === 'failed') {
      const lock = /already running on this database/.test(outcome.error ?? '');
      throw new RemoteError({
        remote: 'niks3',
        operation: 'garbage collection',
        detail: `failed in phase ${outcome.phase ?? '(before the first phase)'}: ${outcome.error ?? 'no error text'}`,
        hint: lock
          ? 'another niks3 process holds the GC lock of this database; wait for it and run gc again'
          : 'the server logs (fly logs) say more; the next GC run repeats the work safely',
      });
    }
    if (outcome.timedOut) {
      throw new RemoteError({
        remote: 'niks3',
        operation: 'garbage collection',
        detail: `still running after ${Math.round(inputs.timeoutMs / 60_000)} min (phase ${outcome.phase ?? 'starting'})`,
        hint: 'the run goes on on the server; raise input timeout, or set `wait: false` and read /api/gc/status later',
        transient: true,
      });
    }
    if (result.pruningError) {
      throw new Error(
        `the GC ${outcome.state}, but pruning pins failed: ${errorMessage(result.pruningError)}`,
      );
    }
  });
}
