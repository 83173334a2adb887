/**
 * A fly.toml equivalent to the deployed app, as the original stack rendered it from its template,
 * for people who also use flyctl (`fly deploy --ha=false` with it reproduces the same machine).
 * `fly deploy`, `fly scale` and `fly secrets set` keep the machine's existing metadata, so our
 * stored config hash survives them: a later nix-cache deploy therefore compares the live config
 * itself (guest, env, services, checks, files, init; see config-drift.ts) and re-applies only when
 * it differs from the desired one.
 */
import type { MachineConfig } from './machine-config.js';

export interface FlyTomlInput {
  readonly app: string;
  readonly region: string;
  readonly config: MachineConfig;
}

/** A TOML basic string (TOML's escapes are a subset of JSON's for the characters we meet). */
function str(value: string): string {
  return JSON.stringify(value);
}

function goSeconds(duration: string): number {
  const match = /^(\d+)s$/.exec(duration);
  return match ? Number(match[1]) : 30;
}

export function renderFlyToml(input: FlyTomlInput): string {
  const { config } = input;
  const service = config.services[0];
  const lines: string[] = [
    '# Rendered by nix-cache deploy: the niks3 app as deployed through the Machines API.',
    '# With flyctl: `fly deploy --ha=false` (one machine). Secrets are set separately (`fly secrets`).',
    '',
    `app = ${str(input.app)}`,
    `primary_region = ${str(input.region)}`,
    `kill_signal = ${str(config.stop_config?.signal ?? 'SIGTERM')}`,
    `kill_timeout = ${goSeconds(config.stop_config?.timeout ?? '30s')}`,
    `swap_size_mb = ${config.init?.swap_size_mb ?? 0}`,
    '',
    '[build]',
    `  image = ${str(config.image)}`,
    '',
    '[deploy]',
    '  strategy = "rolling"',
    '',
    '[env]',
  ];
  // flyctl adds FLY_PROCESS_GROUP and PRIMARY_REGION by itself.
  for (const [name, value] of Object.entries(config.env).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (name === 'FLY_PROCESS_GROUP' || name === 'PRIMARY_REGION') continue;
    lines.push(`  ${name} = ${str(value)}`);
  }
  for (const file of config.files ?? []) {
    lines.push('', '[[files]]', `  guest_path = ${str(file.guest_path)}`);
    if (file.secret_name) lines.push(`  secret_name = ${str(file.secret_name)}`);
  }
  if (service) {
    const autostop =
      service.autostop === true
        ? 'stop'
        : service.autostop === false
          ? 'off'
          : String(service.autostop ?? 'off');
    lines.push(
      '',
      '[http_service]',
      `  internal_port = ${service.internal_port}`,
      `  force_https = ${service.ports.some((p) => p.force_https === true)}`,
      `  auto_stop_machines = ${str(autostop)}`,
      `  auto_start_machines = ${service.autostart === true}`,
      `  min_machines_running = ${service.min_machines_running ?? 0}`,
    );
    if (service.concurrency) {
      lines.push(
        '',
        '  [http_service.concurrency]',
        `    type = ${str(service.concurrency.type)}`,
        `    soft_limit = ${service.concurrency.soft_limit}`,
        `    hard_limit = ${service.concurrency.hard_limit}`,
      );
    }
    for (const check of service.checks ?? []) {
      lines.push(
        '',
        '  [[http_service.checks]]',
        `    grace_period = ${str(check.grace_period)}`,
        `    interval = ${str(check.interval)}`,
      );
      if (check.method) lines.push(`    method = ${str(check.method)}`);
      lines.push(`    timeout = ${str(check.timeout)}`);
      if (check.path) lines.push(`    path = ${str(check.path)}`);
    }
  }
  if (config.restart) {
    lines.push('', '[[restart]]', `  policy = ${str(config.restart.policy)}`);
    if (config.restart.max_retries !== undefined) lines.push(`  retries = ${config.restart.max_retries}`);
  }
  lines.push(
    '',
    '[[vm]]',
    `  cpu_kind = ${str(config.guest.cpu_kind)}`,
    `  cpus = ${config.guest.cpus}`,
    `  memory = ${str(`${config.guest.memory_mb}mb`)}`,
    '',
  );
  return lines.join('\n');
}
