/**
 * What a push tells the user: the job summary (roots; paths considered, cached, upstream, filtered,
 * uploaded; NAR and compressed bytes and the ratio; duration and throughput; the largest uploads;
 * the time spent waking the server; a ready nix.conf / flake snippet) and the step outputs.
 */
import { Report, consumerSnippet } from '../report/markdown.js';
import { formatBytes } from '../settings/values.js';
import type { PushSummary } from './push-closure.js';

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** A folded list of paths (the first 200) with why each is there; nothing when there are none. */
function pathDetails<T extends { readonly path: string }>(
  report: Report,
  what: string,
  items: readonly T[],
  reason: (item: T) => string,
): void {
  if (items.length === 0) return;
  report.details(
    `${items.length} path(s) ${what}`,
    items
      .slice(0, 200)
      .map((item) => `- \`${item.path}\`: ${reason(item)}`)
      .join('\n'),
  );
}

export function pushOutputs(summary: PushSummary): Record<string, string> {
  return {
    'store-paths': JSON.stringify(summary.roots),
    pushed: String(summary.uploaded.length),
    'skipped-cached': String(summary.cached.length),
    'skipped-upstream': String(summary.upstream.length),
    'skipped-filtered': String(summary.filtered.length),
    'uploaded-bytes': String(summary.uploadedBytes),
    'nar-bytes': String(summary.narBytes),
    'cache-url': summary.cacheUrl ?? '',
    'public-key': summary.publicKeys[0] ?? '',
  };
}

/** One line for the log: what happened, in numbers. */
export function pushHeadline(summary: PushSummary): string {
  const ratio =
    summary.narBytes > 0 && summary.compressedNarBytes > 0
      ? `, ${((summary.compressedNarBytes / summary.narBytes) * 100).toFixed(0)} % after zstd`
      : '';
  return (
    `${summary.uploaded.length} path(s) pushed (${formatBytes(summary.narBytes)} of NAR${ratio}), ` +
    `${summary.cached.length} already cached, ${summary.upstream.length} served upstream, ${summary.filtered.length} filtered` +
    `${summary.notPushed.length > 0 ? `, ${summary.notPushed.length} NOT pushed` : ''} in ${seconds(summary.durationMs)}.`
  );
}

export function pushReport(summary: PushSummary, serverUrl: string): Report {
  const report = new Report();
  report.heading(summary.ok ? 'nix-cache push' : 'nix-cache push: incomplete');
  report.paragraph(pushHeadline(summary));
  if (!summary.ok)
    report.paragraph(
      `**Problems**\n\n${summary.problems.map((p) => `- ${p.replace(/\n\s*/g, '<br>')}`).join('\n')}`,
    );

  report.heading('Roots', 3);
  report.list(summary.roots.map((root) => `\`${root}\``));

  const throughput =
    summary.uploadMs > 0 && summary.narBytes > 0
      ? `${formatBytes(Math.round(summary.narBytes / (summary.uploadMs / 1000)))}/s of NAR`
      : '—';
  report.heading('Numbers', 3);
  report.table(
    ['', 'value'],
    [
      ['paths in the closure', summary.closureSize],
      ['considered (sent to the server)', summary.considered],
      ['already cached', summary.cached.length],
      ['served upstream (skipped)', summary.upstream.length],
      ['filtered out', summary.filtered.length],
      ['uploaded', summary.uploaded.length],
      ...(summary.notPushed.length > 0 ? [['not pushed', summary.notPushed.length] as [string, number]] : []),
      ['NAR bytes uploaded', formatBytes(summary.narBytes)],
      ['compressed NAR bytes', formatBytes(summary.compressedNarBytes)],
      [
        'compression ratio',
        summary.narBytes > 0 && summary.compressedNarBytes > 0
          ? `${(summary.narBytes / summary.compressedNarBytes).toFixed(2)} : 1`
          : '—',
      ],
      ['bytes stored (all objects)', formatBytes(summary.uploadedBytes)],
      ['build logs uploaded', summary.logsUploaded],
      ['duration', seconds(summary.durationMs)],
      ['upload throughput', throughput],
      ['waiting for a cold server', summary.waitedMs > 0 ? seconds(summary.waitedMs) : 'none'],
      ...(summary.pinned.length > 0
        ? [['pins', summary.pinned.map((p) => p.name).join(', ')] as [string, string]]
        : []),
      ...(summary.verify
        ? [
            [
              'verified at the public URL',
              `${summary.verify.verified.length} of ${summary.verify.verified.length + summary.verify.problems.length} roots`,
            ] as [string, string],
          ]
        : []),
    ],
  );

  const largest = [...summary.uploaded]
    .filter((o) => o.compressedBytes > 0)
    .sort((a, b) => b.compressedBytes - a.compressedBytes)
    .slice(0, 5);
  if (largest.length > 0) {
    report.heading('Largest uploads', 3);
    report.table(
      ['store path', 'NAR', 'compressed'],
      largest.map((o) => [`\`${o.path}\``, formatBytes(o.narSize), formatBytes(o.compressedBytes)]),
    );
  }
  pathDetails(report, 'not pushed', summary.notPushed, (o) => o.reason ?? o.status);
  pathDetails(report, 'filtered out', summary.filtered, (s) => s.reason);
  pathDetails(report, 'served upstream', summary.upstream, (s) => s.reason);
  if (summary.warnings.length > 0) {
    report.heading('Warnings', 3);
    report.list(summary.warnings);
  }
  if (summary.cacheUrl && summary.publicKeys[0]) {
    report.heading('Use this cache', 3);
    report.code(consumerSnippet(summary.cacheUrl, summary.publicKeys.join(' ')), 'nix');
  } else {
    report.paragraph(
      `Server: ${serverUrl}. Set \`cache-url\` (or the server's NIKS3_CACHE_URL) to get a ready nix.conf snippet.`,
    );
  }
  return report;
}
