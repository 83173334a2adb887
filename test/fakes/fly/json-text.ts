/**
 * A field of a JSON request body as text, for names and messages: a string as it is, a number or
 * boolean in its JSON spelling, an object or array as JSON (never `[object Object]`), and the
 * fallback when the field is absent or null.
 */
export function jsonText(value: unknown, fallback = ''): string {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return JSON.stringify(value);
}
