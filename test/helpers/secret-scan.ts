/**
 * Finds secrets in what a step printed or wrote. A secret counts in every form that could leak:
 * raw, base64 (std and url), URL-encoded, JSON-escaped, and each line of a multi-line secret.
 * `::add-mask::VALUE` lines are how a step hides a value, so they only count as a leak when the
 * value also appears unmasked elsewhere.
 */
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
