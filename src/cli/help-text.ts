/** `nix-cache --help` and `nix-cache <command> --help`, generated from the commands and the action specs. */
import { describeAccepted } from '../core/settings/input-reader.js';
import type { InputSpec } from '../core/settings/input-spec.js';
import { VERSION } from '../core/version.js';
import { GLOBAL_FLAGS } from './arguments.js';
import { COMMANDS, type Command } from './commands.js';
import { SECRET_ENV, SECRET_ENV_DESCRIPTIONS, envVariableOf } from './environment-contract.js';
import { STACK_SETTINGS } from './stack-file.js';

const INDENT = '      ';

function wrap(text: string, width = 100): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + word.length + 1 > width - INDENT.length) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.map((l) => `${INDENT}${l}`);
}

export function usage(): string {
  const lines = [
    `nix-cache ${VERSION}: run a personal Nix binary cache (niks3 on Fly.io, objects on Cloudflare R2).`,
    '',
    'Usage: nix-cache <command> [--flags] [--json] [--stack nix-cache.json]',
    '',
    'Commands:',
    `  ${'init-config'.padEnd(12)} write nix-cache.json from the example, to fill in`,
  ];
  for (const command of COMMANDS) lines.push(`  ${command.name.padEnd(12)} ${command.summary}`);
  lines.push(
    '',
    'Settings that are not secret live in the stack file (nix-cache.json; `nix-cache init-config` writes one).',
    'Secrets come from the environment, never from flags:',
  );
  for (const name of Object.keys(SECRET_ENV))
    lines.push(`  ${name.padEnd(21)} ${SECRET_ENV_DESCRIPTIONS[name] ?? ''}`);
  lines.push(
    'When some are missing and BWS_ACCESS_TOKEN and BWS_PROJECT_ID are set with `bws` on PATH, the command',
    're-runs itself under `bws run` (Bitwarden Secrets Manager).',
    '',
    'Progress goes to stderr, results to stdout. Run `nix-cache <command> --help` for the flags of a command.',
  );
  return lines.join('\n');
}

function defaultText(input: InputSpec, cliDefault: string | undefined): string {
  if (cliDefault !== undefined) return ` (default on a terminal: ${cliDefault})`;
  if (input.default !== undefined && input.default !== '' && !input.default.startsWith('${{'))
    return ` (default: ${input.default})`;
  if (input.defaultText) return ` (default: ${input.defaultText})`;
  return '';
}

export function initConfigHelp(): string {
  return [
    'Usage: nix-cache init-config [--stack FILE] [--force]',
    '',
    'Writes the stack file (default nix-cache.json) with every setting and its default, and placeholders to',
    'fill in. It is git-ignored; secrets never go in it (they come from the environment).',
    '',
    'Settings:',
    ...STACK_SETTINGS.map((s) => `  ${s.key.padEnd(30)} default ${JSON.stringify(s.default)}`),
    '',
    'Flags:',
    '  --force',
    ...wrap('overwrite an existing file'),
    '  --stack FILE',
    ...wrap('where to write it'),
  ].join('\n');
}

export function commandHelp(command: Command): string {
  const lines = [`Usage: nix-cache ${command.name} [--flags]`, '', command.summary + '.', ''];
  const steps = command.steps({ flags: {}, stack: {} });
  if (steps.length > 1) lines.push(`Steps: ${steps.map((s) => s.label).join(', then ')}.`, '');

  lines.push('Flags:');
  for (const flag of command.flags ?? []) {
    lines.push(`  --${flag.name}${flag.boolean ? '' : ' VALUE'}`);
    lines.push(...wrap(flag.description));
  }
  const seen = new Set<string>((command.flags ?? []).map((f) => f.name));
  const needed = new Set<string>();
  const optionalEnv = new Set<string>();
  for (const step of steps) {
    for (const name of step.needs) needed.add(name);
    for (const input of step.spec.inputs) {
      const variable = envVariableOf(input.name);
      if (variable) {
        if (!step.needs.includes(variable) && step.fixed?.['mode'] !== 'destroy') optionalEnv.add(variable);
        continue;
      }
      if (seen.has(input.name) || step.fixed?.[input.name] !== undefined) continue;
      if (step.flagInputs && !step.flagInputs.includes(input.name)) continue;
      seen.add(input.name);
      const setting = STACK_SETTINGS.find((s) => s.inputs.includes(input.name));
      const from = setting ? ` [stack: ${setting.key}]` : '';
      lines.push(
        `  --${input.name}${input.type === 'boolean' ? '' : ' VALUE'}${from}${defaultText(input, step.defaults?.[input.name])}`,
      );
      const accepts =
        input.type === 'string' || (input.type === 'lines' && !input.accepts)
          ? ''
          : ` Accepts ${describeAccepted(input)}.`;
      lines.push(...wrap(`${input.description}${accepts}`));
    }
  }
  for (const variable of needed) optionalEnv.delete(variable);
  lines.push('', 'Environment:');
  if (needed.size === 0 && optionalEnv.size === 0) lines.push('  (no secrets needed)');
  for (const name of needed)
    lines.push(`  ${name.padEnd(21)} required: ${SECRET_ENV_DESCRIPTIONS[name] ?? ''}`);
  for (const name of optionalEnv)
    lines.push(`  ${name.padEnd(21)} optional: ${SECRET_ENV_DESCRIPTIONS[name] ?? ''}`);
  lines.push('', 'Common flags:');
  for (const flag of GLOBAL_FLAGS)
    lines.push(`  --${flag.name}${flag.value ? ` ${flag.value}` : ''}`, ...wrap(flag.description));
  return lines.join('\n');
}
