/**
 * Pin names for the roots of a push (shared/spec/niks3.md §3.11). `auto` becomes the branch or tag
 * name, sanitised to niks3's `^[a-zA-Z0-9._-]+$`. One root is pinned under the name itself; several
 * roots under `<name>.1`, `<name>.2`, … in the order they were given.
 */
import { ConfigurationError } from '../errors.js';

const MAX_PIN_NAME = 128;

/** A pin name from a git ref name: other characters become `-`, runs collapse, ends trimmed. */
export function sanitisePinName(refName: string): string {
  return refName
    .replace(/^refs\/(heads|tags)\//, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, MAX_PIN_NAME)
    .replace(/[-.]+$/, '');
}

/** The pin base name for the `pin` input value (`auto` reads GITHUB_REF_NAME / GITHUB_REF). */
export function resolvePinName(pin: string, env: NodeJS.ProcessEnv): string {
  if (pin !== 'auto') return pin;
  const ref = env['GITHUB_HEAD_REF'] || env['GITHUB_REF_NAME'] || env['GITHUB_REF'] || '';
  const name = sanitisePinName(ref);
  if (!name) {
    throw new ConfigurationError(
      "Input 'pin' is `auto`, but this run has no branch or tag name (GITHUB_REF_NAME is empty): set `pin` to an explicit name.",
    );
  }
  return name;
}

export function pinNamesFor(base: string, rootCount: number): string[] {
  if (rootCount <= 1) return [base];
  return Array.from({ length: rootCount }, (_, i) => `${base}.${i + 1}`);
}
