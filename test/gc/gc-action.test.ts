/**
 * The gc action through its bundle (dist/gc), as a runner runs it, against the fake niks3 (with its
 * controllable clock) and a local GitHub API for prune-pins.
 */
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { runAction } from '../helpers/run-action.js';
import { startFakeGithubApi, type FakeGithubApi } from '../fakes/github/index.js';
import { pin, seedClosure, startOtherGc } from './seed-closures.js';

const DAY = 24 * 3600_000;

function apiRequests(fake: FakeNiks3): number {
  return fake.requests.filter((request) => request.target === 'api').length;
}

describe('gc action', () => {
  let fake: FakeNiks3;

  beforeEach(async () => {
    fake = await startFakeNiks3({ gcPhaseDelayMs: 5 });
  });
  afterEach(async () => {
    await fake.close();
  });

  const tokenRun = (inputs: Record<string, string> = {}, env: Record<string, string> = {}) =>
    runAction('gc', {
      inputs: { 'server-url': fake.url, auth: 'token', token: fake.apiToken, ...inputs },
      secrets: [fake.apiToken],
      env,
    });

  it('collects a closure older than older-than, keeps a newer and a pinned one, and deletes after the grace period', async () => {
    const old = await seedClosure(fake, 'old');
    const pinned = await seedClosure(fake, 'pinned');
    await pin(fake, 'release', pinned.storePath);
    fake.advance(31 * DAY);
    const fresh = await seedClosure(fake, 'fresh');

    const run = await tokenRun();
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({
      state: 'succeeded',
      followed: 'false',
      'old-closures-deleted': '1',
      'objects-marked-for-deletion': '2',
      'objects-deleted-after-grace-period': '0',
      'failed-uploads-deleted': '0',
      'objects-failed-to-delete': '0',
      phase: '',
      'pins-pruned': '[]',
    });
    expect(JSON.parse(run.outputs['stats'] ?? '{}')).toMatchObject({ old_closures_deleted: 1 });
    expect(Number(run.outputs['freed-bytes'])).toBeGreaterThanOrEqual(old.narSize);
    expect(Number(run.outputs['duration'])).toBeGreaterThanOrEqual(0);
    expect(fake.state.closures.has(old.narinfoKey)).toBe(false);
    expect(fake.state.closures.has(pinned.narinfoKey)).toBe(true);
    expect(fake.state.closures.has(fresh.narinfoKey)).toBe(true);
    expect(fake.state.isLive(old.narKey)).toBe(false);
    expect(fake.state.isLive(pinned.narKey)).toBe(true);
    expect(fake.state.isLive(fresh.narKey)).toBe(true);
    // Marked, not yet deleted: the grace period (failed-uploads-older-than) protects uploads in flight.
    expect(fake.objectKeys()).toContain(old.narKey);
    const gcCall = fake.requests.find(
      (request) => request.method === 'DELETE' && request.path === '/api/closures',
    );
    expect(gcCall?.query).toBe('older-than=720h&failed-uploads-older-than=6h');

    expect(run.summary).toMatch(/nix-cache gc: succeeded/);
    expect(run.summary).toMatch(/\| `cleanup_orphan_objects` \| done \|/);
    expect(run.summary).toMatch(/old_closures_deleted/);
    expect(run.summary).toMatch(/no longer live/);

    fake.advance(7 * 3600_000);
    const second = await tokenRun();
    expect(second.code).toBe(0);
    expect(second.outputs['objects-deleted-after-grace-period']).toBe('2');
    expect(fake.objectKeys()).not.toContain(old.narKey);
    expect(fake.objectKeys()).not.toContain(old.narinfoKey);
    expect(fake.objectKeys()).toContain(pinned.narKey);
    expect(fake.objectKeys()).toContain(fresh.narKey);
  });

  it('force with confirm: force deletes at once', async () => {
    const old = await seedClosure(fake, 'old');
    fake.advance(2 * 3600_000);
    const run = await tokenRun({ 'older-than': '1h', force: 'true', confirm: 'force' });
    expect(run.code).toBe(0);
    expect(run.outputs['objects-deleted-after-grace-period']).toBe('2');
    expect(fake.objectKeys()).not.toContain(old.narKey);
    expect(fake.requests.find((r) => r.path === '/api/closures')?.query).toBe(
      'older-than=1h&failed-uploads-older-than=6h&force=true',
    );
  });

  it('follows a GC that is already running with other parameters (409) to its end', async () => {
    await seedClosure(fake, 'old');
    fake.advance(2 * DAY);
    const release = fake.faults.holdGc();
    expect(await startOtherGc(fake, '24h')).toBe(202);
    const pending = tokenRun();
    // Let the action meet the 409 and poll a little while the other run is held.
    for (let i = 0; i < 200 && !fake.requests.some((r) => r.path === '/api/gc/status'); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(fake.requests.some((r) => r.path === '/api/closures' && r.status === 409)).toBe(true);
    release();
    const run = await pending;
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({ state: 'succeeded', followed: 'true', 'old-closures-deleted': '1' });
    expect(run.warnings.join('\n')).toMatch(/already running.*following/);
    expect(run.summary).toMatch(/already running; this step followed it/);
    expect(run.summary).toMatch(/\| older-than \| 24h \|/);
    expect(fake.state.gc.runs).toBe(1);
  });

  it('with wait: false returns while the GC runs', async () => {
    const release = fake.faults.holdGc();
    try {
      const run = await tokenRun({ wait: 'false' });
      expect(run.code).toBe(0);
      expect(run.outputs['state']).toBe('running');
      expect(fake.requests.some((r) => r.path === '/api/gc/status')).toBe(false);
      expect(run.summary).toMatch(/started \(not waited for\)/);
    } finally {
      release();
    }
  });

  it('reports a failed GC with its phase, and fails the step', async () => {
    fake.faults.failNextGc({
      phase: 'cleanup_orphan_objects',
      error: 'S3 multi-delete failed: InternalError',
    });
    const run = await tokenRun();
    expect(run.code).toBe(1);
    expect(run.outputs).toMatchObject({ state: 'failed', phase: 'cleanup_orphan_objects' });
    expect(run.errors.join('\n')).toMatch(
      /niks3: garbage collection failed: failed in phase cleanup_orphan_objects: S3 multi-delete failed/,
    );
    expect(run.summary).toMatch(/\| `cleanup_old_closures` \| done \|/);
    expect(run.summary).toMatch(/\| `cleanup_orphan_objects` \| failed \|/);
    expect(run.summary).toMatch(/\| `vacuum_tables` \| not run \|/);
  });

  it.each([
    ['older-than', '30d'],
    ['older-than', '-1h'],
    ['older-than', '1 h'],
    ['older-than', '999999999h'],
    ['failed-uploads-older-than', '6'],
    ['failed-uploads-older-than', 'soon'],
  ])('refuses %s: %s before any request', async (name, value) => {
    const run = await tokenRun({ [name]: value });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      new RegExp(`Input '${name}' has an invalid value "${value.replace(/[-+]/g, '\\$&')}"`),
    );
    expect(run.errors.join('\n')).toMatch(/Go duration/);
    expect(apiRequests(fake)).toBe(0);
  });

  it('refuses force without confirm: force before any request', async () => {
    for (const confirm of [undefined, 'yes', 'FORCE']) {
      const run = await tokenRun({ force: 'true', ...(confirm ? { confirm } : {}) });
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toMatch(/Input 'force' is true but input 'confirm' is not "force"/);
    }
    expect(apiRequests(fake)).toBe(0);
  });

  it('refuses auth: oidc without an OIDC token, and auth: token without a token, before any request', async () => {
    const oidc = await runAction('gc', { inputs: { 'server-url': fake.url } });
    expect(oidc.code).toBe(1);
    expect(oidc.errors.join('\n')).toMatch(/no GitHub OIDC token is available in this job.*id-token: write/);
    const token = await runAction('gc', { inputs: { 'server-url': fake.url, auth: 'token' } });
    expect(token.code).toBe(1);
    expect(token.errors.join('\n')).toMatch(/Input 'token' is required with `auth: token`/);
    expect(apiRequests(fake)).toBe(0);
  });

  it('fails with a clear message when the server never answers', async () => {
    await fake.down('api');
    const run = await tokenRun({ 'connect-timeout': '2' });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /niks3: first contact failed.*no answer within 2 s.*raise connect-timeout/,
    );
  });
});

describe('gc action with OIDC', () => {
  let issuer: OidcIssuer;
  let fake: FakeNiks3;

  beforeAll(async () => {
    issuer = await startOidcIssuer();
  });
  afterAll(async () => {
    await issuer.close();
  });
  afterEach(async () => {
    await fake.close();
  });

  it('authenticates with a GitHub OIDC token for the server URL (no stored token)', async () => {
    // The audience is the server URL, which is only known once the fake listens: start it once to
    // learn a free port, then again on that port with the OIDC policy.
    const probe = await startFakeNiks3();
    const port = Number(new URL(probe.url).port);
    await probe.close();
    fake = await startFakeNiks3({
      ports: { api: port },
      oidc: [
        { issuer: issuer.issuer, audience: `http://127.0.0.1:${port}`, boundSubject: ['repo:octo-org/*:*'] },
      ],
    });
    // Seed in the past rather than move the clock ahead: the server checks token expiry on its clock.
    fake.setNow(Date.now() - 31 * DAY);
    await seedClosure(fake, 'old');
    fake.setNow(Date.now());
    const run = await runAction('gc', {
      inputs: { 'server-url': fake.url },
      oidc: issuer,
      secrets: [fake.apiToken],
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs['old-closures-deleted']).toBe('1');
    const gcCall = fake.requests.find((request) => request.path === '/api/closures');
    expect(gcCall?.headers['authorization']).toMatch(/^Bearer ey/);
    expect(issuer.minted.length).toBeGreaterThanOrEqual(1);
  });
});

describe('gc action prune-pins', () => {
  const repository = 'octo-org/octo-repo';
  const githubToken = 'ghs_' + 'x'.repeat(36);
  let fake: FakeNiks3;
  let github: FakeGithubApi;

  beforeEach(async () => {
    fake = await startFakeNiks3();
    github = await startFakeGithubApi({ repository, token: githubToken });
  });
  afterEach(async () => {
    await fake.close();
    await github.close();
  });

  const pruneRun = (inputs: Record<string, string> = {}) =>
    runAction('gc', {
      inputs: {
        'server-url': fake.url,
        auth: 'token',
        token: fake.apiToken,
        'prune-pins': 'true',
        'github-token': githubToken,
        ...inputs,
      },
      env: { GITHUB_API_URL: github.url },
      secrets: [fake.apiToken, githubToken],
    });

  it('deletes pins named after deleted branches and tags before the GC, and lists them', async () => {
    github.branches = ['main', 'feature/kept', ...Array.from({ length: 120 }, (_, i) => `bulk-${i}`)];
    github.tags = ['v1.0.0'];
    const names = ['main', 'feature-kept', 'feature-gone', 'v1.0.0', 'v0.9.0', 'prod', 'bulk-119'];
    const closures = new Map<string, string>();
    for (const name of names) {
      const closure = await seedClosure(fake, name);
      closures.set(name, closure.narinfoKey);
      await pin(fake, name, closure.storePath);
    }
    fake.advance(31 * DAY);
    const run = await pruneRun({ 'keep-pins': 'prod\nrelease-*' });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.outputs['pins-pruned'] ?? '[]')).toEqual(['feature-gone', 'v0.9.0']);
    expect([...fake.state.pins.keys()].sort()).toEqual([
      'bulk-119',
      'feature-kept',
      'main',
      'prod',
      'v1.0.0',
    ]);
    // The pruned pins no longer protect their closures: the same run collected them.
    expect(run.outputs['old-closures-deleted']).toBe('2');
    expect(fake.state.closures.has(closures.get('feature-gone')!)).toBe(false);
    expect(fake.state.closures.has(closures.get('prod')!)).toBe(true);
    expect(run.summary).toMatch(/Pins pruned/);
    expect(run.summary).toMatch(/\| feature-gone \|/);
    // Pagination was followed, with the token.
    expect(github.requests.filter((r) => r.path.endsWith('/branches')).length).toBe(2);
    expect(github.requests.every((r) => r.authorization?.endsWith(githubToken))).toBe(true);
    const deleteAt = fake.requests.findIndex((r) => r.method === 'DELETE' && r.path.startsWith('/api/pins/'));
    const gcAt = fake.requests.findIndex((r) => r.path === '/api/closures');
    expect(deleteAt).toBeGreaterThanOrEqual(0);
    expect(deleteAt).toBeLessThan(gcAt);
  });

  it('deletes no pin when the GitHub API refuses, runs the GC anyway, and fails the step', async () => {
    const closure = await seedClosure(fake, 'gone');
    await pin(fake, 'gone', closure.storePath);
    github.failWith = 403;
    const run = await pruneRun();
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /pruning pins failed: GitHub API: list branches of octo-org\/octo-repo answered HTTP 403/,
    );
    expect(run.outputs['state']).toBe('succeeded');
    expect(fake.state.pins.has('gone')).toBe(true);
  });

  it('needs a GitHub token', async () => {
    const run = await runAction('gc', {
      inputs: { 'server-url': fake.url, auth: 'token', token: fake.apiToken, 'prune-pins': 'true' },
      env: { GITHUB_API_URL: github.url, GITHUB_TOKEN: undefined },
      secrets: [fake.apiToken],
    });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(/Input 'prune-pins' needs 'github-token'/);
    expect(apiRequests(fake)).toBe(0);
  });
});
