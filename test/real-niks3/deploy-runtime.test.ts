/**
 * What deploy ships boots: the deploy bundle runs against the Fly stand-in, and the machine config
 * and app secrets it sent there (env, `[[files]]` with their decoded secret contents, the OIDC policy
 * file it rendered) start the real niks3-server v1.7.0 here. Only what cannot exist on this machine is
 * mapped: the listen address (`:5751` -> a loopback port), TLS to S3 (`NIKS3_S3_USE_SSL` true ->
 * false, the local S3 has no TLS), the guest paths of the files (-> a temp dir) and the OIDC issuer
 * (GitHub's -> the local issuer, with `allow_insecure` for its http URL). The server answers health,
 * accepts an OIDC push the policy allows and refuses another owner id and another repository.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSecretKey } from '../../src/core/nix/signing-key.js';
import { GITHUB_ACTIONS_ISSUER } from '../../src/core/niks3/oidc-policy.js';
import { APP, deployFixture, type DeployFixture } from '../deploy/deploy-fixture.js';
import type { MachineFile } from '../../src/core/fly/machine-config.js';
import { buildTextPath } from '../helpers/nix-fixtures.js';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { runAction } from '../helpers/run-action.js';
import { freePort, startNiks3Server, startVersitygw, type Niks3Server, type Versitygw } from './stack.js';
import { describeRealNiks3 } from './tools.js';

describeRealNiks3('deploy runtime config on the real niks3 v1.7.0', () => {
  let fx: DeployFixture;
  let db: TestPostgres;
  let s3: Versitygw;
  let issuer: OidcIssuer;
  let server: Niks3Server | undefined;
  let dir: string;
  let serverUrl: string;
  let publicUrl: string;
  let publicKey: string;
  const secrets: string[] = [];
  const bucket = 'niks3-deployed';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nix-cache-deploy-runtime-'));
    [fx, db, s3, issuer] = await Promise.all([
      deployFixture(),
      startPostgres({ password: 'deploy-db-password-1' }),
      startVersitygw(),
      startOidcIssuer(),
    ]);
    await s3.createBucket(bucket, { publicRead: true });
    serverUrl = `http://127.0.0.1:${await freePort()}`;
    publicUrl = `${s3.url}/${bucket}`;
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await Promise.all([fx?.close(), db?.stop(), s3?.close(), issuer?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('deploy sends a config and secrets that boot the real server, which serves health and cache-config', async () => {
    const key = generateSecretKey('niks3-deployed-1');
    publicKey = key.publicKey;
    const apiToken = 'tok-deployed-0123456789abcdef0123456789abcdef';
    const inputs = {
      'niks3-api-token': apiToken,
      'niks3-db': db.url(),
      'niks3-s3-access-key': s3.accessKey,
      'niks3-s3-secret-key': s3.secretKey,
      'niks3-signing-key': key.secretKeyText,
      'cache-url': publicUrl,
      'bucket-name': bucket,
      's3-endpoint': s3.endpoint,
      'r2-s3-region': 'us-east-1',
      'server-url': serverUrl,
      'oidc-github-owner-ids': '1000001',
      'oidc-github-subject-patterns': 'repo:octo-org/octo-repo:*',
    };
    secrets.push(apiToken, s3.secretKey, key.secretKeyText, db.url());
    const deployed = await fx.run(inputs);
    expect(deployed.errors).toEqual([]);
    expect(deployed.code).toBe(0);

    const app = fx.fly.app(APP);
    const machine = app?.liveMachines()[0];
    expect(machine).toBeDefined();
    const config = machine?.current.config as { env: Record<string, string>; files?: MachineFile[] };
    const appSecrets = new Map<string, string>();
    for (const [name, secret] of app?.secrets ?? []) appSecrets.set(name, secret.value);

    // Fly gives the guest every app secret as env, then the config's env, then writes [[files]].
    const env: Record<string, string> = { ...Object.fromEntries(appSecrets), ...config.env };
    const paths = new Map<string, string>();
    for (const [i, file] of (config.files ?? []).entries()) {
      const local = join(dir, `file-${i}`);
      const value = file.secret_name ? appSecrets.get(file.secret_name) : file.raw_value;
      expect({ file: file.guest_path, present: value !== undefined }).toEqual({
        file: file.guest_path,
        present: true,
      });
      let content = Buffer.from(value ?? '', 'base64').toString('utf8');
      if (file.guest_path === env.NIKS3_OIDC_CONFIG) {
        const policy = JSON.parse(content) as {
          allow_insecure?: boolean;
          providers: Record<string, { issuer: string; audience: string }>;
        };
        expect(policy.providers.github?.issuer).toBe(GITHUB_ACTIONS_ISSUER);
        expect(policy.providers.github?.audience).toBe(serverUrl);
        policy.providers.github!.issuer = issuer.issuer;
        policy.allow_insecure = true;
        content = JSON.stringify(policy);
      }
      writeFileSync(local, content, { mode: 0o600 });
      paths.set(file.guest_path, local);
    }
    const mapped: Record<string, string> = {};
    for (const [name, value] of Object.entries(env)) mapped[name] = paths.get(value) ?? value;
    expect(mapped.NIKS3_HTTP_ADDR).toBe(':5751');
    expect(mapped.NIKS3_S3_USE_SSL).toBe('true');
    mapped.NIKS3_HTTP_ADDR = serverUrl.replace('http://', '');
    mapped.NIKS3_S3_USE_SSL = 'false';
    // The signing key and OIDC policy files were written from the secrets.
    expect(paths.size).toBe(2);

    server = await startNiks3Server(mapped, dir);
    expect((await fetch(`${serverUrl}/health`)).status).toBe(200);
    const cacheConfig = (await (await fetch(`${serverUrl}/api/cache-config`)).json()) as Record<
      string,
      unknown
    >;
    expect(cacheConfig).toEqual(expect.objectContaining({ public_keys: [publicKey] }));
  }, 120_000);

  const push = async (path: string, claims: Record<string, unknown>) => {
    issuer.claims = claims;
    return runAction('push', {
      inputs: { 'server-url': serverUrl, paths: path, 'upstream-filter': 'false' },
      oidc: issuer,
      secrets,
    });
  };

  it('accepts an OIDC push the deployed policy allows', async () => {
    expect(server).toBeDefined();
    const path = await buildTextPath('pushed to what deploy shipped\n');
    const run = await push(path, {});
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs['pushed']).toBe('1');
    expect(run.outputs['public-key']).toBe(publicKey);
    expect(run.outputs['cache-url']).toBe(publicUrl);
  }, 60_000);

  it('refuses a token of another owner id, and one of another repository', async () => {
    expect(server).toBeDefined();
    const path = await buildTextPath('refused by the deployed policy\n');
    const otherOwner = await push(path, { repository_owner_id: '999999' });
    expect(otherOwner.code).toBe(1);
    expect(otherOwner.errors.join('\n')).toMatch(/401/);
    const otherRepo = await push(path, {
      repository: 'octo-org/other-repo',
      sub: 'repo:octo-org/other-repo:ref:refs/heads/main',
    });
    expect(otherRepo.code).toBe(1);
    expect(otherRepo.errors.join('\n')).toMatch(/401/);
    const keys = await s3.listKeys(bucket);
    expect(keys.filter((k) => k.endsWith('.narinfo'))).toHaveLength(1);
  }, 60_000);
});
