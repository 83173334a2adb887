/**
 * The push as the cache of the whole job, through the dist bundles as a runner runs them, with real
 * Nix (2.8, single-user as root, the post-build hook from the job's own settings):
 *
 * - watch mode: each build reaches the cache while the build job still runs (the last derivation's
 *   builder waits until the fake has stored the first ones' narinfos), the post step drains, every
 *   built path substitutes back from the public URL with signatures required, and a second job
 *   substitutes the same derivations from the cache instead of building them;
 * - a server that is down or refuses the token never fails a build; the post step pushes or
 *   reports what is missing;
 * - scan mode pushes what appeared (skipping `.drv` and paths another user owns), and keeps the
 *   outputs of a build that failed halfway;
 * - pull-only (asked for, or a fork pull request without OIDC) configures the substituter and
 *   pushes nothing;
 * - no secret in the hook, its settings file, the uploader's log, argv or environment.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { startOidcIssuer } from '../helpers/oidc-issuer.js';
import { copyFromCache, removeStoreRoot } from '../helpers/nix-fixtures.js';
import { RunnerJob, processAlive } from '../helpers/run-job.js';
import { findLeaks } from '../helpers/secret-scan.js';
import { pushFakeInputs, storeHash } from './push-test-support.js';
import {
  deleteFromStore,
  inCache,
  narinfoStoredAt,
  nixBuild,
  nixSandbox,
  writeDerivations,
  type NixSandbox,
  describeWithHooks,
} from './watch-support.js';

let fake: FakeNiks3;
let nix: NixSandbox;
const jobs: RunnerJob[] = [];
const storeRoots: string[] = [];

function job(
  inputs: Record<string, string | undefined>,
  env: Record<string, string | undefined> = {},
): RunnerJob {
  const created = new RunnerJob('push', {
    inputs,
    env: { ...nix.env, ...env },
    secrets: [fake.apiToken, ...fake.secretKeys],
  });
  jobs.push(created);
  return created;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

beforeAll(async () => {
  fake = await startFakeNiks3();
  nix = nixSandbox();
});

afterAll(async () => {
  for (const j of jobs) j.close();
  await fake?.close();
  for (const root of storeRoots) removeStoreRoot(root);
  nix?.close();
});

describeWithHooks('push, watch mode (no paths): the cache of the whole job', () => {
  it('pushes each build while the job builds, drains in post, and a second job substitutes everything', async () => {
    const flag = join(nix.dir, `flag-${Date.now()}`);
    const drvs = writeDerivations(
      nix.dir,
      {
        first: 'echo building first; echo first > $out',
        second: 'echo building second; /bin/mkdir $out; echo ${first} > $out/dep',
        // Waits (at most 60 s) until the test saw first and second in the cache: proof that they
        // were pushed while the build was still running.
        last: [
          'echo building last',
          'i=0',
          `while [ ! -e ${flag} ]; do i=$((i+1)); if [ $i -gt 600 ]; then echo "first/second never reached the cache" >&2; exit 1; fi; /bin/sleep 0.1; done`,
          '/bin/mkdir $out; echo ${second} > $out/dep',
        ].join('\n'),
      },
      { env: nix.env },
    );
    const built = Object.values(drvs.paths);

    const first = job(pushFakeInputs(fake));
    const main = await first.main();
    expect(main.errors).toEqual([]);
    expect(main.code).toBe(0);
    expect(main.outputs['mode']).toBe('watch');
    expect(main.outputs['cache-url']).toBe(fake.publicUrl);
    const confFiles = main.exportedEnv['NIX_USER_CONF_FILES'] ?? '';
    const conf = readFileSync(confFiles.split(':')[0] ?? '', 'utf8');
    expect(conf).toContain(`extra-substituters = ${fake.publicUrl}`);
    expect(conf).toContain(`extra-trusted-public-keys = ${fake.publicKeys[0]}`);
    expect(conf).toMatch(/post-build-hook = \/\S+\/post-build-hook/);
    expect(main.stdout).toMatch(/through NIX_USER_CONF_FILES/);

    // The uploader runs detached, with no secret in its argv or environment.
    const pid = first.uploaderPid() as number;
    expect(processAlive(pid)).toBe(true);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    expect(findLeaks([fake.apiToken], { cmdline, environ })).toEqual([]);

    const building = nixBuild(drvs, first.stepEnv());
    await until(
      () => inCache(fake, drvs.paths.first as string) && inCache(fake, drvs.paths.second as string),
      60_000,
      'the first builds in the cache',
    );
    writeFileSync(flag, '');
    const build = await building;
    const buildEnded = Date.now();
    expect({ code: build.code, stderr: build.code === 0 ? '' : build.stderr }).toEqual({
      code: 0,
      stderr: '',
    });
    expect(build.stderr).toMatch(/running post-build-hook/);
    // Pushed before the last build finished, by the request log too.
    expect(narinfoStoredAt(fake, drvs.paths.first as string)).toBeLessThan(buildEnded);
    expect(narinfoStoredAt(fake, drvs.paths.second as string)).toBeLessThan(buildEnded);

    const post = await first.post();
    expect(post.errors).toEqual([]);
    expect(post.code).toBe(0);
    expect(Number(post.outputs['pushed-during-build'])).toBeGreaterThanOrEqual(2);
    expect(Number(post.outputs['pushed'])).toBeGreaterThanOrEqual(3);
    expect(post.summary).toMatch(/pushed during the build/);
    expect(post.summary).toMatch(/post step waited for the queue/);
    expect(processAlive(pid)).toBe(false);
    for (const path of built) expect({ path, cached: inCache(fake, path) }).toEqual({ path, cached: true });
    const log = readFileSync(
      join((JSON.parse(first.state['job'] ?? '{}') as { dir: string }).dir, 'uploader.log'),
      'utf8',
    );
    expect(log).toMatch(/build finished: \S+-w-first\.drv/);
    expect(log).not.toContain(fake.apiToken);

    // Real Nix substitutes every built path from the public URL, signatures required.
    for (const path of built) {
      const copy = await copyFromCache(fake.publicUrl, path, {
        trustedPublicKeys: fake.publicKeys,
        ...(storeRoots[0] ? { storeRoot: storeRoots[0] } : {}),
      });
      if (!storeRoots[0]) storeRoots.push(copy.storeRoot);
      expect({ path, code: copy.code, stderr: copy.code === 0 ? '' : copy.stderr }).toEqual({
        path,
        code: 0,
        stderr: '',
      });
    }

    // A second job on a machine without these paths: its build substitutes them from our cache.
    deleteFromStore(built);
    const job2Start = fake.requests.length;
    const second = job(pushFakeInputs(fake));
    expect((await second.main()).code).toBe(0);
    const rebuild = await nixBuild(drvs, second.stepEnv());
    expect(rebuild.code).toBe(0);
    for (const path of built) {
      expect(rebuild.stderr).toContain(`copying path '${path}' from '${fake.publicUrl}'`);
    }
    expect(rebuild.stderr).not.toMatch(/building '/);
    const post2 = await second.post();
    expect(post2.code).toBe(0);
    expect(Number(post2.outputs['substituted'])).toBeGreaterThanOrEqual(built.length);
    expect(Number(post2.outputs['substituted-bytes'])).toBeGreaterThan(0);
    // Nothing of ours was pushed again (other tests may add paths to the shared store meanwhile).
    const again = fake.requests
      .slice(job2Start)
      .filter(
        (r) =>
          r.target === 's3' &&
          r.method === 'PUT' &&
          built.some((p) => r.path.endsWith(`/${storeHash(p)}.narinfo`)),
      );
    expect(again).toEqual([]);
    expect(post2.summary).toMatch(/paths substituted from this cache/);
  }, 240_000);

  it('a server that is down never fails a build; the post step pushes what the uploader could not', async () => {
    const drvs = writeDerivations(
      nix.dir,
      {
        one: 'echo one > $out',
        two: '/bin/mkdir $out; echo ${one} > $out/dep',
      },
      { env: nix.env },
    );
    const j = job(pushFakeInputs(fake));
    expect((await j.main()).code).toBe(0);
    const log = join((JSON.parse(j.state['job'] ?? '{}') as { dir: string }).dir, 'uploader.log');
    await fake.down('api');
    try {
      const build = await nixBuild(drvs, j.stepEnv());
      expect({ code: build.code, stderr: build.code === 0 ? '' : build.stderr }).toEqual({
        code: 0,
        stderr: '',
      });
      expect(build.stderr).toMatch(/running post-build-hook/);
      // The uploader found the server down and keeps the builds for a retry.
      await until(() => /failed, will retry/.test(readFileSync(log, 'utf8')), 60_000, 'a failed push');
    } finally {
      await fake.up('api');
    }
    const post = await j.post();
    expect(post.errors).toEqual([]);
    expect(post.code).toBe(0);
    for (const path of Object.values(drvs.paths)) expect(inCache(fake, path)).toBe(true);
  }, 120_000);

  it('a refused token never fails a build; the post step reports what was not pushed', async () => {
    const drvs = writeDerivations(nix.dir, { refused: 'echo refused > $out' }, { env: nix.env });
    const badToken = 'wrong-token-'.padEnd(48, 'x');
    const j = job({ ...pushFakeInputs(fake), token: badToken, 'on-failure': 'warn' });
    expect((await j.main()).code).toBe(0);
    const build = await nixBuild(drvs, j.stepEnv());
    expect(build.code).toBe(0);
    const post = await j.post();
    expect(post.code).toBe(0);
    expect(post.warnings.join('\n')).toMatch(/were not pushed/);
    expect(post.warnings.join('\n')).toContain(drvs.paths.refused);
    expect(post.summary).toMatch(/not pushed/);
    expect(inCache(fake, drvs.paths.refused as string)).toBe(false);
    expect(findLeaks([badToken], { stdout: post.stdout })).toEqual([]);
  }, 120_000);

  it('kills the uploader after drain-timeout and says what it could not push', async () => {
    const drvs = writeDerivations(nix.dir, { slow: 'echo slow > $out' }, { env: nix.env });
    const hang = fake.faults.add({
      target: 's3',
      method: 'PUT',
      action: { kind: 'hang' },
      name: 'hang-puts',
    });
    try {
      const j = job({ ...pushFakeInputs(fake), 'drain-timeout': '2' });
      expect((await j.main()).code).toBe(0);
      const pid = j.uploaderPid() as number;
      expect((await nixBuild(drvs, j.stepEnv())).code).toBe(0);
      const post = await j.post();
      expect(post.code).toBe(1);
      expect(post.errors.join('\n')).toMatch(/not pushed/);
      expect(post.stdout).toMatch(/did not finish within drain-timeout/);
      await until(() => !processAlive(pid), 5_000, 'the uploader to be gone');
    } finally {
      hang.remove();
    }
  }, 120_000);
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

describeWithHooks('push, watch mode with GitHub OIDC', () => {
  it('the uploader mints its own OIDC tokens; none is printed or written anywhere', async () => {
    const issuer = await startOidcIssuer();
    const port = await freePort();
    const oidcFake = await startFakeNiks3({
      ports: { api: port },
      oidc: [
        { issuer: issuer.issuer, audience: `http://127.0.0.1:${port}`, boundSubject: ['repo:octo-org/*:*'] },
      ],
    });
    try {
      const drvs = writeDerivations(nix.dir, { viaOidc: 'echo oidc > $out' }, { env: nix.env });
      const j = new RunnerJob('push', {
        inputs: { 'server-url': oidcFake.url, 'upstream-filter': 'false', 'connect-timeout': '10' },
        env: nix.env,
        oidc: issuer,
        secrets: [oidcFake.apiToken, ...oidcFake.secretKeys],
      });
      jobs.push(j);
      const main = await j.main();
      expect(main.errors).toEqual([]);
      expect(main.outputs['mode']).toBe('watch');
      expect((await nixBuild(drvs, j.stepEnv())).code).toBe(0);
      const post = await j.post();
      expect(post.errors).toEqual([]);
      expect(post.code).toBe(0);
      expect(inCache(oidcFake, drvs.paths.viaOidc as string)).toBe(true);
      expect(issuer.minted.length).toBeGreaterThanOrEqual(1);
      const authed = oidcFake.requests.filter((r) => r.target === 'api' && r.auth);
      expect(authed.length).toBeGreaterThan(0);
      expect(authed.every((r) => r.auth?.startsWith('oidc:'))).toBe(true);
      // Every step's output and RUNNER_TEMP (hook, settings, uploader log) were scanned for the
      // minted tokens by the runner helper; scan the uploader's log once more after the post step.
      const log = readFileSync(
        join((JSON.parse(j.state['job'] ?? '{}') as { dir: string }).dir, 'uploader.log'),
        'utf8',
      );
      expect(findLeaks([...issuer.minted], { log })).toEqual([]);
    } finally {
      await oidcFake.close();
      await issuer.close();
    }
  }, 120_000);
});

describe('push, scan mode', () => {
  it("pushes the paths that appeared, skips .drv and other users' paths, and keeps a failed build's finished outputs", async () => {
    const drvs = writeDerivations(
      nix.dir,
      {
        base: 'echo base > $out',
        top: '/bin/mkdir $out; echo ${base} > $out/dep',
        foreign: 'echo foreign > $out',
        broken: 'echo broken; exit 3',
      },
      { env: nix.env },
    );
    const j = job({ ...pushFakeInputs(fake), mode: 'scan' });
    const main = await j.main();
    expect(main.code).toBe(0);
    expect(main.outputs['mode']).toBe('scan');
    expect(readFileSync(main.exportedEnv['NIX_USER_CONF_FILES']?.split(':')[0] ?? '', 'utf8')).not.toMatch(
      /post-build-hook/,
    );
    const build = await nixBuild(drvs, j.stepEnv(), ['--keep-going']);
    expect(build.code).not.toBe(0); // `broken` failed: the job fails, the post step still runs
    execFileSync('chown', ['-h', '65534', drvs.paths.foreign as string]);
    const post = await j.post();
    expect(post.errors).toEqual([]);
    expect(post.code).toBe(0);
    expect(post.outputs['pushed-during-build']).toBe('0');
    expect(Number(post.outputs['pushed-in-post'])).toBeGreaterThanOrEqual(2);
    expect(inCache(fake, drvs.paths.base as string)).toBe(true);
    expect(inCache(fake, drvs.paths.top as string)).toBe(true);
    expect(inCache(fake, drvs.paths.foreign as string)).toBe(false);
    expect(post.stdout).toContain(`${drvs.paths.foreign}: owned by uid 65534`);
    expect(fake.objectKeys().some((key) => key.endsWith('.drv.narinfo'))).toBe(false);
  }, 120_000);
});

describe('push, pull-only', () => {
  it('pull-only: true configures the substituter, pushes nothing and stays green', async () => {
    const j = job({ 'server-url': fake.url, 'pull-only': 'true', 'connect-timeout': '10' });
    const before = fake.requests.length;
    const main = await j.main();
    expect(main.code).toBe(0);
    expect(main.outputs['mode']).toBe('pull-only');
    expect(main.exportedEnv['NIX_USER_CONF_FILES']).toBeDefined();
    const post = await j.post();
    expect(post.code).toBe(0);
    expect(post.outputs['pushed']).toBe('0');
    const warnings = [...main.warnings, ...post.warnings];
    expect(warnings.filter((w) => /Pull-only/.test(w))).toHaveLength(1);
    expect(fake.requests.slice(before).filter((r) => r.route !== 'GET /api/cache-config')).toEqual([]);
  }, 60_000);

  it('a fork pull request without an OIDC token pulls only, says so once, and stays green', async () => {
    const j = job({ 'server-url': fake.url, 'connect-timeout': '10' }, { GITHUB_EVENT_NAME: 'pull_request' });
    const main = await j.main();
    expect(main.code).toBe(0);
    expect(main.outputs['mode']).toBe('pull-only');
    const post = await j.post();
    expect(post.code).toBe(0);
    const warnings = [...main.warnings, ...post.warnings];
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/no GitHub OIDC token/);
    expect(existsSync(main.exportedEnv['NIX_USER_CONF_FILES']?.split(':')[0] ?? '/nonexistent')).toBe(true);
  }, 60_000);
});
