/**
 * The Cloudflare stand-in seeded the way the provision tests start: one account, one zone
 * (example.dev), one token with what provision needs; plus the inputs that point the bundle at it.
 */
import {
  startFakeCloudflare,
  type FakeAccount,
  type FakeCloudflare,
  type FakeCloudflareOptions,
  type FakeToken,
  type FakeZone,
  type LoggedRequest,
} from '../fakes/cloudflare/index.js';
import { runAction, type ActionRun } from '../helpers/run-action.js';

export interface ProvisionFixture {
  readonly cf: FakeCloudflare;
  readonly account: FakeAccount;
  readonly zone: FakeZone;
  readonly token: FakeToken;
  /** Inputs for a run against the stand-in, with overrides. */
  inputs(overrides?: Record<string, string | undefined>): Record<string, string | undefined>;
  /** Runs the provision bundle with these inputs; the token (and `secrets`) are scanned for leaks. */
  run(
    overrides?: Record<string, string | undefined>,
    secrets?: readonly string[],
    env?: Record<string, string | undefined>,
  ): Promise<ActionRun>;
  close(): Promise<void>;
}

export const STACK = 'My Cache';
export const BUCKET = 'my-cache-niks3';
export const HOST = 'cache.example.dev';

/**
 * Starts the stand-in. Custom domains turn active on their first read unless `options.settings`
 * says otherwise, so runs need not wait; tests of the waiting set `domainActivation` themselves.
 */
export async function startProvisionFixture(options: FakeCloudflareOptions = {}): Promise<ProvisionFixture> {
  const cf = await startFakeCloudflare({
    ...options,
    settings: { domainActivation: { afterGets: 1 }, ...options.settings },
  });
  const account = cf.state.addAccount();
  const zone = cf.state.addZone({ name: 'example.dev', accountId: account.id });
  const token = cf.state.addToken();
  const inputs = (
    overrides: Record<string, string | undefined> = {},
  ): Record<string, string | undefined> => ({
    'cloudflare-api-token': token.value,
    'cloudflare-account-id': account.id,
    'zone-name': 'example.dev',
    'stack-name': STACK,
    'cloudflare-api-url': cf.url,
    'domain-wait': '10',
    ...overrides,
  });
  return {
    cf,
    account,
    zone,
    token,
    inputs,
    run: (overrides = {}, secrets = [], env = {}) =>
      runAction('provision', {
        inputs: inputs(overrides),
        secrets: [token.value, ...secrets],
        timeoutMs: 60_000,
        env,
      }),
    close: () => cf.close(),
  };
}

/** A readable dump of a run, for failure messages. */
export function explain(run: ActionRun, cf?: FakeCloudflare): string {
  return [
    `exit ${run.code}`,
    `errors: ${run.errors.join(' | ')}`,
    `stdout:\n${run.stdout}`,
    `stderr:\n${run.stderr}`,
    cf ? `requests:\n${cf.log.lines().join('\n')}` : '',
  ].join('\n');
}

/** True for requests that address an R2 bucket (every one must carry the jurisdiction header). */
export function isBucketCall(entry: LoggedRequest): boolean {
  return entry.service === 'api' && /^\/accounts\/[^/]+\/r2\/buckets/.test(entry.path);
}

/** Fails with the whole run (output and request log) when the exit code is not the expected one. */
export function expectExit(run: ActionRun, code: number, cf?: FakeCloudflare): void {
  if (run.code !== code) throw new Error(`expected exit code ${code}\n${explain(run, cf)}`);
}
