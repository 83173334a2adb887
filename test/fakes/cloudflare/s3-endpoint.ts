/**
 * The R2 S3 endpoint of the Cloudflare stand-in, one listener per jurisdiction (as R2 has one host
 * per jurisdiction). Path-style only: `/<bucket>/<key>`. It speaks enough S3 for the provision
 * action's credential probe and for emptying a bucket: PutObject, GetObject, HeadObject,
 * DeleteObject, ListObjectsV2, DeleteObjects, and CreateMultipartUpload, ListMultipartUploads and
 * AbortMultipartUpload (an open upload blocks the bucket's deletion, as on R2), all with SigV4 `Authorization` headers that are
 * really verified (s3-signature.ts).
 *
 * Credentials are derived from the API tokens of the state, as Cloudflare derives them: access key
 * id = token id, secret = sha256 hex of the token value. Reads need an R2 read or write group,
 * writes an R2 write group ("Workers R2 Storage Write" or "... Bucket Item Write"); a token with
 * `buckets` set only reaches those buckets.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { S3Error, s3Errors, sendS3Error } from '../s3-store/s3-error.js';
import type { ApiSettings } from './api-routes.js';
import { parseAuthorization, verifyHeaderSignature } from './s3-signature.js';
import {
  PERMISSIONS,
  sha256Hex,
  type FakeBucket,
  type FakeCloudflareState,
  type FakeJurisdiction,
  type FakeToken,
} from './state.js';

const READ_GROUPS = [
  PERMISSIONS.r2Read,
  PERMISSIONS.r2Write,
  PERMISSIONS.r2ItemRead,
  PERMISSIONS.r2ItemWrite,
];
const WRITE_GROUPS = [PERMISSIONS.r2Write, PERMISSIONS.r2ItemWrite];
const REGIONS = ['auto', 'us-east-1', ''];

function xml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) =>
    c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === "'" ? '&apos;' : '&quot;',
  );
}

function unxml(text: string): string {
  return text.replace(
    /&(lt|gt|amp|apos|quot);/g,
    (_, e: string) => ({ lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' })[e] ?? '',
  );
}

function sendXml(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

export class S3Endpoint {
  readonly state: FakeCloudflareState;
  readonly jurisdiction: FakeJurisdiction;
  readonly settings: Pick<ApiSettings, 's3AuthErrors'>;

  constructor(
    state: FakeCloudflareState,
    jurisdiction: FakeJurisdiction,
    settings: Pick<ApiSettings, 's3AuthErrors'> = { s3AuthErrors: 'r2' },
  ) {
    this.state = state;
    this.jurisdiction = jurisdiction;
    this.settings = settings;
  }

  /** Answers one request whose body has already been read. */
  handle(req: IncomingMessage, res: ServerResponse, body: Buffer, headers: Record<string, string>): void {
    const rawUrl = req.url ?? '/';
    const url = new URL(rawUrl, 'http://s3.local');
    const segments = url.pathname.split('/').slice(1);
    let bucketName = '';
    let key = '';
    try {
      bucketName = decodeURIComponent(segments[0] ?? '');
      key = segments
        .slice(1)
        .map((s) => decodeURIComponent(s))
        .join('/');
    } catch {
      sendS3Error(res, s3Errors.invalidArgument('Bad path encoding'));
      return;
    }
    const method = req.method ?? 'GET';
    try {
      const token = this.authenticate(method, rawUrl, headers, body);
      if (!bucketName) throw s3Errors.methodNotAllowed();
      const bucket = this.findBucket(token, bucketName);
      const writing = method === 'PUT' || method === 'DELETE' || method === 'POST';
      if (!(writing ? WRITE_GROUPS : READ_GROUPS).some((g) => token.permissions.has(g)))
        throw s3Errors.accessDenied();
      if (token.buckets && !token.buckets.has(bucketName)) throw s3Errors.accessDenied();
      if (!key) {
        if (method === 'GET' && url.searchParams.get('list-type') === '2')
          return this.list(res, bucket, url.searchParams);
        if (method === 'POST' && url.searchParams.has('delete'))
          return this.deleteMany(res, bucket, body.toString('utf8'));
        if (method === 'GET' && url.searchParams.has('uploads'))
          return this.listUploads(res, bucket, url.searchParams);
        if (method === 'HEAD') {
          res.writeHead(200).end();
          return;
        }
        throw s3Errors.methodNotAllowed();
      }
      if (method === 'POST' && url.searchParams.has('uploads')) {
        const upload = this.state.addMultipartUpload(bucket, key);
        return sendXml(
          res,
          200,
          `<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xml(bucket.name)}</Bucket><Key>${xml(key)}</Key><UploadId>${upload.uploadId}</UploadId></InitiateMultipartUploadResult>`,
        );
      }
      if (method === 'DELETE' && url.searchParams.has('uploadId')) {
        const upload = bucket.uploads.get(url.searchParams.get('uploadId') ?? '');
        if (!upload || upload.key !== key) throw s3Errors.noSuchUpload();
        bucket.uploads.delete(upload.uploadId);
        res.writeHead(204).end();
        return;
      }
      switch (method) {
        case 'PUT': {
          const object = this.state.putObject(
            bucket,
            key,
            body,
            headers['content-type'] ?? 'application/octet-stream',
          );
          res.writeHead(200, { etag: object.etag, 'content-length': '0' }).end();
          return;
        }
        case 'GET':
        case 'HEAD': {
          const object = bucket.objects.get(key);
          if (!object) throw s3Errors.noSuchKey();
          res.writeHead(200, {
            etag: object.etag,
            'content-type': object.contentType,
            'content-length': String(object.body.length),
            'last-modified': new Date(object.lastModified).toUTCString(),
          });
          res.end(method === 'HEAD' ? undefined : object.body);
          return;
        }
        case 'DELETE':
          bucket.objects.delete(key);
          res.writeHead(204).end();
          return;
        default:
          throw s3Errors.methodNotAllowed();
      }
    } catch (error) {
      if (error instanceof S3Error) sendS3Error(res, error, url.pathname);
      else sendS3Error(res, s3Errors.internalError(), url.pathname);
    }
  }

  private authenticate(
    method: string,
    rawUrl: string,
    headers: Record<string, string>,
    body: Buffer,
  ): FakeToken {
    const header = headers['authorization'];
    if (header === undefined) throw s3Errors.accessDenied();
    const auth = parseAuthorization(header);
    if (auth.service !== 's3' || !REGIONS.includes(auth.region)) {
      throw new S3Error(
        400,
        'AuthorizationHeaderMalformed',
        `The authorization header is malformed; region must be 'auto' (got '${auth.region}').`,
      );
    }
    const token = this.state.tokenById(auth.accessKeyId);
    if (this.settings.s3AuthErrors === 'r2') {
      // R2's own answers (its error-code reference): a malformed key id, then an unknown one.
      if (auth.accessKeyId.length !== 32) {
        throw new S3Error(
          400,
          'InvalidArgument',
          `Credential access key has length ${auth.accessKeyId.length}, should be 32`,
        );
      }
      if (!token || token.status !== 'active') throw new S3Error(401, 'Unauthorized', 'Unauthorized');
    }
    if (!token || token.status !== 'active') {
      throw new S3Error(
        403,
        'InvalidAccessKeyId',
        'The AWS Access Key Id you provided does not exist in our records.',
      );
    }
    verifyHeaderSignature({
      method,
      rawUrl,
      headers,
      body,
      auth,
      secretAccessKey: sha256Hex(token.value),
      now: this.state.now(),
    });
    return token;
  }

  private findBucket(token: FakeToken, name: string): FakeBucket {
    for (const accountId of token.accounts) {
      const bucket = this.state.bucket(accountId, this.jurisdiction, name);
      if (bucket) return bucket;
    }
    throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist.');
  }

  private list(res: ServerResponse, bucket: FakeBucket, params: URLSearchParams): void {
    const prefix = params.get('prefix') ?? '';
    const maxKeys = Math.min(1000, Math.max(1, Number(params.get('max-keys') ?? 1000) || 1000));
    const token = params.get('continuation-token');
    const after = token
      ? Buffer.from(token, 'base64url').toString('utf8')
      : (params.get('start-after') ?? '');
    const keys = [...bucket.objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
    const page = keys.slice(0, maxKeys);
    const truncated = keys.length > maxKeys;
    const contents = page
      .map((k) => {
        const o = bucket.objects.get(k)!;
        return `<Contents><Key>${xml(k)}</Key><LastModified>${new Date(o.lastModified).toISOString()}</LastModified><ETag>${xml(o.etag)}</ETag><Size>${o.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
      })
      .join('');
    const next = truncated
      ? `<NextContinuationToken>${Buffer.from(page[page.length - 1] ?? '', 'utf8').toString('base64url')}</NextContinuationToken>`
      : '';
    sendXml(
      res,
      200,
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${xml(bucket.name)}</Name><Prefix>${xml(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}${next}</ListBucketResult>`,
    );
  }

  /** ListMultipartUploads: by key then upload id, `max-uploads` per page, markers to go on. */
  private listUploads(res: ServerResponse, bucket: FakeBucket, params: URLSearchParams): void {
    const max = Math.min(1000, Math.max(1, Number(params.get('max-uploads') ?? 1000) || 1000));
    const keyMarker = params.get('key-marker') ?? '';
    const idMarker = params.get('upload-id-marker') ?? '';
    const all = [...bucket.uploads.values()]
      .sort((a, b) => (a.key === b.key ? (a.uploadId < b.uploadId ? -1 : 1) : a.key < b.key ? -1 : 1))
      .filter(
        (u) => !keyMarker || u.key > keyMarker || (u.key === keyMarker && idMarker && u.uploadId > idMarker),
      );
    const page = all.slice(0, max);
    const truncated = all.length > max;
    const last = page[page.length - 1];
    const uploads = page
      .map(
        (u) =>
          `<Upload><Key>${xml(u.key)}</Key><UploadId>${u.uploadId}</UploadId><Initiated>${new Date(u.initiated).toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
      )
      .join('');
    const next =
      truncated && last
        ? `<NextKeyMarker>${xml(last.key)}</NextKeyMarker><NextUploadIdMarker>${last.uploadId}</NextUploadIdMarker>`
        : '';
    sendXml(
      res,
      200,
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${xml(bucket.name)}</Bucket><MaxUploads>${max}</MaxUploads><IsTruncated>${truncated}</IsTruncated>${next}${uploads}</ListMultipartUploadsResult>`,
    );
  }

  private deleteMany(res: ServerResponse, bucket: FakeBucket, text: string): void {
    const keys = [...text.matchAll(/<Key>([\s\S]*?)<\/Key>/g)].map((m) => unxml(m[1] ?? ''));
    if (keys.length > 1000)
      throw new S3Error(400, 'MalformedXML', 'At most 1000 keys per DeleteObjects request.');
    for (const key of keys) bucket.objects.delete(key);
    const deleted = keys.map((k) => `<Deleted><Key>${xml(k)}</Key></Deleted>`).join('');
    sendXml(
      res,
      200,
      `<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${deleted}</DeleteResult>`,
    );
  }
}
