/**
 * A JSON decoder that behaves like Go's `json.NewDecoder(r.Body).Decode(&v)` into a
 * typed struct, which is how niks3 reads every request body (spec §0.3):
 *
 * - only the first JSON value is read; whatever follows it is ignored;
 * - unknown object fields are ignored;
 * - field names match exactly first, then case-insensitively; a later duplicate wins;
 * - `null` leaves a field at its zero value;
 * - a type mismatch (a string for a number, a negative or fractional number for an
 *   unsigned one, …) is an error; like Go, decoding goes on and the first such
 *   error is reported;
 * - errors carry Go's wording, e.g. `unexpected EOF`,
 *   `invalid character '}' looking for beginning of value`,
 *   `json: cannot unmarshal string into Go struct field objectWithRefs.objects.nar_size of type uint64`.
 *
 * Decoding is driven by a small schema ({@link GoType}) that mirrors the Go struct.
 */

/** The Go type a JSON value is decoded into. */
export type GoType =
  | { kind: 'string' }
  | { kind: 'bool' }
  | { kind: 'int'; bits: 32 | 64; unsigned: boolean }
  | { kind: 'ptr'; elem: GoType }
  | { kind: 'slice'; elem: GoType }
  | { kind: 'map'; elem: GoType }
  | { kind: 'struct'; name: string; fields: Readonly<Record<string, GoType>> };

/** Schema constructors. */
export const go = {
  string: { kind: 'string' } as GoType,
  bool: { kind: 'bool' } as GoType,
  int: { kind: 'int', bits: 64, unsigned: false } as GoType,
  uint64: { kind: 'int', bits: 64, unsigned: true } as GoType,
  ptr: (elem: GoType): GoType => ({ kind: 'ptr', elem }),
  slice: (elem: GoType): GoType => ({ kind: 'slice', elem }),
  map: (elem: GoType): GoType => ({ kind: 'map', elem }),
  struct: (name: string, fields: Record<string, GoType>): GoType => ({ kind: 'struct', name, fields }),
};

/** A decode failure; `message` is Go's `err.Error()` text. */
export class GoJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GoJsonError';
  }
}

function goTypeName(t: GoType): string {
  switch (t.kind) {
    case 'string':
      return 'string';
    case 'bool':
      return 'bool';
    case 'int':
      return `${t.unsigned ? 'uint' : 'int'}${t.bits === 64 && !t.unsigned ? '' : t.bits}`;
    case 'ptr':
      return '*' + goTypeName(t.elem);
    case 'slice':
      return '[]' + goTypeName(t.elem);
    case 'map':
      return 'map[string]' + goTypeName(t.elem);
    case 'struct':
      // reflect.Type.String(): struct types carry their package (every request struct is in niks3's `server`).
      return `server.${t.name}`;
  }
}

/** The zero value of a Go type, in its JS form (nil is `null`). */
function zero(t: GoType): unknown {
  switch (t.kind) {
    case 'string':
      return '';
    case 'bool':
      return false;
    case 'int':
      return 0;
    case 'ptr':
    case 'slice':
    case 'map':
      return null;
    case 'struct': {
      const o: Record<string, unknown> = {};
      for (const [name, ft] of Object.entries(t.fields)) o[name] = zero(ft);
      return o;
    }
  }
}

function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return `'"'`;
  const code = c.charCodeAt(0);
  if (code < 0x20) {
    const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };
    return `'${named[c] ?? '\\x' + code.toString(16).padStart(2, '0')}'`;
  }
  return `'${c}'`;
}

interface Ctx {
  /** The innermost struct and the field path from the root, for error messages. */
  struct: string | undefined;
  path: string[];
  firstTypeError: GoJsonError | undefined;
}

class Parser {
  private i = 0;
  private readonly s: string;

  constructor(s: string) {
    this.s = s;
  }

  private ws(): void {
    while (this.i < this.s.length && ' \t\r\n'.includes(this.s[this.i]!)) this.i++;
  }

  private eof(): never {
    throw new GoJsonError('unexpected EOF');
  }

  private bad(context: string): never {
    const c = this.s[this.i];
    if (c === undefined) this.eof();
    throw new GoJsonError(`invalid character ${quoteChar(c)} ${context}`);
  }

  /** Parses one value from the start; an empty input is Go's `EOF`. */
  parseTop(): RawValue {
    this.ws();
    if (this.i >= this.s.length) throw new GoJsonError('EOF');
    return this.value();
  }

  private value(): RawValue {
    this.ws();
    const c = this.s[this.i];
    if (c === undefined) this.eof();
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return { type: 'string', value: this.string() };
    if (c === '-' || (c >= '0' && c <= '9')) return { type: 'number', literal: this.number() };
    if (c === 't') return this.literal('true', { type: 'bool', value: true });
    if (c === 'f') return this.literal('false', { type: 'bool', value: false });
    if (c === 'n') return this.literal('null', { type: 'null' });
    this.bad('looking for beginning of value');
  }

  private literal(word: string, v: RawValue): RawValue {
    for (let k = 0; k < word.length; k++) {
      const c = this.s[this.i + k];
      if (c === undefined) {
        this.i += k;
        this.eof();
      }
      if (c !== word[k]) {
        this.i += k;
        this.bad(`in literal ${word} (expecting ${quoteChar(word[k]!)})`);
      }
    }
    this.i += word.length;
    return v;
  }

  private number(): string {
    const start = this.i;
    if (this.s[this.i] === '-') this.i++;
    const digit = (): boolean => this.i < this.s.length && this.s[this.i]! >= '0' && this.s[this.i]! <= '9';
    if (!digit()) this.bad('in numeric literal');
    if (this.s[this.i] === '0') this.i++;
    else while (digit()) this.i++;
    if (this.s[this.i] === '.') {
      this.i++;
      if (!digit()) this.bad('after decimal point in numeric literal');
      while (digit()) this.i++;
    }
    if (this.s[this.i] === 'e' || this.s[this.i] === 'E') {
      this.i++;
      if (this.s[this.i] === '+' || this.s[this.i] === '-') this.i++;
      if (!digit()) this.bad('in exponent of numeric literal');
      while (digit()) this.i++;
    }
    return this.s.slice(start, this.i);
  }

  private string(): string {
    this.i++; // opening quote
    let out = '';
    for (;;) {
      const c = this.s[this.i];
      if (c === undefined) this.eof();
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c === '\\') {
        const e = this.s[this.i + 1];
        if (e === undefined) this.eof();
        const simple: Record<string, string> = {
          '"': '"',
          '\\': '\\',
          '/': '/',
          b: '\b',
          f: '\f',
          n: '\n',
          r: '\r',
          t: '\t',
        };
        if (e in simple) {
          out += simple[e];
          this.i += 2;
          continue;
        }
        if (e === 'u') {
          const hex = this.s.slice(this.i + 2, this.i + 6);
          for (let k = 0; k < 4; k++) {
            const h = hex[k];
            if (h === undefined) this.eof();
            if (!/[0-9a-fA-F]/.test(h)) {
              this.i += 2 + k;
              this.bad('in \\u hexadecimal character escape');
            }
          }
          out += String.fromCharCode(parseInt(hex, 16));
          this.i += 6;
          continue;
        }
        this.i++;
        this.bad('in string escape code');
      }
      if (c.charCodeAt(0) < 0x20) this.bad('in string literal');
      out += c;
      this.i++;
    }
  }

  private object(): RawValue {
    this.i++;
    const entries: Array<[string, RawValue]> = [];
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return { type: 'object', entries };
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] === undefined) this.eof();
      if (this.s[this.i] !== '"') this.bad('looking for beginning of object key string');
      const key = this.string();
      this.ws();
      if (this.s[this.i] === undefined) this.eof();
      if (this.s[this.i] !== ':') this.bad('after object key');
      this.i++;
      entries.push([key, this.value()]);
      this.ws();
      const c = this.s[this.i];
      if (c === undefined) this.eof();
      if (c === ',') {
        this.i++;
        continue;
      }
      if (c === '}') {
        this.i++;
        return { type: 'object', entries };
      }
      this.bad('after object key:value pair');
    }
  }

  private array(): RawValue {
    this.i++;
    const items: RawValue[] = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return { type: 'array', items };
    }
    for (;;) {
      items.push(this.value());
      this.ws();
      const c = this.s[this.i];
      if (c === undefined) this.eof();
      if (c === ',') {
        this.i++;
        continue;
      }
      if (c === ']') {
        this.i++;
        return { type: 'array', items };
      }
      this.bad('after array element');
    }
  }
}

type RawValue =
  | { type: 'object'; entries: Array<[string, RawValue]> }
  | { type: 'array'; items: RawValue[] }
  | { type: 'string'; value: string }
  | { type: 'number'; literal: string }
  | { type: 'bool'; value: boolean }
  | { type: 'null' };

function typeError(ctx: Ctx, what: string, t: GoType, topName: string): void {
  if (ctx.firstTypeError !== undefined) return;
  const msg =
    ctx.struct === undefined || ctx.path.length === 0
      ? `json: cannot unmarshal ${what} into Go value of type ${topName}`
      : `json: cannot unmarshal ${what} into Go struct field ${ctx.struct}.${ctx.path.join('.')} of type ${goTypeName(t)}`;
  ctx.firstTypeError = new GoJsonError(msg);
}

function describe(v: RawValue): string {
  return v.type === 'bool' ? 'bool' : v.type;
}

function convert(v: RawValue, t: GoType, current: unknown, ctx: Ctx, topName: string): unknown {
  if (v.type === 'null') {
    // Go: null sets pointers, slices and maps to nil, and leaves everything else unchanged.
    return t.kind === 'ptr' || t.kind === 'slice' || t.kind === 'map' ? null : current;
  }
  switch (t.kind) {
    case 'ptr':
      return convert(v, t.elem, current ?? zero(t.elem), ctx, topName);
    case 'string':
      if (v.type === 'string') return v.value;
      typeError(ctx, describe(v), t, topName);
      return current;
    case 'bool':
      if (v.type === 'bool') return v.value;
      typeError(ctx, describe(v), t, topName);
      return current;
    case 'int': {
      if (v.type !== 'number') {
        typeError(ctx, describe(v), t, topName);
        return current;
      }
      const lit = v.literal;
      const ok = /^-?\d+$/.test(lit);
      let big: bigint | undefined;
      if (ok) big = BigInt(lit);
      const min = t.unsigned ? 0n : -(1n << BigInt(t.bits - 1));
      const max = t.unsigned ? (1n << BigInt(t.bits)) - 1n : (1n << BigInt(t.bits - 1)) - 1n;
      if (big === undefined || big < min || big > max) {
        typeError(ctx, `number ${lit}`, t, topName);
        return current;
      }
      return Number(big);
    }
    case 'slice': {
      if (v.type !== 'array') {
        typeError(ctx, describe(v), t, topName);
        return current;
      }
      return v.items.map((item) => convert(item, t.elem, zero(t.elem), ctx, topName));
    }
    case 'map': {
      if (v.type !== 'object') {
        typeError(ctx, describe(v), t, topName);
        return current;
      }
      // Go keeps the entries already in a map and adds to it.
      const out = new Map<string, unknown>(current instanceof Map ? (current as Map<string, unknown>) : []);
      for (const [k, item] of v.entries)
        out.set(k, convert(item, t.elem, out.get(k) ?? zero(t.elem), ctx, topName));
      return out;
    }
    case 'struct': {
      if (v.type !== 'object') {
        typeError(ctx, describe(v), t, topName);
        return current;
      }
      const out = { ...(current as Record<string, unknown>) };
      const names = Object.keys(t.fields);
      for (const [k, item] of v.entries) {
        const name = names.find((n) => n === k) ?? names.find((n) => n.toLowerCase() === k.toLowerCase());
        if (name === undefined) continue; // unknown fields are ignored
        const saved = { struct: ctx.struct, path: ctx.path };
        ctx.struct = t.name;
        ctx.path = [...ctx.path, name];
        out[name] = convert(item, t.fields[name]!, out[name], ctx, topName);
        ctx.struct = saved.struct;
        ctx.path = saved.path;
      }
      return out;
    }
  }
}

/**
 * Decodes the first JSON value of `body` into the Go type `t`.
 * `topName` is the Go name of the target type, e.g. `server.createPendingClosureRequest`.
 * Maps come back as `Map`s, nil as `null`.
 */
export function decodeGoJson<T>(body: string | Buffer, t: GoType, topName: string): T {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const raw = new Parser(text).parseTop();
  const ctx: Ctx = { struct: undefined, path: [], firstTypeError: undefined };
  const out = convert(raw, t, zero(t), ctx, topName);
  if (ctx.firstTypeError !== undefined) throw ctx.firstTypeError;
  return out as T;
}

/** Go's `%q` quoting of a string (`strconv.Quote`). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\x07') out += '\\a';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\v') out += '\\v';
    else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).padStart(2, '0');
    else if (code === 0xfffd) out += '\\ufffd';
    else out += ch;
  }
  return out + '"';
}

/**
 * Encodes a value as Go's `json.Encoder` does: compact, map keys sorted, `<`, `>`
 * and `&` escaped, and a trailing newline.
 */
export function encodeGoJson(value: unknown): string {
  const sortKeys = (v: unknown): unknown => {
    if (v instanceof Map) {
      const o: Record<string, unknown> = {};
      for (const k of [...(v as Map<string, unknown>).keys()].sort())
        o[k] = sortKeys((v as Map<string, unknown>).get(k));
      return o;
    }
    if (Array.isArray(v)) return v.map(sortKeys);
    if (v !== null && typeof v === 'object') {
      // Plain objects stand for Go structs: their field order is kept.
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) o[k] = sortKeys(x);
      return o;
    }
    return v;
  };
  const json = JSON.stringify(sortKeys(value))
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
  return json + '\n';
}
