/**
 * The post step of the job-wide modes (runs with `post-if: always()`, so a failed or cancelled job
 * still pushes what it built): stops the uploader taking new work and waits, within
 * `drain-timeout`, for it to drain the queue (a heartbeat line every 30 s; on timeout its process
 * group is killed); then pushes what the hook could not see (scan mode: everything the job made),
 * and writes the job summary and outputs: pushed during the build vs in the post step, the wait,
 * and what the job pulled from the cache. Nothing to do after an explicit-mode main step.
 */
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { errorMessage } from '../../core/errors.js';
import { Niks3Client } from '../../core/niks3/niks3-client.js';
import { PresignedUploader } from '../../core/niks3/presigned-upload.js';
import { pushClosure, type PushSummary } from '../../core/push/push-closure.js';
import { Report } from '../../core/report/markdown.js';
import { formatBytes } from '../../core/settings/values.js';
import { jobDir, parseEvents, type UploaderDone, type UploaderEvent } from '../../core/push/watch/job-dir.js';
import {
  classify,
  newCandidates,
  scanPathInfo,
  storeEntries,
  topPaths,
  validPaths,
} from '../../core/push/watch/store-scan.js';
import { actionsStepIO } from '../actions-io.js';
import { actionDeps, type ActionDeps } from '../deps.js';
import { runStep, writeSummary, type StepIO } from '../../core/step/step-io.js';
import { readPushInputs, type PushInputs } from './inputs.js';
import { mintOidcToken, niks3TokenSource } from '../common-inputs.js';
import { PUSH_SPEC } from './spec.js';
import { parseJobState, PushStateKey, type JobState } from './state.js';

/** The shared primitives plus the drain's knobs. */
export interface PushPostDeps extends ActionDeps {
  /** Interval of the "still draining" line (ms, default 30 s). */
  readonly heartbeatMs?: number;
  /** Pause between two looks at the uploader (ms, default 100). */
  readonly pollMs?: number;
}

export function defaultPostDeps(): PushPostDeps {
  return actionDeps();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // An exited process nobody reaped yet (a zombie) is not alive.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

interface Drain {
  readonly waitedMs: number;
  readonly timedOut: boolean;
}

/** Asks the uploader to stop and waits for it within the deadline; kills its group after it. */
async function drainUploader(
  io: StepIO,
  state: JobState,
  deadline: number,
  deps: PushPostDeps,
): Promise<Drain> {
  const { now, sleep } = deps;
  const pid = state.uploaderPid;
  const dir = jobDir(state.dir);
  const started = now();
  await writeFile(dir.stop, String(started));
  if (pid === undefined) return { waitedMs: 0, timedOut: false };
  const heartbeatMs = deps.heartbeatMs ?? 30_000;
  let nextBeat = started + heartbeatMs;
  io.logger.info(
    `Waiting for the background uploader (pid ${pid}) to push the queue (at most ${seconds(deadline - started)})…`,
  );
  while (alive(pid)) {
    if (now() >= deadline) {
      io.logger.warn(`The uploader did not finish within drain-timeout: stopping its process group ${pid}.`);
      try {
        process.kill(-pid, 'SIGTERM');
        await sleep(1_000);
        if (alive(pid)) process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
      return { waitedMs: now() - started, timedOut: true };
    }
    if (now() >= nextBeat) {
      nextBeat += heartbeatMs;
      const events = parseEvents(await readFile(dir.events, 'utf8').catch(() => ''));
      io.logger.info(
        `still draining after ${seconds(now() - started)}: ${events.filter((e) => e.status === 'uploaded').length} path(s) pushed so far`,
      );
    }
    await sleep(deps.pollMs ?? 100);
  }
  return { waitedMs: now() - started, timedOut: false };
}

function makeClient(io: StepIO, inputs: PushInputs, deps: PushPostDeps): Niks3Client {
  return new Niks3Client({
    serverUrl: inputs.serverUrl,
    tokenSource: niks3TokenSource(inputs, io.logger, (audience) => mintOidcToken(io, audience)),
    logger: io.logger,
    fetch: deps.fetch,
    sleep: deps.sleep,
  });
}

/** A promise that gives up at `deadline` (the push keeps running; the step exits after the summary). */
async function withDeadline<T>(
  promise: Promise<T>,
  deadline: number,
  now: () => number,
): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - now()));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function runPost(
  io: StepIO = actionsStepIO(),
  deps: PushPostDeps = defaultPostDeps(),
): Promise<void> {
  const { now } = deps;
  let exitNow = false;
  await runStep(PUSH_SPEC, io, async (reader) => {
    const state = parseJobState(io.getState(PushStateKey.Job));
    if (!state) {
      io.logger.info('Nothing to do in the post step (explicit mode pushes in the main step).');
      return;
    }
    const inputs = readPushInputs(reader, io.logger, true);
    const { logger } = io;
    const postStarted = now();
    const deadline = postStarted + inputs.drainTimeoutMs;
    const dir = jobDir(state.dir);

    const drain =
      state.mode === 'watch'
        ? await drainUploader(io, state, deadline, deps)
        : { waitedMs: 0, timedOut: false };
    const events = parseEvents(await readFile(dir.events, 'utf8').catch(() => ''));
    const done = await readFile(dir.done, 'utf8')
      .then((text) => JSON.parse(text) as UploaderDone)
      .catch(() => undefined);
    const last = new Map<string, UploaderEvent>();
    // Per path, the upload itself if there was one (a later closure lists it again as cached).
    for (const event of events) if (last.get(event.path)?.status !== 'uploaded') last.set(event.path, event);
    const handled = new Set([...last.values()].filter((e) => e.status !== 'failed').map((e) => e.path));

    // What appeared in the store during the job.
    const before = new Set(JSON.parse(await readFile(dir.baseline, 'utf8').catch(() => '[]')) as string[]);
    const candidates = newCandidates(before, await storeEntries(state.storeDir), state.storeDir);
    const scanned = await scanPathInfo(await validPaths(candidates), { storeDir: state.storeDir });
    const keyNames = state.publicKeys.map((key) => key.slice(0, key.indexOf(':')));
    const classified = await classify(scanned, {
      sinceSeconds: Math.floor(state.startedAt / 1000),
      ourKeyNames: keyNames,
      checkOwner: state.localStore,
      uid: process.getuid?.(),
    });
    const foreign = classified.skipped.filter((s) => !s.reason.startsWith('substituted'));
    for (const skipped of foreign.slice(0, 10)) logger.info(`not pushed: ${skipped.path}: ${skipped.reason}`);
    if (foreign.length > 10) logger.info(`… and ${foreign.length - 10} more not pushed for the same reasons`);
    const pulledBytes = classified.pulled.reduce((sum, info) => sum + info.narSize, 0);

    let post: PushSummary | undefined;
    let postProblem: string | undefined;
    const unseen = classified.made.filter((info) => !handled.has(info.path));
    if (state.mode !== 'pull-only' && unseen.length > 0) {
      const roots = topPaths(unseen);
      logger.info(
        `${unseen.length} path(s) made by the job are not in the cache yet (${state.mode === 'watch' ? 'the hook did not see them, or their push failed' : 'scan mode'}): pushing the closures of ${roots.length} root(s).`,
      );
      const uploader = new PresignedUploader({ logger, sleep: deps.sleep });
      try {
        const pushing = pushClosure(
          {
            roots,
            ...inputs.tuning,
            verify: inputs.verify,
            ...(state.substituter ? { cacheUrl: state.substituter } : {}),
            connectTimeoutMs: Math.min(inputs.connectTimeoutMs, Math.max(1_000, deadline - now())),
            storeDir: state.storeDir,
          },
          {
            client: makeClient(io, inputs, deps),
            uploader,
            logger,
            fetch: deps.fetch,
            sleep: deps.sleep,
            now,
            progressIntervalMs: 30_000,
          },
        );
        pushing.catch(() => undefined);
        // At least min(drain-timeout, 60 s) for the post step's own push, even after a long drain.
        const result = await withDeadline(
          pushing,
          Math.max(deadline, now() + Math.min(60_000, inputs.drainTimeoutMs)),
          now,
        );
        if (result === 'timeout') {
          postProblem = `the post step's push did not finish within drain-timeout (${seconds(inputs.drainTimeoutMs)})`;
          exitNow = true;
        } else post = result;
      } catch (error) {
        postProblem = errorMessage(error);
      } finally {
        if (!exitNow) uploader.close();
      }
    }

    const count = (phase: UploaderEvent['phase']): number =>
      [...last.values()].filter((e) => e.phase === phase && e.status === 'uploaded').length;
    const duringBuild = count('build');
    const drained = count('drain');
    const inPost = drained + (post?.uploaded.length ?? 0);
    const cachedCount =
      [...last.values()].filter((e) => e.status === 'cached').length + (post?.cached.length ?? 0);
    const failedNow = new Set<string>();
    for (const info of unseen) failedNow.add(info.path);
    if (post) {
      for (const o of [...post.uploaded, ...post.cached, ...post.upstream, ...post.filtered])
        failedNow.delete(o.path);
    }
    const notPushed =
      state.mode === 'pull-only'
        ? []
        : [...failedNow].map((path) => ({
            path,
            reason:
              post?.notPushed.find((o) => o.path === path)?.reason ??
              postProblem ??
              last.get(path)?.reason ??
              done?.failed.find((f) => f.path === path)?.reason ??
              'not pushed',
          }));
    const uploadedEvents = [...last.values()].filter((e) => e.status === 'uploaded');
    const narBytes = uploadedEvents.reduce((sum, e) => sum + e.narSize, 0) + (post?.narBytes ?? 0);
    const uploadedBytes = (done?.uploadedBytes ?? 0) + (post?.uploadedBytes ?? 0);
    const postMs = now() - postStarted;

    const outputs: Record<string, string> = {
      mode: state.mode,
      'store-paths': JSON.stringify(classified.made.map((info) => info.path)),
      pushed: String(duringBuild + inPost),
      'pushed-during-build': String(duringBuild),
      'pushed-in-post': String(inPost),
      'skipped-cached': String(cachedCount),
      'skipped-upstream': String(
        [...last.values()].filter((e) => e.status === 'skipped' && /upstream/i.test(e.reason ?? '')).length +
          (post?.upstream.length ?? 0),
      ),
      'skipped-filtered': String(post?.filtered.length ?? 0),
      'uploaded-bytes': String(uploadedBytes),
      'nar-bytes': String(narBytes),
      'cache-url': state.substituter ?? '',
      'public-key': state.publicKeys[0] ?? '',
      substituted: String(classified.pulled.length),
      'substituted-bytes': String(pulledBytes),
    };
    for (const [name, value] of Object.entries(outputs)) io.setOutput(name, value);

    const headline =
      state.mode === 'pull-only'
        ? `Pull-only: nothing pushed; the job substituted ${classified.pulled.length} path(s) (${formatBytes(pulledBytes)} of NAR) from the cache.`
        : `${duringBuild} path(s) pushed during the build, ${inPost} in the post step (waited ${seconds(drain.waitedMs)} for the queue; post step ${seconds(postMs)})` +
          `${notPushed.length > 0 ? `, ${notPushed.length} NOT pushed` : ''}; the job substituted ${classified.pulled.length} path(s) (${formatBytes(pulledBytes)}) from the cache.`;
    logger.info(headline);

    const report = new Report()
      .heading(`nix-cache push (${state.mode} mode)${notPushed.length > 0 ? ': incomplete' : ''}`)
      .paragraph(headline)
      .table(
        ['', 'value'],
        [
          ['mode', state.mode],
          ['pushed during the build (post-build hook)', duringBuild],
          ['pushed in the post step', inPost],
          ['… of which queue drain', drained],
          ['already cached', cachedCount],
          ['not pushed', notPushed.length],
          ['NAR bytes pushed', formatBytes(narBytes)],
          ['bytes stored', formatBytes(uploadedBytes)],
          ['post step waited for the queue', seconds(drain.waitedMs)],
          ['post step duration', seconds(postMs)],
          ['paths substituted from this cache', classified.pulled.length],
          ['NAR bytes substituted from this cache', formatBytes(pulledBytes)],
        ],
      );
    if (state.pullOnlyReason) report.paragraph(`Nothing was pushed: ${state.pullOnlyReason}`);
    if (notPushed.length > 0)
      report.details(
        `${notPushed.length} path(s) not pushed`,
        notPushed.map((p) => `- \`${p.path}\`: ${p.reason.replace(/\n\s*/g, ' ')}`).join('\n'),
      );
    if (state.substituter && state.publicKeys.length > 0)
      report.code(
        `extra-substituters = ${state.substituter}\nextra-trusted-public-keys = ${state.publicKeys.join(' ')}`,
        'ini',
      );
    await writeSummary(io, report.toString());

    if (notPushed.length > 0) {
      const message =
        `push incomplete: ${notPushed.length} path(s) made by the job were not pushed` +
        `${drain.timedOut ? ' (the uploader did not finish within drain-timeout)' : ''}:\n` +
        notPushed
          .slice(0, 10)
          .map((p) => `  ${p.path}: ${p.reason}`)
          .join('\n') +
        `\nThe uploader's log is ${dir.uploaderLog}.`;
      if (inputs.onFailure === 'warn') logger.warn(`${message}\n(on-failure: warn, so the step stays green)`);
      else throw new Error(message);
    }
  });
  if (exitNow) process.exit();
}
