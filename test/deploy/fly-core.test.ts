/** Unit tests of the Fly core pieces: auth headers, cookie jar, OIDC policy, plan, fly.toml, VM sizes. */
import {
  graphqlAuthorization,
  machinesAuthorization,
  parseFlyToken,
  redactMacaroons,
} from '../../src/core/fly/auth-header.js';
import { CookieJar } from '../../src/core/fly/cookie-jar.js';
import {
  canonicalJson,
  desiredState,
  secretsHash,
  type DeploySettings,
} from '../../src/core/fly/desired-state.js';
import { renderFlyToml } from '../../src/core/fly/fly-toml.js';
import { parseMemoryMb, vmSizeProblem } from '../../src/core/fly/machine-config.js';
import { githubOidcPolicy } from '../../src/core/niks3/oidc-policy.js';
import { planDeploy } from '../../src/core/fly/plan.js';
import { generateSecretKey } from '../../src/core/nix/signing-key.js';

describe('Fly auth headers (fly.md §2.2)', () => {
  it('strips schemes repeatedly and classifies pieces', () => {
    const token = parseFlyToken('  Bearer FlyV1 fm2_aaa, fm1r_bbb ,,user123 ');
    expect(token.macaroons).toEqual(['fm2_aaa', 'fm1r_bbb']);
    expect(token.userTokens).toEqual(['user123']);
  });
  it('sends macaroons with FlyV1 (dropping user tokens) to the Machines API', () => {
    expect(machinesAuthorization(parseFlyToken('FlyV1 fm2_a,fm2_b,user'))).toBe('FlyV1 fm2_a,fm2_b');
    expect(graphqlAuthorization(parseFlyToken('FlyV1 fm2_a,fm2_b,user'))).toBe('FlyV1 fm2_a,fm2_b,user');
  });
  it('sends user tokens with Bearer', () => {
    expect(machinesAuthorization(parseFlyToken('abc123def'))).toBe('Bearer abc123def');
    expect(graphqlAuthorization(parseFlyToken('Bearer abc123def'))).toBe('Bearer abc123def');
  });
  it('redacts macaroons from texts', () => {
    expect(redactMacaroons('token fm2_lJPE+/=x_y-z and fm1a_q')).toBe(
      'token fm2_[redacted] and fm2_[redacted]',
    );
  });
});

describe('cookie jar (fly.md §3.1)', () => {
  it('sends path-scoped cookies only below their path and on their host', () => {
    let now = 1_000_000;
    const jar = new CookieJar(() => now);
    jar.store('http://h:1/v1/apps', 'fly-affinity=abc; Path=/v1/apps/one; HttpOnly');
    expect(jar.header('http://h:1/v1/apps/one/machines')).toBe('fly-affinity=abc');
    expect(jar.header('http://h:1/v1/apps/one')).toBe('fly-affinity=abc');
    expect(jar.header('http://h:1/v1/apps/onetwo')).toBeUndefined();
    expect(jar.header('http://other:1/v1/apps/one')).toBeUndefined();
    jar.store('http://h:1/v1/apps', 'short=1; Max-Age=10; Path=/');
    expect(jar.header('http://h:1/v1/apps/one')).toBe('fly-affinity=abc; short=1');
    now += 11_000;
    expect(jar.header('http://h:1/v1/apps/one')).toBe('fly-affinity=abc');
    jar.store('http://h:1/v1/apps', 'fly-affinity=gone; Path=/v1/apps/one; Max-Age=0');
    expect(jar.header('http://h:1/v1/apps/one')).toBeUndefined();
  });
});

describe('OIDC policy (niks3.md §1.4)', () => {
  it('binds owner ids and subjects, and is absent when neither is given', () => {
    expect(
      githubOidcPolicy({ audience: 'https://a.fly.dev', subjectPatterns: [], ownerIds: [] }),
    ).toBeUndefined();
    expect(
      githubOidcPolicy({ audience: 'https://a.fly.dev', subjectPatterns: [], ownerIds: ['1', '1', '2'] }),
    ).toEqual({
      providers: {
        github: {
          issuer: 'https://token.actions.githubusercontent.com',
          audience: 'https://a.fly.dev',
          bound_claims: { repository_owner_id: ['1', '2'] },
        },
      },
    });
    expect(
      githubOidcPolicy({ audience: 'https://a.fly.dev', subjectPatterns: ['repo:o/*:*'], ownerIds: [] })
        ?.providers.github,
    ).toEqual({
      issuer: 'https://token.actions.githubusercontent.com',
      audience: 'https://a.fly.dev',
      bound_subject: ['repo:o/*:*'],
    });
  });
});

describe('VM sizes', () => {
  it('parses memory strings and checks Fly presets', () => {
    expect(parseMemoryMb('256mb')).toBe(256);
    expect(parseMemoryMb('1GB')).toBe(1024);
    expect(parseMemoryMb('512')).toBe(512);
    expect(parseMemoryMb('lots')).toBeUndefined();
    expect(vmSizeProblem('shared', 1, 256)).toBeUndefined();
    expect(vmSizeProblem('shared', 1, 100)).toMatch(/multiple of 256/);
    expect(vmSizeProblem('shared', 2, 256)).toMatch(/512–4096/);
    expect(vmSizeProblem('shared', 1, 4096)).toMatch(/256–2048/);
    expect(vmSizeProblem('performance', 1, 2048)).toBeUndefined();
    expect(vmSizeProblem('performance', 1, 1024)).toMatch(/2048–8192/);
  });
});

function settings(overrides: Partial<DeploySettings> = {}): DeploySettings {
  return {
    app: 'a',
    orgSlug: 'o',
    region: 'iad',
    image: 'ghcr.io/mic92/niks3:v1.7.0',
    cpuKind: 'shared',
    cpus: 1,
    memoryMb: 256,
    swapMb: 512,
    cacheUrl: 'https://cache.example.dev',
    bucket: 'b',
    s3Endpoint: 'x.r2.cloudflarestorage.com',
    s3Region: 'auto',
    s3Concurrency: 20,
    readProxy: false,
    oidc: false,
    serverUrl: 'https://a.fly.dev',
    secrets: {
      apiToken: 'a'.repeat(40),
      db: 'postgresql://u:p@h/db',
      s3AccessKey: 'ak',
      s3SecretKey: 'sk',
      signingKey: generateSecretKey('k-1').secretKeyText,
    },
    oidcSubjectPatterns: [],
    oidcOwnerIds: ['42'],
    ...overrides,
  };
}

describe('desired state and digests', () => {
  it('keeps digests stable for equal inputs and never contains a secret', () => {
    const s = settings();
    const a = desiredState(s);
    const b = desiredState(s);
    expect(a.configHash).toBe(b.configHash);
    expect(a.secretsHash).toBe(b.secretsHash);
    expect(desiredState({ ...s, image: 'ghcr.io/mic92/niks3:v1.7.1' }).configHash).not.toBe(a.configHash);
    expect(
      desiredState({ ...s, secrets: { ...s.secrets, db: 'postgresql://u:q@h/db' } }).secretsHash,
    ).not.toBe(a.secretsHash);
    expect(desiredState({ ...s, secrets: { ...s.secrets, db: 'postgresql://u:q@h/db' } }).configHash).toBe(
      a.configHash,
    );
    const text = JSON.stringify([a.configHash, a.secretsHash, a.config]);
    for (const secret of Object.values(s.secrets)) expect(text).not.toContain(secret);
    // Keyed: the same secrets under another API token give another digest.
    expect(secretsHash({ X: '1' }, 'key-one')).not.toBe(secretsHash({ X: '1' }, 'key-two'));
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
  });

  it('plans everything for a missing app, and moves a machine to a new region', () => {
    const desired = desiredState(settings());
    const empty = planDeploy(desired, {
      access: 'missing',
      app: undefined,
      ips: [],
      secrets: [],
      machines: [],
    });
    expect(empty.changes.map((c) => c.action)).toEqual([
      'create-app',
      'set-secrets',
      'allocate-ip',
      'allocate-ip',
      'create-machine',
    ]);
    const moved = planDeploy(desired, {
      access: 'found',
      app: { id: '1', name: 'a' },
      ips: [
        { ip: '2a09::1', shared: false },
        { ip: '1.2.3.4', shared: true },
      ],
      secrets: Object.keys(desired.secrets).map((name) => ({ name, digest: 'x' })),
      machines: [
        { id: 'm1', state: 'started', region: 'fra', instance_id: 'i', config: { ...desired.config } },
      ],
    });
    expect(moved.changes.map((c) => c.action)).toEqual(['set-secrets', 'create-machine', 'destroy-machine']);
  });
});

describe('fly.toml', () => {
  it('renders the original template equivalent', () => {
    const desired = desiredState(settings({ oidcOwnerIds: [] }));
    const toml = renderFlyToml({ app: 'a', region: 'iad', config: desired.config });
    expect(toml).toContain('app = "a"');
    expect(toml).not.toContain('NIKS3_OIDC_CONFIG');
    expect(toml).not.toContain('PRIMARY_REGION');
    expect(toml).toContain('[[vm]]\n  cpu_kind = "shared"\n  cpus = 1\n  memory = "256mb"');
    expect(toml).toContain(
      '[http_service.concurrency]\n    type = "requests"\n    soft_limit = 25\n    hard_limit = 50',
    );
  });
});
