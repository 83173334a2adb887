/**
 * `nix-cache plan`, `up`, `provision`, `deploy`, `status` and `down` through the binary against the
 * local stand-ins of Cloudflare, Fly and niks3 (the demo's embedded local stack): plan writes
 * nothing, up creates everything and passes provision's outputs to deploy, a second up changes
 * nothing, status reads R2 and Fly too, down needs --confirm and removes everything.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { startLocalStack, type LocalStack } from '../../demo/local-stack.js';
import { ensureCliBundle, runCli, type CliRun } from './cli-runner.js';

describe('nix-cache plan, up, status and down (binary) against the local stack', () => {
  let stack: LocalStack;

  beforeAll(async () => {
    await ensureCliBundle();
    stack = await startLocalStack({ stackName: 'CLI Test', appName: 'cli-test-niks3' });
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  const cli = (args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> =>
    runCli([...args, '--stack', stack.stackFile], {
      cwd: stack.dir,
      env: { ...stack.env, ...env },
      secrets: stack.secrets,
    });

  const writes = (): number => stack.cloudflare.log.writes().length + stack.fly.writes().length;
  const bucket = () =>
    stack.cloudflare.state.bucket(
      [...stack.cloudflare.state.accounts.keys()][0] ?? '',
      'default',
      'cli-test-niks3',
    );

  it('plan lists the changes of both sides and writes nothing', async () => {
    const run = await cli(['plan', '--check-database', 'false', '--json']);
    expect(run.stderr).not.toMatch(/^error/m);
    expect(run.code).toBe(0);
    expect(writes()).toBe(0);
    expect(run.json?.steps['provision']).toMatchObject({
      changed: 'true',
      'bucket-name': 'cli-test-niks3',
      'cache-url': 'https://cache.example.test',
    });
    expect(run.json?.steps['deploy']).toMatchObject({ changed: 'true', 'public-key': stack.publicKey });
    expect((JSON.parse(run.json?.steps['deploy']?.['plan'] ?? '[]') as unknown[]).length).toBeGreaterThan(0);
    // The S3 probe of plan needs the bucket, which does not exist yet; the human output still reads.
    const text = await cli(['plan', '--check-database', 'false', '--check-s3-credentials', 'false']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('nix-cache provision');
    expect(writes()).toBe(0);
  });

  it('up provisions R2, then deploys with provision outputs; a second up changes nothing', async () => {
    const run = await cli(['up', '--check-database', 'false', '--json']);
    expect(run.stderr).not.toMatch(/^error/m);
    expect(run.code).toBe(0);
    expect(bucket()).toBeDefined();
    expect(stack.fly.app('cli-test-niks3')?.liveMachines()).toHaveLength(1);
    const machine = stack.fly.app('cli-test-niks3')?.liveMachines()[0];
    const env = (machine?.current.config['env'] ?? {}) as Record<string, string>;
    // Provision's outputs reached deploy.
    expect(env['NIKS3_S3_BUCKET']).toBe(run.json?.steps['provision']?.['bucket-name']);
    expect(env['NIKS3_CACHE_URL']).toBe('https://cache.example.test');
    expect(env['NIKS3_S3_ENDPOINT']).toBe(run.json?.steps['provision']?.['s3-endpoint']);
    expect(run.json?.outputs).toMatchObject({ 'server-url': stack.niks3.url, 'public-key': stack.publicKey });
    expect(readFileSync(run.json?.outputs['fly-toml'] ?? '', 'utf8')).toContain('app = "cli-test-niks3"');

    const before = writes();
    const again = await cli(['up', '--check-database', 'false', '--check-s3-credentials', 'false', '--json']);
    expect(again.code).toBe(0);
    expect(again.json?.steps['provision']?.['changed']).toBe('false');
    expect(again.json?.steps['deploy']?.['changed']).toBe('false');
    expect(writes()).toBe(before);
  });

  it('provision and deploy run alone; a flag beats the stack file', async () => {
    const provision = await cli(['provision', '--mode', 'plan', '--check-database', 'false', '--json']);
    expect(provision.code).toBe(0);
    expect(provision.json?.outputs['changed']).toBe('false');
    const deploy = await cli(['deploy', '--mode', 'plan', '--fly-vm-memory', '512mb', '--json']);
    expect(deploy.code).toBe(0);
    expect(deploy.json?.outputs['changed']).toBe('true');
  });

  it('status reads the server, R2 (with the custom domain of the stack file) and Fly', async () => {
    const run = await cli(['status', '--json']);
    const checks = JSON.parse(run.json?.outputs['checks'] ?? '[]') as Array<{
      name: string;
      status: string;
      detail: string;
    }>;
    const byName = Object.fromEntries(checks.map((c) => [c.name, c.status]));
    expect(byName).toMatchObject({
      health: 'ok',
      'public key': 'ok',
      'R2 bucket': 'ok',
      'R2 custom domain': 'ok',
      'Fly app': 'ok',
      'Fly machine': 'ok',
    });
    // Public reads come from 127.0.0.1 here; the custom domain checked is the stack file's
    // <cache_subdomain>.<zone_name>, not the host of the URL the server announces.
    expect(checks.find((c) => c.name === 'R2 custom domain')?.detail).toBe(
      `${stack.cacheDomain} active (ownership and TLS)`,
    );
    expect(checks.filter((c) => c.status !== 'ok')).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.json?.outputs['healthy']).toBe('true');
  });

  it('down refuses a wrong --confirm without a write, then removes the app, the domain and (--delete-data) the bucket', async () => {
    const before = writes();
    const wrong = await cli(['down', '--confirm', 'not-the-app']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('Pass --confirm cli-test-niks3');
    expect(writes()).toBe(before);

    const run = await cli(['down', '--confirm', 'cli-test-niks3', '--delete-data', '--json']);
    expect(run.stderr).not.toMatch(/^error/m);
    expect(run.code).toBe(0);
    expect(stack.fly.app('cli-test-niks3')).toBeUndefined();
    expect(bucket()).toBeUndefined();
    expect(run.json?.steps['provision']?.['custom-domain-status']).toBe('absent');
  });

  it('up with a stack file naming a setting it does not know fails before any request', async () => {
    const text = readFileSync(stack.stackFile, 'utf8');
    try {
      writeFileSync(stack.stackFile, JSON.stringify({ ...JSON.parse(text), fly_app: 'typo' }));
      const before = writes();
      const run = await cli(['up']);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('unknown settings: fly_app');
      expect(writes()).toBe(before);
    } finally {
      writeFileSync(stack.stackFile, text);
    }
  });
});
