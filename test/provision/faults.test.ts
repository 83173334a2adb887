/**
 * Faults, through the dist bundle (and in-process for a hang, which needs a short timeout): with
 * 429s, 5xx, HTML error pages, connection resets and a global rate limit injected, apply still
 * converges to exactly one bucket and one domain.
 */
import { HTML_502 } from '../fakes/cloudflare/index.js';
import { MemoryStepIO } from '../../src/core/step/memory-io.js';
import { defaultDeps, run as runProvision } from '../../src/actions/provision/main.js';
import {
  BUCKET,
  HOST,
  expectExit,
  startProvisionFixture,
  type ProvisionFixture,
} from './provision-fixture.js';

let f: ProvisionFixture;

beforeEach(async () => {
  f = await startProvisionFixture();
});

afterEach(async () => {
  await f.close();
});

function expectConverged(): void {
  expect([...f.cf.state.buckets.values()].map((b) => b.name)).toEqual([BUCKET]);
  expect(f.cf.state.domains.get(HOST)).toMatchObject({
    bucket: BUCKET,
    zoneId: f.zone.id,
    enabled: true,
    minTLS: '1.2',
  });
}

describe('apply under faults', () => {
  it('converges through 429 + retry-after, 5xx, an HTML 502 and a connection reset', async () => {
    const A = f.account.id;
    f.cf.faults.add({ path: '/zones', times: 1, action: { status: 500 } });
    f.cf.faults.add({
      path: `/accounts/${A}/r2/buckets/${BUCKET}`,
      method: 'GET',
      times: 1,
      action: { status: 502, body: HTML_502, contentType: 'text/html' },
    });
    f.cf.faults.add({
      path: `/accounts/${A}/r2/buckets`,
      method: 'POST',
      times: 2,
      action: { status: 429, headers: { 'retry-after': '1' } },
    });
    f.cf.faults.add({ path: '/domains/custom', method: 'POST', times: 1, action: { kind: 'reset' } });
    f.cf.faults.add({ path: `/domains/custom/${HOST}`, method: 'GET', times: 1, action: { status: 503 } });
    const run = await f.run();
    expectExit(run, 0, f.cf);
    expectConverged();
    for (const fault of f.cf.faults.handles()) expect(fault.hits()).toBe(fault.rule.times);
    // Creates were re-sent only after a read showed the resource still missing.
    const posts = f.cf.log.writes().filter((w) => w.method === 'POST');
    expect(posts.filter((p) => p.path.endsWith('/r2/buckets'))).toHaveLength(3);
    expect(posts.filter((p) => p.path.endsWith('/domains/custom'))).toHaveLength(2);
    expect(run.stdout).toMatch(/create R2 bucket "my-cache-niks3": HTTP 429; checking again in 1\.0 s/);
    expect(run.outputs['changed']).toBe('true');
  }, 60_000);

  it('does not create twice when a create took effect but its answer was lost', async () => {
    f.cf.faults.add({
      path: '/r2/buckets',
      method: 'POST',
      times: 1,
      afterHandling: true,
      action: { status: 500 },
    });
    f.cf.faults.add({
      path: '/domains/custom',
      method: 'POST',
      times: 1,
      afterHandling: true,
      action: { status: 502 },
    });
    const run = await f.run();
    expectExit(run, 0, f.cf);
    expectConverged();
    expect(f.cf.log.writes().map((w) => w.method)).toEqual(['POST', 'POST']);
  });

  it('converges under the global rate limit (429 with retry-after until the window resets)', async () => {
    f.cf.faults.rateLimit({ limit: 5, windowMs: 1500, retryAfterSeconds: 1 });
    const run = await f.run();
    expectExit(run, 0, f.cf);
    expectConverged();
    expect(f.cf.faults.rateLimited).toBeGreaterThan(0);
    expect(f.cf.log.api().filter((e) => e.status === 429).length).toBe(f.cf.faults.rateLimited);
  }, 60_000);

  it('gives up with a clear message when 5xx persist', async () => {
    f.cf.faults.add({ path: '/zones', action: { status: 500 } });
    const io = new MemoryStepIO({ inputs: f.inputs() as Record<string, string> });
    await runProvision(io, { ...defaultDeps(), sleep: async () => undefined });
    expect(io.failure).toMatch(
      /Cloudflare API: look up zone "example\.dev" \(GET \/zones\) answered HTTP 500: 10001 InternalError\. Cloudflare had an internal error: re-run later/,
    );
    expect(f.cf.log.api().filter((e) => e.path === '/zones')).toHaveLength(6);
  });

  it('retries a request that hangs past the timeout (in-process, short timeout)', async () => {
    f.cf.faults.add({ path: `/r2/buckets/${BUCKET}`, method: 'GET', times: 1, action: { kind: 'hang' } });
    const io = new MemoryStepIO({ inputs: f.inputs() as Record<string, string> });
    await runProvision(io, { ...defaultDeps(), timeoutMs: 400 });
    expect(io.failure).toBeUndefined();
    expectConverged();
    expect(io.outputs.get('changed')).toBe('true');
    // (Under jest's VM realm the SDK cannot recognise the abort as a timeout and calls it a connection failure.)
    expect(io.logger.lines.join('\n')).toMatch(
      /read R2 bucket "my-cache-niks3": (no answer in time|connection failed .*); retrying/,
    );
  });
});
