/**
 * A whole push, from root store paths to a verified cache: the closure from `nix path-info`, the
 * user's filters, the upstream filter, the plan, first contact with a possibly cold server (started
 * early, so a waking server overlaps with the local work), the uploads, pins, and the check at the
 * public URL. Returns a PushSummary; never throws for a failed upload (the summary says what was and
 * was not pushed), only for configuration problems and failures before anything was uploaded.
 */
import { errorMessage } from '../errors.js';
import type { Sleep } from '../http.js';
import type { Niks3Client } from '../niks3/niks3-client.js';
import type { ServerContact } from '../niks3/niks3-contact.js';
import type { PresignedUploader } from '../niks3/presigned-upload.js';
import type { PathInfo } from '../nix/path-info.js';
import type { Realisation } from '../nix/realisations.js';
import { normaliseBaseUrl } from '../settings/values.js';
import { localBuildLogFinder, type BuildLogFinder } from './build-log.js';
import { publicObjectExists, type VerifyResult } from './cache-verify.js';
import { localClosure, type LocalClosureDeps } from './local-closure.js';
import { PathFilter, type PathFilterOptions } from './path-filter.js';
import { applyFilter, planPush, type PushPlan, type SkippedPath } from './push-plan.js';
import type { PathOutcome, PushRunResult } from './push-ledger.js';
import { runPush } from './push-run.js';
import { openSessions, pathsLacking, type OpenedSession } from './push-sessions.js';
import { mergeReverified, rootsToVerify, verifyRoots } from './push-verify.js';
import { askUpstream, signedUpstream, type UpstreamCandidate } from './upstream-filter.js';

/** How a push runs, from the push inputs: the same for every push of a job (main, uploader, post). */
export interface PushTuning {
  readonly concurrency: number;
  readonly compressionLevel: number;
  readonly filter: PathFilterOptions;
  readonly upstream: {
    readonly enabled: boolean;
    readonly caches: readonly string[];
    readonly keyNames: readonly string[];
  };
}

export interface PushRequest extends PushTuning {
  /** Top-level store paths, resolved. */
  readonly roots: readonly string[];
  /** Pin names, one per root (same order), or undefined for no pins. */
  readonly pins?: readonly string[];
  readonly verify: boolean;
  /** Send `verify_s3` (the server checks the bucket for what its database calls stored). */
  readonly verifyS3?: boolean;
  /** The user's public cache URL; else the one the server announces. */
  readonly cacheUrl?: string;
  readonly connectTimeoutMs: number;
  readonly storeDir?: string;
}

export interface PushDeps extends LocalClosureDeps {
  readonly client: Niks3Client;
  readonly uploader: PresignedUploader;
  readonly fetch?: typeof fetch;
  readonly sleep?: Sleep;
  readonly findBuildLog?: BuildLogFinder;
  readonly partSize?: number;
  readonly memoryBudget?: number;
  readonly progressIntervalMs?: number;
  readonly now?: () => number;
  /** Largest upload session before it is split (default MAX_SESSION_PATHS). */
  readonly maxSessionPaths?: number;
}

export interface PushSummary {
  readonly roots: readonly string[];
  readonly closureSize: number;
  readonly considered: number;
  readonly uploaded: readonly PathOutcome[];
  readonly cached: readonly PathOutcome[];
  readonly upstream: readonly SkippedPath[];
  readonly filtered: readonly SkippedPath[];
  /** Paths that were meant to be pushed and are not in the cache: failed, withheld, not attempted. */
  readonly notPushed: readonly PathOutcome[];
  readonly narBytes: number;
  readonly compressedNarBytes: number;
  readonly uploadedBytes: number;
  readonly logsUploaded: number;
  readonly durationMs: number;
  readonly uploadMs: number;
  readonly waitedMs: number;
  readonly cacheUrl: string | undefined;
  readonly publicKeys: readonly string[];
  readonly pinned: ReadonlyArray<{ readonly name: string; readonly path: string }>;
  readonly verify: VerifyResult | undefined;
  readonly warnings: readonly string[];
  /** Problems that make the push a failure (empty when it succeeded). */
  readonly problems: readonly string[];
  readonly ok: boolean;
}

export async function pushClosure(request: PushRequest, deps: PushDeps): Promise<PushSummary> {
  const now = deps.now ?? Date.now;
  const started = now();
  const { logger } = deps;
  const warnings: string[] = [];

  // First contact runs while Nix computes the closure: a cold server (Fly auto-stop, Neon suspend)
  // wakes up in the meantime.
  const contactAbort = new AbortController();
  const contactPromise = deps.client.connect(request.connectTimeoutMs, { signal: contactAbort.signal });
  contactPromise.catch(() => {});

  let plan: PushPlan;
  let realisations: ReadonlyMap<string, readonly Realisation[]>;
  try {
    const closure = await logger.group('Closure', () =>
      localClosure(request.roots, request.storeDir, deps, warnings),
    );
    const infos = closure.infos;
    realisations = closure.realisations;
    plan = await logger.group('Filters', () => makePlan(request, infos, deps, realisations));
  } catch (error) {
    contactAbort.abort(new Error('the push stopped before contacting the server'));
    throw error;
  }

  const base: {
    roots: readonly string[];
    closureSize: number;
    considered: number;
    upstream: readonly SkippedPath[];
    filtered: readonly SkippedPath[];
  } = {
    roots: plan.roots,
    closureSize: plan.closure.size,
    considered: plan.push.size,
    upstream: plan.upstream,
    filtered: plan.filtered,
  };
  if (plan.push.size === 0) {
    contactAbort.abort(new Error('nothing to push'));
    logger.info('Nothing to push: every path of the closure is served upstream or filtered out.');
    return {
      ...base,
      uploaded: [],
      cached: [],
      notPushed: [],
      narBytes: 0,
      compressedNarBytes: 0,
      uploadedBytes: 0,
      logsUploaded: 0,
      durationMs: now() - started,
      uploadMs: 0,
      waitedMs: 0,
      cacheUrl: request.cacheUrl,
      publicKeys: [],
      pinned: [],
      verify: undefined,
      warnings,
      problems: [],
      ok: true,
    };
  }

  const contact: ServerContact = await logger.group('Server', async () => {
    const result = await contactPromise;
    logger.info(
      result.config
        ? `niks3 at ${deps.client.serverUrl}: public keys ${result.config.publicKeys.join(', ') || '(none)'}; cache URL ${result.config.substituterUrl || '(not announced)'}`
        : `niks3 at ${deps.client.serverUrl} is older than v1.5.0 (no /api/cache-config)`,
    );
    return result;
  });
  const publicKeys = contact.config?.publicKeys ?? [];
  const cacheUrl =
    request.cacheUrl ??
    (contact.config?.substituterUrl ? normaliseBaseUrl(contact.config.substituterUrl) : undefined);
  if (publicKeys.length === 0 && contact.config) {
    const warning =
      'the server announces no public key: it has no signing key, so the narinfos it serves are unsigned.';
    warnings.push(warning);
    logger.warn(warning);
  }

  // Our cache answers first: only the paths it lacks are asked upstream, so a re-push of a cached
  // closure makes no upstream request.
  let opened: readonly OpenedSession[] | undefined;
  if (request.upstream.enabled && request.upstream.caches.length > 0) {
    const first = await logger.group('Upload sessions', () =>
      openSessions(plan, deps.client, logger, request.verifyS3 === true, ...(deps.sleep ? [deps.sleep] : [])),
    );
    const lacking = pathsLacking(plan, first);
    const served = await logger.group('Upstream', async () => {
      const verdicts = await askUpstream(
        lacking.map((planned) => upstreamCandidate(planned.info)),
        {
          caches: request.upstream.caches,
          logger,
          ...(deps.fetch ? { fetch: deps.fetch } : {}),
        },
      );
      logger.info(
        `${lacking.length} path(s) missing from this cache were asked upstream (${request.upstream.caches.join(', ')}); ${verdicts.size} served there, not pushed.`,
      );
      return verdicts;
    });
    if (served.size === 0) opened = first;
    else {
      // The sessions above register the upstream paths too: plan again without them. The first
      // sessions stay open, uncommitted, and the server's GC removes them (failed-uploads-older-than);
      // nothing of them is ever visible.
      plan = replan(plan, request, deps, new Map([...signedVerdicts(plan), ...served]), realisations);
      logger.info(
        `${first.length} session(s) opened before the upstream answer are left for the server's GC; ${plan.sessions.length} new session(s).`,
      );
      base.considered = plan.push.size;
      base.upstream = plan.upstream;
    }
  }

  const uploadStarted = now();
  const run: PushRunResult = await runPush(plan, {
    client: deps.client,
    uploader: deps.uploader,
    logger,
    concurrency: request.concurrency,
    compressionLevel: request.compressionLevel,
    ...(deps.memoryBudget !== undefined ? { memoryBudget: deps.memoryBudget } : {}),
    ...(deps.partSize !== undefined ? { partSize: deps.partSize } : {}),
    ...(deps.progressIntervalMs !== undefined ? { progressIntervalMs: deps.progressIntervalMs } : {}),
    ...(opened ? { opened } : {}),
    ...(request.verifyS3 ? { verifyS3: true } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
    ...(deps.maxSessionPaths !== undefined ? { maxSessionPaths: deps.maxSessionPaths } : {}),
    // niks3 v1.7.0 answers 404 to every HEAD /api/objects: also look at the public URL.
    objectStored: async (key) =>
      (await deps.client.objectExists(key)) ||
      (cacheUrl !== undefined &&
        (await publicObjectExists(cacheUrl, key, deps.fetch ? { fetch: deps.fetch } : {}))),
  });
  const uploadMs = now() - uploadStarted;
  warnings.push(...run.warnings);

  const outcomes = [...run.paths.values()];
  const uploaded = outcomes.filter((o) => o.status === 'uploaded');
  const cached = outcomes.filter((o) => o.status === 'cached');
  const notPushed = outcomes.filter(
    (o) => o.status === 'failed' || o.status === 'withheld' || o.status === 'not-attempted',
  );
  const problems: string[] = [];
  if (notPushed.length > 0) problems.push(describeNotPushed(notPushed, plan.push.size, run.stoppedBecause));
  const unfinishedSessions = run.sessions.filter((s) => !s.completed);
  if (notPushed.length === 0 && unfinishedSessions.length > 0) {
    problems.push(
      `${unfinishedSessions.length} upload session(s) could not be completed: ${unfinishedSessions.map((s) => `${s.root} (${s.reason ?? 'unknown'})`).join('; ')}`,
    );
  }

  const completedRoots = new Set(run.sessions.filter((s) => s.completed && !s.derived).map((s) => s.root));
  const pinned: Array<{ name: string; path: string }> = [];
  if (request.pins && request.pins.length > 0) {
    await logger.group('Pins', async () => {
      for (const [index, root] of plan.roots.entries()) {
        const name = request.pins?.[index];
        if (!name) continue;
        if (!completedRoots.has(root)) {
          if (plan.push.has(root)) problems.push(`pin ${name} was not set: ${root} was not pushed`);
          else logger.info(`pin ${name} not set: ${root} is not pushed to this cache (upstream or filtered)`);
          continue;
        }
        try {
          await deps.client.putPin(name, root);
          pinned.push({ name, path: root });
          logger.info(`pinned ${root} as ${name}`);
        } catch (error) {
          problems.push(`pin ${name} -> ${root} failed: ${errorMessage(error)}`);
        }
      }
    });
  }

  let verify: VerifyResult | undefined;
  const toVerify = rootsToVerify(
    plan,
    plan.roots.filter((root) => completedRoots.has(root)),
    outcomes,
  );
  if (request.verify && toVerify.length > 0) {
    verify = await verifyRoots(plan, toVerify, {
      cacheUrl,
      publicKeys,
      logger,
      warnings,
      completed: completedRoots.size,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
      ...(deps.sleep ? { sleep: deps.sleep } : {}),
      ...(request.storeDir ? { storeDir: request.storeDir } : {}),
    });
  }

  // A root whose narinfo is served but whose NAR is not: the database calls the NAR stored, the
  // bucket lost it. Push those roots again with verify_s3, so the server checks the bucket.
  let again: PushSummary | undefined;
  if (verify && verify.missingNars.length > 0 && !request.verifyS3) {
    logger.warn(
      `${verify.missingNars.length} root NAR(s) missing at the public URL: pushing them again with verify_s3 (the server checks the bucket)`,
    );
    const { pins: _pins, ...withoutPins } = request;
    again = await pushClosure(
      { ...withoutPins, roots: verify.missingNars, verifyS3: true },
      { ...deps, now },
    );
    verify = mergeReverified(verify, again.verify);
    problems.push(...again.problems.filter((p) => !p.startsWith('verify: ')));
    warnings.push(...again.warnings);
  }
  for (const problem of verify?.problems ?? []) problems.push(`verify: ${problem}`);
  const reuploaded = new Set(again?.uploaded.map((o) => o.path));
  if (again) uploaded.push(...again.uploaded);

  return {
    ...base,
    uploaded,
    cached: cached.filter((o) => !reuploaded.has(o.path)),
    notPushed,
    narBytes: uploaded.reduce((sum, o) => sum + o.narSize, 0),
    compressedNarBytes: uploaded.reduce((sum, o) => sum + o.compressedBytes, 0),
    uploadedBytes: run.uploadedBytes + (again?.uploadedBytes ?? 0),
    logsUploaded: run.logsUploaded + (again?.logsUploaded ?? 0),
    durationMs: now() - started,
    uploadMs,
    waitedMs: contact.waitedMs,
    cacheUrl,
    publicKeys,
    pinned,
    verify,
    warnings,
    problems,
    ok: problems.length === 0,
  };
}

/** The plan before any request: the user's filters, and upstream by signature (no request needed). */
async function makePlan(
  request: PushRequest,
  infos: PathInfo[],
  deps: PushDeps,
  realisations: ReadonlyMap<string, readonly Realisation[]>,
): Promise<PushPlan> {
  const { logger } = deps;
  const filter = new PathFilter(request.filter);
  const { kept, filtered } = applyFilter(infos, filter);
  if (filtered.length > 0)
    logger.info(`${filtered.length} path(s) left out by include/exclude/max-path-size.`);
  const upstream = request.upstream.enabled
    ? signedUpstream(kept.map(upstreamCandidate), request.upstream.keyNames)
    : new Map<string, string>();
  if (upstream.size > 0)
    logger.info(`${upstream.size} path(s) are signed by an upstream key and are not pushed.`);
  const plan = planPush({
    roots: request.roots,
    infos,
    filter,
    upstream,
    findBuildLog: deps.findBuildLog ?? localBuildLogFinder(request.storeDir ?? '/nix/store'),
    realisations,
    ...(deps.maxSessionPaths !== undefined ? { maxSessionPaths: deps.maxSessionPaths } : {}),
  });
  logger.info(`${plan.push.size} path(s) to send in ${plan.sessions.length} upload session(s).`);
  return Promise.resolve(plan);
}

/** The same closure planned again with more upstream verdicts. */
function replan(
  plan: PushPlan,
  request: PushRequest,
  deps: PushDeps,
  upstream: ReadonlyMap<string, string>,
  realisations: ReadonlyMap<string, readonly Realisation[]>,
): PushPlan {
  return planPush({
    roots: request.roots,
    infos: [...plan.closure.values()].map((planned) => planned.info),
    filter: new PathFilter(request.filter),
    upstream,
    findBuildLog: deps.findBuildLog ?? localBuildLogFinder(request.storeDir ?? '/nix/store'),
    realisations,
    ...(deps.maxSessionPaths !== undefined ? { maxSessionPaths: deps.maxSessionPaths } : {}),
  });
}

function signedVerdicts(plan: PushPlan): Map<string, string> {
  return new Map(plan.upstream.map((skipped) => [skipped.path, skipped.reason]));
}

function upstreamCandidate(info: {
  readonly path: string;
  readonly signatures: readonly string[];
}): UpstreamCandidate {
  const base = info.path.slice(info.path.lastIndexOf('/') + 1);
  return { path: info.path, hash: base.slice(0, 32), signatures: info.signatures };
}

function describeNotPushed(
  notPushed: readonly PathOutcome[],
  considered: number,
  stoppedBecause: string | undefined,
): string {
  const pushedCount = considered - notPushed.length;
  const lines = notPushed.slice(0, 10).map((o) => `${o.path}: ${o.reason ?? o.status}`);
  const more = notPushed.length > 10 ? `\n  … and ${notPushed.length - 10} more` : '';
  const stop = stoppedBecause ? ` The push stopped early: ${stoppedBecause}.` : '';
  return (
    `${notPushed.length} of ${considered} path(s) were NOT pushed (${pushedCount} are in the cache).${stop} ` +
    `No narinfo was written for any path that is not pushed, so Nix will not try to substitute them. Run the push again to finish it.\n  ` +
    lines.join('\n  ') +
    more
  );
}
