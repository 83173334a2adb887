/**
 * nodeFetch answers as the global fetch does for the requests the suite makes: status, headers
 * (several Set-Cookie too), decoded bodies, network errors with the system error as `cause`, an
 * aborted signal's reason, redirects followed; and it keeps connections alive between requests.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { fetchWhole, nodeFetch } from '../../src/core/node-http.js';

let server: Server;
let base: string;
const connections: unknown[] = [];
const seen: Array<{ method: string; url: string; body: string; headers: IncomingMessage['headers'] }> = [];

function answer(req: IncomingMessage, res: ServerResponse, body: string): void {
  seen.push({ method: req.method ?? '', url: req.url ?? '', body, headers: req.headers });
  switch (req.url) {
    case '/json':
      res.writeHead(201, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
      res.end(JSON.stringify({ echo: body }));
      return;
    case '/gzip':
      res.writeHead(200, { 'content-encoding': 'gzip' });
      res.end(gzipSync('plain text'));
      return;
    case '/zstd':
      res.writeHead(200, { 'content-encoding': 'zstd' });
      res.end(zstdCompressSync(Buffer.from('zstd text')));
      return;
    case '/not-zstd':
      res.writeHead(200, { 'content-encoding': 'zstd' });
      res.end('not compressed at all');
      return;
    case '/empty':
      res.writeHead(204);
      res.end();
      return;
    case '/moved':
      res.writeHead(302, { location: '/json' });
      res.end();
      return;
    case '/never':
      return; // no answer
    default:
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no such thing');
  }
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  server.on('connection', (socket) => connections.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen.length = 0;
});

describe('nodeFetch', () => {
  it('sends method, headers and body, and answers with status, headers and JSON', async () => {
    const response = await nodeFetch(`${base}/json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer t' },
      body: '{"x":1}',
    });
    expect(response.status).toBe(201);
    expect(response.ok).toBe(true);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await response.json()).toEqual({ echo: '{"x":1}' });
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/json', body: '{"x":1}' });
    expect(seen[0]?.headers).toMatchObject({ authorization: 'Bearer t', 'content-length': '7' });
  });

  it('sends byte bodies and reuses one connection for requests in a row', async () => {
    const before = connections.length;
    for (let i = 0; i < 5; i++) {
      const response = await nodeFetch(new URL(`${base}/json`), {
        method: 'PUT',
        body: new Uint8Array([104, 105]),
      });
      expect(await response.json()).toEqual({ echo: 'hi' });
    }
    expect(connections.length - before).toBeLessThanOrEqual(1);
  });

  it('decodes gzip and zstd bodies, and hands over a body that does not decode as it came', async () => {
    expect(await (await nodeFetch(`${base}/gzip`)).text()).toBe('plain text');
    expect(await (await nodeFetch(`${base}/zstd`)).text()).toBe('zstd text');
    expect(await (await nodeFetch(`${base}/not-zstd`)).text()).toBe('not compressed at all');
  });

  it('answers HEAD and 204 without a body, and errors as a normal answer', async () => {
    const head = await nodeFetch(`${base}/json`, { method: 'HEAD' });
    expect(head.status).toBe(201);
    expect(head.body).toBeNull();
    expect((await nodeFetch(`${base}/empty`)).status).toBe(204);
    const missing = await nodeFetch(`${base}/nothing`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe('no such thing');
  });

  it('follows a redirect as fetch does (a POST answered 302 becomes a GET without a body)', async () => {
    const response = await nodeFetch(`${base}/moved`, { method: 'GET' });
    expect(response.status).toBe(201);
    expect(seen.map((s) => s.url)).toEqual(['/moved', '/json']);
    seen.length = 0;
    await nodeFetch(`${base}/moved`, { method: 'POST', body: 'data' });
    expect(seen.map((s) => [s.method, s.url, s.body])).toEqual([
      ['POST', '/moved', 'data'],
      ['GET', '/json', ''],
    ]);
  });

  it('rejects a refused connection with TypeError("fetch failed") whose cause is the system error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const failure = await nodeFetch(`http://127.0.0.1:${port}/`).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(TypeError);
    expect((failure as Error).message).toBe('fetch failed');
    expect(((failure as Error).cause as { code?: string }).code).toBe('ECONNREFUSED');
  });

  it("rejects with the signal's reason on a timeout or an abort", async () => {
    const timedOut = await nodeFetch(`${base}/never`, { signal: AbortSignal.timeout(100) }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect((timedOut as Error).name).toBe('TimeoutError');
    const controller = new AbortController();
    controller.abort(new Error('stop now'));
    await expect(nodeFetch(`${base}/json`, { signal: controller.signal })).rejects.toThrow('stop now');
  });

  it('fetchWhole with nodeFetch answers the same without a Response: status, headers, decoded body', async () => {
    const whole = (url: string, init: RequestInit = {}): ReturnType<typeof fetchWhole> =>
      fetchWhole(nodeFetch, url, init);
    const posted = await whole(`${base}/json`, { method: 'POST', body: 'abc' });
    expect(posted.status).toBe(201);
    expect(posted.headers.get('Set-Cookie')).toBe('a=1, b=2');
    expect(posted.headers.get('x-missing')).toBeNull();
    expect(JSON.parse(posted.body.toString())).toEqual({ echo: 'abc' });
    expect((await whole(`${base}/zstd`)).body.toString()).toBe('zstd text');
    expect((await whole(`${base}/json`, { method: 'HEAD' })).body.length).toBe(0);
    const moved = await whole(`${base}/moved`, { headers: [['x-test', '1']] });
    expect(moved.status).toBe(201);
    expect(seen.at(-1)?.headers['x-test']).toBe('1');
    // Another fetch (a test's wrapper) is used as it is.
    const seenByWrapper: string[] = [];
    const wrapper: typeof fetch = (input, init) => {
      seenByWrapper.push(input instanceof Request ? input.url : input.toString());
      return nodeFetch(input, init);
    };
    expect((await fetchWhole(wrapper, `${base}/gzip`, {})).body.toString()).toBe('plain text');
    expect(seenByWrapper).toEqual([`${base}/gzip`]);
  });
});
