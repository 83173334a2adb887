/**
 * Every request either side of the stand-in received, for assertions such as "create sent
 * `cf-r2-jurisdiction: eu`", "the second apply made no writing request" or "no request carried a
 * secret in its query string".
 */
import type { FaultService } from './faults.js';

export interface LoggedRequest {
  readonly service: FaultService;
  readonly method: string;
  /** Decoded path below the API prefix (`/accounts/A/r2/buckets/b`), or the S3 path (`/bucket/key`). */
  readonly path: string;
  /** The raw request target, as received. */
  readonly rawUrl: string;
  readonly query: Record<string, string | string[]>;
  /** Lower-case names. */
  readonly headers: Record<string, string>;
  /** Parsed JSON body, the raw text when it is not JSON, or undefined when empty. */
  readonly body: unknown;
  readonly at: number;
  /** Status answered (set when the answer is written; undefined for hang/reset). */
  status?: number;
  /** The fault that answered, if any. */
  fault?: string;
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export class RequestLog {
  readonly entries: LoggedRequest[] = [];

  add(entry: LoggedRequest): LoggedRequest {
    this.entries.push(entry);
    return entry;
  }

  clear(): void {
    this.entries.length = 0;
  }

  /** API requests (not S3). */
  api(): LoggedRequest[] {
    return this.entries.filter((e) => e.service === 'api');
  }

  s3(): LoggedRequest[] {
    return this.entries.filter((e) => e.service === 's3');
  }

  /** API requests that could change something (any method but GET/HEAD/OPTIONS). */
  writes(): LoggedRequest[] {
    return this.api().filter((e) => !READ_METHODS.has(e.method));
  }

  /** API requests whose path matches. */
  matching(method: string, path: string | RegExp): LoggedRequest[] {
    return this.api().filter(
      (e) => e.method === method && (typeof path === 'string' ? e.path === path : path.test(e.path)),
    );
  }

  /** `METHOD path` lines, handy in failure messages. */
  lines(): string[] {
    return this.entries.map(
      (e) =>
        `${e.service} ${e.method} ${e.path}${e.status === undefined ? '' : ` -> ${e.status}`}${e.fault ? ` (${e.fault})` : ''}`,
    );
  }
}
