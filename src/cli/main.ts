/**
 * `nix-cache <command>`: the suite's commands on a terminal, over the same `run` functions the
 * actions use. Non-secret settings come from the stack file, secrets from the environment (the
 * original's contract, with its `bws run` re-exec), flags override both. Progress goes to stderr,
 * results (the summaries, or `--json`) to stdout. Exit codes: 0 done, 1 failed, 2 bad usage.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigurationError, errorMessage } from '../core/errors.js';
import { maskSecret } from '../core/logger.js';
import { VERSION } from '../core/version.js';
import { parseArgs, type ParsedArgs } from './arguments.js';
import { CliStepIO } from './cli-io.js';
import { CliOutput } from './cli-output.js';
import { findCommand, type Command, type Step } from './commands.js';
import { SECRET_ENV, bwsReexec, missingVariables, missingVariablesError } from './environment-contract.js';
import { commandHelp, initConfigHelp, usage } from './help-text.js';
import { missingInputs, resolveInputs } from './input-resolution.js';
import { exampleStackFile, placeholderSettings, readStackFile, type StackFile } from './stack-file.js';

export interface MainOptions {
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
  /** Where relative paths (the stack file) are resolved. Default: the current directory. */
  readonly cwd?: string;
  /** The script to re-run under `bws run` (default: this process's script). */
  readonly script?: string;
}

/** Runs one command line; resolves to the exit code. */
export async function main(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  options: MainOptions = {},
): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const cwd = options.cwd ?? process.cwd();

  let args: ParsedArgs;
  try {
    args = parseArgs(argv, findCommand);
  } catch (error) {
    stderr.write(`error: ${errorMessage(error)}\n`);
    return 2;
  }
  const out = new CliOutput({ stdout, stderr, verbose: args.verbose || env['NIX_CACHE_DEBUG'] === '1' });
  for (const name of Object.keys(SECRET_ENV)) maskSecret(out, env[name]);
  maskSecret(out, env['BWS_ACCESS_TOKEN']);

  if (args.version) {
    out.result(`nix-cache ${VERSION}`);
    return 0;
  }
  if (args.command === undefined) {
    out.result(usage());
    return args.help ? 0 : 2;
  }
  const stackPath = resolve(cwd, args.stackPath ?? env['NIX_CACHE_STACK'] ?? 'nix-cache.json');
  if (args.command === 'init-config') {
    if (args.help) {
      out.result(initConfigHelp());
      return 0;
    }
    return initConfig(stackPath, args.values['force'] === 'true', out);
  }
  const command = findCommand(args.command);
  if (!command) {
    out.error(`unknown command "${args.command}"`);
    stderr.write(`\n${usage()}\n`);
    return 2;
  }
  if (args.help) {
    out.result(commandHelp(command));
    return 0;
  }

  try {
    return await runCommand(command, args, stackPath, env, out, argv, options.script ?? process.argv[1]);
  } catch (error) {
    out.error(errorMessage(error));
    return 1;
  }
}

function initConfig(path: string, force: boolean, out: CliOutput): number {
  if (existsSync(path) && !force) {
    out.error(`${path} exists already; pass --force to overwrite it`);
    return 1;
  }
  writeFileSync(path, exampleStackFile(), { mode: 0o644 });
  out.result(
    `wrote ${path}: replace the placeholders (stack_name, cloudflare_account_id, cloudflare_zone_id, zone_name, fly_app_name, ` +
      'oidc_github_subject_patterns). Keep it out of git; secrets go in the environment (`nix-cache --help` lists them).',
  );
  return 0;
}

async function runCommand(
  command: Command,
  args: ParsedArgs,
  stackPath: string,
  env: NodeJS.ProcessEnv,
  out: CliOutput,
  argv: readonly string[],
  script: string | undefined,
): Promise<number> {
  const stack: StackFile = readStackFile(stackPath, command.needsStack);
  const ctx = { flags: args.values, stack };
  command.check?.(ctx);
  const steps = command.steps(ctx);

  const missing = missingVariables(
    steps.flatMap((step) => step.needs),
    env,
  );
  if (missing.length > 0) {
    const code = bwsReexec(argv, env, script);
    if (code !== undefined) return code;
    throw missingVariablesError(command.name, missing, Boolean(env['NIX_CACHE_BWS_REEXEC']));
  }

  const placeholders = command.needsStack ? placeholderSettings(stack) : [];
  if (placeholders.length > 0) {
    throw new ConfigurationError(
      `${stackPath} still has the example's placeholders in ${placeholders.join(', ')}: put in your own values (oidc_github_subject_patterns: e.g. repo:your-name/*:*, or [] to turn GitHub OIDC off).`,
    );
  }

  // Every setting is checked before the first step changes anything.
  const problems: string[] = [];
  const promised: Record<string, string> = {};
  for (const step of steps) {
    problems.push(
      ...missingInputs(
        step,
        resolveInputs({ step, flags: args.values, stack, env, previous: promised, logger: out }),
      ),
    );
    for (const output of step.spec.outputs) promised[output.name] = '(from an earlier step)';
  }
  if (problems.length > 0) throw new ConfigurationError(problems.join('\n'));

  const outputs: Record<string, string> = {};
  const perStep: Record<string, Record<string, string>> = {};
  for (const step of steps) {
    const io = await runOne(
      step,
      resolveInputs({ step, flags: args.values, stack, env, previous: outputs, logger: out }),
      env,
      out,
    );
    perStep[step.label] = io.outputs;
    Object.assign(outputs, io.outputs);
    if (!args.json) for (const summary of io.summaries) out.result(summary);
    if (io.failure !== undefined) {
      if (args.json)
        out.result(
          JSON.stringify(
            {
              ok: false,
              command: command.name,
              failed: step.label,
              error: io.failure,
              steps: perStep,
              outputs,
            },
            null,
            2,
          ),
        );
      if (steps.length > 1)
        out.error(
          `nix-cache ${command.name} stopped at ${step.label}; the steps before it are done (run it again when fixed).`,
        );
      return 1;
    }
  }
  if (args.json)
    out.result(JSON.stringify({ ok: true, command: command.name, steps: perStep, outputs }, null, 2));
  return 0;
}

async function runOne(
  step: Step,
  values: Record<string, string | undefined>,
  env: NodeJS.ProcessEnv,
  out: CliOutput,
): Promise<CliStepIO> {
  const io = new CliStepIO(values, { env, logger: out });
  const mode = values['mode'] ? ` (mode ${values['mode']})` : '';
  await out.group(`${step.label}${mode}`, () => step.run(io));
  return io;
}
