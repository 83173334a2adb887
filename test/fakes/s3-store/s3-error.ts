/**
 * S3-style errors, as S3 and Cloudflare R2 report them: an HTTP status, an error
 * code such as `NoSuchKey`, and a message, rendered as the usual XML document.
 */
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';

/** An error the S3 side of a fake answers with (also thrown by the object store). */
export class S3Error extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'S3Error';
    this.status = status;
    this.code = code;
  }
}

/** The errors the fakes use, with the status and message text S3 gives them. */
export const s3Errors = {
  noSuchKey: () => new S3Error(404, 'NoSuchKey', 'The specified key does not exist.'),
  noSuchUpload: () =>
    new S3Error(
      404,
      'NoSuchUpload',
      'The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
    ),
  accessDenied: (message = 'Access Denied') => new S3Error(403, 'AccessDenied', message),
  expired: () => new S3Error(403, 'AccessDenied', 'Request has expired'),
  signatureDoesNotMatch: () =>
    new S3Error(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    ),
  authorizationQueryParametersError: (message: string) =>
    new S3Error(400, 'AuthorizationQueryParametersError', message),
  missingContentLength: () =>
    new S3Error(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.'),
  incompleteBody: () =>
    new S3Error(
      400,
      'IncompleteBody',
      'You did not provide the number of bytes specified by the Content-Length HTTP header.',
    ),
  entityTooLarge: () =>
    new S3Error(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed object size.'),
  entityTooSmall: () =>
    new S3Error(
      400,
      'EntityTooSmall',
      'Your proposed upload is smaller than the minimum allowed object size.',
    ),
  invalidPart: (message?: string) =>
    new S3Error(
      400,
      'InvalidPart',
      message ??
        "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
    ),
  invalidPartOrder: () =>
    new S3Error(
      400,
      'InvalidPartOrder',
      'The list of parts was not in ascending order. The parts list must be specified in order by part number.',
    ),
  invalidArgument: (message: string) => new S3Error(400, 'InvalidArgument', message),
  methodNotAllowed: () =>
    new S3Error(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.'),
  internalError: () =>
    new S3Error(500, 'InternalError', 'We encountered an internal error. Please try again.'),
  slowDown: () => new S3Error(503, 'SlowDown', 'Please reduce your request rate.'),
} as const;

/** The S3 error code that usually goes with an HTTP status (for injected faults). */
export function s3ErrorForStatus(status: number): S3Error {
  switch (status) {
    case 400:
      return new S3Error(400, 'BadRequest', 'Bad Request');
    case 403:
      return s3Errors.accessDenied();
    case 404:
      return s3Errors.noSuchKey();
    case 429:
      return new S3Error(429, 'SlowDown', 'Please reduce your request rate.');
    case 500:
      return s3Errors.internalError();
    case 501:
      return new S3Error(
        501,
        'NotImplemented',
        'A header you provided implies functionality that is not implemented.',
      );
    case 503:
      return s3Errors.slowDown();
    default:
      return new S3Error(status, 'InternalError', `Injected error ${status}`);
  }
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) =>
    c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '&' ? '&amp;' : c === "'" ? '&apos;' : '&quot;',
  );
}

/** The XML body of an S3 error. */
export function s3ErrorXml(err: S3Error, resource?: string): string {
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${xmlEscape(err.code)}</Code><Message>${xmlEscape(err.message)}</Message>` +
    (resource === undefined ? '' : `<Resource>${xmlEscape(resource)}</Resource>`) +
    `<RequestId>${requestId}</RequestId><HostId>${requestId}</HostId></Error>`
  );
}

/** Writes an S3 error response (XML body; no body for HEAD). */
export function sendS3Error(
  res: ServerResponse,
  err: S3Error,
  resource?: string,
  headers: Record<string, string> = {},
): void {
  const body = s3ErrorXml(err, resource);
  res.writeHead(err.status, {
    'Content-Type': 'application/xml',
    'Content-Length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
