import { ConfigurationError } from '../errors.js';
import { maskSecret, type Logger } from '../logger.js';
import type { InputSpec } from './input-spec.js';
import {
  parseBoolean,
  parseGoDuration,
  parseHttpUrl,
  parseLines,
  parseSize,
  normaliseBaseUrl,
} from './values.js';

/** Where raw input values come from: `core.getInput` in an action, flags and env in the CLI. */
export type InputSource = (name: string) => string | undefined;

/** How a value of this input is written, for error messages. */
export function describeAccepted(spec: InputSpec): string {
  switch (spec.type) {
    case 'enum':
      return `one of ${(spec.values ?? []).map((v) => `"${v}"`).join(', ')}`;
    case 'boolean':
      return '"true" or "false"';
    case 'integer':
    case 'number': {
      const kind = spec.type === 'integer' ? 'a whole number' : 'a number';
      if (spec.min !== undefined && spec.max !== undefined) return `${kind} from ${spec.min} to ${spec.max}`;
      if (spec.min !== undefined) return `${kind} of at least ${spec.min}`;
      if (spec.max !== undefined) return `${kind} of at most ${spec.max}`;
      return kind;
    }
    case 'url':
      return 'an absolute http:// or https:// URL without credentials, e.g. "https://cache.example.dev"';
    case 'duration':
      return 'a Go duration such as "720h", "6h", "90m" or "1h30m"';
    case 'size':
      return 'a byte size such as "0" (no limit), "500M", "2G" or "1048576"';
    case 'lines':
      return spec.accepts ?? 'one value per line';
    case 'string':
      return spec.accepts ?? 'a non-empty value';
  }
}

/**
 * Checks one raw, non-empty value against its spec. Returns an error message (naming the input,
 * the value unless secret, and what is accepted), or undefined when the value is fine.
 */
export function checkValue(spec: InputSpec, raw: string): string | undefined {
  const value = raw.trim();
  const shown = spec.secret
    ? '(value hidden)'
    : `"${value.length > 200 ? `${value.slice(0, 200)}…` : value}"`;
  const bad = (why?: string): string =>
    `Input '${spec.name}' has an invalid value ${shown}${why ? ` (${why})` : ''}: expected ${describeAccepted(spec)}.`;
  switch (spec.type) {
    case 'enum':
      return spec.values?.includes(value) ? undefined : bad();
    case 'boolean':
      return parseBoolean(value) === undefined ? bad() : undefined;
    case 'integer':
    case 'number': {
      const ok =
        spec.type === 'integer' ? /^[+-]?\d+$/.test(value) : /^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(value);
      if (!ok) return bad();
      const n = Number(value);
      if (spec.min !== undefined && n < spec.min) return bad('too small');
      if (spec.max !== undefined && n > spec.max) return bad('too large');
      return undefined;
    }
    case 'url':
      return parseHttpUrl(value) ? undefined : bad();
    case 'duration':
      return parseGoDuration(value) === undefined ? bad() : undefined;
    case 'size':
      return parseSize(value) === undefined ? bad() : undefined;
    case 'lines': {
      if (!spec.pattern) return undefined;
      for (const line of parseLines(value)) {
        if (!spec.pattern.test(line)) {
          const shownLine = spec.secret ? '(value hidden)' : `"${line}"`;
          return `Input '${spec.name}' has an invalid line ${shownLine}: expected ${describeAccepted(spec)}.`;
        }
      }
      return undefined;
    }
    case 'string':
      if (spec.pattern && !spec.pattern.test(value)) return bad();
      return undefined;
  }
}

/**
 * Reads an action's inputs once, validating every one of them up front (so a bad value fails
 * before any request, whichever code path would have read it), and masking secrets on sight.
 */
export class InputReader {
  private readonly specs: Map<string, InputSpec>;
  private readonly source: InputSource;

  constructor(specs: readonly InputSpec[], source: InputSource, logger?: Logger) {
    this.specs = new Map(specs.map((spec) => [spec.name, spec]));
    this.source = source;
    const problems: string[] = [];
    for (const spec of specs) {
      const raw = source(spec.name)?.trim() ?? '';
      if (spec.secret && raw && logger) maskSecret(logger, raw);
      if (!raw) {
        if (spec.required) problems.push(missingMessage(spec));
        continue;
      }
      const problem = checkValue(spec, raw);
      if (problem) problems.push(problem);
    }
    if (problems.length > 0) throw new ConfigurationError(problems.join('\n'));
  }

  spec(name: string): InputSpec {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`internal: no input named '${name}' is declared`);
    return spec;
  }

  /** The trimmed value, or the declared default, or undefined. */
  optional(name: string): string | undefined {
    const spec = this.spec(name);
    const raw = this.source(name)?.trim();
    if (raw) return raw;
    return spec.default === undefined || spec.default === '' ? undefined : spec.default;
  }

  required(name: string): string {
    const value = this.optional(name);
    if (value === undefined) throw new ConfigurationError(missingMessage(this.spec(name)));
    return value;
  }

  /** True when the user gave a value (not the default). */
  given(name: string): boolean {
    return Boolean(this.source(name)?.trim());
  }

  url(name: string): string | undefined {
    const value = this.optional(name);
    return value === undefined ? undefined : normaliseBaseUrl(String(parseHttpUrl(value)));
  }

  requiredUrl(name: string): string {
    const value = this.url(name);
    if (value === undefined) throw new ConfigurationError(missingMessage(this.spec(name)));
    return value;
  }

  boolean(name: string): boolean {
    const value = this.optional(name);
    return value === undefined ? false : parseBoolean(value) === true;
  }

  integer(name: string): number {
    const value = this.optional(name);
    if (value === undefined) throw new ConfigurationError(missingMessage(this.spec(name)));
    return Number(value);
  }

  number(name: string): number {
    return this.integer(name);
  }

  enum<T extends string>(name: string): T {
    return this.required(name) as T;
  }

  /** Milliseconds. */
  duration(name: string): number {
    return parseGoDuration(this.required(name)) ?? 0;
  }

  /** Bytes. */
  size(name: string): number {
    return parseSize(this.required(name)) ?? 0;
  }

  lines(name: string): string[] {
    return parseLines(this.optional(name) ?? '');
  }
}

export function missingMessage(spec: InputSpec): string {
  return `Input '${spec.name}' is required but was not given: ${spec.description.replace(/\.$/, '')}. Set it under \`with:\` (for example \`${spec.name}: ${spec.example ?? '…'}\`).`;
}
