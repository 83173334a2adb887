/**
 * The S3 side of the fake (spec §10.E): it checks the presigned URLs the fake hands
 * out (SigV4 signature, 5 h expiry on the fake's clock) and does what S3/R2 does:
 *
 * - simple PUT: stores body, `Content-Type` and `Content-Encoding`; answers `200` with
 *   an `ETag`; overwrites allowed; no `Content-Length` → `411 MissingContentLength`;
 *   more than 5 GiB → `400 EntityTooLarge`;
 * - part PUT (`?partNumber=N&uploadId=X`): `200` with an `ETag`; after the upload was
 *   completed or aborted → `404 NoSuchUpload`;
 * - presigned GET/HEAD: the object; DELETE: removes it.
 *
 * Bodies are written atomically: a connection lost mid-body stores nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { S3_LIMITS } from '../s3-store/object-store.js';
import { S3Error, s3Errors, sendS3Error } from '../s3-store/s3-error.js';
import { verifyPresigned, type SigV4Credentials } from '../s3-store/sigv4-presign.js';
import type { Niks3Context } from './context.js';
import { drainBody } from './http-io.js';
import type { RequestLogEntry } from './listener.js';
import { serveObject } from './object-serving.js';

export function s3Handler(ctx: Niks3Context, creds: SigV4Credentials) {
  return async (req: IncomingMessage, res: ServerResponse, entry: RequestLogEntry): Promise<void> => {
    const method = req.method ?? 'GET';
    const resource = decodeURIComponentSafe(entry.path);
    const fail = async (err: S3Error): Promise<void> => {
      sendS3Error(res, err, resource);
      await drainBody(req);
    };
    let verified;
    try {
      verified = verifyPresigned(creds, method, req.url ?? '/', req.headers.host ?? '', ctx.now());
    } catch (err) {
      if (err instanceof S3Error) return fail(err);
      throw err;
    }
    const { bucket, key, params } = verified;
    if (bucket !== ctx.config.bucket) {
      return fail(new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist.'));
    }
    if (key === '') return fail(s3Errors.methodNotAllowed());

    try {
      switch (method) {
        case 'PUT':
          return await put(ctx, req, res, key, params);
        case 'GET':
        case 'HEAD':
          await drainBody(req);
          return await serveObject(req, res, ctx.store, key, 's3', () =>
            sendS3Error(res, s3Errors.noSuchKey(), resource),
          );
        case 'DELETE':
          await drainBody(req);
          await ctx.store.delete(key);
          res.writeHead(204);
          res.end();
          return;
        default:
          return await fail(s3Errors.methodNotAllowed());
      }
    } catch (err) {
      if (err instanceof S3Error) {
        if (!res.headersSent && !req.socket.destroyed) sendS3Error(res, err, resource);
        return;
      }
      // The client went away mid-body: nothing was stored, nobody to answer.
      if (req.socket.destroyed || req.destroyed) return;
      throw err;
    }
  };
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

async function put(
  ctx: Niks3Context,
  req: IncomingMessage,
  res: ServerResponse,
  key: string,
  params: Record<string, string>,
): Promise<void> {
  const lengthHeader = req.headers['content-length'];
  if (lengthHeader === undefined) {
    sendS3Error(res, s3Errors.missingContentLength(), key);
    await drainBody(req);
    return;
  }
  const length = Number(lengthHeader);
  const isPart = params['partNumber'] !== undefined || params['uploadId'] !== undefined;
  if (length > (isPart ? S3_LIMITS.maxPartSize : S3_LIMITS.maxSinglePutSize)) {
    sendS3Error(res, s3Errors.entityTooLarge(), key);
    req.socket.destroy();
    return;
  }
  if (isPart) {
    const uploadId = params['uploadId'] ?? '';
    const partNumber = Number(params['partNumber']);
    if (ctx.store.upload(uploadId, key) === undefined) {
      sendS3Error(res, s3Errors.noSuchUpload(), key);
      await drainBody(req);
      return;
    }
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > S3_LIMITS.maxPartNumber) {
      sendS3Error(
        res,
        s3Errors.invalidArgument('Part number must be an integer between 1 and 10000, inclusive'),
        key,
      );
      await drainBody(req);
      return;
    }
    const part = await ctx.store.uploadPart(uploadId, key, partNumber, req, length);
    res.writeHead(200, { ETag: part.etag, 'Content-Length': '0' });
    res.end();
    return;
  }
  const obj = await ctx.store.put(key, req, {
    contentType: req.headers['content-type'],
    contentEncoding: req.headers['content-encoding'],
    expectedLength: length,
  });
  res.writeHead(200, { ETag: obj.etag, 'Content-Length': '0' });
  res.end();
}
