/**
 * The bad-input table, generated from the same declarations as every action.yml: each input of each
 * action, given wrong values (empty when required, wrong type, out of range, unknown enum, malformed
 * URL/duration/size/key), must fail before any network request with a message that names the input,
 * shows the value unless it is secret, and says what is accepted. A new input cannot be forgotten:
 * its cases come from its declaration.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ACTION_SPECS } from '../src/actions/specs.js';
import type { ActionSpec, InputSpec } from '../src/core/settings/input-spec.js';
import { generateSecretKey } from '../src/core/nix/signing-key.js';
import { runAction } from './helpers/run-action.js';

interface Case {
  readonly input: InputSpec;
  readonly value: string;
  readonly why: string;
}

/** Wrong values derived from an input's type, plus the ones its declaration lists. */
export function badValues(input: InputSpec): Case[] {
  const cases: Case[] = [];
  const add = (value: string, why: string): void => {
    cases.push({ input, value, why });
  };
  if (input.required) add('', 'empty but required');
  switch (input.type) {
    case 'enum':
      add('not-a-choice', 'unknown enum value');
      if (input.values?.[0])
        add(
          input.values[0].toUpperCase() === input.values[0]
            ? input.values[0].toLowerCase() + 'x'
            : input.values[0].toUpperCase(),
          'wrong case',
        );
      break;
    case 'boolean':
      add('maybe', 'not a boolean');
      add('yes', 'YAML 1.1 boolean');
      break;
    case 'integer':
      add('abc', 'not a number');
      add('1.5', 'not a whole number');
      if (input.min !== undefined) add(String(input.min - 1), 'below the minimum');
      if (input.max !== undefined) add(String(input.max + 1), 'above the maximum');
      break;
    case 'number':
      add('abc', 'not a number');
      if (input.min !== undefined) add(String(input.min - 1), 'below the minimum');
      break;
    case 'url':
      add('not a url', 'not a URL');
      add('ftp://example.com/x', 'not http(s)');
      add('https://user:pass@example.com', 'credentials in the URL');
      break;
    case 'duration':
      add('10', 'no unit');
      add('5x', 'unknown unit');
      add('-1h', 'negative');
      break;
    case 'size':
      add('lots', 'not a size');
      add('2X', 'unknown unit');
      break;
    case 'string':
    case 'lines':
      if (input.pattern) add('bad value with spaces!', 'outside the accepted pattern');
      break;
  }
  for (const value of input.invalid ?? []) add(value, 'declared invalid');
  return cases;
}

/**
 * A valid value for every input a baseline run needs (secrets distinct from each other and from
 * every other value, so the leak scan cannot mistake one for another), so the checks across inputs
 * in each action's inputs.ts pass and only the one bad value under test can fail.
 */
const SIGNING_KEY = generateSecretKey('bad-inputs-1').secretKeyText;
const BASELINE: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  provision: {
    'cloudflare-api-token': 'cfTokenForBadInputTests0123456789',
  },
  deploy: {
    'fly-api-token': 'FlyV1 fm2_badInputTestsTokenValue0123456789',
    'niks3-api-token': 'niks3AdminTokenForBadInputTests0123456789abcdef',
    'niks3-db': 'postgres://niks3:dbPasswordBadInputs@127.0.0.1:9/niks3',
    'niks3-s3-access-key': 's3AccessKeyBadInputs01',
    'niks3-s3-secret-key': 's3SecretKeyBadInputs0123456789',
    'niks3-signing-key': SIGNING_KEY,
  },
  push: { paths: '/nix/store/00000000000000000000000000000000-bad-inputs' },
};

function validValue(action: string, input: InputSpec, tripwire: string): string | undefined {
  const baseline = BASELINE[action]?.[input.name];
  if (baseline !== undefined) return baseline;
  if (input.type === 'url') return tripwire;
  if (input.example !== undefined) return input.example;
  if (!input.required) return undefined;
  switch (input.type) {
    case 'enum':
      return input.values?.[0];
    case 'boolean':
      return 'false';
    case 'integer':
    case 'number':
      return String(input.min ?? 1);
    case 'duration':
      return '1h';
    case 'size':
      return '1M';
    default:
      return 'x'.repeat(40);
  }
}

let tripwire: Server;
let tripwireUrl = '';
let requests = 0;
const counts: Record<string, number> = {};

beforeAll(async () => {
  tripwire = createServer((_req, res) => {
    requests++;
    res.writeHead(500).end('tripwire: no request may be made for a bad input');
  });
  await new Promise<void>((resolve) => tripwire.listen(0, '127.0.0.1', resolve));
  tripwireUrl = `http://127.0.0.1:${(tripwire.address() as AddressInfo).port}`;
});

afterAll(async () => {
  console.log(
    `bad-input table: ${Object.entries(counts)
      .map(([action, n]) => `${action} ${n} cases`)
      .join(', ')}`,
  );
  await new Promise<void>((resolve) => tripwire.close(() => resolve()));
});

function casesFor(spec: ActionSpec): Array<[string, Case]> {
  return spec.inputs.flatMap((input) =>
    badValues(input).map((c): [string, Case] => [`${input.name} = ${JSON.stringify(c.value)} (${c.why})`, c]),
  );
}

describe.each(ACTION_SPECS.map((spec): [string, ActionSpec] => [spec.name, spec]))('%s', (name, spec) => {
  it.concurrent.each(casesFor(spec))('refuses %s before any request', async (_title, c) => {
    const inputs: Record<string, string> = {};
    for (const input of spec.inputs) {
      const value = validValue(name, input, tripwireUrl);
      if (value !== undefined) inputs[input.name] = value;
    }
    inputs[c.input.name] = c.value;
    const secrets = spec.inputs
      .filter((i) => i.secret)
      .map((i) => inputs[i.name] ?? '')
      .filter((v) => v.length >= 8);
    const run = await runAction(name, {
      inputs,
      secrets,
      env: {
        GITHUB_API_URL: tripwireUrl,
        ACTIONS_ID_TOKEN_REQUEST_URL: `${tripwireUrl}/token`,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'x',
      },
    });
    counts[name] = (counts[name] ?? 0) + 1;
    expect(run.code).toBe(1);
    const message = run.errors.join('\n');
    expect(message).toContain(`'${c.input.name}'`);
    if (c.value && !c.input.secret) expect(message).toContain(c.value.trim());
    expect(message).toMatch(/expected|required/);
    expect(requests).toBe(0);
  });
});
