/**
 * The terminal's two streams: progress on stderr (the CliLogger), results on stdout. Every secret
 * registered with the logger is also redacted from what goes to stdout (summaries, JSON).
 */
import { CliLogger } from './cli-logger.js';

export class CliOutput extends CliLogger {
  private readonly hidden = new Set<string>();
  private readonly stdout: NodeJS.WritableStream;

  constructor(options: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; verbose: boolean }) {
    super(options.stderr, options.verbose);
    this.stdout = options.stdout;
  }

  override setSecret(value: string): void {
    super.setSecret(value);
    if (value) this.hidden.add(value);
  }

  /** The text with every registered secret replaced by `***` (longest first). */
  redact(text: string): string {
    let out = text;
    for (const secret of [...this.hidden].sort((a, b) => b.length - a.length))
      out = out.split(secret).join('***');
    return out;
  }

  /** Writes a result to stdout (a newline is added when missing). */
  result(text: string): void {
    const clean = this.redact(text);
    this.stdout.write(clean.endsWith('\n') ? clean : `${clean}\n`);
  }
}
