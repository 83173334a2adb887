/**
 * One declaration per input. From these the suite generates each action.yml and README table,
 * the CLI flags, the validation and the bad-input tests (scripts/gen-actions.ts,
 * test/bad-inputs.test.ts), so none of them can drift from the others.
 */
export type InputType =
  'string' | 'url' | 'enum' | 'boolean' | 'integer' | 'number' | 'duration' | 'size' | 'lines';

export interface InputSpec {
  /** kebab-case, as in `with:`. */
  readonly name: string;
  readonly description: string;
  readonly type: InputType;
  readonly required?: boolean;
  /** The default as written in action.yml (always a string there). */
  readonly default?: string;
  /** How the default is described when it is computed at run time (e.g. "server-url"). */
  readonly defaultText?: string;
  /** Never printed; masked the moment it is read. */
  readonly secret?: boolean;
  /** For 'enum' (matched case-sensitively) and as documentation. */
  readonly values?: readonly string[];
  /** For 'integer' and 'number'. */
  readonly min?: number;
  readonly max?: number;
  /** For 'string' and each entry of 'lines': the value must match. */
  readonly pattern?: RegExp;
  /** Says what `pattern` accepts, for the error message. */
  readonly accepts?: string;
  /** Extra values that must be refused (beyond the ones derived from the type), for tests. */
  readonly invalid?: readonly string[];
  /** A valid example value, for docs and tests. */
  readonly example?: string;
}

export interface OutputSpec {
  readonly name: string;
  readonly description: string;
}

export interface ActionSpec {
  /** Directory name under actions/ and dist/. */
  readonly name: string;
  /** action.yml `name:`. */
  readonly title: string;
  readonly description: string;
  readonly icon: string;
  readonly color: string;
  readonly inputs: readonly InputSpec[];
  readonly outputs: readonly OutputSpec[];
  /** Has a post step (dist/<name>/post.js... built from src/actions/<name>/post.ts). */
  readonly post?: boolean;
  /** When the post step runs (action.yml `post-if`). */
  readonly postIf?: string;
}
