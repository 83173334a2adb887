/**
 * The logging seam. Actions log through @actions/core (groups, masks, annotations); the CLI logs
 * progress to stderr. Core modules only ever see this interface.
 */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Runs fn inside a collapsible group (Actions) or under a heading (CLI). */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Registers a value that must never be printed. */
  setSecret(value: string): void;
}

/** Every form of a secret that could end up printed: raw, base64, URL-encoded, JSON-escaped. */
export function secretForms(value: string): string[] {
  const forms = new Set<string>();
  if (!value) return [];
  forms.add(value);
  forms.add(Buffer.from(value).toString('base64'));
  forms.add(Buffer.from(value).toString('base64url'));
  forms.add(encodeURIComponent(value));
  forms.add(JSON.stringify(value).slice(1, -1));
  return [...forms].filter((form) => form.length >= 4);
}

/** Masks a secret and every derived form of it. */
export function maskSecret(logger: Logger, value: string | undefined): void {
  if (!value) return;
  for (const form of secretForms(value)) logger.setSecret(form);
  // Multi-line secrets: mask each line too (Actions masks per line).
  for (const line of value.split(/\r?\n/)) if (line.trim().length >= 4) logger.setSecret(line.trim());
}

/** A logger that records everything, for unit tests and for quiet library use. */
export class MemoryLogger implements Logger {
  readonly lines: string[] = [];
  readonly secrets = new Set<string>();
  debug(message: string): void {
    this.lines.push(`debug: ${message}`);
  }
  info(message: string): void {
    this.lines.push(message);
  }
  warn(message: string): void {
    this.lines.push(`warning: ${message}`);
  }
  error(message: string): void {
    this.lines.push(`error: ${message}`);
  }
  async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.lines.push(`## ${name}`);
    return fn();
  }
  setSecret(value: string): void {
    this.secrets.add(value);
  }
}
