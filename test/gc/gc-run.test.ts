/**
 * The GC core (runGc, phase progress, pin pruning rules) against the fake niks3 through the real
 * Niks3Client: bounded waits, a run the server forgot, status polls that fail for a while, and a
 * v1.4.0-style synchronous answer.
 */
import { fullStats, phaseProgress, runGc, type GcOutcome } from '../../src/core/gc/gc-run.js';
import { globToRegExp } from '../../src/core/glob.js';
import { pinNameForRef, stalePins } from '../../src/core/gc/pin-pruning.js';
import { StaticTokenSource } from '../../src/core/github/token-source.js';
import { MemoryLogger } from '../../src/core/logger.js';
import { NIKS3_RETRY, Niks3Client } from '../../src/core/niks3/niks3-client.js';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';

const PARAMS = { olderThan: '720h', failedUploadsOlderThan: '6h', force: false };

describe('runGc', () => {
  let fake: FakeNiks3;
  let logger: MemoryLogger;
  let client: Niks3Client;

  beforeEach(async () => {
    fake = await startFakeNiks3();
    logger = new MemoryLogger();
    client = new Niks3Client({
      serverUrl: fake.url,
      tokenSource: new StaticTokenSource(fake.apiToken),
      logger,
      retry: { ...NIKS3_RETRY, attempts: 2, baseDelayMs: 5, maxDelayMs: 10 },
    });
  });
  afterEach(async () => {
    await fake.close();
  });

  it('polls a run to its end and sees its phases', async () => {
    await fake.close();
    fake = await startFakeNiks3({ gcPhaseDelayMs: 150 });
    client = new Niks3Client({
      serverUrl: fake.url,
      tokenSource: new StaticTokenSource(fake.apiToken),
      logger,
    });
    const outcome = await runGc({
      api: client,
      params: PARAMS,
      logger,
      wait: true,
      timeoutMs: 10_000,
      pollIntervalMs: 20,
      maxPollIntervalMs: 40,
    });
    expect(outcome.state).toBe('succeeded');
    expect(outcome.followed).toBe(false);
    expect(outcome.phasesSeen).toEqual([
      'cleanup_pending_uploads',
      'cleanup_old_closures',
      'cleanup_orphan_objects',
      'vacuum_tables',
    ]);
    expect(outcome.startedAt).toMatch(/Z$/);
    expect(outcome.finishedAt).toMatch(/Z$/);
    expect(outcome.durationMs).toBe(
      Date.parse(outcome.finishedAt ?? '') - Date.parse(outcome.startedAt ?? ''),
    );
    expect(phaseProgress(outcome).every((entry) => entry.status === 'done')).toBe(true);
    expect(logger.lines).toContain('phase: cleanup_orphan_objects');
  });

  it('stops waiting at the timeout, reporting the run as still running', async () => {
    const release = fake.faults.holdGc();
    try {
      const outcome = await runGc({
        api: client,
        params: PARAMS,
        logger,
        wait: true,
        timeoutMs: 300,
        pollIntervalMs: 20,
      });
      expect(outcome.state).toBe('running');
      expect(outcome.timedOut).toBe(true);
      expect(logger.lines.join('\n')).toMatch(/still running after 0 s.*goes on on the server/);
      expect(phaseProgress(outcome)[0]?.status).toBe('running');
    } finally {
      release();
    }
  });

  it('logs progress at least every progressEveryMs while waiting', async () => {
    const release = fake.faults.holdGc();
    setTimeout(release, 400);
    const outcome = await runGc({
      api: client,
      params: PARAMS,
      logger,
      wait: true,
      timeoutMs: 10_000,
      pollIntervalMs: 20,
      maxPollIntervalMs: 20,
      progressEveryMs: 100,
    });
    expect(outcome.state).toBe('succeeded');
    expect(logger.lines.filter((line) => line.startsWith('still running:')).length).toBeGreaterThanOrEqual(2);
  });

  it('keeps polling through status errors until the deadline', async () => {
    const release = fake.faults.holdGc();
    fake.faults.add({
      target: 'api',
      method: 'GET',
      path: /^\/api\/gc\/status$/,
      times: 6,
      action: { status: 503 },
    });
    setTimeout(release, 200);
    const outcome = await runGc({
      api: client,
      params: PARAMS,
      logger,
      wait: true,
      timeoutMs: 10_000,
      pollIntervalMs: 10,
      maxPollIntervalMs: 20,
    });
    expect(outcome.state).toBe('succeeded');
    expect(logger.lines.join('\n')).toMatch(/could not read the GC status.*503/);
  });

  it('fails clearly when the server forgot the run (it restarted)', async () => {
    const release = fake.faults.holdGc();
    try {
      const pending = runGc({
        api: client,
        params: PARAMS,
        logger,
        wait: true,
        timeoutMs: 10_000,
        pollIntervalMs: 50,
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
      fake.state.gc.task = undefined;
      await expect(pending).rejects.toThrow(
        /GET \/api\/gc\/status answered HTTP 404.*restarted.*run gc again/,
      );
    } finally {
      release();
    }
  });

  it('joins a run with the same parameters (202) without starting another', async () => {
    const release = fake.faults.holdGc();
    const first = runGc({
      api: client,
      params: PARAMS,
      logger,
      wait: true,
      timeoutMs: 10_000,
      pollIntervalMs: 20,
    });
    const second = runGc({
      api: client,
      params: PARAMS,
      logger,
      wait: true,
      timeoutMs: 10_000,
      pollIntervalMs: 20,
    });
    setTimeout(release, 100);
    const outcomes = await Promise.all([first, second]);
    expect(outcomes.map((outcome) => outcome.state)).toEqual(['succeeded', 'succeeded']);
    expect(fake.state.gc.runs).toBe(1);
  });

  it('takes a synchronous answer (niks3 v1.4.0: 200 with the stats)', async () => {
    fake.faults.add({
      target: 'api',
      method: 'DELETE',
      path: /^\/api\/closures$/,
      action: {
        status: 200,
        body: JSON.stringify({ old_closures_deleted: 4, objects_marked_for_deletion: 9 }),
        headers: { 'content-type': 'application/json' },
      },
    });
    const outcome = await runGc({ api: client, params: PARAMS, logger, wait: true, timeoutMs: 10_000 });
    expect(outcome).toMatchObject({ state: 'succeeded', synchronous: true });
    expect(outcome.stats).toEqual({
      ...fullStats({}),
      old_closures_deleted: 4,
      objects_marked_for_deletion: 9,
    });
    expect(fake.requests.some((request) => request.path === '/api/gc/status')).toBe(false);
  });

  it('derives each phase status from where a run stands', () => {
    const base: GcOutcome = {
      state: 'failed',
      followed: false,
      params: { olderThan: '1h', failedUploadsOlderThan: '6h', force: false },
      stats: fullStats(undefined),
      phase: 'cleanup_old_closures',
      phasesSeen: [],
      error: 'x',
      durationMs: 0,
      timedOut: false,
      synchronous: false,
      startedAt: undefined,
      finishedAt: undefined,
    };
    expect(phaseProgress(base).map((entry) => entry.status)).toEqual([
      'done',
      'failed',
      'not run',
      'not run',
    ]);
    expect(phaseProgress({ ...base, state: 'running', phase: 'vacuum_tables' }).map((e) => e.status)).toEqual(
      ['done', 'done', 'done', 'running'],
    );
    expect(phaseProgress({ ...base, phase: undefined }).map((e) => e.status)).toEqual([
      'not run',
      'not run',
      'not run',
      'not run',
    ]);
  });
});

describe('pin names and pruning rules', () => {
  it('names a pin after a ref as push does', () => {
    expect(pinNameForRef('main')).toBe('main');
    expect(pinNameForRef('refs/heads/feature/x y')).toBe('feature-x-y');
    expect(pinNameForRef('refs/tags/v1.2.3')).toBe('v1.2.3');
    expect(pinNameForRef('a//b')).toBe('a-b');
    expect(pinNameForRef('a'.repeat(200))).toHaveLength(128);
  });

  it('matches keep patterns as niks3 globs', () => {
    expect(globToRegExp('release-*').test('release-1.0')).toBe(true);
    expect(globToRegExp('release-*').test('prerelease-1')).toBe(false);
    expect(globToRegExp('v?').test('v1')).toBe(true);
    expect(globToRegExp('v?').test('v10')).toBe(false);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
  });

  it('finds the pins named after no ref and kept by no pattern', () => {
    const pin = (name: string) => ({ name, storePath: `/nix/store/x-${name}`, createdAt: '', updatedAt: '' });
    const stale = stalePins(
      [
        pin('main'),
        pin('main.2'),
        pin('feature-a'),
        pin('feature-b'),
        pin('feature-b.1'),
        pin('prod'),
        pin('v1'),
      ],
      ['main', 'feature/a', 'v1'],
      ['prod'],
    );
    // `main.2` is the second root of a multi-root push pinned as `main`: kept while `main` exists.
    expect(stale.map((entry) => entry.name)).toEqual(['feature-b', 'feature-b.1']);
  });
});
