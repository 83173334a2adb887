/**
 * R2 jurisdiction versus location hint, through the dist bundle: a bucket with a jurisdiction gets
 * no hint (the stand-in either refuses the pair or ignores the hint, as the real API may), its
 * location is not compared afterwards, and a hint outside the jurisdiction is refused before any
 * request, naming both inputs. Also the `us` jurisdiction with its own S3 host.
 */
import { BUCKET, expectExit, startProvisionFixture, type ProvisionFixture } from './provision-fixture.js';

let f: ProvisionFixture;

afterEach(async () => {
  await f.close();
});

describe.each(['reject', 'ignore'] as const)('a jurisdiction with the stand-in set to %s a hint', (mode) => {
  beforeEach(async () => {
    f = await startProvisionFixture({ settings: { jurisdictionWithLocationHint: mode } });
  });

  it('creates an eu bucket with the default r2-location, sends no hint, warns nothing, and converges', async () => {
    const run = await f.run({ 'r2-jurisdiction': 'eu' });
    expectExit(run, 0, f.cf);
    const create = f.cf.log.writes().find((w) => w.path === `/accounts/${f.account.id}/r2/buckets`);
    expect(create?.body).toEqual({ name: BUCKET, storageClass: 'Standard' });
    expect(create?.headers['cf-r2-jurisdiction']).toBe('eu');
    expect(f.cf.state.bucket(f.account.id, 'eu', BUCKET)?.location).toBe('WEUR');
    expect(run.warnings).toEqual([]);

    f.cf.log.clear();
    const again = await f.run({ 'r2-jurisdiction': 'eu' });
    expectExit(again, 0, f.cf);
    expect(f.cf.log.writes()).toEqual([]);
    expect(again.outputs['changed']).toBe('false');
    // The bucket is in weur, the (unsent) default hint says enam: no false location warning.
    expect(again.warnings.join('\n')).not.toMatch(/location/);
  });

  it('keeps an explicit hint inside the jurisdiction out of the request', async () => {
    const run = await f.run({ 'r2-jurisdiction': 'eu', 'r2-location': 'eeur', mode: 'plan' });
    expectExit(run, 0, f.cf);
    const plan = JSON.parse(run.outputs['plan'] ?? '[]') as Array<{ after?: Record<string, unknown> }>;
    expect(plan[0]?.after).toEqual({ jurisdiction: 'eu', storageClass: 'Standard' });
    expect(run.stdout).toContain("Input 'r2-location' (eeur) is not sent");
  });
});

describe('inputs and the us jurisdiction', () => {
  beforeEach(async () => {
    f = await startProvisionFixture();
  });

  it('refuses a hint outside the jurisdiction before any request, naming both inputs', async () => {
    const run = await f.run({ 'r2-jurisdiction': 'eu', 'r2-location': 'wnam' });
    expectExit(run, 1, f.cf);
    expect(f.cf.log.api()).toEqual([]);
    expect(run.errors.join('\n')).toMatch(
      /Inputs 'r2-location' and 'r2-jurisdiction' contradict each other: location hint "wnam" lies outside jurisdiction "eu".*Remove r2-location/s,
    );
  });

  it('creates a bucket in the us jurisdiction and outputs its S3 host', async () => {
    const run = await f.run({ 'r2-jurisdiction': 'us' });
    expectExit(run, 0, f.cf);
    expect(f.cf.state.bucket(f.account.id, 'us', BUCKET)).toBeDefined();
    expect(run.outputs['s3-endpoint']).toBe(`${f.account.id}.us.r2.cloudflarestorage.com`);
    for (const w of f.cf.log.writes()) expect(w.headers['cf-r2-jurisdiction']).toBe('us');
  });
});
