/**
 * Checks an AWS Signature Version 4 `Authorization` header the way S3 (and R2) do: recompute the
 * canonical request from what arrived (method, path, query, the signed headers, the payload hash),
 * sign it with the secret of the access key named in the header, and compare. The payload hash
 * header must also match the body unless it is `UNSIGNED-PAYLOAD`. Path-style requests only.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { S3Error, s3Errors } from '../s3-store/s3-error.js';
import { sigV4SigningKey, uriEncode } from '../s3-store/sigv4-presign.js';

export interface ParsedAuthorization {
  readonly accessKeyId: string;
  readonly day: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

/** Parses `AWS4-HMAC-SHA256 Credential=AK/20260101/auto/s3/aws4_request, SignedHeaders=a;b, Signature=hex`. */
export function parseAuthorization(header: string): ParsedAuthorization {
  const match = /^AWS4-HMAC-SHA256\s+(.*)$/.exec(header.trim());
  if (!match) throw new S3Error(400, 'InvalidArgument', 'Unsupported Authorization Type');
  const fields = new Map<string, string>();
  for (const part of (match[1] ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = (fields.get('Credential') ?? '').split('/');
  const signedHeaders = (fields.get('SignedHeaders') ?? '').split(';').filter(Boolean);
  const signature = fields.get('Signature') ?? '';
  if (
    credential.length !== 5 ||
    credential[4] !== 'aws4_request' ||
    signedHeaders.length === 0 ||
    !/^[0-9a-f]{64}$/.test(signature)
  ) {
    throw new S3Error(400, 'AuthorizationHeaderMalformed', 'The authorization header is malformed.');
  }
  return {
    accessKeyId: credential[0] ?? '',
    day: credential[1] ?? '',
    region: credential[2] ?? '',
    service: credential[3] ?? '',
    signedHeaders,
    signature,
  };
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function canonicalUri(rawPath: string): string {
  if (rawPath === '/' || rawPath === '') return '/';
  return rawPath
    .split('/')
    .map((piece) => uriEncode(decodeURIComponent(piece.replace(/\+/g, ' ')), false))
    .join('/')
    .replace(/%2F/g, '/');
}

function canonicalQuery(rawQuery: string): string {
  const pairs = new Map<string, string>();
  for (const part of rawQuery.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = decodeURIComponent((eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' '));
    const value = eq < 0 ? '' : decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' '));
    const encoded = uriEncode(key, false);
    if (!pairs.has(encoded)) pairs.set(encoded, uriEncode(value, false));
  }
  return [...pairs.keys()]
    .sort()
    .map((k) => `${k}=${pairs.get(k) ?? ''}`)
    .join('&');
}

/**
 * Verifies a header-signed request. `headers` are the received headers (lower-case names),
 * `rawUrl` the request target, `body` the received bytes. Throws an S3Error when it does not hold.
 */
export function verifyHeaderSignature(options: {
  readonly method: string;
  readonly rawUrl: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
  readonly auth: ParsedAuthorization;
  readonly secretAccessKey: string;
  readonly now: number;
}): void {
  const { auth, headers } = options;
  if (!auth.signedHeaders.includes('host')) throw s3Errors.signatureDoesNotMatch();
  const date = headers['x-amz-date'] ?? '';
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
  if (!m || date.slice(0, 8) !== auth.day)
    throw new S3Error(403, 'AccessDenied', 'X-Amz-Date is missing or does not match the credential scope');
  const signedAt = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  if (Math.abs(options.now - signedAt) > 15 * 60 * 1000) {
    throw new S3Error(
      403,
      'RequestTimeTooSkewed',
      'The difference between the request time and the current time is too large.',
    );
  }
  const payloadHash = headers['x-amz-content-sha256'];
  if (payloadHash === undefined)
    throw new S3Error(
      400,
      'InvalidRequest',
      'Missing required header for this request: x-amz-content-sha256',
    );
  if (payloadHash !== 'UNSIGNED-PAYLOAD') {
    const actual = createHash('sha256').update(options.body).digest('hex');
    if (actual !== payloadHash) {
      throw new S3Error(
        400,
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
    }
  }
  const q = options.rawUrl.indexOf('?');
  const rawPath = q < 0 ? options.rawUrl : options.rawUrl.slice(0, q);
  const rawQuery = q < 0 ? '' : options.rawUrl.slice(q + 1);
  const sortedHeaders = [...auth.signedHeaders].sort();
  const canonicalHeaders = sortedHeaders
    .map((name) => `${name}:${(headers[name] ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const canonicalRequest = [
    options.method,
    canonicalUri(rawPath),
    canonicalQuery(rawQuery),
    canonicalHeaders,
    sortedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${auth.day}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    date,
    scope,
    createHash('sha256').update(canonicalRequest, 'utf8').digest('hex'),
  ].join('\n');
  const key = sigV4SigningKey(options.secretAccessKey, auth.day, auth.region, auth.service);
  const expected = Buffer.from(hmac(key, stringToSign).toString('hex'), 'utf8');
  const given = Buffer.from(auth.signature, 'utf8');
  if (expected.length !== given.length || !timingSafeEqual(expected, given))
    throw s3Errors.signatureDoesNotMatch();
}
