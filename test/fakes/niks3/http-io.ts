/**
 * Response and request-body helpers that reproduce Go `net/http` conventions
 * (spec §0.3): `http.Error` plain-text bodies, JSON bodies with a trailing newline,
 * `http.MaxBytesReader` body limits.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { encodeGoJson } from './go-json.js';

/** Go's `http.StatusText`. */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  206: 'Partial Content',
  301: 'Moved Permanently',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  411: 'Length Required',
  413: 'Request Entity Too Large',
  416: 'Requested Range Not Satisfiable',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  507: 'Insufficient Storage',
};

export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? `status code ${status}`;
}

/**
 * Go's `http.Error(w, message, status)`: body `message + "\n"`,
 * `Content-Type: text/plain; charset=utf-8`, `X-Content-Type-Options: nosniff`.
 * No body is sent for HEAD.
 */
export function httpError(
  res: ServerResponse,
  message: string,
  status: number,
  headers: Record<string, string> = {},
): void {
  const body = message + '\n';
  res.removeHeader('Content-Length');
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': String(Buffer.byteLength(body)),
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Go's `http.NotFound`: `404 page not found`. */
export function notFound(res: ServerResponse): void {
  httpError(res, '404 page not found', 404);
}

/** A JSON success body as Go's encoder writes it (sorted map keys, trailing newline). */
export function writeJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = encodeGoJson(value);
  res.writeHead(status, {
    ...headers,
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(body)),
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** A bodiless answer (`204 No Content` by default). */
export function noContent(res: ServerResponse, status = 204): void {
  res.writeHead(status);
  res.end();
}

/** Go's `http.Redirect` with 301. */
export function redirect(res: ServerResponse, location: string, status = 301): void {
  const headers: Record<string, string> = { Location: location };
  let body = '';
  if (res.req.method === 'GET' || res.req.method === 'HEAD') {
    headers['Content-Type'] = 'text/html; charset=utf-8';
    body = `<a href="${location.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&#34;')}">${statusText(status)}</a>.\n\n`;
  }
  res.writeHead(status, headers);
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Thrown by {@link readBody} when the body is larger than the limit. */
export class BodyTooLargeError extends Error {
  readonly limit: number;

  constructor(limit: number) {
    super(`request body exceeds ${limit} bytes`);
    this.name = 'BodyTooLargeError';
    this.limit = limit;
  }
}

/**
 * Reads the whole request body. With a limit, stops reading (and drains the rest)
 * as soon as it is exceeded, and throws {@link BodyTooLargeError}.
 */
export function readBody(req: IncomingMessage, limit?: number): Promise<Buffer> {
  // Plain listeners rather than `for await`: leaving an async iterator early would
  // destroy the socket, and the 413 answer could not be sent any more.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (limit !== undefined && size > limit) {
        tooLarge = true;
        chunks.length = 0;
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!tooLarge) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

/** Discards the request body (for handlers that ignore it). */
export function drainBody(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    if (req.readableEnded) {
      resolve();
      return;
    }
    req.on('end', resolve);
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.resume();
  });
}
