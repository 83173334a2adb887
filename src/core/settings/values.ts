/** Parsers for the value syntaxes inputs use: Go durations, byte sizes, booleans, URLs. */

const GO_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go duration (`time.ParseDuration`, as niks3 parses older-than) into milliseconds.
 * Returns undefined when the text is not one. Negative durations are refused (niks3 has no use for them).
 */
export function parseGoDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === '0') return 0;
  if (!/^\+?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.test(s)) return undefined;
  let total = 0;
  for (const match of s.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(match[1]) * (GO_UNITS[match[2] ?? ''] ?? NaN);
  }
  return Number.isFinite(total) ? total : undefined;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Parses a byte size such as `2G`, `500MiB`, `1.5g` or `1048576` (binary units). */
export function parseSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  if (!match) return undefined;
  const unit = SIZE_UNITS[(match[2] ?? '').toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.floor(Number(match[1]) * unit);
}

/** Human-readable bytes, binary units: 1536 -> "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/** YAML 1.2 core booleans, as @actions/core's getBooleanInput accepts them. */
export function parseBoolean(text: string): boolean | undefined {
  if (['true', 'True', 'TRUE'].includes(text.trim())) return true;
  if (['false', 'False', 'FALSE'].includes(text.trim())) return false;
  return undefined;
}

/** An absolute http(s) URL with a host, or undefined. Trailing slashes are removed. */
export function parseHttpUrl(text: string): URL | undefined {
  try {
    const url = new URL(text.trim());
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) return undefined;
    if (url.username || url.password) return undefined;
    return url;
  } catch {
    return undefined;
  }
}

/** The URL without a trailing slash, as every base URL in the suite is kept. */
export function normaliseBaseUrl(url: URL | string): string {
  return String(url).replace(/\/+$/, '');
}

/** Splits a multiline input: trimmed lines, blank lines and `#` comments dropped. */
export function parseLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'));
}
