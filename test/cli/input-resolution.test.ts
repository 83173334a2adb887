/**
 * Where the CLI takes each input from: fixed by the command > flags > environment contract > stack
 * file > an earlier step's outputs > values derived from the stack > the CLI's defaults; and how the
 * command line is read.
 */
import { MemoryLogger } from '../../src/core/logger.js';
import { generateSecretKey } from '../../src/core/nix/signing-key.js';
import { parseArgs } from '../../src/cli/arguments.js';
import { findCommand, type Command, type Step } from '../../src/cli/commands.js';
import { missingInputs, resolveInputs } from '../../src/cli/input-resolution.js';
import { shellQuote } from '../../src/cli/environment-contract.js';

const STACK = {
  stack_name: 'My Cache',
  cloudflare_account_id: 'a'.repeat(32),
  zone_name: 'example.dev',
  cache_subdomain: 'nix',
  r2_jurisdiction: 'eu',
  fly_app_name: 'my-niks3',
  fly_vm_memory: '512mb',
  oidc_github_subject_patterns: ['repo:me/*:*', 'repo:org/x:*'],
};

function command(name: string): Command {
  const found = findCommand(name);
  if (!found) throw new Error(name);
  return found;
}

function step(name: string, label: string, flags: Record<string, string> = {}): Step {
  const found = command(name)
    .steps({ flags, stack: STACK })
    .find((s) => s.label === label);
  if (!found) throw new Error(label);
  return found;
}

const resolve = (
  s: Step,
  options: {
    flags?: Record<string, string>;
    env?: NodeJS.ProcessEnv;
    previous?: Record<string, string>;
    stack?: Record<string, unknown>;
  } = {},
) =>
  resolveInputs({
    step: s,
    flags: options.flags ?? {},
    stack: options.stack ?? STACK,
    env: options.env ?? {},
    previous: options.previous ?? {},
    logger: new MemoryLogger(),
  });

describe('CLI input resolution', () => {
  it('derives the values of the original stack for deploy, and prefers provision outputs', () => {
    const derived = resolve(step('up', 'deploy'));
    expect(derived).toMatchObject({
      mode: 'apply',
      'fly-app-name': 'my-niks3',
      'fly-vm-memory': '512mb',
      'cache-url': 'https://nix.example.dev',
      'bucket-name': 'my-cache-niks3',
      's3-endpoint': `${'a'.repeat(32)}.eu.r2.cloudflarestorage.com`,
      'oidc-github-subject-patterns': 'repo:me/*:*\nrepo:org/x:*',
    });
    const carried = resolve(step('up', 'deploy'), {
      previous: { 'bucket-name': 'from-provision', 'cache-url': 'https://x.example.dev', plan: '[]' },
    });
    expect(carried['bucket-name']).toBe('from-provision');
    expect(carried['cache-url']).toBe('https://x.example.dev');
    expect(carried['plan']).toBeUndefined();
  });

  it('flags beat the stack file and the environment; what the command fixes beats flags', () => {
    const values = resolve(step('up', 'deploy'), {
      flags: { 'fly-vm-memory': '1gb', mode: 'destroy' },
      env: { FLY_API_TOKEN: 'FlyV1 fm2_x' },
    });
    expect(values['fly-vm-memory']).toBe('1gb');
    expect(values['mode']).toBe('apply');
    expect(values['fly-api-token']).toBe('FlyV1 fm2_x');
  });

  it('maps the environment contract to every action input it feeds', () => {
    const env = {
      NIKS3_API_TOKEN: 'tok',
      NIKS3_DB: 'postgresql://h/d',
      NIKS3_S3_ACCESS_KEY: 'ak',
      NIKS3_S3_SECRET_KEY: 'sk',
      CLOUDFLARE_API_TOKEN: 'cf',
    };
    expect(resolve(step('up', 'provision'), { env })).toMatchObject({
      'cloudflare-api-token': 'cf',
      'database-url': 'postgresql://h/d',
      's3-access-key': 'ak',
      's3-secret-key': 'sk',
    });
    expect(resolve(step('up', 'deploy'), { env })).toMatchObject({
      'niks3-api-token': 'tok',
      'niks3-db': 'postgresql://h/d',
      'niks3-s3-access-key': 'ak',
    });
    expect(resolve(step('gc', 'gc'), { env })).toMatchObject({
      token: 'tok',
      auth: 'token',
      'server-url': 'https://my-niks3.fly.dev',
    });
  });

  it('status: server URL from the app, custom domain from the zone, expected key from NIKS3_SIGNING_KEY, optional reports only when complete', () => {
    const key = generateSecretKey('k-1');
    const values = resolve(step('status', 'status'), {
      env: { NIKS3_SIGNING_KEY: key.secretKeyText, CLOUDFLARE_API_TOKEN: 'cf', FLY_API_TOKEN: 'fly' },
    });
    expect(values).toMatchObject({
      'server-url': 'https://my-niks3.fly.dev',
      'expected-public-key': key.publicKey,
      'r2-bucket-name': 'my-cache-niks3',
      'cache-domain': 'nix.example.dev',
      'cloudflare-api-token': 'cf',
      'fly-api-token': 'fly',
    });
    expect(values['cache-url']).toBeUndefined();
    expect(
      resolve(step('status', 'status'), { flags: { 'cache-domain': 'c.example.org' } })['cache-domain'],
    ).toBe('c.example.org');
    const bare = resolve(step('status', 'status'), {
      stack: {},
      env: { CLOUDFLARE_API_TOKEN: 'cf', FLY_API_TOKEN: 'fly', NIKS3_SIGNING_KEY: 'not a key' },
    });
    expect(bare['cloudflare-api-token']).toBeUndefined();
    expect(bare['fly-api-token']).toBeUndefined();
    expect(bare['expected-public-key']).toBeUndefined();
    expect(bare['cache-domain']).toBeUndefined();
    expect(missingInputs(step('status', 'status'), bare)[0]).toContain("'server-url' is required");
  });

  it('down: deploy destroy confirms the app, provision destroy the bucket of the stack', () => {
    const steps = command('down').steps({
      flags: { confirm: 'my-niks3', 'delete-data': 'true' },
      stack: STACK,
    });
    expect(steps.map((s) => s.label)).toEqual(['deploy', 'provision']);
    expect(resolve(steps[0] as Step, { flags: { confirm: 'my-niks3' } })).toMatchObject({
      mode: 'destroy',
      confirm: 'my-niks3',
    });
    expect(
      resolve(steps[1] as Step, { flags: { confirm: 'my-niks3', 'delete-data': 'true' } }),
    ).toMatchObject({ mode: 'destroy', confirm: 'my-cache-niks3', 'delete-data': 'true' });
    expect(() => command('down').check?.({ flags: {}, stack: STACK })).toThrow('Pass --confirm my-niks3');
  });
});

describe('CLI arguments', () => {
  it('reads --name value, --name=value, repeated flags as lines, and booleans without a value', () => {
    const args = parseArgs(
      [
        'push',
        '--paths',
        'a',
        '--paths=b c',
        '--verify',
        '--upstream-filter',
        'false',
        '--json',
        '--stack',
        'x.json',
      ],
      findCommand,
    );
    expect(args).toMatchObject({ command: 'push', json: true, stackPath: 'x.json' });
    expect(args.values).toEqual({ paths: 'a\nb c', verify: 'true', 'upstream-filter': 'false' });
  });

  it('refuses secrets as flags, unknown flags, flags without a value and stray arguments', () => {
    expect(() => parseArgs(['deploy', '--niks3-db', 'postgresql://x'], findCommand)).toThrow('NIKS3_DB');
    expect(() => parseArgs(['gc', '--nope'], findCommand)).toThrow('unknown flag --nope');
    expect(() => parseArgs(['gc', '--older-than'], findCommand)).toThrow('needs a value');
    expect(() => parseArgs(['gc', 'extra'], findCommand)).toThrow('unexpected argument "extra"');
  });

  it('quotes the re-run command for `bws run` (which hands it to sh -c)', () => {
    expect(shellQuote('/usr/bin/node')).toBe('/usr/bin/node');
    expect(shellQuote("it's a b")).toBe("'it'\\''s a b'");
    expect(shellQuote('$(rm -rf /)')).toBe("'$(rm -rf /)'");
  });
});
