import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
// @ts-expect-error: a plain JavaScript build script without types
import { lazyUndici } from '../../scripts/lazy-undici.mjs';

type Rewrite = (source: string) => { source: string; rewritten: number };
const rewrite = lazyUndici as Rewrite;

const declaration =
  '// EXTERNAL MODULE: ./node_modules/undici/index.js\nvar undici = __nccwpck_require__(6752);';

/** Runs a tiny bundle: `__nccwpck_require__` counts how often undici's module is evaluated. */
function run(source: string): { loads: number; value: unknown } {
  let loads = 0;
  const require = (): unknown => {
    loads += 1;
    return { kT: class ProxyAgent {}, fetch: () => 'fetched' };
  };
  const value: unknown = runInNewContext(`${source}\nuseIt`, { __nccwpck_require__: require });
  return { loads, value };
}

describe('lazyUndici (bundle.mjs)', () => {
  it('requires undici on the first use of ProxyAgent when nothing else of it is used', () => {
    const bundle = `${declaration}\n// see https://github.com/nodejs/undici/pull/907\nconst channel = 'undici:client:connected';\nfunction useIt() { return new undici/* ProxyAgent */.kT({}); }`;
    const { source, rewritten } = rewrite(bundle);
    expect(rewritten).toBe(1);
    const { loads, value } = run(source);
    expect(loads).toBe(0);
    expect((value as () => object)()).toBeInstanceOf(Object);
  });

  it('leaves the bundle as it is when another export of undici is used', () => {
    const bundle = `${declaration}\nfunction useIt() { return [new undici/* ProxyAgent */.kT({}), (0,undici.fetch)('x')]; }`;
    const { source, rewritten } = rewrite(bundle);
    expect(rewritten).toBe(0);
    expect(source).toBe(bundle);
    expect(run(source).loads).toBe(1);
  });

  it('was applied to the committed push bundle, and not to gc (which fetches through undici)', () => {
    const push = readFileSync(new URL('../../dist/push/index.js', import.meta.url), 'utf8');
    const gc = readFileSync(new URL('../../dist/gc/index.js', import.meta.url), 'utf8');
    expect(push).toContain('required on first use: scripts/lazy-undici.mjs');
    expect(rewrite(push).rewritten).toBe(0);
    expect(gc).not.toContain('required on first use');
  });
});
