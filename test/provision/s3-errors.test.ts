/**
 * The S3 probe maps the codes R2's S3 endpoint really answers (`Unauthorized`, `InvalidArgument`)
 * to a message that names the key to fix, and still understands the AWS codes other S3 servers
 * send. The stand-in answers either way (setting `s3AuthErrors`).
 */
import { PERMISSIONS } from '../fakes/cloudflare/index.js';
import { BUCKET, expectExit, startProvisionFixture, type ProvisionFixture } from './provision-fixture.js';

let f: ProvisionFixture;

afterEach(async () => {
  await f.close();
});

function secretOfAToken(): string {
  const token = f.cf.state.addToken({ permissions: [PERMISSIONS.r2ItemWrite], buckets: [BUCKET] });
  return f.cf.state.s3Credentials(token).secretAccessKey;
}

describe('S3 probe against R2 error codes (the default)', () => {
  beforeEach(async () => {
    f = await startProvisionFixture();
  });

  it('an unknown key id (401 Unauthorized) names s3-access-key', async () => {
    const secret = secretOfAToken();
    const run = await f.run(
      { 's3-access-key': 'a'.repeat(32), 's3-secret-key': secret, 's3-endpoint-url': f.cf.s3Url() },
      [secret],
    );
    expectExit(run, 1, f.cf);
    expect(f.cf.log.s3()[0]?.status).toBe(401);
    expect(run.errors.join('\n')).toMatch(
      /Input 's3-access-key' is not an R2 access key id that Cloudflare accepts \(401 Unauthorized to the probe PUT\)/,
    );
  });

  it('a key id of the wrong length (400 InvalidArgument) names s3-access-key and says what it should be', async () => {
    const secret = secretOfAToken();
    const run = await f.run(
      { 's3-access-key': 'a'.repeat(31), 's3-secret-key': secret, 's3-endpoint-url': f.cf.s3Url() },
      [secret],
    );
    expectExit(run, 1, f.cf);
    expect(run.errors.join('\n')).toMatch(
      /Input 's3-access-key' is malformed \(400 InvalidArgument: Credential access key has length 31, should be 32\)\. An R2 access key id is the 32-character id/,
    );
  });
});

describe('S3 probe against AWS error codes', () => {
  beforeEach(async () => {
    f = await startProvisionFixture({ settings: { s3AuthErrors: 'aws' } });
  });

  it('an unknown key id (403 InvalidAccessKeyId) names s3-access-key', async () => {
    const secret = secretOfAToken();
    const run = await f.run(
      { 's3-access-key': 'a'.repeat(31), 's3-secret-key': secret, 's3-endpoint-url': f.cf.s3Url() },
      [secret],
    );
    expectExit(run, 1, f.cf);
    expect(run.errors.join('\n')).toMatch(
      /Input 's3-access-key' is not an R2 access key id.*InvalidAccessKeyId/s,
    );
  });
});
