/**
 * Conformance of the niks3 stand-in (`test/fakes/niks3`, modelling v1.7.0) to the real niks3 v1.7.0:
 * one table of requests, each run against both in the same order, and the outcomes compared (status,
 * content type, the exact text of plain-text errors, the shape of JSON bodies, the S3 error code).
 * The real server is right; what must stay different is listed in `test/fakes/niks3/README.md` and
 * in `KNOWN` below, with its reason.
 */
import { randomBytes } from 'node:crypto';
import aws4 from 'aws4';
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { startRealNiks3, type RealNiks3 } from './stack.js';
import { describeRealNiks3 } from './tools.js';

interface Target {
  readonly url: string;
  readonly apiToken: string;
  /** The cache URL it announces (replaced by `<cache-url>` in outcomes). */
  readonly cacheUrl: string;
  /** A presigned PUT URL of `url`'s object that has expired. */
  expire(url: string): Promise<string>;
}

/** What a scenario's answer looks like, with everything run-specific taken out. */
interface Outcome {
  status: number;
  type: string;
  body: unknown;
  allow?: string | null | undefined;
  location?: string | null | undefined;
}

/** Per-target state the scenarios share (ids, URLs). */
interface Context {
  id?: string;
  putUrl?: string | undefined;
  [key: string]: unknown;
}

const NIXBASE32 = '0123456789abcdfghijklmnpqrsvwxyz';
const hash = (n: number): string => Array.from(randomBytes(n), (b) => NIXBASE32[b % 32]).join('');
const STORE_HASH = hash(32);
const NAR_HASH = hash(52);
const NARINFO = `${STORE_HASH}.narinfo`;
const NAR = `nar/${NAR_HASH}.nar.zst`;
const CA_NARINFO = `${hash(32)}.narinfo`;
const REALISATION = `realisations/sha256:${randomBytes(32).toString('hex')}!out.doi`;

/** Types in place of values: JSON bodies are compared by structure. Keys stay (they are the protocol). */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length === 0 ? [] : [shape(value[0])];
  if (value === null) return null;
  if (typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, shape(v)]),
    );
  return typeof value;
}

async function outcome(response: Response, t: Target): Promise<Outcome> {
  const type = (response.headers.get('content-type') ?? '').split(';')[0] ?? '';
  const text = (await response.text()).split(t.cacheUrl).join('<cache-url>');
  let body: unknown = text;
  if (type === 'application/json' || /^\s*[[{]/.test(text)) {
    try {
      body = shape(JSON.parse(text));
    } catch {
      // plain text after all
    }
  } else if (/<Error>/.test(text)) {
    body = `S3 error ${/<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? '?'}`;
  }
  const result: Outcome = { status: response.status, type, body };
  if (response.status === 405) result.allow = response.headers.get('allow');
  if (response.status >= 300 && response.status < 400)
    result.location = response.headers.get('location')?.split(t.cacheUrl).join('<cache-url>');
  return result;
}

type Scenario = readonly [name: string, run: (t: Target, ctx: Context) => Promise<Response>];

const auth = (t: Target): Record<string, string> => ({ authorization: `Bearer ${t.apiToken}` });
const post = (t: Target, path: string, body: string, headers = auth(t)): Promise<Response> =>
  fetch(`${t.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
const closureBody = JSON.stringify({
  closure: NARINFO,
  objects: [
    { key: NARINFO, type: 'narinfo', refs: [NAR] },
    { key: NAR, type: 'nar', refs: [], nar_size: 1024 },
  ],
});

const SCENARIOS: readonly Scenario[] = [
  ['GET /health', (t) => fetch(`${t.url}/health`)],
  ['GET /api/cache-config', (t) => fetch(`${t.url}/api/cache-config`)],
  ['GET / (redirect to the cache URL)', (t) => fetch(`${t.url}/`, { redirect: 'manual' })],
  ['GET /api/cache-stats (not in v1.7.0)', (t) => fetch(`${t.url}/api/cache-stats`, { headers: auth(t) })],
  [
    'HEAD /api/objects/{key} (not in v1.7.0)',
    (t) => fetch(`${t.url}/api/objects/${NAR}`, { method: 'HEAD', headers: auth(t) }),
  ],
  ['create: no Authorization', (t) => post(t, '/api/pending_closures', closureBody, {})],
  [
    'create: bad token',
    (t) =>
      post(t, '/api/pending_closures', closureBody, {
        authorization: 'Bearer not-the-token-0123456789abcdef0123456789',
      }),
  ],
  [
    'create: Basic instead of Bearer',
    (t) => post(t, '/api/pending_closures', closureBody, { authorization: `Basic ${t.apiToken}` }),
  ],
  ['create: malformed JSON', (t) => post(t, '/api/pending_closures', '{"closure":')],
  ['create: not an object', (t) => post(t, '/api/pending_closures', '[1,2]')],
  ['create: empty object', (t) => post(t, '/api/pending_closures', '{}')],
  [
    'create: closure is not a narinfo key',
    (t) => post(t, '/api/pending_closures', JSON.stringify({ closure: 'bogus', objects: [] })),
  ],
  [
    'create: wrong field type',
    (t) => post(t, '/api/pending_closures', JSON.stringify({ closure: NARINFO, objects: 'x' })),
  ],
  [
    'create: negative nar_size',
    (t) =>
      post(
        t,
        '/api/pending_closures',
        JSON.stringify({ closure: NARINFO, objects: [{ key: NAR, type: 'nar', refs: [], nar_size: -1 }] }),
      ),
  ],
  [
    'create: refs not a list',
    (t) =>
      post(
        t,
        '/api/pending_closures',
        JSON.stringify({ closure: NARINFO, objects: [{ key: NARINFO, type: 'narinfo', refs: 'x' }] }),
      ),
  ],
  [
    'create: closure not among the objects',
    (t) =>
      post(
        t,
        '/api/pending_closures',
        JSON.stringify({ closure: NARINFO, objects: [{ key: NAR, type: 'nar', refs: [], nar_size: 1 }] }),
      ),
  ],
  [
    'create: a nar without nar_size',
    (t) =>
      post(
        t,
        '/api/pending_closures',
        JSON.stringify({
          closure: NARINFO,
          objects: [
            { key: NARINFO, type: 'narinfo', refs: [NAR] },
            { key: NAR, type: 'nar', refs: [] },
          ],
        }),
      ),
  ],
  [
    'create: unknown object type',
    (t) =>
      post(
        t,
        '/api/pending_closures',
        JSON.stringify({ closure: NARINFO, objects: [{ key: NARINFO, type: 'weird', refs: [] }] }),
      ),
  ],
  [
    'create: a narinfo with its realisation (a content-addressed output)',
    (t) =>
      post(
        t,
        '/api/pending_closures',
        JSON.stringify({
          closure: CA_NARINFO,
          objects: [
            { key: CA_NARINFO, type: 'narinfo', refs: [REALISATION] },
            { key: REALISATION, type: 'realisation', refs: [] },
          ],
        }),
      ),
  ],
  [
    'create: a realisation key of the wrong form',
    (t) =>
      post(
        t,
        '/api/pending_closures',
        JSON.stringify({
          closure: CA_NARINFO,
          objects: [
            { key: CA_NARINFO, type: 'narinfo', refs: [] },
            { key: 'realisations/no-id.doi', type: 'realisation', refs: [] },
          ],
        }),
      ),
  ],
  [
    'GET /api/pending_closures (method not allowed)',
    (t) => fetch(`${t.url}/api/pending_closures`, { headers: auth(t) }),
  ],
  [
    'create: a valid session',
    async (t, ctx) => {
      const response = await post(t, '/api/pending_closures', closureBody);
      const json = (await response.clone().json()) as {
        id: string | number;
        pending_objects: Record<string, { presigned_url?: string }>;
      };
      ctx.id = String(json.id);
      ctx.putUrl = json.pending_objects[NAR]?.presigned_url;
      return response;
    },
  ],
  [
    'create: the same closure again (objects still pending)',
    (t) => post(t, '/api/pending_closures', closureBody),
  ],
  [
    'sign: unknown session id',
    (t) => post(t, '/api/pending_closures/987654321/sign', JSON.stringify({ narinfos: {} })),
  ],
  [
    'sign: non-numeric session id',
    (t) => post(t, '/api/pending_closures/abc/sign', JSON.stringify({ narinfos: {} })),
  ],
  ['sign: malformed body', (t, ctx) => post(t, `/api/pending_closures/${ctx.id}/sign`, '{"narinfos":')],
  [
    'sign: wrong field type',
    (t, ctx) =>
      post(
        t,
        `/api/pending_closures/${ctx.id}/sign`,
        JSON.stringify({ narinfos: { [NARINFO]: { nar_size: 'big' } } }),
      ),
  ],
  [
    'sign: a narinfo of another session',
    (t, ctx) =>
      post(
        t,
        `/api/pending_closures/${ctx.id}/sign`,
        JSON.stringify({
          narinfos: {
            [`${hash(32)}.narinfo`]: {
              store_path: `/nix/store/${hash(32)}-x`,
              nar_hash: `sha256:${NAR_HASH}`,
              nar_size: 1,
              references: [],
            },
          },
        }),
      ),
  ],
  ['complete: unknown session id', (t) => post(t, '/api/pending_closures/987654321/complete', '')],
  [
    'GET /api/closures/{key}: unknown closure',
    (t) => fetch(`${t.url}/api/closures/${hash(32)}.narinfo`, { headers: auth(t) }),
  ],
  ['multipart complete: malformed body', (t) => post(t, '/api/multipart/complete', '{')],
  [
    'multipart complete: unknown upload',
    (t) =>
      post(
        t,
        '/api/multipart/complete',
        JSON.stringify({ object_key: NAR, upload_id: 'nope', parts: [{ part_number: 1, etag: '"x"' }] }),
      ),
  ],
  [
    'multipart complete: parts of the wrong type',
    (t) =>
      post(
        t,
        '/api/multipart/complete',
        JSON.stringify({ object_key: NAR, upload_id: 'nope', parts: [{ part_number: '1', etag: 1 }] }),
      ),
  ],
  ['multipart request-parts: malformed body', (t) => post(t, '/api/multipart/request-parts', '[')],
  [
    'multipart request-parts: unknown upload',
    (t) =>
      post(
        t,
        '/api/multipart/request-parts',
        JSON.stringify({ object_key: NAR, upload_id: 'nope', start_part_number: 1, num_parts: 1 }),
      ),
  ],
  ['GET /api/gc/status before any GC', (t) => fetch(`${t.url}/api/gc/status`, { headers: auth(t) })],
  ['GET /api/pins (none)', (t) => fetch(`${t.url}/api/pins`, { headers: auth(t) })],
  [
    'POST /api/pins/{name}: invalid name',
    (t) => post(t, '/api/pins/bad%20name', JSON.stringify({ store_path: `/nix/store/${STORE_HASH}-x` })),
  ],
  [
    'POST /api/pins/{name}: unknown store path',
    (t) => post(t, '/api/pins/release', JSON.stringify({ store_path: `/nix/store/${hash(32)}-x` })),
  ],
  ['POST /api/pins/{name}: malformed body', (t) => post(t, '/api/pins/release', '{')],
  [
    'DELETE /api/pins/{name}: unknown pin',
    (t) => fetch(`${t.url}/api/pins/nope`, { method: 'DELETE', headers: auth(t) }),
  ],
  [
    'DELETE /api/closures: older-than not a duration',
    (t) => fetch(`${t.url}/api/closures?older-than=30d`, { method: 'DELETE', headers: auth(t) }),
  ],
  [
    'DELETE /api/closures: negative older-than',
    (t) => fetch(`${t.url}/api/closures?older-than=-1h`, { method: 'DELETE', headers: auth(t) }),
  ],
  [
    'DELETE /api/pending_closures: no older-than',
    (t) => fetch(`${t.url}/api/pending_closures`, { method: 'DELETE', headers: auth(t) }),
  ],
  [
    'S3: presigned PUT with a tampered signature',
    (_t, ctx) =>
      fetch(String(ctx.putUrl).replace(/X-Amz-Signature=[0-9a-f]/, 'X-Amz-Signature=z'), {
        method: 'PUT',
        body: 'x',
      }),
  ],
  [
    'S3: unsigned PUT',
    (_t, ctx) => fetch(String(ctx.putUrl).split('?')[0] ?? '', { method: 'PUT', body: 'x' }),
  ],
  [
    'S3: presigned PUT',
    (_t, ctx) => fetch(String(ctx.putUrl), { method: 'PUT', body: Buffer.alloc(1024, 1) }),
  ],
  ['complete: the valid session', (t, ctx) => post(t, `/api/pending_closures/${ctx.id}/complete`, '')],
  ['complete: the same session again', (t, ctx) => post(t, `/api/pending_closures/${ctx.id}/complete`, '')],
  [
    'S3: expired presigned PUT',
    async (t, ctx) => fetch(await t.expire(String(ctx.putUrl)), { method: 'PUT', body: 'x' }),
  ],
];

/**
 * Differences that stay, with the reason (also in the stand-in's README). Keyed by scenario name;
 * the value is what the stand-in answers instead.
 */
const KNOWN: Readonly<Record<string, string>> = {};

describeRealNiks3('conformance of the niks3 stand-in to the real niks3 v1.7.0', () => {
  let real: RealNiks3;
  let fake: FakeNiks3;
  const results = new Map<string, { real: Outcome; fake: Outcome }>();

  beforeAll(async () => {
    [real, fake] = await Promise.all([startRealNiks3(), startFakeNiks3({ version: '1.7.0' })]);
    const targets: Record<'real' | 'fake', Target> = {
      real: {
        url: real.url,
        apiToken: real.apiToken,
        cacheUrl: real.publicUrl,
        async expire(url) {
          // The same object URL, signed with the server's credentials but valid for one second.
          const parsed = new URL(url);
          const signed = aws4.sign(
            {
              host: parsed.host,
              method: 'PUT',
              path: `${parsed.pathname}?X-Amz-Expires=1`,
              service: 's3',
              region: 'us-east-1',
              signQuery: true,
            },
            { accessKeyId: real.s3.accessKey, secretAccessKey: real.s3.secretKey },
          );
          await new Promise((r) => setTimeout(r, 2100));
          return `http://${parsed.host}${signed.path}`;
        },
      },
      fake: {
        url: fake.url,
        apiToken: fake.apiToken,
        cacheUrl: fake.publicUrl,
        expire(url) {
          fake.advance(6 * 3600_000);
          return Promise.resolve(url);
        },
      },
    };
    for (const name of ['real', 'fake'] as const) {
      const ctx: Context = {};
      for (const [scenario, run] of SCENARIOS) {
        const got = await outcome(await run(targets[name], ctx), targets[name]);
        const entry = results.get(scenario) ?? ({} as { real: Outcome; fake: Outcome });
        entry[name] = got;
        results.set(scenario, entry);
      }
    }
    if (process.env.CONFORMANCE_DUMP)
      (await import('node:fs')).writeFileSync(
        process.env.CONFORMANCE_DUMP,
        JSON.stringify([...results], null, 1),
      );
  }, 120_000);

  afterAll(async () => {
    await Promise.all([real?.close(), fake?.close()]);
  });

  it.each(SCENARIOS.map(([name]) => [name]))('%s', (name) => {
    const { real: r, fake: f } = results.get(name) ?? {};
    if (KNOWN[name]) {
      expect(f).toEqual(JSON.parse(KNOWN[name]) as Outcome);
      expect(f).not.toEqual(r);
    } else {
      expect(f).toEqual(r);
    }
  });
});
