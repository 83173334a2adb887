/**
 * Errors the suite distinguishes. A ConfigurationError is the user's to fix (bad input, missing
 * secret); its message says how. A RemoteError names the remote, the operation and what to do.
 */
export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

export interface RemoteErrorInfo {
  /** The remote that failed, e.g. "niks3", "Cloudflare API", "Fly Machines API". */
  readonly remote: string;
  /** What we were doing, e.g. "POST /api/pending_closures". */
  readonly operation: string;
  /** HTTP status, when there was a response. */
  readonly status?: number | undefined;
  /** What the user can do about it. */
  readonly hint?: string | undefined;
  /** The remote's own error text (never contains request secrets). */
  readonly detail?: string | undefined;
  /** True when retrying later may help (network errors, 5xx, 429). */
  readonly transient?: boolean | undefined;
}

export class RemoteError extends Error {
  override readonly name = 'RemoteError';
  readonly remote: string;
  readonly operation: string;
  readonly status: number | undefined;
  readonly hint: string | undefined;
  readonly detail: string | undefined;
  readonly transient: boolean;

  constructor(info: RemoteErrorInfo, options?: { cause?: unknown }) {
    const what = info.status === undefined ? 'failed' : `answered HTTP ${info.status}`;
    const detail = info.detail ? `: ${info.detail.trim().slice(0, 500)}` : '';
    const hint = info.hint ? `. ${info.hint}` : '';
    super(`${info.remote}: ${info.operation} ${what}${detail}${hint}`, options);
    this.remote = info.remote;
    this.operation = info.operation;
    this.status = info.status;
    this.hint = info.hint;
    this.detail = info.detail;
    this.transient = info.transient ?? false;
  }
}

/** The message of anything thrown, without a stack. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const cause =
      error.cause instanceof Error && !error.message.includes(error.cause.message)
        ? ` (${error.cause.message})`
        : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}
