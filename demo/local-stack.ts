/**
 * The embedded local stack: the local stand-ins of every remote, and a stack file plus an
 * environment (the original's contract) that point `nix-cache` at them. No account, no network
 * beyond 127.0.0.1.
 *
 * - Cloudflare API and R2's S3 endpoint: test/fakes/cloudflare (an account, the zone, a token).
 * - Fly Machines API and GraphQL: test/fakes/fly (one personal org and its token; the virtual clock
 *   runs fast, so machines boot and pass their checks in a moment).
 * - niks3: test/fakes/niks3 (API, presigned S3 uploads, public reads), signing with the same key
 *   as NIKS3_SIGNING_KEY, so the key deploy derives is the one the cache signs with. It stands in
 *   for what the Fly machine would run: the stack file's `server_url` points at it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheHost, defaultBucketName, stackSlug } from '../src/core/cloudflare/r2-names.js';
import { generateSecretKey } from '../src/core/nix/signing-key.js';
import { startFakeCloudflare, type FakeCloudflare } from '../test/fakes/cloudflare/index.js';
import { LOCAL_ORG_TOKEN, startFakeFly, type FakeFly } from '../test/fakes/fly/index.js';
import { startFakeNiks3, type FakeNiks3 } from '../test/fakes/niks3/index.js';

export interface LocalStack {
  readonly dir: string;
  readonly stackFile: string;
  /** The environment contract (plus PATH, HOME and a RUNNER_TEMP inside `dir`). */
  readonly env: NodeJS.ProcessEnv;
  /** Every secret in `env`, for leak checks. */
  readonly secrets: readonly string[];
  readonly appName: string;
  readonly bucketName: string;
  readonly zoneName: string;
  /** The R2 custom domain `up` attaches (`<cache_subdomain>.<zone_name>`), which status reports on. */
  readonly cacheDomain: string;
  readonly publicKey: string;
  readonly cloudflare: FakeCloudflare;
  readonly fly: FakeFly;
  readonly niks3: FakeNiks3;
  close(): Promise<void>;
}

export interface LocalStackOptions {
  /** Stack name (the bucket is `<slug>-niks3`). */
  readonly stackName?: string;
  readonly appName?: string;
  /** Virtual ms per real ms of the Fly stand-in. */
  readonly flySpeed?: number;
}

/** Starts the stand-ins and writes the stack file; close() stops them and removes every file. */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const stackName = options.stackName ?? 'demo-cache';
  const appName = options.appName ?? 'demo-niks3';
  const zoneName = 'example.test';
  const cacheSubdomain = 'cache';
  const closers: Array<() => Promise<void>> = [];
  const close = async (): Promise<void> => {
    for (const closer of closers.reverse()) await closer().catch(() => undefined);
  };
  try {
    const dir = await mkdtemp(join(tmpdir(), 'nix-cache-local-'));
    closers.push(() => rm(dir, { recursive: true, force: true }));

    const cloudflare = await startFakeCloudflare();
    closers.push(() => cloudflare.close());
    const account = cloudflare.state.addAccount({ name: 'local account' });
    const zone = cloudflare.state.addZone({ name: zoneName, accountId: account.id });
    const cfToken = cloudflare.state.addToken();
    const s3 = cloudflare.state.s3Credentials(cfToken);

    const fly = await startFakeFly({ speed: options.flySpeed ?? 50 });
    closers.push(() => fly.close());

    const signing = generateSecretKey(`${stackSlug(stackName)}-1`);
    const apiToken = randomBytes(32).toString('hex');
    const niks3 = await startFakeNiks3({ apiToken, signingKeys: [signing.secretKeyText] });
    closers.push(() => niks3.close());

    const stackFile = join(dir, 'nix-cache.json');
    const stack = {
      $comment: 'written by the nix-cache demo: every endpoint is a local stand-in',
      stack_name: stackName,
      cloudflare_account_id: account.id,
      cloudflare_zone_id: zone.id,
      zone_name: zoneName,
      cache_subdomain: cacheSubdomain,
      fly_app_name: appName,
      oidc_github_subject_patterns: ['repo:demo-owner/*:*'],
      cloudflare_api_url: cloudflare.url,
      fly_api_url: fly.apiUrl,
      fly_graphql_url: fly.graphqlUrl,
      server_url: niks3.url,
      s3_endpoint_url: cloudflare.s3Url('default'),
    };
    await writeFile(stackFile, `${JSON.stringify(stack, null, 2)}\n`);

    const runnerTemp = join(dir, 'tmp');
    const secretsEnv = {
      CLOUDFLARE_API_TOKEN: cfToken.value,
      FLY_API_TOKEN: LOCAL_ORG_TOKEN,
      NIKS3_API_TOKEN: apiToken,
      // Stored on the Fly app as a secret only; the local niks3 keeps its state in memory.
      NIKS3_DB: `postgresql://niks3:${randomBytes(12).toString('hex')}@db.local.invalid/niks3?sslmode=disable`,
      NIKS3_S3_ACCESS_KEY: s3.accessKeyId,
      NIKS3_S3_SECRET_KEY: s3.secretAccessKey,
      NIKS3_SIGNING_KEY: signing.secretKeyText,
    };
    const env: NodeJS.ProcessEnv = {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      ...(process.env['NIX_REMOTE'] ? { NIX_REMOTE: process.env['NIX_REMOTE'] } : {}),
      ...(process.env['TMPDIR'] ? { TMPDIR: process.env['TMPDIR'] } : {}),
      RUNNER_TEMP: runnerTemp,
      ...secretsEnv,
    };
    await mkdir(runnerTemp);
    return {
      dir,
      stackFile,
      env,
      secrets: Object.values(secretsEnv),
      appName,
      bucketName: defaultBucketName(stackName),
      zoneName,
      cacheDomain: cacheHost(cacheSubdomain, zoneName),
      publicKey: signing.publicKey,
      cloudflare,
      fly,
      niks3,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
