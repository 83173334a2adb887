/**
 * Shared set-up of the deploy tests: a fake Fly with an org token, a signing key, and the inputs of
 * a complete deploy (every secret listed, so runAction scans every output for them).
 */
import { DEPLOY_SPEC } from '../../src/actions/deploy/spec.js';
import { generateSecretKey } from '../../src/core/nix/signing-key.js';
import { runAction, type ActionRun, type RunActionOptions } from '../helpers/run-action.js';
import { startFakeFly, type FakeFly, type FakeFlyOptions } from '../fakes/fly/index.js';

export const ORG_TOKEN =
  'FlyV1 fm2_lJPECAAAAAAAAMQ1xBBorgTokenForTestsOnly0000000000,fm2_lJPETdischargeOrgTokenPart000000';
export const DEPLOY_TOKEN = 'FlyV1 fm2_lJPECAAAAAAAAMQ1xBBdeployTokenForTestsOnly00000000';
export const USER_TOKEN = 'a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2';
export const APP = 'niks3-test';
export const ORG = 'my-org';

const SECRET_INPUTS = DEPLOY_SPEC.inputs.filter((input) => input.secret).map((input) => input.name);

export interface DeployFixture {
  readonly fly: FakeFly;
  readonly signingKey: string;
  readonly publicKey: string;
  readonly secrets: Record<string, string>;
  /** Inputs of a full apply against the fake (override per test). */
  inputs(overrides?: Record<string, string | undefined>): Record<string, string | undefined>;
  /** Runs the deploy bundle with these inputs, scanning for every secret. */
  run(
    overrides?: Record<string, string | undefined>,
    options?: Omit<RunActionOptions, 'inputs'>,
  ): Promise<ActionRun>;
  close(): Promise<void>;
}

export async function deployFixture(options: FakeFlyOptions = {}): Promise<DeployFixture> {
  const fly = await startFakeFly({
    speed: 20,
    orgs: [{ slug: ORG, name: 'My Org', type: 'SHARED' }],
    tokens: {
      [ORG_TOKEN]: { kind: 'org', org: ORG },
      [DEPLOY_TOKEN]: { kind: 'deploy', org: ORG, apps: [APP] },
    },
    ...options,
  });
  const { secretKeyText, publicKey } = generateSecretKey('niks3-test-1');
  const secrets = {
    'fly-api-token': ORG_TOKEN,
    'niks3-api-token': 'tok-0123456789abcdef0123456789abcdef0123456789',
    'niks3-db': 'postgresql://niks3:Pa55w0rd-very-secret@db.example.com/niks3?sslmode=require',
    'niks3-s3-access-key': 'AKIAEXAMPLEACCESSKEY01',
    'niks3-s3-secret-key': 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY',
    'niks3-signing-key': secretKeyText,
  };
  const inputs = (
    overrides: Record<string, string | undefined> = {},
  ): Record<string, string | undefined> => ({
    ...secrets,
    'fly-app-name': APP,
    'fly-api-url': fly.apiUrl,
    'fly-graphql-url': fly.graphqlUrl,
    'cache-url': 'https://cache.example.dev',
    'bucket-name': 'niks3-test-bucket',
    's3-endpoint': '0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com',
    'oidc-github-subject-patterns': 'repo:octo-org/*:*',
    'wait-timeout': '120',
    ...overrides,
  });
  return {
    fly,
    signingKey: secretKeyText,
    publicKey,
    secrets,
    inputs,
    run: (overrides, runOptions = {}) =>
      runAction('deploy', {
        ...runOptions,
        inputs: inputs(overrides),
        // Every secret handed in (the fixture's and any secret input a test overrides) is scanned for.
        secrets: [
          ...Object.values(secrets),
          ...SECRET_INPUTS.map((name) => overrides?.[name]).filter((v): v is string => v !== undefined),
          ...(runOptions.secrets ?? []),
        ],
      }),
    close: () => fly.close(),
  };
}
