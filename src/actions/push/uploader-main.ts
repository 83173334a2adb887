/**
 * The background uploader of watch mode: a detached process the main step starts, with its own
 * process group and its output in `uploader.log`. Its settings (token included) come from its
 * stdin, a pipe from the main step; the token is never on disk, in its argv, environment or log.
 */
import { writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { CliLogger } from '../../cli/cli-logger.js';
import { errorMessage } from '../../core/errors.js';
import { maskSecret } from '../../core/logger.js';
import { Niks3Client } from '../../core/niks3/niks3-client.js';
import { PresignedUploader } from '../../core/niks3/presigned-upload.js';
import { pushClosure, type PushSummary, type PushTuning } from '../../core/push/push-closure.js';
import { jobDir } from '../../core/push/watch/job-dir.js';
import { runUploaderLoop, type BatchOutcome, type BatchResult } from '../../core/push/watch/uploader-loop.js';
import { actionsIdToken } from '../actions-io.js';
import { niks3TokenSource } from '../common-inputs.js';
import { actionDeps, type ActionDeps } from '../deps.js';

export interface UploaderConfig {
  readonly dir: string;
  readonly serverUrl: string;
  readonly auth: 'oidc' | 'token';
  readonly token?: string;
  readonly audience: string;
  readonly tuning: PushTuning;
  readonly connectTimeoutMs: number;
  readonly storeDir: string;
  readonly cacheUrl?: string;
}

/** Lines of the log, each with an ISO timestamp. */
function timestamped(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback): void {
      const text = chunk.toString('utf8').replace(/\n$/, '');
      const at = new Date().toISOString();
      out.write(
        `${text
          .split('\n')
          .map((line) => `${at} ${line}`)
          .join('\n')}\n`,
        () => callback(),
      );
    },
  });
}

/** What happened to each path of a push, as the loop records it. */
export function batchOutcomes(summary: PushSummary): BatchResult {
  const outcomes: BatchOutcome[] = [
    ...summary.uploaded.map((o) => ({ path: o.path, status: 'uploaded' as const, narSize: o.narSize })),
    ...summary.cached.map((o) => ({ path: o.path, status: 'cached' as const, narSize: o.narSize })),
    ...summary.upstream.map((o) => ({
      path: o.path,
      status: 'skipped' as const,
      narSize: o.narSize,
      reason: o.reason,
    })),
    ...summary.filtered.map((o) => ({
      path: o.path,
      status: 'skipped' as const,
      narSize: o.narSize,
      reason: o.reason,
    })),
    ...summary.notPushed.map((o) => ({
      path: o.path,
      status: 'failed' as const,
      narSize: o.narSize,
      reason: o.reason ?? o.status,
    })),
  ];
  return { outcomes, uploadedBytes: summary.uploadedBytes };
}

export async function runUploader(
  root = process.argv[2] ?? '',
  deps: ActionDeps = actionDeps(),
): Promise<void> {
  const logger = new CliLogger(timestamped(process.stderr), true);
  const dir = jobDir(root);
  let config: UploaderConfig;
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    config = JSON.parse(Buffer.concat(chunks).toString('utf8')) as UploaderConfig;
  } catch (error) {
    logger.error(`cannot read the settings from stdin: ${errorMessage(error)}`);
    process.exitCode = 1;
    return;
  }
  maskSecret(logger, config.token);
  await writeFile(dir.ready, String(process.pid));
  // No StepIO here: the token comes straight from the runner's token service.
  const client = new Niks3Client({
    serverUrl: config.serverUrl,
    tokenSource: niks3TokenSource(config, logger, actionsIdToken),
    logger,
    fetch: deps.fetch,
    sleep: deps.sleep,
  });
  const uploader = new PresignedUploader({ logger, sleep: deps.sleep });
  try {
    await runUploaderLoop({
      dir,
      logger,
      // The job is at most 6 h (hosted runners); an uploader left behind then exits.
      maxLifetimeMs: 6.5 * 60 * 60 * 1000,
      now: deps.now,
      pushBatch: async (roots, final) => {
        const summary = await pushClosure(
          {
            roots,
            ...config.tuning,
            verify: false,
            ...(config.cacheUrl ? { cacheUrl: config.cacheUrl } : {}),
            // A server that is down is retried by the loop: do not sit in one batch for long.
            connectTimeoutMs: final ? config.connectTimeoutMs : Math.min(config.connectTimeoutMs, 15_000),
            storeDir: config.storeDir,
          },
          {
            client,
            uploader,
            logger,
            fetch: deps.fetch,
            sleep: deps.sleep,
            now: deps.now,
            progressIntervalMs: 30_000,
          },
        );
        return batchOutcomes(summary);
      },
    });
  } catch (error) {
    logger.error(`uploader stopped: ${errorMessage(error)}`);
    process.exitCode = 1;
  } finally {
    uploader.close();
  }
}
