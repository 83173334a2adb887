/**
 * `nix-cache push`, `gc` and `status` through the binary against the niks3 stand-in: settings from
 * a stack file and the environment contract, `--json` results, summaries on stdout, progress on
 * stderr, and no secret in either.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSecretKey } from '../../src/core/nix/signing-key.js';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { buildTextPath } from '../helpers/nix-fixtures.js';
import { ensureCliBundle, runCli, type CliRunOptions } from './cli-runner.js';

const DAY = 24 * 3600_000;

describe('nix-cache push, gc and status (binary) against the niks3 stand-in', () => {
  let fake: FakeNiks3;
  let dir: string;
  const key = generateSecretKey('cli-test-1');
  const other = generateSecretKey('other-1');

  beforeAll(async () => {
    await ensureCliBundle();
    fake = await startFakeNiks3({ signingKeys: [key.secretKeyText] });
    dir = mkdtempSync(join(tmpdir(), 'nix-cache-cli-niks3-'));
    // Only the server URL comes from the stack file; push, gc and status need nothing else.
    writeFileSync(join(dir, 'nix-cache.json'), JSON.stringify({ server_url: fake.url }));
  }, 180_000);
  afterAll(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const cli = (args: string[], env: Record<string, string> = {}): ReturnType<typeof runCli> => {
    const options: CliRunOptions = {
      cwd: dir,
      env: { NIKS3_API_TOKEN: fake.apiToken, NIKS3_SIGNING_KEY: key.secretKeyText, ...env },
      secrets: [fake.apiToken, key.secretKeyText, other.secretKeyText],
    };
    return runCli(args, options);
  };

  it('push uploads a fresh path given as ./result, with a summary on stdout and progress on stderr', async () => {
    const path = await buildTextPath(`cli push ${Date.now()}`, { name: 'cli-push' });
    symlinkSync(path, join(dir, 'result'));
    const run = await cli(['push', '--paths', './result', '--upstream-filter', 'false']);
    expect(run.stderr).not.toContain('error');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('## nix-cache push');
    expect(run.stdout).toContain(path);
    expect(run.stderr).toContain('== push');
    const hash = path.slice('/nix/store/'.length, '/nix/store/'.length + 32);
    expect(fake.objectKeys()).toContain(`${hash}.narinfo`);
    expect(fake.state.closures.size ?? 1).toBeGreaterThan(0);
  });

  it('push --json prints the outputs; a second push finds the path cached', async () => {
    const path = await buildTextPath(`cli push json ${Date.now()}`, { name: 'cli-json' });
    const first = await cli(['push', '--paths', path, '--upstream-filter', 'false', '--json']);
    expect(first.code).toBe(0);
    expect(first.json).toMatchObject({ ok: true, command: 'push' });
    expect(first.json?.outputs).toMatchObject({
      pushed: '1',
      'skipped-cached': '0',
      'public-key': key.publicKey,
      'cache-url': fake.publicUrl,
    });
    expect(JSON.parse(first.json?.outputs['store-paths'] ?? '[]')).toEqual([path]);
    const second = await cli(['push', '--paths', path, '--upstream-filter', 'false', '--json']);
    expect(second.json?.outputs).toMatchObject({ pushed: '0', 'skipped-cached': '1' });
  });

  it('status derives the expected public key from NIKS3_SIGNING_KEY and reports every check', async () => {
    const run = await cli(['status', '--json']);
    expect(run.code).toBe(0);
    expect(run.json?.outputs).toMatchObject({
      healthy: 'true',
      'public-key': key.publicKey,
      'cache-url': fake.publicUrl,
    });
    const checks = JSON.parse(run.json?.outputs['checks'] ?? '[]') as Array<{ name: string; status: string }>;
    expect(checks.find((c) => c.name === 'public key')?.status).toBe('ok');
    expect(checks.filter((c) => c.status === 'fail')).toEqual([]);
    const table = await cli(['status']);
    expect(table.stdout).toContain('| check | result | detail |');
    expect(table.stdout).toContain('Monthly cost estimate');
  });

  it('status fails when the server announces another key, and shows both', async () => {
    const run = await cli(['status'], { NIKS3_SIGNING_KEY: other.secretKeyText });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(key.publicKey);
    expect(run.stderr).toContain(other.publicKey);
    const explicit = await cli(['status', '--expected-public-key', other.publicKey, '--json'], {
      NIKS3_SIGNING_KEY: '',
    });
    expect(explicit.code).toBe(1);
    expect(explicit.json).toMatchObject({ ok: false, failed: 'status' });
  });

  it('gc collects a closure older than --older-than on the server clock', async () => {
    const path = await buildTextPath(`cli gc ${Date.now()}`, { name: 'cli-gc' });
    expect((await cli(['push', '--paths', path, '--upstream-filter', 'false'])).code).toBe(0);
    const fresh = await cli(['gc', '--json']);
    expect(fresh.code).toBe(0);
    expect(fresh.json?.outputs).toMatchObject({ state: 'succeeded', 'old-closures-deleted': '0' });

    fake.advance(31 * DAY);
    const later = await cli(['gc', '--older-than', '720h', '--json']);
    expect(later.code).toBe(0);
    expect(later.json?.outputs['state']).toBe('succeeded');
    expect(Number(later.json?.outputs['old-closures-deleted'])).toBeGreaterThanOrEqual(1);
    expect(Number(later.json?.outputs['objects-marked-for-deletion'])).toBeGreaterThan(0);

    const summary = await cli(['gc']);
    expect(summary.code).toBe(0);
    expect(summary.stdout).toContain('nix-cache gc');
  });

  it('a server that does not answer fails with the remote named, and --json says so', async () => {
    const run = await cli(['gc', '--server-url', 'http://127.0.0.1:9', '--connect-timeout', '1', '--json']);
    expect(run.code).toBe(1);
    expect(run.json).toMatchObject({ ok: false, command: 'gc' });
    expect(run.json?.error).toMatch(/niks3/);
  });
});
