/**
 * The `nix-cache` binary without any remote: help for every command, init-config, the messages for
 * missing variables, missing settings and bad flags, and the `bws run` re-exec (with a stand-in
 * `bws` on PATH).
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/run-action.js';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { ensureCliBundle, runCli } from './cli-runner.js';

const COMMANDS = ['plan', 'up', 'provision', 'deploy', 'push', 'gc', 'status', 'down'];
const SECRET_VARIABLES = [
  'CLOUDFLARE_API_TOKEN',
  'FLY_API_TOKEN',
  'NIKS3_API_TOKEN',
  'NIKS3_DB',
  'NIKS3_S3_ACCESS_KEY',
  'NIKS3_S3_SECRET_KEY',
  'NIKS3_SIGNING_KEY',
];

describe('nix-cache (binary) without remotes', () => {
  let dir: string;
  beforeAll(async () => {
    await ensureCliBundle();
  }, 180_000);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nix-cache-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the usage with every command and the environment contract', async () => {
    const run = await runCli(['--help']);
    expect(run.code).toBe(0);
    for (const command of ['init-config', ...COMMANDS])
      expect(run.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    for (const variable of SECRET_VARIABLES) expect(run.stdout).toContain(variable);
    expect(run.stdout).toContain('bws run');
    const bare = await runCli([]);
    expect(bare.code).toBe(2);
    expect(bare.stdout).toContain('Usage: nix-cache <command>');
    const version = await runCli(['--version']);
    expect(version.stdout.trim()).toMatch(/^nix-cache \d+\.\d+\.\d+$/);
  });

  it.each(COMMANDS)(
    '%s --help lists its flags from the action specs and its environment',
    async (command) => {
      const run = await runCli([command, '--help'], { cwd: dir });
      expect(run.code).toBe(0);
      expect(run.stderr).toBe('');
      expect(run.stdout).toContain(`Usage: nix-cache ${command} [--flags]`);
      expect(run.stdout).toContain('--json');
      expect(run.stdout).toContain('Environment:');
      // Secrets are never flags.
      expect(run.stdout).not.toMatch(
        /--(token|cloudflare-api-token|fly-api-token|niks3-api-token|niks3-signing-key|niks3-db)\b/,
      );
      const expected: Record<string, string[]> = {
        plan: [
          '--stack-name VALUE [stack: stack_name]',
          '--fly-app-name',
          'CLOUDFLARE_API_TOKEN',
          'NIKS3_SIGNING_KEY',
          'Steps: provision, then deploy.',
        ],
        up: ['--r2-location VALUE [stack: r2_location] (default: enam)', '--fly-vm-memory', 'FLY_API_TOKEN'],
        provision: ['--mode VALUE', '--confirm VALUE', '--delete-data', 'CLOUDFLARE_API_TOKEN'],
        deploy: ['--mode VALUE', '--niks3-image VALUE [stack: niks3_image]', 'NIKS3_DB'],
        push: [
          '--paths VALUE',
          '--installables VALUE',
          '--auth VALUE (default on a terminal: token)',
          'NIKS3_API_TOKEN',
        ],
        gc: [
          '--older-than VALUE (default: 720h)',
          '--failed-uploads-older-than VALUE (default: 6h)',
          '--force',
          'NIKS3_API_TOKEN',
        ],
        status: ['--server-url VALUE [stack: server_url]', '--expected-public-key', 'optional'],
        down: [
          '--confirm VALUE',
          '--delete-data',
          'Steps: deploy, then provision.',
          'FLY_API_TOKEN',
          'CLOUDFLARE_API_TOKEN',
        ],
      };
      for (const text of expected[command] ?? []) expect(run.stdout).toContain(text);
      if (command === 'plan' || command === 'up' || command === 'down')
        expect(run.stdout).not.toContain('--mode');
    },
  );

  it('init-config writes the example stack file once, and again only with --force', async () => {
    const help = await runCli(['init-config', '--help'], { cwd: dir });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('r2_bucket_name');

    const first = await runCli(['init-config'], { cwd: dir });
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(join(dir, 'nix-cache.json'));
    const written = readFileSync(join(dir, 'nix-cache.json'), 'utf8');
    expect(written).toBe(readFileSync(join(ROOT, 'nix-cache.example.json'), 'utf8'));
    const settings = JSON.parse(written) as Record<string, unknown>;
    expect(settings).toMatchObject({
      cache_subdomain: 'cache',
      r2_location: 'enam',
      r2_jurisdiction: 'default',
      r2_storage_class: 'Standard',
      r2_s3_region: 'auto',
      fly_primary_region: 'iad',
      fly_vm_cpu_kind: 'shared',
      fly_vm_cpus: 1,
      fly_vm_memory: '256mb',
      fly_swap_size_mb: 512,
      niks3_s3_concurrency: 20,
      niks3_enable_read_proxy: false,
      r2_bucket_name: null,
      fly_org_slug: null,
    });

    writeFileSync(join(dir, 'nix-cache.json'), '{"stack_name":"mine"}');
    const again = await runCli(['init-config'], { cwd: dir });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('exists already; pass --force');
    expect(readFileSync(join(dir, 'nix-cache.json'), 'utf8')).toBe('{"stack_name":"mine"}');
    const forced = await runCli(['init-config', '--force', '--stack', 'other.json'], { cwd: dir });
    expect(forced.code).toBe(0);
    expect(existsSync(join(dir, 'other.json'))).toBe(true);
  });

  it('names every missing variable of the environment contract', async () => {
    await runCli(['init-config'], { cwd: dir });
    const up = await runCli(['up'], { cwd: dir });
    expect(up.code).toBe(1);
    expect(up.stdout).toBe('');
    expect(up.stderr).toContain('nix-cache up needs the environment variables');
    for (const variable of SECRET_VARIABLES) expect(up.stderr).toContain(variable);
    expect(up.stderr).toContain('BWS_ACCESS_TOKEN and BWS_PROJECT_ID');

    const partial = await runCli(['up'], {
      cwd: dir,
      env: { CLOUDFLARE_API_TOKEN: 'x'.repeat(40), NIKS3_DB: 'postgresql://u:p@h/d' },
    });
    expect(partial.stderr).toMatch(
      /needs the environment variables FLY_API_TOKEN, NIKS3_API_TOKEN, NIKS3_S3_ACCESS_KEY, NIKS3_S3_SECRET_KEY, NIKS3_SIGNING_KEY,/,
    );
    expect(partial.stderr).not.toMatch(/variables[^\n]*CLOUDFLARE_API_TOKEN/);

    const gc = await runCli(['gc', '--server-url', 'http://127.0.0.1:9'], { cwd: dir });
    expect(gc.code).toBe(1);
    expect(gc.stderr).toContain(
      'nix-cache gc needs the environment variable NIKS3_API_TOKEN, which is not set',
    );
    const push = await runCli(['push', '--server-url', 'http://127.0.0.1:9', '--paths', '/nix/store/x'], {
      cwd: dir,
    });
    expect(push.stderr).toContain('nix-cache push needs the environment variable NIKS3_API_TOKEN');
    const down = await runCli(['down', '--confirm', 'my-niks3'], { cwd: dir });
    expect(down.stderr).toContain(
      'nix-cache down needs the environment variables FLY_API_TOKEN, CLOUDFLARE_API_TOKEN',
    );
    expect(down.stderr).not.toContain('NIKS3_DB');
  });

  it('refuses a stack file that still has the placeholders of the example, before any request', async () => {
    await runCli(['init-config'], { cwd: dir });
    const secrets = {
      CLOUDFLARE_API_TOKEN: 'c'.repeat(40),
      FLY_API_TOKEN: 'FlyV1 fm2_placeholder-test-token',
      NIKS3_API_TOKEN: 'n'.repeat(40),
      NIKS3_DB: 'postgresql://u:secretpassword@127.0.0.1:9/d',
      NIKS3_S3_ACCESS_KEY: 'access-key-id-1',
      NIKS3_S3_SECRET_KEY: 'secret-access-key-1',
      NIKS3_SIGNING_KEY: 'k-1:' + Buffer.alloc(64, 7).toString('base64'),
    };
    const run = await runCli(['plan'], { cwd: dir, env: secrets, secrets: Object.values(secrets) });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "still has the example's placeholders in cloudflare_account_id, cloudflare_zone_id, oidc_github_subject_patterns",
    );
  });

  it('says which settings are missing, and refuses bad flags, secrets as flags and unknown commands', async () => {
    const noStack = await runCli(['plan'], { cwd: dir });
    expect(noStack.code).toBe(1);
    expect(noStack.stderr).toContain('no stack file at');
    expect(noStack.stderr).toContain('nix-cache init-config');

    const noServer = await runCli(['status'], { cwd: dir });
    expect(noServer.code).toBe(1);
    expect(noServer.stderr).toContain("status: 'server-url' is required");
    expect(noServer.stderr).toContain('--server-url or `server_url` in the stack file');

    const token = await runCli(['gc', '--token', 'abcdefabcdefabcdefabcdef'], {
      cwd: dir,
      secrets: ['abcdefabcdefabcdefabcdef'],
    });
    expect(token.code).toBe(2);
    expect(token.stderr).toContain('--token would put a secret on the command line');
    expect(token.stderr).toContain('NIKS3_API_TOKEN');

    const unknown = await runCli(['gc', '--older', '1h'], { cwd: dir });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown flag --older for nix-cache gc');

    const fixed = await runCli(['plan', '--mode', 'apply'], { cwd: dir });
    expect(fixed.code).toBe(2);
    expect(fixed.stderr).toContain('unknown flag --mode for nix-cache plan');

    const command = await runCli(['launch'], { cwd: dir });
    expect(command.code).toBe(2);
    expect(command.stderr).toContain('unknown command "launch"');

    const bad = await runCli(['gc', '--older-than', '30d', '--server-url', 'http://127.0.0.1:9'], {
      cwd: dir,
      env: { NIKS3_API_TOKEN: 't'.repeat(40) },
      secrets: ['t'.repeat(40)],
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Input \'older-than\' has an invalid value "30d"');
  });

  it('down refuses without --confirm naming the app, before asking for any secret', async () => {
    await runCli(['init-config'], { cwd: dir });
    const none = await runCli(['down'], { cwd: dir });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('Pass --confirm my-niks3 to mean it');
    expect(none.stderr).toContain('Nothing was changed');
    const wrong = await runCli(['down', '--confirm', 'other', '--delete-data'], { cwd: dir });
    expect(wrong.stderr).toContain('(--confirm is "other")');
    expect(wrong.stderr).toContain('empties and deletes the bucket "my-cache-niks3"');
  });

  describe('bws run re-exec', () => {
    let fake: FakeNiks3;
    beforeAll(async () => {
      fake = await startFakeNiks3();
    });
    afterAll(() => fake.close());

    it('re-runs the command under `bws run` when variables are missing and BWS is set up', async () => {
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      const log = join(dir, 'bws.log');
      // A stand-in for bws: checks the arguments, injects the project's secret, runs the command with sh -c.
      writeFileSync(
        join(bin, 'bws'),
        [
          '#!/bin/sh',
          `echo "$@" > ${log}`,
          '[ "$1" = run ] && [ "$2" = --project-id ] && [ "$3" = proj-123 ] && [ "$4" = -- ] || exit 99',
          '[ -n "$BWS_ACCESS_TOKEN" ] || exit 98',
          'unset BWS_ACCESS_TOKEN',
          `export NIKS3_API_TOKEN='${fake.apiToken}'`,
          'exec sh -c "$5"',
        ].join('\n'),
      );
      chmodSync(join(bin, 'bws'), 0o755);
      const bwsToken =
        '0.48c78342-1635-48a6-accd-afbe01336365.C0tMmQqHnAp1h0gL8bngprlPOYutt0:B3h5D+YgLvFiQhWkIq6Bow==';
      const run = await runCli(['gc', '--server-url', fake.url, '--older-than', '1h30m', '--json'], {
        cwd: dir,
        env: {
          PATH: `${bin}:${process.env['PATH'] ?? ''}`,
          BWS_ACCESS_TOKEN: bwsToken,
          BWS_PROJECT_ID: 'proj-123',
        },
        secrets: [fake.apiToken, bwsToken],
      });
      expect(run.stderr).not.toContain('needs the environment variable');
      expect(run.code).toBe(0);
      expect(run.json?.outputs['state']).toBe('succeeded');
      expect(readFileSync(log, 'utf8')).toContain('run --project-id proj-123 --');
    });

    it('does not loop: inside the re-run, missing variables are reported against the bws project', async () => {
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      writeFileSync(join(bin, 'bws'), '#!/bin/sh\nunset BWS_ACCESS_TOKEN\nexec sh -c "$5"\n');
      chmodSync(join(bin, 'bws'), 0o755);
      const run = await runCli(['gc', '--server-url', fake.url], {
        cwd: dir,
        env: {
          PATH: `${bin}:${process.env['PATH'] ?? ''}`,
          BWS_ACCESS_TOKEN: 'bws-access-token-value',
          BWS_PROJECT_ID: 'p',
        },
      });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('nix-cache gc needs the environment variable NIKS3_API_TOKEN');
      expect(run.stderr).toContain('not in the Bitwarden Secrets Manager project either');
    });
  });
});
