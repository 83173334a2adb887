/**
 * The pieces of the job-wide push, in process (real Nix, the niks3 stand-in over HTTP): the
 * post-build hook script run by a real shell, the store scan, the uploader loop fed the way the hook
 * feeds it (Nix 2.8's empty OUT_PATHS included), and the main and post steps through run() with a
 * MemoryStepIO (the uploader itself is the dist bundle, started by the main step).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPostDeps, runPost } from '../../src/actions/push/job-post.js';
import { defaultDeps, run } from '../../src/actions/push/main.js';
import { batchOutcomes } from '../../src/actions/push/uploader-main.js';
import { MemoryLogger } from '../../src/core/logger.js';
import { Niks3Client } from '../../src/core/niks3/niks3-client.js';
import { PresignedUploader } from '../../src/core/niks3/presigned-upload.js';
import { StaticTokenSource } from '../../src/core/github/token-source.js';
import { pushClosure } from '../../src/core/push/push-closure.js';
import { parseQueueFile, renderHookScript } from '../../src/core/push/watch/hook-script.js';
import { jobDir, parseEvents, type UploaderDone } from '../../src/core/push/watch/job-dir.js';
import { defaultUserConfFiles, inspectNix, renderNixConf } from '../../src/core/push/watch/nix-setup.js';
import {
  classify,
  newCandidates,
  scanPathInfo,
  storeEntries,
  topPaths,
  validPaths,
} from '../../src/core/push/watch/store-scan.js';
import { runUploaderLoop } from '../../src/core/push/watch/uploader-loop.js';
import { MemoryStepIO } from '../../src/core/step/memory-io.js';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { ROOT } from '../helpers/run-action.js';
import { processAlive } from '../helpers/run-job.js';
import { pushFakeInputs } from './push-test-support.js';
import {
  inCache,
  nixBuild,
  nixSandbox,
  writeDerivations,
  type NixSandbox,
  describeWithHooks,
} from './watch-support.js';

let fake: FakeNiks3;
let nix: NixSandbox;
let tmp: string;
const pids: number[] = [];

beforeAll(async () => {
  fake = await startFakeNiks3();
  nix = nixSandbox();
  tmp = mkdtempSync(join(tmpdir(), 'watch-core-'));
});

afterAll(async () => {
  for (const pid of pids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await fake?.close();
  nix?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('post-build hook script', () => {
  const mv = execFileSync('sh', ['-c', 'command -v mv'], { encoding: 'utf8' }).trim();

  it('queues the build and exits 0, even when the queue is gone', () => {
    const queue = join(tmp, 'q1');
    mkdirSync(queue);
    const hook = join(tmp, 'hook1');
    writeFileSync(hook, renderHookScript({ queueDir: queue, mv }));
    chmodSync(hook, 0o755);
    const env = {
      PATH: process.env['PATH'],
      DRV_PATH: '/nix/store/abc-x.drv',
      OUT_PATHS: '/nix/store/o1 /nix/store/o2',
    };
    expect(spawnSync(hook, { env }).status).toBe(0);
    const files = readdirSync(queue);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^abc-x\.drv\.\d+$/);
    expect(parseQueueFile(readFileSync(join(queue, files[0] as string), 'utf8'))).toEqual({
      drv: '/nix/store/abc-x.drv',
      outputs: ['/nix/store/o1', '/nix/store/o2'],
    });
    rmSync(queue, { recursive: true });
    const run = spawnSync(hook, { env, encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout + run.stderr).toBe('');
  });

  it("runs the user's own hook after it, with that hook's exit code; quotes odd paths", () => {
    const queue = join(tmp, "q 2 'x'");
    mkdirSync(queue);
    const previous = join(tmp, 'previous hook');
    writeFileSync(previous, '#!/bin/sh\necho "previous saw $DRV_PATH"\nexit 7\n');
    chmodSync(previous, 0o755);
    const hook = join(tmp, 'hook2');
    writeFileSync(hook, renderHookScript({ queueDir: queue, mv, previousHook: previous }));
    chmodSync(hook, 0o755);
    const run = spawnSync(hook, {
      env: { PATH: process.env['PATH'], DRV_PATH: '/nix/store/d-y.drv', OUT_PATHS: '' },
      encoding: 'utf8',
    });
    expect(run.status).toBe(7);
    expect(run.stdout).toContain('previous saw /nix/store/d-y.drv');
    expect(parseQueueFile(readFileSync(join(queue, readdirSync(queue)[0] as string), 'utf8'))).toEqual({
      drv: '/nix/store/d-y.drv',
      outputs: [],
    });
  });
});

describe('Nix settings', () => {
  it('sees single-user root Nix as trusted, with a hook possible', async () => {
    const found = await inspectNix({ env: { ...process.env, ...nix.env } });
    expect(found.version).toMatch(/^\d+\.\d+/);
    expect(found.daemon).toBe(false);
    expect(found.trusted).toBe(true);
    expect(found.noHookReason).toBeUndefined();
  });

  it('keeps the user files after ours and writes only extra- settings', () => {
    expect(defaultUserConfFiles({ HOME: '/home/u' })).toEqual([
      '/home/u/.config/nix/nix.conf',
      '/etc/xdg/nix/nix.conf',
    ]);
    expect(defaultUserConfFiles({ NIX_USER_CONF_FILES: '/a:/b' })).toEqual(['/a', '/b']);
    expect(
      renderNixConf({ substituter: 'https://c', publicKeys: ['k:1'], hook: '/h', serverUrl: 'https://s' }),
    ).toBe(
      '# nix-cache push (https://s): settings for the rest of this job.\nextra-substituters = https://c\nextra-trusted-public-keys = k:1\npost-build-hook = /h\n',
    );
  });
});

describe('store scan and uploader loop', () => {
  it('finds what a build added, and the uploader pushes queued builds (outputs taken from the .drv)', async () => {
    const before = new Set(await storeEntries('/nix/store'));
    const since = Math.floor(Date.now() / 1000);
    const drvs = writeDerivations(
      tmp,
      { low: 'echo low > $out', high: '/bin/mkdir $out; echo ${low} > $out/d' },
      { env: nix.env },
    );
    const build = await nixBuild(drvs, { ...process.env, ...nix.env });
    expect(build.code).toBe(0);
    const candidates = newCandidates(before, await storeEntries('/nix/store'), '/nix/store');
    expect(candidates).toEqual(expect.arrayContaining(Object.values(drvs.paths)));
    expect(candidates.some((p) => p.endsWith('.drv'))).toBe(false);
    const scanned = await scanPathInfo(await validPaths(candidates));
    const classified = await classify(scanned, {
      sinceSeconds: since,
      ourKeyNames: ['niks3-test-1'],
      checkOwner: true,
      uid: process.getuid?.(),
    });
    const ours = classified.made.filter((info) => Object.values(drvs.paths).includes(info.path));
    expect(ours).toHaveLength(2);
    expect(topPaths(ours)).toEqual([drvs.paths.high]);
    expect(await validPaths(['/nix/store/00000000000000000000000000000000-nope'])).toEqual([]);

    const dir = jobDir(join(tmp, 'job'));
    mkdirSync(dir.queue, { recursive: true });
    const drvOf = (attr: string): string =>
      execFileSync('nix-store', ['--query', '--deriver', drvs.paths[attr] as string], {
        encoding: 'utf8',
      }).trim();
    // As Nix 2.8 leaves it: the .drv, and no OUT_PATHS.
    writeFileSync(join(dir.queue, 'a'), `${drvOf('high')}\n\n`);
    const logger = new MemoryLogger();
    const client = new Niks3Client({
      serverUrl: fake.url,
      tokenSource: new StaticTokenSource(fake.apiToken),
      logger,
    });
    const uploader = new PresignedUploader({ logger });
    let batches = 0;
    const loop = runUploaderLoop({
      dir,
      logger,
      pollMs: 20,
      pushBatch: async (roots) => {
        batches += 1;
        const summary = await pushClosure(
          {
            roots,
            concurrency: 4,
            compressionLevel: 3,
            filter: { include: [], exclude: [], maxPathSize: 0 },
            upstream: { enabled: false, caches: [], keyNames: [] },
            verify: false,
            connectTimeoutMs: 5_000,
          },
          { client, uploader, logger },
        );
        return batchOutcomes(summary);
      },
    });
    const started = Date.now();
    while (!inCache(fake, drvs.paths.high as string) && Date.now() - started < 30_000)
      await new Promise((r) => setTimeout(r, 20));
    writeFileSync(dir.stop, '');
    const done: UploaderDone = await loop;
    uploader.close();
    expect(done.failed).toEqual([]);
    expect(batches).toBe(1);
    const events = parseEvents(readFileSync(dir.events, 'utf8'));
    expect(
      events
        .filter((e) => e.status === 'uploaded')
        .map((e) => e.path)
        .sort(),
    ).toEqual(Object.values(drvs.paths).sort());
    expect(events.every((e) => e.phase === 'build')).toBe(true);
    expect(inCache(fake, drvs.paths.low as string)).toBe(true);
  }, 120_000);
});

describeWithHooks('main and post steps through run()', () => {
  it('watch mode end to end in process: main configures and starts the uploader, post drains and reports', async () => {
    const runnerTemp = mkdtempSync(join(tmp, 'rt-'));
    const env = { ...process.env, ...nix.env, RUNNER_TEMP: runnerTemp };
    const inputs = pushFakeInputs(fake);
    const main = new MemoryStepIO({ inputs, env, hasPostStep: true });
    await run(main, { ...defaultDeps(), uploaderScript: join(ROOT, 'dist', 'push', 'uploader', 'index.js') });
    expect(main.failure).toBeUndefined();
    expect(main.outputs.get('mode')).toBe('watch');
    const state = JSON.parse(main.state.get('job') ?? '{}') as { uploaderPid: number; dir: string };
    pids.push(state.uploaderPid);
    const files = main.exported.get('NIX_USER_CONF_FILES') ?? '';
    expect(readFileSync(files.split(':')[0] ?? '', 'utf8')).toContain('post-build-hook');

    const drvs = writeDerivations(tmp, { inproc: 'echo inproc > $out' }, { env: nix.env });
    expect((await nixBuild(drvs, { ...env, NIX_USER_CONF_FILES: files })).code).toBe(0);

    const post = new MemoryStepIO({ inputs, env, hasPostStep: true });
    post.state.set('job', main.state.get('job') ?? '');
    await runPost(post, { ...defaultPostDeps(), heartbeatMs: 1, pollMs: 10 });
    expect(post.failure).toBeUndefined();
    expect(inCache(fake, drvs.paths.inproc as string)).toBe(true);
    expect(Number(post.outputs.get('pushed'))).toBeGreaterThanOrEqual(1);
    expect(post.summaries.join('\n')).toMatch(/watch mode/);
    expect(processAlive(state.uploaderPid)).toBe(false);
  }, 120_000);
});

describe('main and post steps through run(), without a hook', () => {
  it('an explicit-mode main step leaves nothing for the post step; the CLI (no post step) still needs a list', async () => {
    const post = new MemoryStepIO({ inputs: pushFakeInputs(fake), hasPostStep: true });
    await runPost(post);
    expect(post.failure).toBeUndefined();
    expect(post.logger.lines.join('\n')).toMatch(/Nothing to do in the post step/);
    const cli = new MemoryStepIO({ inputs: pushFakeInputs(fake), hasPostStep: false });
    await run(cli);
    expect(cli.failure).toMatch(/Input 'paths' or 'installables' is required/);
  });

  it('scan mode in process: main records the store, post pushes what the job built', async () => {
    const runnerTemp = mkdtempSync(join(tmp, 'rt-scan-'));
    const env = { ...process.env, ...nix.env, RUNNER_TEMP: runnerTemp };
    const inputs = pushFakeInputs(fake, { mode: 'scan' });
    const main = new MemoryStepIO({ inputs, env, hasPostStep: true });
    await run(main);
    expect(main.failure).toBeUndefined();
    expect(main.outputs.get('mode')).toBe('scan');

    const drvs = writeDerivations(tmp, { scanned: 'echo scanned > $out' }, { env: nix.env });
    expect((await nixBuild(drvs, env)).code).toBe(0);

    const post = new MemoryStepIO({ inputs, env, hasPostStep: true });
    post.state.set('job', main.state.get('job') ?? '');
    await runPost(post, { ...defaultPostDeps(), heartbeatMs: 1, pollMs: 10 });
    expect(post.failure).toBeUndefined();
    expect(inCache(fake, drvs.paths.scanned as string)).toBe(true);
    expect(post.summaries.join('\n')).toMatch(/scan mode/);
  }, 120_000);
});
