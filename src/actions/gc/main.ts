import { collectGarbage, type GcClient } from '../../core/gc/collect-garbage.js';
import { gcOutputs, gcReport } from '../../core/gc/gc-report.js';
import type { RepositoryRefs } from '../../core/gc/pin-pruning.js';
import { githubRepositoryRefs } from '../../core/gc/repository-refs.js';
import { RemoteError, errorMessage } from '../../core/errors.js';
import type { TokenSource } from '../../core/github/token-source.js';
import { niks3TokenSource } from '../common-inputs.js';
import type { Sleep } from '../../core/http.js';
import { Niks3Client } from '../../core/niks3/niks3-client.js';
import { actionsStepIO } from '../actions-io.js';
import { runStep, writeSummary, type StepIO } from '../../core/step/step-io.js';
import { readGcInputs } from './inputs.js';
import { GC_SPEC } from './spec.js';

export interface GcDeps {
  readonly niks3: (options: { serverUrl: string; tokenSource: TokenSource; io: StepIO }) => GcClient;
  readonly repositoryRefs: (options: { token: string; repository: string; apiUrl: string }) => RepositoryRefs;
  readonly sleep?: Sleep;
  readonly now?: () => number;
  readonly pollIntervalMs?: number;
}

export function defaultDeps(): GcDeps {
  return {
    niks3: ({ serverUrl, tokenSource, io }) => new Niks3Client({ serverUrl, tokenSource, logger: io.logger }),
    repositoryRefs: githubRepositoryRefs,
  };
}

export async function run(io: StepIO = actionsStepIO(), deps: GcDeps = defaultDeps()): Promise<void> {
  await runStep(GC_SPEC, io, async (reader) => {
    const inputs = readGcInputs(reader, io.env, io.logger);
    const client = deps.niks3({ serverUrl: inputs.serverUrl, tokenSource: niks3TokenSource(inputs, io), io });
    const refs =
      inputs.prunePins && inputs.githubToken && inputs.repository
        ? deps.repositoryRefs({
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
      ...(deps.sleep ? { sleep: deps.sleep } : {}),
      ...(deps.now ? { now: deps.now } : {}),
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
