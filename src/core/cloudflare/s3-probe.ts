/**
 * Proves an R2 S3 key pair works before niks3 needs it: PUT, GET and DELETE one small probe object
 * through the S3 endpoint (or, read-only, a GET of a key that does not exist, which R2 answers 404
 * only when the signature holds). Requests are signed with SigV4 by the `aws4` package and sent with
 * fetch; bad keys fail here with a message that says which input to fix.
 */
import { randomBytes } from 'node:crypto';
import { ConfigurationError, RemoteError } from '../errors.js';
import type { HttpResponse } from '../http.js';
import type { Logger } from '../logger.js';
import { R2S3, S3_REMOTE, s3ErrorCode, type S3Access } from './r2-s3.js';

export interface S3ProbeOptions {
  readonly logger: Logger;
  /** true: PUT, GET and DELETE a probe object; false: one signed GET only (writes nothing). */
  readonly write: boolean;
  readonly fetch?: typeof fetch;
  readonly timeoutMs?: number;
}

export interface S3ProbeResult {
  /** What was checked, one line per request. */
  readonly steps: readonly string[];
}

export async function probeS3Credentials(config: S3Access, options: S3ProbeOptions): Promise<S3ProbeResult> {
  const s3 = new R2S3(config, {
    logger: options.logger,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
  const base = new URL(config.endpointUrl);
  const key = `nix-cache-probe/${randomBytes(8).toString('hex')}.txt`;
  const steps: string[] = [];
  const send = (method: 'PUT' | 'GET' | 'DELETE', body?: Buffer): Promise<HttpResponse> =>
    s3.send(method, key, {
      ...(body ? { body, contentType: 'text/plain' } : {}),
      accept: [400, 401, 403, 404, 409],
      operation: `${method} probe object in bucket "${config.bucket}"`,
    });

  const check = (method: string, response: HttpResponse, ok: readonly number[]): void => {
    if (ok.includes(response.status)) return;
    const { code, message } = s3ErrorCode(response.text);
    const answer = `${response.status}${code ? ` ${code}` : ''}`;
    switch (code) {
      case 'SignatureDoesNotMatch':
        throw new ConfigurationError(
          `Input 's3-secret-key' does not belong to 's3-access-key': the R2 S3 endpoint answered ${answer} to the probe ${method}. ` +
            'For an R2 API token, the access key id is the token id and the secret access key is the SHA-256 (hex) of the token value.',
        );
      // R2's own codes (its error-code reference): 401 Unauthorized for credentials it does not
      // know, 400 InvalidArgument for a malformed one (e.g. "access key has length 31, should be 32").
      case 'Unauthorized':
        throw new ConfigurationError(
          `Input 's3-access-key' is not an R2 access key id that Cloudflare accepts (${answer} to the probe ${method}): the token it belongs to may be deleted, disabled or of another account. ` +
            'Use the id of an R2 API token of this account (dashboard: R2 > Manage R2 API Tokens); s3-secret-key is the SHA-256 (hex) of that token value.',
        );
      case 'InvalidArgument': {
        const input = /secret/i.test(message)
          ? 's3-secret-key'
          : /access key|credential/i.test(message)
            ? 's3-access-key'
            : undefined;
        throw new ConfigurationError(
          input === 's3-access-key'
            ? `Input 's3-access-key' is malformed (${answer}${message ? `: ${message}` : ''}). An R2 access key id is the 32-character id of an R2 API token, copied without spaces or quotes.`
            : input === 's3-secret-key'
              ? `Input 's3-secret-key' is malformed (${answer}${message ? `: ${message}` : ''}). An R2 secret access key is 64 hex characters: the SHA-256 of the token value.`
              : `The R2 S3 endpoint refused the probe ${method} (${answer}${message ? `: ${message}` : ''}). Check s3-access-key and s3-secret-key (copied without spaces or quotes) and s3-endpoint-url.`,
        );
      }
      case 'InvalidAccessKeyId':
        throw new ConfigurationError(
          `Input 's3-access-key' is not an R2 access key id that Cloudflare knows (${answer} to the probe ${method}). ` +
            'Use the id of an R2 API token of this account (dashboard: R2 > Manage R2 API Tokens).',
        );
      case 'AccessDenied':
        throw new ConfigurationError(
          `The S3 key pair (s3-access-key) may not ${method === 'GET' ? 'read' : 'write'} objects in R2 bucket "${config.bucket}" (${answer}). ` +
            'Give its token "Workers R2 Storage Bucket Item Write" on this bucket (or "Workers R2 Storage Write").',
        );
      case 'NoSuchBucket':
        throw new ConfigurationError(
          `R2 bucket "${config.bucket}" was not found through the S3 endpoint ${base.origin} (${answer}). ` +
            "Check that the S3 keys belong to this bucket's account and that the endpoint matches its jurisdiction (s3-endpoint-url).",
        );
      default:
        throw new RemoteError({
          remote: S3_REMOTE,
          operation: `${method} probe object in bucket "${config.bucket}"`,
          status: response.status,
          detail: [code, message].filter(Boolean).join(': ') || response.text.slice(0, 200),
          hint: 'Check s3-access-key, s3-secret-key and the endpoint',
        });
    }
  };

  if (!options.write) {
    const response = await send('GET');
    check('GET', response, [200, 404]);
    steps.push(`GET ${key}: ${response.status} (signature accepted; read-only check, nothing written)`);
    return { steps };
  }

  const content = Buffer.from(`nix-cache provision probe ${new Date().toISOString()}\n`);
  const put = await send('PUT', content);
  check('PUT', put, [200]);
  steps.push(`PUT ${key}: ${put.status}`);
  try {
    const get = await send('GET');
    check('GET', get, [200]);
    if (get.text !== content.toString('utf8')) {
      throw new RemoteError({
        remote: S3_REMOTE,
        operation: `GET probe object in bucket "${config.bucket}"`,
        status: get.status,
        detail: 'the object read back differs from the one written',
        hint: 'Check that s3-endpoint-url points at R2',
      });
    }
    steps.push(`GET ${key}: ${get.status}, content matches`);
  } finally {
    const del = await send('DELETE');
    check('DELETE', del, [200, 204]);
    steps.push(`DELETE ${key}: ${del.status}`);
  }
  return { steps };
}
