/** The outputs and the job summary of status: a health table and a monthly cost estimate. */
import { Report } from '../report/markdown.js';
import type { CacheStatus } from './cache-status.js';
import type { Prices } from './cost-estimate.js';

const ICON = { ok: '✅ ok', warn: '⚠️ warn', fail: '❌ fail', skipped: '➖ skipped' } as const;

export function statusOutputs(
  status: CacheStatus,
  expectedPublicKey: string | undefined,
): Record<string, string> {
  const publicKey =
    expectedPublicKey && status.publicKeys.includes(expectedPublicKey)
      ? expectedPublicKey
      : (status.publicKeys[0] ?? '');
  return {
    healthy: String(status.healthy),
    'public-key': publicKey,
    'cache-url': status.cacheUrl ?? '',
    objects: status.stats ? String(status.stats.objects) : '',
    bytes: status.stats ? String(status.stats.logicalBytes) : '',
    'monthly-cost': status.cost.total.toFixed(2),
    checks: JSON.stringify(status.checks),
  };
}

export function statusReport(status: CacheStatus, prices: Prices): Report {
  const report = new Report();
  const failed = status.checks.filter((check) => check.status === 'fail').length;
  report.heading(`nix-cache status: ${status.healthy ? 'healthy' : `${failed} check(s) failed`}`);
  report.table(
    ['check', 'result', 'detail'],
    status.checks.map((check) => [check.name, ICON[check.status], check.detail]),
  );
  report.heading('Monthly cost estimate', 3);
  report.table(
    ['item', 'basis', 'USD / month'],
    [
      ...status.cost.lines.map((line) => [line.item, line.basis, `$${line.usd.toFixed(2)}`]),
      ['**total**', '', `**$${status.cost.total.toFixed(2)}**`],
    ],
  );
  report.paragraph(
    `Prices as of ${prices.date} (inputs \`r2-price-per-gb-month\`, \`r2-free-gb\`, \`fly-vm-price-per-month\`, \`neon-price-per-month\`, \`prices-date\`). ${status.cost.notes.join(' ')}`,
  );
  if (status.cacheUrl && status.publicKeys.length > 0) {
    report.details(
      'Use this cache',
      [
        '```',
        `extra-substituters = ${status.cacheUrl}`,
        `extra-trusted-public-keys = ${status.publicKeys.join(' ')}`,
        '```',
      ].join('\n'),
    );
  }
  return report;
}
