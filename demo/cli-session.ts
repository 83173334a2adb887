/**
 * Runs `nix-cache` commands in this process (the same `main()` as the binary) against a stack, with
 * stdout and stderr captured: `--json` results are parsed, progress is kept for when a step fails.
 */
import { Writable } from 'node:stream';
import { main } from '../src/cli/main.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The parsed `--json` result. */
  readonly json: {
    ok: boolean;
    outputs: Record<string, string>;
    steps: Record<string, Record<string, string>>;
    error?: string;
  };
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

export class CliSession {
  /** Everything every command printed, in order (for a failure report). */
  readonly transcript: string[] = [];
  private readonly stackFile: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(stackFile: string, env: NodeJS.ProcessEnv) {
    this.stackFile = stackFile;
    this.env = env;
  }

  /** `nix-cache <args> --json --stack <file>`; throws with the command's last lines when it fails. */
  async run(args: readonly string[]): Promise<CliResult> {
    const stdout = new Capture();
    const stderr = new Capture();
    const argv = [...args, '--json', '--stack', this.stackFile];
    const code = await main(argv, { ...this.env }, { stdout, stderr });
    this.transcript.push(`$ nix-cache ${args.join(' ')}\n${stderr.text}${stdout.text}`);
    let json: CliResult['json'] | undefined;
    try {
      json = JSON.parse(stdout.text) as CliResult['json'];
    } catch {
      json = undefined;
    }
    if (code !== 0 || !json?.ok) {
      const tail = stderr.text.trim().split('\n').slice(-15).join('\n');
      throw new Error(
        `nix-cache ${args[0] ?? ''} exited with ${code}: ${json?.error ?? 'see its output'}\n${tail}`,
      );
    }
    return { code, stdout: stdout.text, stderr: stderr.text, json };
  }
}
