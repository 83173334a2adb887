/**
 * HTTP/1.1 requests over node:http(s) with kept-alive connections, and `nodeFetch`, a `fetch` for
 * the requests the suite makes (a string or URL, a string or byte body, headers, a signal) built
 * on them.
 *
 * Why not the global fetch everywhere: each fetch request costs about three times the CPU of a
 * node:http one (measured on Node 24: ~0.9 ms against ~0.3 ms per small JSON request), and a push
 * makes several requests per path; fetch also copies every request body. Connections idle for
 * more than 4 s are closed (undici's default), earlier when the server announces a shorter
 * `Keep-Alive: timeout`, so a request rarely meets a connection the server has just dropped.
 *
 * `nodeFetch` answers like fetch: network failures reject with `TypeError('fetch failed')` whose
 * `cause` is the system error, an aborted signal rejects with its reason, gzip/deflate/br/zstd
 * bodies are decoded, redirects are followed. What it does not do itself it leaves to the global
 * fetch: a `Request` object, a streamed body, a `redirect` mode other than follow, or a machine
 * with proxy variables set.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { brotliDecompressSync, gunzipSync, inflateSync, zstdDecompressSync } from 'node:zlib';

export interface RawRequest {
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly body?: string | Uint8Array | undefined;
  readonly signal?: AbortSignal | undefined;
  /** No progress on the socket for this long destroys the request (ms). */
  readonly idleTimeoutMs?: number | undefined;
  /** Keep at most this many bytes of the response body (the rest is read and dropped). */
  readonly maxBodyBytes?: number | undefined;
}

export interface RawResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

const IDLE_SOCKET_MS = 4_000;

/** A pair of keep-alive agents (http and https) and the one way requests are sent through them. */
export class KeptConnections {
  private readonly http = new HttpAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  private readonly https = new HttpsAgent({ keepAlive: true, timeout: IDLE_SOCKET_MS });

  send(url: URL, req: RawRequest): Promise<RawResponse> {
    const secure = url.protocol === 'https:';
    const request = secure ? httpsRequest : httpRequest;
    const idle = req.idleTimeoutMs;
    const limit = req.maxBodyBytes ?? Infinity;
    return new Promise<RawResponse>((resolve, reject) => {
      const outgoing = request(url, {
        method: req.method,
        headers: req.headers,
        agent: secure ? this.https : this.http,
        ...(idle !== undefined ? { timeout: idle } : {}),
        ...(req.signal ? { signal: req.signal } : {}),
      });
      if (idle !== undefined)
        outgoing.on('timeout', () =>
          outgoing.destroy(new Error(`no progress for ${Math.round(idle / 1000)} s`)),
        );
      outgoing.on('error', reject);
      outgoing.on('response', (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (chunk: Buffer) => {
          if (kept >= limit) return;
          const room = limit - kept;
          chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
          kept += Math.min(chunk.length, room);
        });
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? '',
            headers: res.headers,
            body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, kept),
          }),
        );
      });
      outgoing.end(req.body);
    });
  }

  /** Drops the idle connections (they never hold the process open; this frees them at once). */
  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

const shared = new KeptConnections();
const NULL_BODY = new Set([101, 103, 204, 205, 304]);
const REDIRECT = new Set([301, 302, 303, 307, 308]);
const PROXY_VARIABLES = ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy'];

function plainBody(body: unknown): body is string | Uint8Array | undefined | null {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
}

/** What a caller reads of an answer's headers (a `Headers` is one). */
export interface HeaderReader {
  get(name: string): string | null;
}

/** Headers of a node:http answer, read without building a `Headers` (which loads fetch's code). */
class IncomingHeaderReader implements HeaderReader {
  private readonly headers: IncomingHttpHeaders;
  constructor(headers: IncomingHttpHeaders) {
    this.headers = headers;
  }
  get(name: string): string | null {
    const value = this.headers[name.toLowerCase()];
    return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
  }
}

/**
 * An answer as `nodeFetch` builds it, before (or instead of) a `Response`. A class, so that an
 * answer is told apart from the global fetch's `Response` without naming `Response`: the first use
 * of that global loads Node's fetch (about 10 ms of CPU and some MiB), which a push never needs.
 */
class FetchedAnswer {
  readonly status: number;
  readonly statusText: string;
  readonly headers: IncomingHttpHeaders;
  /** The decoded body; null for HEAD and the statuses without one. */
  readonly body: Buffer | null;
  constructor(status: number, statusText: string, headers: IncomingHttpHeaders, body: Buffer | null) {
    this.status = status;
    this.statusText = statusText;
    this.headers = headers;
    this.body = body;
  }
}

/** A `fetch` over kept-alive node:http connections (see the module comment for what it covers). */
export const nodeFetch: typeof fetch = async (input, init = {}) => {
  const answer = await fetchFollowing(input, init, 0);
  if (!(answer instanceof FetchedAnswer)) return answer;
  const headers = new Headers();
  for (const [name, value] of Object.entries(answer.headers)) {
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else if (value !== undefined) headers.set(name, value);
  }
  return new Response(answer.body, { status: answer.status, statusText: answer.statusText, headers });
};

/** A whole answer: status, headers and the body read to its end. */
export interface WholeAnswer {
  readonly status: number;
  readonly headers: HeaderReader;
  /** Empty for HEAD and the statuses without a body. */
  readonly body: Buffer;
}

/**
 * Sends one request with `fetchFn` and reads the whole answer. With `nodeFetch` no `Response` is
 * built around it (a third of the cost of a small request, and fetch's code is never loaded); any
 * other fetch (a test's wrapper) is used as it is.
 */
export async function fetchWhole(
  fetchFn: typeof fetch,
  input: string,
  init: RequestInit,
): Promise<WholeAnswer> {
  const answer = fetchFn === nodeFetch ? await fetchFollowing(input, init, 0) : await fetchFn(input, init);
  if (!(answer instanceof FetchedAnswer)) {
    const body = init.method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(await answer.arrayBuffer());
    return { status: answer.status, headers: answer.headers, body };
  }
  return {
    status: answer.status,
    headers: new IncomingHeaderReader(answer.headers),
    body: answer.body ?? Buffer.alloc(0),
  };
}

const MAX_REDIRECTS = 20;

async function fetchFollowing(
  input: Parameters<typeof fetch>[0],
  init: RequestInit,
  redirects: number,
): Promise<FetchedAnswer | Response> {
  if (
    (typeof input !== 'string' && !(input instanceof URL)) ||
    !plainBody(init.body) ||
    (init.redirect !== undefined && init.redirect !== 'follow') ||
    PROXY_VARIABLES.some((name) => process.env[name])
  )
    return globalThis.fetch(input, init);
  const url = new URL(input);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return globalThis.fetch(input, init);
  const method = (init.method ?? 'GET').toUpperCase();
  const headers: Record<string, string> = {};
  const given = init.headers;
  // A plain record of strings (what the suite's clients pass) is taken as it is; the rest through Headers.
  if (
    given &&
    Object.getPrototypeOf(given) === Object.prototype &&
    Object.values(given).every((v) => typeof v === 'string')
  )
    for (const [name, value] of Object.entries(given as Record<string, string>))
      headers[name.toLowerCase()] = value;
  else if (given !== undefined) new Headers(given).forEach((value, name) => (headers[name] = value));
  const body = init.body ?? undefined;
  if (body !== undefined && headers['content-length'] === undefined)
    headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  const signal = init.signal ?? undefined;
  if (signal?.aborted) throw signal.reason;
  let raw: RawResponse;
  try {
    raw = await shared.send(url, { method, headers, body, signal });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw new TypeError('fetch failed', { cause: error });
  }
  const location = raw.headers.location;
  if (REDIRECT.has(raw.status) && location) {
    if (redirects >= MAX_REDIRECTS)
      throw new TypeError('fetch failed', { cause: new Error('too many redirects') });
    // As fetch: 303, and 301/302 after a POST, become a GET without a body.
    const toGet = raw.status === 303 || ((raw.status === 301 || raw.status === 302) && method === 'POST');
    const { body: _dropped, ...rest } = init;
    const next: RequestInit = toGet ? { ...rest, method: method === 'HEAD' ? 'HEAD' : 'GET' } : init;
    return fetchFollowing(new URL(location, url), next, redirects + 1);
  }
  const encoding = raw.headers['content-encoding'];
  return new FetchedAnswer(
    raw.status,
    raw.statusText,
    raw.headers,
    method === 'HEAD' || NULL_BODY.has(raw.status) ? null : decoded(raw.body, encoding ?? null),
  );
}

/**
 * The body as fetch hands it over: content codings undone, the last one applied first (a body that
 * does not decode is handed over as it came, for the caller to judge).
 */
function decoded(body: Buffer, encoding: string | null): Buffer {
  if (!encoding || body.length === 0) return body;
  let out = body;
  try {
    for (const coding of encoding
      .split(',')
      .map((c) => c.trim().toLowerCase())
      .reverse()) {
      if (coding === 'gzip' || coding === 'x-gzip') out = gunzipSync(out);
      else if (coding === 'deflate') out = inflateSync(out);
      else if (coding === 'br') out = brotliDecompressSync(out);
      else if (coding === 'zstd') out = zstdDecompressSync(out);
      else if (coding !== 'identity') return out;
    }
  } catch {
    return body;
  }
  return out;
}
