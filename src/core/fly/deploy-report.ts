/** The job summary of a deploy: the app, its machine, what changed and how to use the cache. */
import { Report, consumerSnippet } from '../report/markdown.js';
import type { DesiredState } from './desired-state.js';
import type { DeployOutcome, DestroyOutcome } from './deployment.js';
import { describeChecks } from './machine-health.js';
import { describeChange } from './plan.js';

export interface DeployReportInput {
  readonly desired: DesiredState;
  readonly outcome: DeployOutcome;
  readonly cacheUrl: string;
  readonly publicKey: string;
}

export function deployReport(input: DeployReportInput): string {
  const { desired, outcome } = input;
  const machine = outcome.machine;
  const report = new Report().heading(
    `nix-cache deploy: ${desired.app}${outcome.mode === 'plan' ? ' (plan)' : ''}`,
  );
  report.table(
    ['', ''],
    [
      ['App', `${desired.app}${outcome.orgSlug ? ` (organisation ${outcome.orgSlug})` : ''}`],
      ['Server URL', desired.serverUrl],
      ['Region', machine?.region ?? desired.region],
      ['Image', machine?.config?.image ?? desired.image],
      ['Machine', machine ? machine.id : '(none yet)'],
      [
        'Machine state',
        machine
          ? machine.state === 'stopped'
            ? 'stopped (idle; starts on the next request)'
            : machine.state
          : '-',
      ],
      ['Checks', machine ? describeChecks(machine.checks) : '-'],
      [
        'OIDC policy',
        desired.oidcPolicy
          ? oidcSummary(desired)
          : 'none (GitHub OIDC pushes disabled; NIKS3_OIDC_CONFIG not set)',
      ],
    ],
  );
  report.heading(outcome.mode === 'plan' ? 'Planned changes' : 'Changes', 3);
  if (outcome.changes.length === 0) report.paragraph('None: everything was already as desired.');
  else report.list(outcome.changes.map(describeChange));
  report.heading('Use the cache', 3);
  report.code(consumerSnippet(input.cacheUrl, input.publicKey), 'nix');
  return report.toString();
}

function oidcSummary(desired: DesiredState): string {
  const github = desired.oidcPolicy?.providers.github;
  const parts: string[] = [];
  const owners = github?.bound_claims?.repository_owner_id ?? [];
  if (owners.length > 0) parts.push(`owner ids ${owners.join(', ')}`);
  if ((github?.bound_subject ?? []).length > 0)
    parts.push(`subjects ${(github?.bound_subject ?? []).join(', ')}`);
  return `GitHub, audience ${github?.audience ?? ''}; ${parts.join('; ')}`;
}

export function destroyReport(app: string, outcome: DestroyOutcome): string {
  const report = new Report().heading(`nix-cache deploy: destroy ${app}`);
  if (!outcome.changed) report.paragraph(`App \`${app}\` does not exist; nothing to do.`);
  else report.paragraph(`App \`${app}\` was deleted with its machines, IP addresses and secrets.`);
  return report.toString();
}
