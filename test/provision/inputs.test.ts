/**
 * Every bad value of every validated provision input fails through the dist bundle before any
 * request, with a message that names the input and what it accepts. The bad values come from the
 * spec (its `invalid` lists) plus the ones each input type implies.
 */
import { PROVISION_SPEC } from '../../src/actions/provision/spec.js';
import { describeAccepted } from '../../src/core/settings/input-reader.js';
import type { InputSpec } from '../../src/core/settings/input-spec.js';
import { startProvisionFixture, type ProvisionFixture } from './provision-fixture.js';

let f: ProvisionFixture;

beforeAll(async () => {
  f = await startProvisionFixture();
});

afterAll(async () => {
  await f.close();
});

/** Values the input's type refuses, plus its declared invalid examples. */
function badValues(spec: InputSpec): string[] {
  const values = [...(spec.invalid ?? [])];
  switch (spec.type) {
    case 'enum':
      values.push('bogus', (spec.values?.[0] ?? '').toUpperCase() + '!');
      break;
    case 'boolean':
      values.push('yes', '1');
      break;
    case 'integer':
      values.push('abc', '1.5');
      if (spec.min !== undefined) values.push(String(spec.min - 1));
      if (spec.max !== undefined) values.push(String(spec.max + 1));
      break;
    case 'url':
      values.push('not a url', 'ftp://example.dev', 'https://user:pw@example.dev');
      break;
    default:
      break;
  }
  return values;
}

const cases = PROVISION_SPEC.inputs.flatMap((spec) => badValues(spec).map((value) => ({ spec, value })));

describe('provision inputs', () => {
  it('covers every validated input', () => {
    const validated = PROVISION_SPEC.inputs
      .filter((s) => s.type !== 'string' || s.pattern)
      .map((s) => s.name);
    expect(new Set(cases.map((c) => c.spec.name))).toEqual(new Set(validated));
    expect(cases.length).toBeGreaterThan(40);
  });

  it('refuses each bad value before any request, naming the input and the accepted values', async () => {
    const failures: string[] = [];
    // A few runs at a time; each is a separate bundle process.
    for (let i = 0; i < cases.length; i += 6) {
      await Promise.all(
        cases.slice(i, i + 6).map(async ({ spec, value }) => {
          const run = await f.run({ [spec.name]: value }, spec.secret ? [value] : []);
          const message = run.errors.join('\n');
          const accepted = describeAccepted(spec);
          if (run.code !== 1) failures.push(`${spec.name}=${JSON.stringify(value)}: exit ${run.code}`);
          else if (!message.includes(`Input '${spec.name}'`) || !message.includes(accepted)) {
            failures.push(
              `${spec.name}=${JSON.stringify(value)}: message does not name the input and "${accepted}": ${message}`,
            );
          } else if (spec.secret && message.includes(value)) {
            failures.push(`${spec.name}: the secret value was printed`);
          }
        }),
      );
    }
    expect(failures).toEqual([]);
    expect(f.cf.log.entries).toEqual([]);
  }, 120_000);

  it('refuses missing required inputs, naming each', async () => {
    const run = await f.run({ 'cloudflare-account-id': '', 'zone-name': '', 'stack-name': '' });
    expect(run.code).toBe(1);
    const message = run.errors.join('\n');
    for (const name of ['cloudflare-account-id', 'zone-name', 'stack-name'])
      expect(message).toContain(`Input '${name}' is required`);
    expect(f.cf.log.entries).toEqual([]);
  });

  it('checks across inputs before any request', async () => {
    const checks: Array<[Record<string, string>, RegExp]> = [
      [
        { 'stack-name': 'a'.repeat(60) },
        /bucket name derived from input 'stack-name'.*longer than 63 characters.*Set 'r2-bucket-name'/s,
      ],
      [{ 's3-secret-key': 'b'.repeat(64) }, /Input 's3-access-key' is missing/],
      [
        { 'check-s3-credentials': 'true' },
        /Input 'check-s3-credentials' is true but 's3-access-key' and 's3-secret-key' are not given/,
      ],
      [{ 'check-database': 'true' }, /Input 'check-database' is true but 'database-url' is not given/],
      [
        { 'database-url': 'postgres://u:p@h/db?sslmode=sometimes' },
        /Input 'database-url' has sslmode=sometimes: expected one of disable, allow, prefer, require, verify-ca, verify-full/,
      ],
      [{ mode: 'destroy' }, /Input 'confirm' must equal the bucket name "my-cache-niks3"/],
    ];
    for (const [inputs, expected] of checks) {
      const secrets = Object.entries(inputs)
        .filter(([name]) => PROVISION_SPEC.inputs.find((s) => s.name === name)?.secret)
        .map(([, value]) => value);
      const run = await f.run(inputs, secrets);
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toMatch(expected);
    }
    expect(f.cf.log.entries).toEqual([]);
  });
});
