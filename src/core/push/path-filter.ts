/**
 * The user's own filters on the closure: `include` / `exclude` glob patterns on store path names and
 * `max-path-size`. A pattern matches a path when it matches its base name (`<hash>-<name>`) or its
 * name alone; `*` is any run of characters, `?` one character, `[abc]` / `[!abc]` a class.
 */
import { globToRegExp } from '../glob.js';
import { formatBytes } from '../settings/values.js';

export interface PathFilterOptions {
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  /** Bytes of uncompressed NAR; 0 = no limit. */
  readonly maxPathSize: number;
}

/** Why a path is left out, or undefined when it is kept. */
export type FilterVerdict = string | undefined;

export class PathFilter {
  private readonly include: readonly RegExp[];
  private readonly exclude: ReadonlyArray<{ pattern: string; re: RegExp }>;
  private readonly maxPathSize: number;
  private readonly includeText: string;

  constructor(options: PathFilterOptions) {
    this.include = options.include.map(globToRegExp);
    this.exclude = options.exclude.map((pattern) => ({ pattern, re: globToRegExp(pattern) }));
    this.maxPathSize = options.maxPathSize;
    this.includeText = options.include.join(', ');
  }

  get active(): boolean {
    return this.include.length > 0 || this.exclude.length > 0 || this.maxPathSize > 0;
  }

  /** `baseName` is `<hash>-<name>`, `name` the part after the first dash. */
  verdict(baseName: string, name: string, narSize: number): FilterVerdict {
    const matches = (re: RegExp): boolean => re.test(baseName) || re.test(name);
    if (this.include.length > 0 && !this.include.some(matches))
      return `not matched by include (${this.includeText})`;
    const excluded = this.exclude.find(({ re }) => matches(re));
    if (excluded) return `matched by exclude (${excluded.pattern})`;
    if (this.maxPathSize > 0 && narSize > this.maxPathSize) {
      return `NAR of ${formatBytes(narSize)} is over max-path-size (${formatBytes(this.maxPathSize)})`;
    }
    return undefined;
  }
}
