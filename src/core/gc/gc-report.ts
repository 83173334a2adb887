/** The outputs and the job summary of a GC run: phases, stats, and what was freed. */
import { formatBytes } from '../settings/values.js';
import { Report } from '../report/markdown.js';
import type { CacheStats } from '../niks3/api-types.js';
import { GC_STAT_FIELDS, phaseProgress, type GcOutcome } from './gc-run.js';
import type { PinPruning } from './pin-pruning.js';

export interface GcResult {
  readonly serverUrl: string;
  readonly outcome: GcOutcome;
  readonly pruning: PinPruning | undefined;
  /** `/api/cache-stats` before and after the run (undefined on servers without it). */
  readonly before: CacheStats | undefined;
  readonly after: CacheStats | undefined;
}

/** Bytes and objects that stopped being live, when both cache-stats readings exist. */
export function freed(result: GcResult): { objects: number; bytes: number } | undefined {
  if (!result.before || !result.after) return undefined;
  return {
    objects: Math.max(0, result.before.objects - result.after.objects),
    bytes: Math.max(0, result.before.logicalBytes - result.after.logicalBytes),
  };
}

/** Output name -> value (every stat field as its own output, kebab-case). */
export function gcOutputs(result: GcResult): Record<string, string> {
  const { outcome } = result;
  const outputs: Record<string, string> = {
    state: outcome.state,
    phase: outcome.phase ?? '',
    duration: String(Math.round(outcome.durationMs / 1000)),
    followed: String(outcome.followed),
    stats: JSON.stringify(outcome.stats),
    'pins-pruned': JSON.stringify((result.pruning?.pruned ?? []).map((pin) => pin.name)),
    'freed-bytes': freed(result)?.bytes.toString() ?? '',
  };
  for (const field of GC_STAT_FIELDS) outputs[field.replace(/_/g, '-')] = String(outcome.stats[field]);
  return outputs;
}

const STAT_LABELS: Record<(typeof GC_STAT_FIELDS)[number], string> = {
  failed_uploads_deleted: 'failed upload sessions removed',
  old_closures_deleted: 'closures dropped (older than older-than, not pinned)',
  objects_marked_for_deletion: 'unreachable objects marked for deletion',
  objects_deleted_after_grace_period: 'objects deleted from the bucket (grace period over)',
  objects_failed_to_delete: 'objects that could not be deleted (kept, retried next run)',
};

export function gcReport(result: GcResult): Report {
  const { outcome } = result;
  const report = new Report();
  const verdict =
    outcome.state === 'succeeded'
      ? 'succeeded'
      : outcome.state === 'failed'
        ? `failed in phase ${outcome.phase ?? '(before the first phase)'}`
        : outcome.timedOut
          ? 'still running when the wait ended (it goes on on the server)'
          : 'started (not waited for)';
  report.heading(`nix-cache gc: ${verdict}`);
  const seconds = Math.round(outcome.durationMs / 1000);
  report.table(
    ['', ''],
    [
      ['server', result.serverUrl],
      ['older-than', outcome.params.olderThan],
      ['failed-uploads-older-than (grace period)', outcome.params.failedUploadsOlderThan],
      ['force', outcome.params.force ? 'yes (no grace period)' : 'no'],
      ['duration', `${seconds} s`],
      ...(outcome.startedAt ? [['started', outcome.startedAt]] : []),
      ...(outcome.finishedAt ? [['finished', outcome.finishedAt]] : []),
    ],
  );
  if (outcome.followed) {
    report.paragraph(
      "> A garbage collection with other parameters was already running; this step followed it to its end instead of starting another. The parameters above are that run's.",
    );
  }
  if (outcome.error) report.paragraph(`**Error:** ${outcome.error}`);

  report.heading('Phases', 3);
  report.table(
    ['phase', 'status'],
    phaseProgress(outcome).map((entry) => [`\`${entry.phase}\``, entry.status]),
  );

  report.heading('Stats', 3);
  report.table(
    ['stat', 'count'],
    GC_STAT_FIELDS.map((field) => [`${STAT_LABELS[field]} (\`${field}\`)`, outcome.stats[field]]),
  );

  report.heading('Freed', 3);
  const items: string[] = [];
  const amount = freed(result);
  if (amount && result.before && result.after) {
    items.push(
      `${amount.objects} objects, ${formatBytes(amount.bytes)} (logical NAR size) are no longer live: ` +
        `${result.before.objects} objects / ${formatBytes(result.before.logicalBytes)} before, ` +
        `${result.after.objects} / ${formatBytes(result.after.logicalBytes)} after`,
    );
  } else {
    items.push(
      'the server has no `/api/cache-stats` (niks3 newer than v1.7.0 has it), so the freed size is not known',
    );
  }
  items.push(
    `${outcome.stats.old_closures_deleted} closures and ${outcome.stats.failed_uploads_deleted} failed upload sessions removed`,
  );
  items.push(`${outcome.stats.objects_deleted_after_grace_period} objects deleted from the bucket`);
  if (outcome.stats.objects_marked_for_deletion > 0 && !outcome.params.force) {
    items.push(
      `${outcome.stats.objects_marked_for_deletion} objects were marked; they are deleted by the first GC after the grace period (${outcome.params.failedUploadsOlderThan})`,
    );
  }
  report.list(items);

  if (result.pruning) {
    report.heading('Pins pruned', 3);
    if (result.pruning.pruned.length === 0) {
      report.paragraph(
        `No pin is named after a deleted branch or tag (${result.pruning.branches} branches, ${result.pruning.tags} tags, ${result.pruning.kept.length} pins kept).`,
      );
    } else {
      report.table(
        ['pin', 'store path'],
        result.pruning.pruned.map((pin) => [pin.name, `\`${pin.storePath}\``]),
      );
      report.paragraph(`${result.pruning.kept.length} pins kept.`);
    }
  }
  return report;
}
