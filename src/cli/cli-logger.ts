import type { Logger } from '../core/logger.js';

/**
 * The Logger of the CLI: progress on stderr (results go to stdout), secrets redacted from every
 * line, debug lines only with --verbose / NIX_CACHE_DEBUG=1.
 */
export class CliLogger implements Logger {
  private readonly secrets = new Set<string>();
  private depth = 0;
  private readonly out: NodeJS.WritableStream;
  private readonly verbose: boolean;
  constructor(out: NodeJS.WritableStream = process.stderr, verbose = process.env['NIX_CACHE_DEBUG'] === '1') {
    this.out = out;
    this.verbose = verbose;
  }

  private write(prefix: string, message: string): void {
    let text = message;
    for (const secret of this.secrets) text = text.split(secret).join('***');
    const indent = '  '.repeat(this.depth);
    for (const line of text.split('\n')) this.out.write(`${indent}${prefix}${line}\n`);
  }
  debug(message: string): void {
    if (this.verbose) this.write('debug: ', message);
  }
  info(message: string): void {
    this.write('', message);
  }
  warn(message: string): void {
    this.write('warning: ', message);
  }
  error(message: string): void {
    this.write('error: ', message);
  }
  async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.write('', `== ${name}`);
    this.depth += 1;
    try {
      return await fn();
    } finally {
      this.depth -= 1;
    }
  }
  setSecret(value: string): void {
    if (value) this.secrets.add(value);
  }
}
