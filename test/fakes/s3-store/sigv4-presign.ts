/**
 * AWS Signature Version 4 query-string presigning ("presigned URLs"), both sides:
 * making a URL the way S3 SDKs do (`X-Amz-Algorithm`, `X-Amz-Credential`,
 * `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders=host`, `X-Amz-Signature`,
 * payload `UNSIGNED-PAYLOAD`) and checking one the way S3 does (signature, then
 * expiry against the caller's clock).
 *
 * Path-style URLs only: `<endpoint>/<bucket>/<key>`.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { S3Error, s3Errors } from './s3-error.js';

/** Credentials and scope a presigner signs with. */
export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** `auto` for R2. */
  region: string;
}

/** RFC 3986 encoding as SigV4 wants it (unreserved characters kept; `/` kept only when asked). */
export function uriEncode(s: string, keepSlash: boolean): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

const signingKeys = new Map<string, Buffer>();

/**
 * The SigV4 signing key of one secret, day, region and service (four chained HMACs). It changes once a
 * day, so it is derived once and kept: every presigned URL and every signature check needs it.
 */
export function sigV4SigningKey(
  secretAccessKey: string,
  day: string,
  region: string,
  service: string,
): Buffer {
  const id = `${day}\0${region}\0${service}\0${secretAccessKey}`;
  let key = signingKeys.get(id);
  if (key === undefined) {
    key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, day), region), service), 'aws4_request');
    if (signingKeys.size > 1000) signingKeys.clear();
    signingKeys.set(id, key);
  }
  return key;
}

function amzDate(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

function parseAmzDate(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (m === null) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

function canonicalQuery(params: ReadonlyArray<readonly [string, string]>): string {
  return params
    .map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function signature(
  creds: SigV4Credentials,
  method: string,
  canonicalUri: string,
  params: ReadonlyArray<readonly [string, string]>,
  host: string,
  date: string,
): string {
  const day = date.slice(0, 8);
  const scope = `${day}/${creds.region}/s3/aws4_request`;
  const canonicalRequest = [
    method,
    canonicalUri,
    canonicalQuery(params),
    `host:${host}\n`,
    'host',
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    date,
    scope,
    createHash('sha256').update(canonicalRequest, 'utf8').digest('hex'),
  ].join('\n');
  return hmac(sigV4SigningKey(creds.secretAccessKey, day, creds.region, 's3'), stringToSign).toString('hex');
}

/** What to presign. */
export interface PresignRequest {
  method: 'PUT' | 'GET' | 'HEAD' | 'DELETE';
  /** Base URL of the S3 endpoint, e.g. `http://127.0.0.1:9000`. */
  endpoint: string;
  bucket: string;
  key: string;
  /** Extra query parameters that are signed too (e.g. `partNumber`, `uploadId`). */
  query?: Record<string, string>;
  /** Signing time in ms. */
  now: number;
  /** Lifetime in seconds (`X-Amz-Expires`, at most 604800). */
  expiresSeconds: number;
}

/** Makes a presigned URL. */
export function presignUrl(creds: SigV4Credentials, req: PresignRequest): string {
  const base = new URL(req.endpoint);
  const date = amzDate(req.now);
  const params: Array<[string, string]> = [
    ['X-Amz-Algorithm', 'AWS4-HMAC-SHA256'],
    ['X-Amz-Credential', `${creds.accessKeyId}/${date.slice(0, 8)}/${creds.region}/s3/aws4_request`],
    ['X-Amz-Date', date],
    ['X-Amz-Expires', String(req.expiresSeconds)],
    ['X-Amz-SignedHeaders', 'host'],
    ...Object.entries(req.query ?? {}),
  ];
  const canonicalUri = `/${uriEncode(req.bucket, false)}/${uriEncode(req.key, true)}`;
  const sig = signature(creds, req.method, canonicalUri, params, base.host, date);
  return `${base.protocol}//${base.host}${canonicalUri}?${canonicalQuery(params)}&X-Amz-Signature=${sig}`;
}

/** A request that passed {@link verifyPresigned}. */
export interface VerifiedRequest {
  bucket: string;
  key: string;
  /** The signed query parameters other than the `X-Amz-*` ones (`partNumber`, `uploadId`, …). */
  params: Record<string, string>;
}

/**
 * Checks a presigned request as S3 does. `rawUrl` is the request target as received
 * (`/bucket/key?query`), `host` the Host header. Throws an {@link S3Error}:
 * `AccessDenied` when unsigned or expired, `SignatureDoesNotMatch` when tampered with,
 * `AuthorizationQueryParametersError` when malformed.
 */
export function verifyPresigned(
  creds: SigV4Credentials,
  method: string,
  rawUrl: string,
  host: string,
  now: number,
): VerifiedRequest {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const rawQuery = q < 0 ? '' : rawUrl.slice(q + 1);
  const params: Array<[string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    try {
      params.push([decodeURIComponent(k.replace(/\+/g, ' ')), decodeURIComponent(v.replace(/\+/g, ' '))]);
    } catch {
      throw s3Errors.authorizationQueryParametersError('Query parameters are not properly encoded.');
    }
  }
  const get = (name: string): string | undefined => params.find(([k]) => k === name)?.[1];
  const sig = get('X-Amz-Signature');
  if (sig === undefined || get('X-Amz-Algorithm') === undefined) {
    throw s3Errors.accessDenied();
  }
  if (get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') {
    throw s3Errors.authorizationQueryParametersError('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  }
  const date = get('X-Amz-Date') ?? '';
  const signedAt = parseAmzDate(date);
  const expires = Number(get('X-Amz-Expires'));
  if (signedAt === undefined) {
    throw s3Errors.authorizationQueryParametersError(
      "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
    );
  }
  if (!Number.isInteger(expires) || expires < 1 || expires > 604800) {
    throw s3Errors.authorizationQueryParametersError(
      'X-Amz-Expires must be non-negative and less than a week (in seconds)',
    );
  }
  const credential = get('X-Amz-Credential') ?? '';
  if (credential.split('/')[0] !== creds.accessKeyId) {
    throw new S3Error(
      403,
      'InvalidAccessKeyId',
      'The AWS Access Key Id you provided does not exist in our records.',
    );
  }
  if (get('X-Amz-SignedHeaders') !== 'host') {
    // The fakes only ever sign `host`; anything else cannot match.
    throw s3Errors.signatureDoesNotMatch();
  }
  if (now > signedAt + expires * 1000) throw s3Errors.expired();
  if (now < signedAt - 15 * 60 * 1000) {
    throw s3Errors.accessDenied('Request is not valid yet');
  }

  let segments: string[];
  try {
    segments = rawPath
      .split('/')
      .slice(1)
      .map((s) => decodeURIComponent(s));
  } catch {
    throw s3Errors.signatureDoesNotMatch();
  }
  const [bucket = '', ...rest] = segments;
  const key = rest.join('/');
  const canonicalUri = `/${uriEncode(bucket, false)}/${uriEncode(key, true)}`;
  const signed = params.filter(([k]) => k !== 'X-Amz-Signature');
  const expected = signature(creds, method, canonicalUri, signed, host, date);
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(sig, 'utf8');
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw s3Errors.signatureDoesNotMatch();

  const extra: Record<string, string> = {};
  for (const [k, v] of params) if (!k.startsWith('X-Amz-')) extra[k] = v;
  return { bucket, key, params: extra };
}
