/**
 * The Cloudflare v4 response envelope and the error codes the stand-in answers with
 * (shared/spec/cloudflare.md §3.2 and the error catalogue). Success is always HTTP 200 with a JSON
 * envelope, never 204 and never an empty body: the SDK breaks on both.
 */
import type { ServerResponse } from 'node:http';

export interface CfErrorItem {
  readonly code: number;
  readonly message: string;
  readonly error_chain?: readonly CfErrorItem[];
}

/** An error answer: HTTP status plus the envelope's `errors`. Thrown by route handlers. */
export class CfApiError extends Error {
  readonly status: number;
  readonly errors: readonly CfErrorItem[];
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    errors: CfErrorItem | readonly CfErrorItem[],
    headers: Record<string, string> = {},
  ) {
    const list = Array.isArray(errors) ? (errors as readonly CfErrorItem[]) : [errors as CfErrorItem];
    super(list.map((e) => `${e.code} ${e.message}`).join('; '));
    this.status = status;
    this.errors = list;
    this.headers = headers;
  }
}

/**
 * Codes of the error catalogue. The ones the spec marks unconfirmed (custom domain exists / missing /
 * outside its zone, the global rate limit) are placeholders the server options can change.
 */
export const CF_CODES = {
  authentication: 10000,
  invalidHeaders: 6003,
  invalidAuthorizationFormat: 6111,
  badZoneId: 7003,
  noRoute: 7000,
  bucketExists: 10004,
  noSuchBucket: 10006,
  bucketNotEmpty: 10008,
  invalidBucketName: 10005,
  badJson: 10040,
  notEntitled: 10042,
  internal: 10001,
  unavailable: 10043,
  r2RateLimit: 10058,
  globalRateLimit: 971,
  /** UNCONFIRMED placeholders. */
  customDomainExists: 100_409,
  customDomainMissing: 100_404,
  customDomainBadZone: 100_400,
} as const;

export const cfErrors = {
  authentication: (status = 401) =>
    new CfApiError(status, { code: CF_CODES.authentication, message: 'Authentication error' }),
  malformedAuthorization: () =>
    new CfApiError(400, {
      code: CF_CODES.invalidHeaders,
      message: 'Invalid request headers',
      error_chain: [
        { code: CF_CODES.invalidAuthorizationFormat, message: 'Invalid format for Authorization header' },
      ],
    }),
  noRoute: () => new CfApiError(404, { code: CF_CODES.noRoute, message: 'No route for that URI' }),
  badZoneId: (path: string) =>
    new CfApiError(400, [
      {
        code: CF_CODES.badZoneId,
        message: `Could not route to ${path}, perhaps your object identifier is invalid?`,
      },
      { code: CF_CODES.noRoute, message: 'No route for that URI' },
    ]),
  bucketExists: () =>
    new CfApiError(409, {
      code: CF_CODES.bucketExists,
      message: 'The bucket you tried to create already exists, and you own it.',
    }),
  noSuchBucket: () =>
    new CfApiError(404, { code: CF_CODES.noSuchBucket, message: 'The specified bucket does not exist.' }),
  bucketNotEmpty: () =>
    new CfApiError(409, {
      code: CF_CODES.bucketNotEmpty,
      message: 'The bucket you tried to delete is not empty.',
    }),
  invalidBucketName: () =>
    new CfApiError(400, {
      code: CF_CODES.invalidBucketName,
      message: 'The specified bucket name is not valid.',
    }),
  badJson: (why: string) =>
    new CfApiError(400, { code: CF_CODES.badJson, message: `JSON not well formed: ${why}` }),
  badRequest: (code: number, message: string) => new CfApiError(400, { code, message }),
};

const JSON_TYPE = 'application/json; charset=utf-8';

/** Writes a success envelope (HTTP 200). */
export function sendResult(
  res: ServerResponse,
  result: unknown,
  extra: { result_info?: unknown; messages?: unknown[] } = {},
): void {
  const body: Record<string, unknown> = { success: true, errors: [], messages: extra.messages ?? [], result };
  if (extra.result_info !== undefined) body['result_info'] = extra.result_info;
  send(res, 200, JSON.stringify(body));
}

/** Writes an error envelope. */
export function sendError(res: ServerResponse, error: CfApiError): void {
  send(
    res,
    error.status,
    JSON.stringify({ success: false, errors: error.errors, messages: [], result: null }),
    error.headers,
  );
}

export function send(
  res: ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
  contentType = JSON_TYPE,
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}
