/**
 * Finds secrets in what a step printed or wrote. A secret counts in every form that could leak:
 * raw, base64 (std and url), URL-encoded, JSON-escaped, and each line of a multi-line secret.
 * `::add-mask::VALUE` lines are how a step hides a value, so they only count as a leak when the
 * value also appears unmasked elsewhere.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { secretForms } from '../../src/core/logger.js';

export interface Leak {
  readonly where: string;
  readonly secretIndex: number;
  readonly form: string;
}

export function derivedForms(secret: string): string[] {
  const forms = new Set(secretForms(secret));
  for (const line of secret.split(/\r?\n/)) if (line.trim().length >= 8) forms.add(line.trim());
  return [...forms].filter((f) => f.length >= 6);
}

export function findLeaks(secrets: readonly string[], texts: Record<string, string>): Leak[] {
  const leaks: Leak[] = [];
  secrets.forEach((secret, secretIndex) => {
    if (!secret || secret.length < 6) return;
    for (const [where, text] of Object.entries(texts)) {
      const unmasked = text
        .split('\n')
        .filter((line) => !line.startsWith('::add-mask::'))
        .join('\n');
      for (const form of derivedForms(secret)) {
        if (unmasked.includes(form)) {
          leaks.push({ where, secretIndex, form: form === secret ? 'raw' : 'derived' });
          break;
        }
      }
    }
  });
  return leaks;
}

/**
 * Every regular file under `dir` (what a step left in RUNNER_TEMP: the post-build hook, the Nix
 * settings file, the uploader's log and queue), as texts for findLeaks keyed `label/relative path`.
 * Files over 8 MiB are read in part (their first and last 4 MiB).
 */
export function filesUnder(dir: string, label: string): Record<string, string> {
  const texts: Record<string, string> = {};
  const walk = (current: string): void => {
    let names: string[];
    try {
      names = readdirSync(current);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(current, name);
      let stat;
      try {
        stat = statSync(path);
      } catch {
        continue;
      }
      if (stat.isDirectory()) walk(path);
      else if (stat.isFile()) {
        try {
          const buffer = readFileSync(path);
          const text =
            buffer.length > 8 << 20
              ? `${buffer.subarray(0, 4 << 20).toString('utf8')}\n${buffer.subarray(-(4 << 20)).toString('utf8')}`
              : buffer.toString('utf8');
          texts[`${label}/${relative(dir, path)}`] = text;
        } catch {
          // unreadable (a file being replaced): skipped
        }
      }
    }
  };
  walk(dir);
  return texts;
}
