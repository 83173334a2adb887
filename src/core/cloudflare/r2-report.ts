/**
 * The job summary of a provision run: one table of the resources (before, after, what changed),
 * then warnings, notes, the checks that ran, and the plan as JSON.
 */
import { Report } from '../report/markdown.js';
import {
  DESIRED_MIN_TLS,
  domainStatusWord,
  type ActualDomain,
  type R2Actual,
  type R2Change,
  type R2Config,
  type R2Plan,
} from './r2-model.js';
import { describeChange } from './r2-planner.js';

export interface CheckLine {
  readonly name: string;
  readonly result: string;
}

export interface ProvisionReportInput {
  readonly config: R2Config;
  readonly zoneId: string | undefined;
  readonly actual: R2Actual | undefined;
  readonly plan: R2Plan | undefined;
  /** The changes made (apply/destroy) or that apply would make (plan). */
  readonly changes: readonly R2Change[];
  /** The custom domain after the run (apply), when read. */
  readonly domainAfter: ActualDomain | undefined;
  readonly checks: readonly CheckLine[];
  readonly failure: string | undefined;
}

function bucketState(
  location: string | undefined,
  storageClass: string | undefined,
  jurisdiction: string,
): string {
  return `jurisdiction ${jurisdiction}, location ${(location ?? '?').toLowerCase()}, ${storageClass ?? '?'}`;
}

function domainState(domain: ActualDomain): string {
  return `${domain.enabled ? 'enabled' : 'disabled'}, min TLS ${domain.minTLS ?? '?'}, zone ${domain.zoneId ?? '?'}, ownership ${domain.status.ownership}, ssl ${domain.status.ssl}`;
}

function changesOf(changes: readonly R2Change[], resource: R2Change['resource']): string {
  const lines = changes.filter((c) => c.resource === resource).map(describeChange);
  return lines.length > 0 ? lines.join('; ') : 'no change';
}

export function provisionReport(input: ProvisionReportInput): string {
  const { config, actual, plan } = input;
  const mode = config.mode;
  const verb = mode === 'plan' ? 'would change' : 'changed';
  const report = new Report().heading(`nix-cache provision (${mode})`);
  if (input.failure) report.paragraph(`**Failed:** ${input.failure}`);
  if (!actual) return report.toString(); // failed before anything was read

  const bucketBefore = actual?.bucket
    ? bucketState(actual.bucket.location, actual.bucket.storageClass, actual.bucket.jurisdiction)
    : actual
      ? 'absent'
      : '?';
  let bucketAfter: string;
  if (mode === 'destroy') {
    bucketAfter = !actual?.bucket ? 'absent' : config.deleteData ? 'deleted' : `${bucketBefore} (kept)`;
  } else {
    bucketAfter = bucketState(
      // A new bucket with a jurisdiction gets no hint: the jurisdiction decides where it lives.
      actual?.bucket?.location ?? config.location ?? 'set by the jurisdiction',
      config.storageClass,
      config.jurisdiction,
    );
  }
  const domainBefore = actual?.domain ? domainState(actual.domain) : actual ? 'absent' : '?';
  let domainAfter: string;
  if (mode === 'destroy') domainAfter = 'absent';
  else if (input.domainAfter) domainAfter = domainState(input.domainAfter);
  else domainAfter = `enabled, min TLS ${DESIRED_MIN_TLS}, zone ${input.zoneId ?? '?'}`;

  report.table(
    ['resource', 'name', 'before', mode === 'plan' ? 'after apply' : 'after', verb],
    [
      ['R2 bucket', config.bucketName, bucketBefore, bucketAfter, changesOf(input.changes, 'r2-bucket')],
      [
        'R2 custom domain',
        config.cacheHost,
        domainBefore,
        domainAfter,
        changesOf(input.changes, 'r2-custom-domain'),
      ],
    ],
  );
  if (input.changes.length === 0 && !input.failure) {
    report.paragraph(
      mode === 'plan'
        ? 'No changes: apply would write nothing.'
        : 'No changes: everything was already as asked.',
    );
  }
  if (mode !== 'destroy') {
    report.paragraph(`Custom domain status: **${domainStatusWord(input.domainAfter ?? actual?.domain)}**`);
  }
  if (plan && plan.blockers.length > 0) report.heading('Blocked', 3).list([...plan.blockers]);
  if (plan && plan.warnings.length > 0) report.heading('Warnings', 3).list([...plan.warnings]);
  if (plan && plan.notes.length > 0) report.heading('Notes', 3).list([...plan.notes]);
  if (input.checks.length > 0) {
    report.heading('Checks', 3).table(
      ['check', 'result'],
      input.checks.map((c) => [c.name, c.result]),
    );
  }
  report.details(
    mode === 'plan' ? 'Plan (JSON)' : 'Changes (JSON)',
    '```json\n' + JSON.stringify(input.changes, null, 2) + '\n```',
  );
  return report.toString();
}
