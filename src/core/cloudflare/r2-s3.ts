/**
 * A minimal client for R2's S3 endpoint: path-style requests signed with SigV4 by the `aws4`
 * package, sent with fetch through HttpClient (timeouts; retries on 429 and 5xx, which are safe to
 * repeat here because a signed request stays valid for 15 minutes). Used by the credential probe
 * and by the bucket emptier.
 */
import aws4 from 'aws4';
import { createHash } from 'node:crypto';
import { RemoteError } from '../errors.js';
import { HttpClient, type HttpResponse } from '../http.js';
import type { Logger } from '../logger.js';

export const S3_REMOTE = 'R2 S3 endpoint';

/** Where and how to reach one bucket through S3. */
export interface S3Access {
  /** e.g. https://<account>.r2.cloudflarestorage.com, or a local stand-in. */
  readonly endpointUrl: string;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** R2's region is `auto`. */
  readonly region?: string;
}

export interface S3RequestOptions {
  readonly query?: Record<string, string>;
  readonly body?: Buffer;
  readonly contentType?: string;
  readonly headers?: Record<string, string>;
  /** Error statuses returned instead of thrown. */
  readonly accept?: readonly number[];
  readonly operation?: string;
}

/** The `<Code>` and `<Message>` of an S3 error document. */
export function s3ErrorCode(text: string): { code: string; message: string } {
  return {
    code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? '',
    message: /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? '',
  };
}

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) =>
    c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === "'" ? '&apos;' : '&quot;',
  );
}

function xmlUnescape(text: string): string {
  return text.replace(
    /&(lt|gt|amp|apos|quot);/g,
    (_, e: string) => ({ lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' })[e] ?? '',
  );
}

export class R2S3 {
  readonly access: S3Access;
  private readonly base: URL;
  private readonly http: HttpClient;

  constructor(access: S3Access, options: { logger: Logger; fetch?: typeof fetch; timeoutMs?: number }) {
    this.access = access;
    this.base = new URL(access.endpointUrl);
    this.http = new HttpClient({
      remote: S3_REMOTE,
      baseUrl: this.base.origin,
      logger: options.logger,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      timeoutMs: options.timeoutMs ?? 20_000,
      retry: {
        attempts: 4,
        baseDelayMs: 500,
        maxDelayMs: 4_000,
        retryAfterCapMs: 10_000,
        retryStatuses: [429, 500, 502, 503, 504],
      },
    });
  }

  /** Signs and sends one request to the bucket (key undefined: the bucket itself). */
  async send(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'HEAD',
    key: string | undefined,
    options: S3RequestOptions = {},
  ): Promise<HttpResponse> {
    const basePath = this.base.pathname.replace(/\/+$/, '');
    let path = `${basePath}/${encodeURIComponent(this.access.bucket)}`;
    if (key !== undefined) path += `/${key.split('/').map(encodeURIComponent).join('/')}`;
    const query = new URLSearchParams(options.query ?? {}).toString().replace(/\+/g, '%20');
    const target = query ? `${path}?${query}` : path;
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.contentType) headers['content-type'] = options.contentType;
    const signed = aws4.sign(
      {
        host: this.base.host,
        path: target,
        method,
        service: 's3',
        region: this.access.region ?? 'auto',
        headers,
        ...(options.body ? { body: options.body } : {}),
      },
      { accessKeyId: this.access.accessKeyId, secretAccessKey: this.access.secretAccessKey },
    );
    const sent: Record<string, string> = {};
    for (const [name, value] of Object.entries(signed.headers ?? {})) {
      // fetch sets Host and Content-Length itself, to the same values that were signed.
      if (['host', 'content-length'].includes(name.toLowerCase()) || value === undefined) continue;
      sent[name] = String(value);
    }
    return this.http.request({
      method,
      path: `${this.base.origin}${target}`,
      headers: sent,
      ...(options.body ? { body: new Uint8Array(options.body) } : {}),
      ...(options.accept ? { accept: options.accept } : {}),
      operation:
        options.operation ??
        `${method} ${key === undefined ? `bucket "${this.access.bucket}"` : `"${key}" in bucket "${this.access.bucket}"`}`,
      idempotent: true,
    });
  }

  /** The first `max` keys of the bucket (ListObjectsV2). */
  async listKeys(max: number): Promise<string[]> {
    const response = await this.send('GET', undefined, {
      query: { 'list-type': '2', 'max-keys': String(max) },
      operation: `list objects of bucket "${this.access.bucket}"`,
    });
    return [...response.text.matchAll(/<Contents>[\s\S]*?<Key>([\s\S]*?)<\/Key>[\s\S]*?<\/Contents>/g)].map(
      (m) => xmlUnescape(m[1] ?? ''),
    );
  }

  /** The first `max` in-progress multipart uploads of the bucket (ListMultipartUploads). */
  async listUploads(max: number): Promise<{ key: string; uploadId: string }[]> {
    const response = await this.send('GET', undefined, {
      query: { uploads: '', 'max-uploads': String(max) },
      operation: `list multipart uploads of bucket "${this.access.bucket}"`,
    });
    return [...response.text.matchAll(/<Upload>([\s\S]*?)<\/Upload>/g)].map((m) => ({
      key: xmlUnescape(/<Key>([\s\S]*?)<\/Key>/.exec(m[1] ?? '')?.[1] ?? ''),
      uploadId: xmlUnescape(/<UploadId>([\s\S]*?)<\/UploadId>/.exec(m[1] ?? '')?.[1] ?? ''),
    }));
  }

  /** Aborts one multipart upload; one that is already gone (404 NoSuchUpload) counts as aborted. */
  async abortUpload(key: string, uploadId: string): Promise<void> {
    await this.send('DELETE', key, {
      query: { uploadId },
      accept: [404],
      operation: `abort a multipart upload of "${key}" in bucket "${this.access.bucket}"`,
    });
  }

  /** Deletes up to 1000 keys in one DeleteObjects request; throws when any key could not be deleted. */
  async deleteKeys(keys: readonly string[]): Promise<void> {
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>' +
      keys.map((k) => `<Object><Key>${xmlEscape(k)}</Key></Object>`).join('') +
      '</Delete>';
    const body = Buffer.from(xml, 'utf8');
    const response = await this.send('POST', undefined, {
      query: { delete: '' },
      body,
      contentType: 'application/xml',
      headers: { 'content-md5': createHash('md5').update(body).digest('base64') },
      operation: `delete ${keys.length} objects of bucket "${this.access.bucket}"`,
    });
    const failed = /<Error>([\s\S]*?)<\/Error>/.exec(response.text);
    if (failed) {
      const { code, message } = s3ErrorCode(failed[1] ?? '');
      throw new RemoteError({
        remote: S3_REMOTE,
        operation: `delete objects of bucket "${this.access.bucket}"`,
        status: response.status,
        detail:
          `${xmlUnescape(/<Key>([\s\S]*?)<\/Key>/.exec(failed[1] ?? '')?.[1] ?? '?')}: ${code} ${message}`.trim(),
        hint: 'Check that the S3 keys may delete objects in this bucket, then re-run',
      });
    }
  }
}
