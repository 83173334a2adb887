/**
 * The optional checks of provision, through the dist bundle: the S3 key probe against the
 * stand-in's S3 endpoint (which verifies SigV4 signatures), and the database check against a real
 * PostgreSQL started for this file.
 */
import { PERMISSIONS } from '../fakes/cloudflare/index.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { BUCKET, startProvisionFixture, type ProvisionFixture } from './provision-fixture.js';

let f: ProvisionFixture;
let db: TestPostgres;

beforeAll(async () => {
  db = await startPostgres({ password: 'pg-Secret-pw-42' });
});

afterAll(async () => {
  await db.stop();
});

beforeEach(async () => {
  f = await startProvisionFixture();
});

afterEach(async () => {
  await f.close();
});

function s3Keys(): { access: string; secret: string } {
  const token = f.cf.state.addToken({ permissions: [PERMISSIONS.r2ItemWrite], buckets: [BUCKET] });
  const creds = f.cf.state.s3Credentials(token);
  return { access: creds.accessKeyId, secret: creds.secretAccessKey };
}

describe('check-s3-credentials', () => {
  it('passes with good keys: PUT, GET and DELETE of a probe object, signatures verified', async () => {
    const { access, secret } = s3Keys();
    const run = await f.run(
      { 's3-access-key': access, 's3-secret-key': secret, 's3-endpoint-url': f.cf.s3Url() },
      [secret],
    );
    expect(run.code).toBe(0);
    const s3 = f.cf.log.s3();
    expect(s3.map((e) => `${e.method} ${e.status}`)).toEqual(['PUT 200', 'GET 200', 'DELETE 204']);
    for (const e of s3)
      expect(e.headers['authorization']).toMatch(
        new RegExp(`^AWS4-HMAC-SHA256 Credential=${access}/\\d{8}/auto/s3/aws4_request`),
      );
    expect(f.cf.state.bucket(f.account.id, 'default', BUCKET)?.objects.size).toBe(0);
    expect(run.summary).toContain('ok: PUT, GET and DELETE of a probe object');
  });

  it('fails naming s3-secret-key when the secret does not match', async () => {
    const { access } = s3Keys();
    const wrong = 'f'.repeat(64);
    const run = await f.run(
      { 's3-access-key': access, 's3-secret-key': wrong, 's3-endpoint-url': f.cf.s3Url() },
      [wrong],
    );
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /Input 's3-secret-key' does not belong to 's3-access-key'.*SignatureDoesNotMatch/s,
    );
    // The Cloudflare side was still applied and reported.
    expect(f.cf.state.bucket(f.account.id, 'default', BUCKET)).toBeDefined();
    expect(run.summary).toContain('FAILED');
  });

  it('fails naming s3-access-key when the key id is unknown', async () => {
    const { secret } = s3Keys();
    const run = await f.run(
      { 's3-access-key': '0'.repeat(32), 's3-secret-key': secret, 's3-endpoint-url': f.cf.s3Url() },
      [secret],
    );
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /Input 's3-access-key' is not an R2 access key id that Cloudflare accepts \(401 Unauthorized/s,
    );
  });

  it('fails when the keys may only read', async () => {
    const token = f.cf.state.addToken({ permissions: [PERMISSIONS.r2ItemRead] });
    const { accessKeyId, secretAccessKey } = f.cf.state.s3Credentials(token);
    const run = await f.run(
      { 's3-access-key': accessKeyId, 's3-secret-key': secretAccessKey, 's3-endpoint-url': f.cf.s3Url() },
      [secretAccessKey],
    );
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /may not write objects in R2 bucket "my-cache-niks3".*Bucket Item Write/s,
    );
  });

  it('in plan mode signs one read and writes nothing (and skips when the bucket does not exist yet)', async () => {
    const { access, secret } = s3Keys();
    const inputs = {
      's3-access-key': access,
      's3-secret-key': secret,
      's3-endpoint-url': f.cf.s3Url(),
      mode: 'plan',
    };
    const before = await f.run(inputs, [secret]);
    expect(before.code).toBe(0);
    expect(f.cf.log.s3()).toEqual([]);
    expect(before.summary).toContain('skipped: the bucket does not exist yet');
    expect((await f.run({}, [])).code).toBe(0);
    f.cf.log.clear();
    const run = await f.run(inputs, [secret]);
    expect(run.code).toBe(0);
    expect(f.cf.log.s3().map((e) => `${e.method} ${e.status}`)).toEqual(['GET 404']);
    const wrong = await f.run({ ...inputs, 's3-secret-key': 'e'.repeat(64) }, ['e'.repeat(64)]);
    expect(wrong.code).toBe(1);
    expect(wrong.errors.join('\n')).toMatch(/s3-secret-key/);
  });

  it('refuses half a key pair before any request', async () => {
    const run = await f.run({ 's3-access-key': 'a'.repeat(32) });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(/Input 's3-secret-key' is missing/);
    expect(f.cf.log.entries).toEqual([]);
  });
});

describe('check-database', () => {
  it('passes with a good URL (real PostgreSQL)', async () => {
    const url = db.url();
    const run = await f.run({ 'database-url': url }, [url, db.password]);
    expect(run.code).toBe(0);
    expect(run.summary).toMatch(/database \(database-url\) \| ok: SELECT 1 on PostgreSQL 15/);
  });

  it('fails on a wrong password, without printing any password', async () => {
    const url = db.url({ password: 'Wrong-password-99' });
    const run = await f.run({ 'database-url': url }, [url, 'Wrong-password-99', db.password]);
    expect(run.code).toBe(1);
    const message = run.errors.join('\n');
    expect(message).toMatch(
      /Input 'database-url': could not run SELECT 1 on postgres:\/\/niks3@127\.0\.0\.1:\d+\/niks3: password authentication failed/,
    );
    expect(message).toMatch(/Check the user name and password/);
  });

  it('fails on an unreachable server and on a missing database', async () => {
    const down = db.url({ port: 1 });
    const run = await f.run({ 'database-url': down }, [down, db.password]);
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(/nothing accepts connections on 127\.0\.0\.1:1/);

    const missing = db.url({ database: 'nope' });
    const run2 = await f.run({ 'database-url': missing }, [missing, db.password]);
    expect(run2.code).toBe(1);
    expect(run2.errors.join('\n')).toMatch(/database "nope" does not exist.*Check the database name/s);
  });

  it('fails when the URL asks for TLS and the server has none', async () => {
    const tls = db.url({ query: 'sslmode=require' });
    const run = await f.run({ 'database-url': tls }, [tls, db.password]);
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(/does not support SSL.*sslmode=require/s);
    // prefer (libpq's default) falls back to a plain connection.
    const prefer = db.url({ query: 'sslmode=prefer' });
    expect((await f.run({ 'database-url': prefer }, [prefer, db.password])).code).toBe(0);
  });

  it('check-database: false skips the check', async () => {
    const url = db.url({ port: 1 });
    const run = await f.run({ 'database-url': url, 'check-database': 'false' }, [url, db.password]);
    expect(run.code).toBe(0);
  });
});
