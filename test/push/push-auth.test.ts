/**
 * Authentication and input checks of the push action, through the bundle: GitHub OIDC end to end
 * (tokens minted by the local issuer, validated by the fake niks3), a job without OIDC (warns,
 * pushes nothing, stays green unless told to fail), and bad inputs that fail naming the input and
 * the fix. No token, JWT or key is ever printed (runAction scans every run).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { buildTextPath, uniqueSalt } from '../helpers/nix-fixtures.js';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { runAction } from '../helpers/run-action.js';
import { pushFakeInputs, storeHash } from './push-test-support.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let issuer: OidcIssuer;
let fake: FakeNiks3;
let path: string;

beforeAll(async () => {
  issuer = await startOidcIssuer();
  const port = await freePort();
  // The audience is the server URL, as the deploy action configures it and the push defaults to.
  [fake, path] = await Promise.all([
    startFakeNiks3({
      ports: { api: port },
      oidc: [
        { issuer: issuer.issuer, audience: `http://127.0.0.1:${port}`, boundSubject: ['repo:octo-org/*:*'] },
      ],
    }),
    buildTextPath('pushed with a GitHub OIDC token\n'),
  ]);
}, 120_000);

afterAll(async () => {
  await fake?.close();
  await issuer?.close();
});

describe('push authentication (bundle)', () => {
  it('pushes with a GitHub OIDC token minted for the server URL', async () => {
    const run = await runAction('push', {
      inputs: { 'server-url': fake.url, paths: path, 'upstream-filter': 'false' },
      oidc: issuer,
      secrets: [fake.apiToken, ...fake.secretKeys],
    });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs['pushed']).toBe('1');
    expect(issuer.minted.length).toBeGreaterThanOrEqual(1);
    const authed = fake.requests.filter((r) => r.target === 'api' && r.auth);
    expect(authed.length).toBeGreaterThan(0);
    expect(authed.every((r) => r.auth?.startsWith('oidc:'))).toBe(true);
    expect(fake.state.closures.has(`${storeHash(path)}.narinfo`)).toBe(true);
  }, 60_000);

  it('explains a refused OIDC token (wrong audience) naming audience and the policy', async () => {
    const run = await runAction('push', {
      inputs: {
        'server-url': fake.url,
        paths: path,
        'upstream-filter': 'false',
        audience: 'https://somewhere-else.example',
      },
      oidc: issuer,
      secrets: [fake.apiToken],
    });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(/401.*'audience'/s);
  }, 60_000);

  it('without an OIDC token (fork PR, no id-token: write) it warns, pushes nothing and stays green', async () => {
    const before = fake.requests.filter((r) => r.target === 'api').length;
    const run = await runAction('push', {
      inputs: { 'server-url': fake.url, paths: path },
      env: { GITHUB_EVENT_NAME: 'pull_request' },
      secrets: [fake.apiToken],
    });
    expect(run.code).toBe(0);
    expect(run.warnings.join('\n')).toMatch(
      /Nothing was pushed: no GitHub OIDC token.*forks.*id-token: write/s,
    );
    expect(run.outputs['pushed']).toBe('0');
    expect(fake.requests.filter((r) => r.target === 'api').length).toBe(before);

    const strict = await runAction('push', {
      inputs: { 'server-url': fake.url, paths: path, 'on-failure': 'fail' },
      secrets: [fake.apiToken],
    });
    expect(strict.code).toBe(1);
    expect(strict.errors.join('\n')).toMatch(/id-token: write/);
  }, 60_000);

  it('a failing GitHub token service fails the step naming it and the fix', async () => {
    issuer.failWith = 500;
    try {
      const run = await runAction('push', {
        inputs: { 'server-url': fake.url, paths: path, 'upstream-filter': 'false' },
        oidc: issuer,
        secrets: [fake.apiToken],
      });
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toMatch(
        /GitHub OIDC token service: mint a token for audience .*id-token: write/s,
      );
    } finally {
      issuer.failWith = undefined;
    }
  }, 60_000);

  it('a wrong static token fails naming the token input', async () => {
    const wrong = 'x'.repeat(40);
    const run = await runAction('push', {
      inputs: { ...pushFakeInputs(fake), paths: path, token: wrong },
      secrets: [wrong, fake.apiToken],
    });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(/HTTP 401.*input 'token'/s);
  }, 60_000);
});

describe('push input checks (bundle)', () => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    [
      'mode next to paths',
      { mode: 'watch' },
      /Input 'mode' is "watch", but 'paths'\/'installables' are given/,
    ],
    [
      'pull-only next to paths',
      { 'pull-only': 'true' },
      /Input 'pull-only' is true, but 'paths'\/'installables'/,
    ],
    ['a path outside the Nix store', { paths: '/tmp' }, /Input 'paths': "\/tmp" is not in the Nix store/],
    ['a path that does not exist', { paths: './no-such-result' }, /Input 'paths': path does not exist/],
    [
      'an invalid server URL',
      { 'server-url': 'not a url' },
      /Input 'server-url' has an invalid value "not a url"/,
    ],
    [
      'an unknown auth',
      { auth: 'magic' },
      /Input 'auth' has an invalid value "magic": expected one of "oidc", "token"/,
    ],
    [
      'auth: token without a token',
      { auth: 'token', token: '' },
      /Input 'token' is required with `auth: token`/,
    ],
    ['an invalid pin name', { pin: 'has space' }, /Input 'pin' has an invalid value/],
  ];
  it.each(cases)(
    'fails on %s, naming the input',
    async (_name, extra, message) => {
      const inputs: Record<string, string> = { ...pushFakeInputs(fake), paths: '', ...extra };
      if (!('paths' in extra)) inputs['paths'] = path;
      const run = await runAction('push', { inputs, secrets: [fake.apiToken] });
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toMatch(message);
    },
    30_000,
  );
});

describe('push installables (bundle, real Nix)', () => {
  it('builds installables with nix build --no-link and pushes their outputs; a bad one names the input', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'push-flake-'));
    try {
      writeFileSync(
        join(dir, 'flake.nix'),
        `{ outputs = { self }: { packages.x86_64-linux.default = derivation { name = "flake-hello"; salt = "${uniqueSalt()}"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo hello > $out" ]; }; }; }\n`,
      );
      // No substituters: the test machine has no internet, and tests never leave loopback.
      const env = { NIX_CONFIG: 'substituters =' };
      const run = await runAction('push', {
        inputs: { ...pushFakeInputs(fake), installables: `path:${dir}#default` },
        env,
        secrets: [fake.apiToken],
      });
      expect(run.errors).toEqual([]);
      expect(run.code).toBe(0);
      const roots = JSON.parse(run.outputs['store-paths'] ?? '[]') as string[];
      expect(roots).toHaveLength(1);
      expect(roots[0]).toMatch(/^\/nix\/store\/[0-9a-z]{32}-flake-hello$/);
      expect(run.outputs['pushed']).toBe('1');

      const bad = await runAction('push', {
        inputs: { ...pushFakeInputs(fake), installables: `path:${dir}#nothing-here` },
        env,
        secrets: [fake.apiToken],
      });
      expect(bad.code).toBe(1);
      expect(bad.errors.join('\n')).toMatch(/Input 'installables': nix build failed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
