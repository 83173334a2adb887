/**
 * Go's `time.ParseDuration`, with Go's error texts (niks3 puts them in its 400
 * bodies), plus the RFC 3339 time format Go's JSON encoder writes.
 *
 * Syntax (spec §6.1): an optional sign, then one or more `<decimal>[.<fraction>]<unit>`
 * groups, units `ns us µs μs ms s m h`; `0` is the only number allowed without a
 * unit; no days and no spaces.
 */
import { goQuote } from './go-json.js';

const UNIT_NS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1000n,
  µs: 1000n, // U+00B5 micro sign
  μs: 1000n, // U+03BC Greek small letter mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const MAX_INT64 = (1n << 63n) - 1n;

/** A parse failure; `message` is Go's error text, e.g. `time: unknown unit "d" in duration "1d"`. */
export class GoDurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GoDurationError';
  }
}

/** Parses a Go duration; returns nanoseconds. */
export function parseGoDuration(input: string): bigint {
  const invalid = (): GoDurationError => new GoDurationError(`time: invalid duration ${goQuote(input)}`);
  let s = input;
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw invalid();
  let total = 0n;
  while (s !== '') {
    if (!(s[0] === '.' || (s[0]! >= '0' && s[0]! <= '9'))) throw invalid();
    const intMatch = /^\d*/.exec(s)![0];
    s = s.slice(intMatch.length);
    const pre = intMatch !== '';
    let v = pre ? BigInt(intMatch) : 0n;
    if (v > MAX_INT64) throw invalid();
    let frac = '';
    let post = false;
    if (s[0] === '.') {
      s = s.slice(1);
      frac = /^\d*/.exec(s)![0];
      s = s.slice(frac.length);
      post = frac !== '';
    }
    if (!pre && !post) throw invalid();
    let i = 0;
    while (i < s.length && !(s[i] === '.' || (s[i]! >= '0' && s[i]! <= '9'))) i++;
    if (i === 0) throw new GoDurationError(`time: missing unit in duration ${goQuote(input)}`);
    const unitName = s.slice(0, i);
    s = s.slice(i);
    const unit = UNIT_NS[unitName];
    if (unit === undefined) {
      throw new GoDurationError(`time: unknown unit ${goQuote(unitName)} in duration ${goQuote(input)}`);
    }
    if (v > MAX_INT64 / unit) throw invalid();
    v *= unit;
    if (frac !== '') {
      // Go truncates the fraction to what fits in nanoseconds of this unit.
      const scale = 10n ** BigInt(frac.length);
      v += (BigInt(frac) * unit) / scale;
      if (v > MAX_INT64) throw invalid();
    }
    total += v;
    if (total > MAX_INT64) throw invalid();
  }
  return neg ? -total : total;
}

/** Nanoseconds to whole milliseconds, truncated towards zero. */
export function nsToMs(ns: bigint): number {
  return Number(ns / 1_000_000n);
}

/** Nanoseconds to whole seconds, truncated towards zero (niks3 passes durations to SQL as whole seconds). */
export function nsToWholeSeconds(ns: bigint): number {
  return Number(ns / 1_000_000_000n);
}

/**
 * Formats a time as Go's `time.Time` JSON (RFC 3339 with nanoseconds, trailing zeros of
 * the fraction dropped), in UTC: `2026-06-30T12:00:00.123Z`, or `…:00Z` on a whole second.
 */
export function goRfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.?0+Z$/, 'Z');
}

/** RFC 3339 in whole seconds, UTC (`2006-01-02T15:04:05Z`, as pin timestamps are written). */
export function goRfc3339Seconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}
