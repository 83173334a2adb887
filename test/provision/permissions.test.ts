/**
 * The API token, through the dist bundle: it is verified first; one without a needed permission
 * fails naming that permission; it never appears in any output (runAction scans every run).
 */
import { PERMISSIONS } from '../fakes/cloudflare/index.js';
import { BUCKET, expectExit, startProvisionFixture, type ProvisionFixture } from './provision-fixture.js';

let f: ProvisionFixture;

beforeEach(async () => {
  f = await startProvisionFixture();
});

afterEach(async () => {
  await f.close();
});

describe('API token', () => {
  it('without Zone Read: fails naming "Zone Read", before any write', async () => {
    const token = f.cf.state.addToken({ permissions: [PERMISSIONS.r2Write] });
    const run = await f.run({ 'cloudflare-api-token': token.value }, [token.value]);
    expectExit(run, 1, f.cf);
    expect(run.errors.join('\n')).toMatch(
      /look up zone "example\.dev" \(GET \/zones\) answered HTTP 403.*lacks the permission "Zone Read"/s,
    );
    expect(f.cf.log.writes()).toEqual([]);
  });

  it('with R2 read only: fails naming "Workers R2 Storage Write" at the first write', async () => {
    const token = f.cf.state.addToken({ permissions: [PERMISSIONS.r2Read, PERMISSIONS.zoneRead] });
    const run = await f.run({ 'cloudflare-api-token': token.value }, [token.value]);
    expectExit(run, 1, f.cf);
    expect(run.errors.join('\n')).toMatch(
      /create R2 bucket "my-cache-niks3".*answered HTTP 403.*lacks the permission "Workers R2 Storage Write"/s,
    );
    expect(f.cf.state.buckets.size).toBe(0);
    // plan needs no write permission.
    expectExit(await f.run({ 'cloudflare-api-token': token.value, mode: 'plan' }, [token.value]), 0, f.cf);
  });

  it('with no R2 permission at all: fails naming "Workers R2 Storage Read" while reading', async () => {
    const token = f.cf.state.addToken({ permissions: [PERMISSIONS.zoneRead] });
    const run = await f.run({ 'cloudflare-api-token': token.value, mode: 'plan' }, [token.value]);
    expectExit(run, 1, f.cf);
    expect(run.errors.join('\n')).toMatch(
      /read R2 bucket "my-cache-niks3".*lacks the permission "Workers R2 Storage Read"/s,
    );
  });

  it('when custom domains also need a zone permission, the error says so', async () => {
    f.cf.settings.customDomainWritePermissions = [PERMISSIONS.dnsWrite];
    const run = await f.run();
    expectExit(run, 1, f.cf);
    expect(run.errors.join('\n')).toMatch(
      /attach custom domain cache\.example\.dev.*lacks the permission "Workers R2 Storage Write" \(custom domains may also need rights on the zone/s,
    );
  });

  it('an unknown token fails naming cloudflare-api-token; a disabled one says it is disabled', async () => {
    const unknown = 'x'.repeat(40);
    const run = await f.run({ 'cloudflare-api-token': unknown }, [unknown]);
    expectExit(run, 1, f.cf);
    expect(run.errors.join('\n')).toMatch(
      /Input 'cloudflare-api-token': Cloudflare does not accept this token/,
    );
    expect(f.cf.log.api().every((e) => e.path.endsWith('/tokens/verify'))).toBe(true);

    const disabled = f.cf.state.addToken({ status: 'disabled' });
    const run2 = await f.run({ 'cloudflare-api-token': disabled.value }, [disabled.value]);
    expectExit(run2, 1, f.cf);
    expect(run2.errors.join('\n')).toMatch(new RegExp(`the token ${disabled.id} is disabled`));
  });

  it('a user-owned token verifies through /user/tokens/verify and works', async () => {
    const token = f.cf.state.addToken({ kind: 'user' });
    const run = await f.run({ 'cloudflare-api-token': token.value }, [token.value]);
    expectExit(run, 0, f.cf);
    expect(
      f.cf.log
        .api()
        .slice(0, 2)
        .map((e) => `${e.path} ${e.status}`),
    ).toEqual([`/accounts/${f.account.id}/tokens/verify 401`, '/user/tokens/verify 200']);
    expect(f.cf.state.bucket(f.account.id, 'default', BUCKET)).toBeDefined();
  });

  it('never sends the token anywhere but the Authorization header, nor prints it', async () => {
    const run = await f.run({ mode: 'plan' });
    expectExit(run, 0, f.cf);
    for (const e of f.cf.log.entries) {
      expect(e.rawUrl).not.toContain(f.token.value);
      expect(JSON.stringify(e.body ?? '')).not.toContain(f.token.value);
      if (e.service === 'api') expect(e.headers['authorization']).toBe(`Bearer ${f.token.value}`);
    }
    // runAction already failed on any leak; check the obvious places once more.
    const printed = (run.stdout + run.stderr).split('\n').filter((l) => !l.startsWith('::add-mask::'));
    expect(printed.join('\n') + run.summary + JSON.stringify(run.outputs)).not.toContain(f.token.value);
  });

  it('ignores the SDK environment switches (debug logging, legacy key, base URL, custom headers)', async () => {
    const legacy = 'legacy-global-api-key-0123456789';
    f.cf.log.clear();
    const run = await f.run({}, [legacy], {
      CLOUDFLARE_LOG: 'debug',
      CLOUDFLARE_API_KEY: legacy,
      CLOUDFLARE_EMAIL: 'someone@example.dev',
      CLOUDFLARE_API_TOKEN: 'y'.repeat(40),
      CLOUDFLARE_BASE_URL: 'http://127.0.0.1:9/client/v4',
      CLOUDFLARE_CUSTOM_HEADERS: `X-Auth-Key: ${legacy}`,
    });
    expectExit(run, 0, f.cf);
    for (const e of f.cf.log.api()) {
      expect(e.headers['x-auth-key']).toBeUndefined();
      expect(e.headers['x-auth-email']).toBeUndefined();
      expect(e.headers['authorization']).toBe(`Bearer ${f.token.value}`);
    }
    // No request or response bodies in the log.
    expect(run.stdout).not.toMatch(/"locationHint"|"success":true/);
    expect(run.stderr).not.toMatch(/"locationHint"|"success":true/);
  });
});
