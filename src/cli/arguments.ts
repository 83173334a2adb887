/**
 * The command line: `nix-cache <command> [--name value | --name=value | --flag] [--json] [--stack FILE]`.
 * A flag named after an input sets that input; repeating a flag adds lines (`--paths a --paths b`).
 * Secrets are never flags: they come from the environment contract.
 */
import { ConfigurationError } from '../core/errors.js';
import type { Command } from './commands.js';
import { envVariableOf } from './environment-contract.js';

export interface ParsedArgs {
  readonly command: string | undefined;
  /** Input and command flags, by name. */
  readonly values: Record<string, string>;
  readonly json: boolean;
  readonly help: boolean;
  readonly version: boolean;
  readonly verbose: boolean;
  /** `--stack FILE`, when given. */
  readonly stackPath: string | undefined;
}

/** Flags every command takes. */
export const GLOBAL_FLAGS: ReadonlyArray<{ name: string; value?: string; description: string }> = [
  {
    name: 'stack',
    value: 'FILE',
    description: 'the stack file (default: nix-cache.json, or $NIX_CACHE_STACK)',
  },
  { name: 'json', description: 'print the result as JSON on stdout (progress stays on stderr)' },
  { name: 'verbose', description: 'also print debug lines (HTTP detail); same as NIX_CACHE_DEBUG=1' },
  { name: 'help', description: 'show this help' },
];

/** The flags a command accepts: its own, and every non-secret input its steps do not fix. */
export function acceptedFlags(command: Command): Map<string, { boolean: boolean }> {
  const flags = new Map<string, { boolean: boolean }>();
  for (const step of command.steps({ flags: {}, stack: {} })) {
    for (const input of step.spec.inputs) {
      if (input.secret || step.fixed?.[input.name] !== undefined) continue;
      if (step.flagInputs && !step.flagInputs.includes(input.name)) continue;
      flags.set(input.name, { boolean: input.type === 'boolean' });
    }
  }
  for (const flag of command.flags ?? []) flags.set(flag.name, { boolean: flag.boolean === true });
  return flags;
}

/** Parses argv (without node and the script). `lookup` gives the command so flags can be checked. */
export function parseArgs(
  argv: readonly string[],
  lookup: (name: string) => Command | undefined,
): ParsedArgs {
  const values: Record<string, string> = {};
  let json = false;
  let help = false;
  let version = false;
  let verbose = false;
  let stackPath: string | undefined;
  let index = 0;
  let command: string | undefined;
  if (argv[0] !== undefined && !argv[0].startsWith('-')) {
    command = argv[0];
    index = 1;
  }
  const known = command ? lookup(command) : undefined;
  const accepted = known ? acceptedFlags(known) : new Map<string, { boolean: boolean }>();
  if (command === 'init-config') accepted.set('force', { boolean: true });

  for (; index < argv.length; index++) {
    const arg = argv[index] ?? '';
    if (arg === '--json') json = true;
    else if (arg === '--help' || arg === '-h') help = true;
    else if (arg === '--version' || arg === '-V') version = true;
    else if (arg === '--verbose' || arg === '-v') verbose = true;
    else if (arg.startsWith('--') && arg.length > 2) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const flag = name === 'stack' ? { boolean: false } : accepted.get(name);
      if (!flag) {
        // Unknown commands are reported by the caller; do not mask that with a flag error.
        if (command !== undefined && !known && command !== 'init-config') continue;
        const variable = envVariableOf(name);
        if (variable) {
          throw new ConfigurationError(
            `--${name} would put a secret on the command line (visible in ps and shell history): set the environment variable ${variable} instead.`,
          );
        }
        throw new ConfigurationError(
          `unknown flag --${name}${command ? ` for nix-cache ${command}` : ''}: run \`nix-cache ${command ?? ''}${command ? ' ' : ''}--help\` for the flags.`,
        );
      }
      let value: string;
      if (eq !== -1) value = arg.slice(eq + 1);
      else {
        const next = argv[index + 1];
        const takesNext =
          next !== undefined && !next.startsWith('--') && (!flag.boolean || /^(true|false)$/i.test(next));
        if (takesNext) {
          value = next;
          index++;
        } else if (flag.boolean) value = 'true';
        else
          throw new ConfigurationError(`flag --${name} needs a value: --${name} VALUE (or --${name}=VALUE)`);
      }
      if (name === 'stack') stackPath = value;
      else values[name] = values[name] === undefined ? value : `${values[name]}\n${value}`;
    } else {
      throw new ConfigurationError(
        `unexpected argument "${arg}": give values as --name VALUE (see \`nix-cache ${command ?? ''}${command ? ' ' : ''}--help\`)`,
      );
    }
  }
  return { command, values, json, help, version, verbose, stackPath };
}
