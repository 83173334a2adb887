/**
 * The main step of the job-wide modes (no `paths`/`installables`): reads the cache's config, makes
 * the cache a substituter for the rest of the job, records the store, and in watch mode installs
 * the post-build hook and starts the background uploader. Returns at once; the post step
 * (job-post.ts) finishes the push.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigurationError, errorMessage } from '../../core/errors.js';
import { oidcUnavailableReason } from '../../core/github/token-source.js';
import { maskSecret } from '../../core/logger.js';
import { Niks3Client } from '../../core/niks3/niks3-client.js';
import { NIX_STORE_DIR } from '../../core/nix/store-path.js';
import { renderHookScript } from '../../core/push/watch/hook-script.js';
import { jobDir } from '../../core/push/watch/job-dir.js';
import {
  configureDaemonSubstituter,
  defaultUserConfFiles,
  inspectNix,
  renderNixConf,
} from '../../core/push/watch/nix-setup.js';
import { storeEntries } from '../../core/push/watch/store-scan.js';
import type { StepIO } from '../../core/step/step-io.js';
import type { PushInputs } from './inputs.js';
import type { PushActionDeps } from './main.js';
import { PushStateKey, type JobMode, type JobState } from './state.js';
import type { UploaderConfig } from './uploader-main.js';

export async function startJobCache(io: StepIO, inputs: PushInputs, deps: PushActionDeps): Promise<void> {
  const { logger } = io;
  const { exec } = deps;
  const storeDir = io.env['NIX_STORE_DIR']?.replace(/\/+$/, '') || NIX_STORE_DIR;
  if (inputs.pin)
    logger.warn("Input 'pin' applies to explicit mode only (with `paths`/`installables`); ignored here.");

  let mode: JobMode;
  let pullOnlyReason: string | undefined;
  const nix = await inspectNix({ exec, env: io.env });
  if (inputs.requestedMode === 'pull-only') {
    mode = 'pull-only';
    pullOnlyReason = '`pull-only: true`';
  } else if (inputs.auth === 'oidc' && oidcUnavailableReason(io.env)) {
    mode = 'pull-only';
    pullOnlyReason = oidcUnavailableReason(io.env);
  } else if (inputs.requestedMode === 'scan') {
    mode = 'scan';
  } else if (nix.noHookReason) {
    if (inputs.requestedMode === 'watch')
      throw new ConfigurationError(
        `Input 'mode' is "watch", but a post-build hook cannot be installed: ${nix.noHookReason}. Use \`mode: auto\` (falls back to scan) or \`mode: scan\`, or add the user to trusted-users.`,
      );
    mode = 'scan';
    logger.info(
      `Scan mode: ${nix.noHookReason}; the post step pushes the store paths that appear during the job.`,
    );
  } else {
    mode = 'watch';
  }
  if (inputs.token) maskSecret(logger, inputs.token);

  const client = new Niks3Client({
    serverUrl: inputs.serverUrl,
    logger,
    fetch: deps.fetch,
    sleep: deps.sleep,
  });
  const contact = await logger.group('Cache', () => client.connect(inputs.connectTimeoutMs));
  const publicKeys = contact.config?.publicKeys ?? [];
  const substituter =
    inputs.cacheUrl ??
    (contact.config?.substituterUrl ? contact.config.substituterUrl.replace(/\/+$/, '') : undefined);

  const root = await mkdtemp(join(io.env['RUNNER_TEMP'] || tmpdir(), 'nix-cache-push-'));
  await chmod(root, 0o700);
  const dir = jobDir(root);
  await mkdir(dir.queue, { recursive: true });

  // The store as it is now: the post step pushes (scan) or counts (pulled) what is new.
  const startedAt = Date.now();
  await writeFile(dir.baseline, JSON.stringify(await storeEntries(storeDir).catch(() => [])));

  let hook: string | undefined;
  if (mode === 'watch') {
    const mv = (await exec('sh', ['-c', 'command -v mv'])).stdout.trim() || '/bin/mv';
    const previousHook = nix.existingHook && nix.existingHook !== dir.hook ? nix.existingHook : undefined;
    await writeFile(
      dir.hook,
      renderHookScript({ queueDir: dir.queue, mv, ...(previousHook ? { previousHook } : {}) }),
    );
    await chmod(dir.hook, 0o755);
    // The hook runs as this user (single-user) or as root (in the daemon): both may write the queue,
    // which stays ours (0755, not world-writable, so no other user can queue paths for us to push).
    await chmod(root, 0o755);
    await chmod(dir.queue, 0o755);
    hook = dir.hook;
    if (previousHook)
      logger.info(`The post-build hook already configured (${previousHook}) still runs, after ours.`);
  }

  // Substituter and hook for the rest of the job.
  let configuredBy: string;
  if (!substituter) {
    logger.warn(
      'The server announces no public cache URL, so the job cannot pull from the cache: set `cache-url` to the public read URL.',
    );
  }
  if (nix.trusted) {
    await writeFile(
      dir.nixConf,
      renderNixConf({ substituter, publicKeys, hook, serverUrl: inputs.serverUrl }),
    );
    const files = [dir.nixConf, ...defaultUserConfFiles(io.env)].join(':');
    if (io.exportVariable) io.exportVariable('NIX_USER_CONF_FILES', files);
    configuredBy = `NIX_USER_CONF_FILES (${dir.nixConf}, then the usual user files): Nix ${nix.daemon ? 'trusts this user, so the daemon honours' : 'is single-user here, so it reads'} these settings`;
  } else if (substituter) {
    const problem = await configureDaemonSubstituter(substituter, publicKeys, { exec, env: io.env });
    configuredBy = problem
      ? `nothing (${problem}); the daemon does not trust ${nix.user}, so only /etc/nix/nix.conf could add the substituter`
      : `/etc/nix/nix.conf and a daemon restart: the daemon does not trust ${nix.user}, so it would ignore the job's own settings`;
    if (problem) logger.warn(`The job cannot pull from the cache: ${problem}.`);
  } else {
    configuredBy = 'nothing';
  }
  if (substituter)
    logger.info(
      `Substituter ${substituter} (${publicKeys.join(' ') || 'no key'}) for the rest of the job, through ${configuredBy}.`,
    );

  let uploaderPid: number | undefined;
  if (mode === 'watch') {
    const config: UploaderConfig = {
      dir: root,
      serverUrl: inputs.serverUrl,
      auth: inputs.auth,
      ...(inputs.token ? { token: inputs.token } : {}),
      audience: inputs.audience,
      tuning: inputs.tuning,
      connectTimeoutMs: inputs.connectTimeoutMs,
      storeDir,
      ...(substituter ? { cacheUrl: substituter } : {}),
    };
    // The settings (token included) reach the uploader through a pipe: never argv, env, disk or log.
    const script = deps.uploaderScript ?? join(dirname(process.argv[1] ?? '.'), 'uploader', 'index.js');
    const log = openSync(dir.uploaderLog, 'a', 0o644);
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(io.env)) if (!key.startsWith('INPUT_')) env[key] = value;
    try {
      const child = spawn(process.execPath, [script, root], {
        detached: true,
        stdio: ['pipe', log, log],
        env,
      });
      child.on('error', () => undefined);
      if (child.pid === undefined) throw new Error(`could not start ${script}`);
      uploaderPid = child.pid;
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(JSON.stringify(config));
      child.unref();
      await waitForReady(dir.ready, child, 15_000);
    } catch (error) {
      const tail = (await readFile(dir.uploaderLog, 'utf8').catch(() => ''))
        .split('\n')
        .slice(-10)
        .join('\n');
      throw new Error(`the background uploader could not be started: ${errorMessage(error)}\n${tail}`, {
        cause: error,
      });
    } finally {
      closeSync(log);
    }
    logger.info(
      `Watch mode: every build of the rest of the job is queued by a post-build hook and pushed by a background uploader (pid ${uploaderPid}, log ${dir.uploaderLog}); the post step waits for the queue.`,
    );
  } else if (mode === 'scan') {
    logger.info('Scan mode: the post step pushes the valid store paths that appear during the job.');
  } else {
    logger.warn(
      `Pull-only: nothing will be pushed (${pullOnlyReason ?? ''}); the cache is a substituter for the rest of the job.`,
    );
  }

  const state: JobState = {
    mode,
    dir: root,
    storeDir,
    startedAt,
    ...(uploaderPid !== undefined ? { uploaderPid } : {}),
    ...(substituter ? { substituter } : {}),
    publicKeys,
    localStore: !nix.daemon,
    ...(pullOnlyReason ? { pullOnlyReason } : {}),
  };
  io.saveState(PushStateKey.Job, JSON.stringify(state));
  io.setOutput('mode', mode);
  io.setOutput('cache-url', substituter ?? '');
  io.setOutput('public-key', publicKeys[0] ?? '');
}

/** Resolves once the uploader has read its settings (it writes `ready`); rejects if it exits first. */
async function waitForReady(ready: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const started = Date.now();
  for (;;) {
    if (
      await access(ready).then(
        () => true,
        () => false,
      )
    )
      return;
    if (child.exitCode !== null) throw new Error(`it exited with code ${child.exitCode}`);
    if (Date.now() - started > timeoutMs) throw new Error(`it did not start within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
