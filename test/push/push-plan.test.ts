/** Unit tests of the push planning pieces: sessions, objects, filters, the byte budget, pin names. */
import type { PathInfo } from '../../src/core/nix/path-info.js';
import { ByteBudget } from '../../src/core/push/byte-budget.js';
import { partSizeFor } from '../../src/core/push/nar-upload.js';
import { globToRegExp } from '../../src/core/glob.js';
import { PathFilter } from '../../src/core/push/path-filter.js';
import { pinNamesFor, resolvePinName, sanitisePinName } from '../../src/core/push/pin-names.js';
import { pathObjects, planPush, sessionObjects } from '../../src/core/push/push-plan.js';

const hash = (c: string): string => c.repeat(32);
const path = (c: string, name: string): string => `/nix/store/${hash(c)}-${name}`;

function info(p: string, refs: string[] = [], narSize = 100): PathInfo {
  return { path: p, narHash: Buffer.alloc(32, p.charCodeAt(11)), narSize, references: refs, signatures: [] };
}

// app -> lib -> (glibc: upstream) -> gcc-lib; app -> data (excluded) -> asset
const GLIBC = path('1', 'glibc');
const GCCLIB = path('2', 'gcc-lib');
const LIB = path('3', 'lib');
const ASSET = path('4', 'asset');
const DATA = path('5', 'data');
const APP = path('6', 'app');
const infos = [
  info(GCCLIB),
  info(GLIBC, [GCCLIB, GLIBC]),
  info(LIB, [GLIBC]),
  info(ASSET),
  info(DATA, [ASSET]),
  info(APP, [LIB, DATA, APP]),
];

describe('planPush', () => {
  it('one session per root; pushed paths below a skipped path get sessions of their own', () => {
    const plan = planPush({
      roots: [APP, APP],
      infos,
      filter: new PathFilter({ include: [], exclude: ['data'], maxPathSize: 0 }),
      upstream: new Map([[GLIBC, 'signed by cache.nixos.org-1']]),
    });
    expect(plan.roots).toEqual([APP]);
    expect([...plan.push.keys()].sort()).toEqual([ASSET, GCCLIB, LIB, APP].sort());
    expect(plan.upstream.map((u) => u.path)).toEqual([GLIBC]);
    expect(plan.filtered).toEqual([{ path: DATA, narSize: 100, reason: 'matched by exclude (data)' }]);
    expect(plan.sessions.map((s) => [s.root, [...s.members].sort(), s.derived])).toEqual(
      [
        [APP, [APP, LIB].sort(), false],
        [GCCLIB, [GCCLIB], true],
        [ASSET, [ASSET], true],
      ].sort((a, b) => (a[2] === b[2] ? 0 : a[2] ? 1 : -1)),
    );
  });

  it('a narinfo references its references (skipped ones too), its NAR and its listing, never itself', () => {
    const plan = planPush({ roots: [APP], infos });
    const app = plan.push.get(APP);
    expect(app).toBeDefined();
    const objects = pathObjects(app!);
    expect(objects.map((o) => o.type)).toEqual(['narinfo', 'nar', 'listing']);
    expect(objects[0]?.refs).toEqual([
      `${hash('3')}.narinfo`,
      `${hash('5')}.narinfo`,
      app!.narKey,
      `${hash('6')}.ls`,
    ]);
    expect(objects[1]).toMatchObject({ nar_size: 100 });
    const all = sessionObjects(plan.sessions[0]!, plan);
    expect(new Set(all.map((o) => o.key)).size).toBe(all.length);
    expect(all.length).toBe(6 * 3);
  });
});

describe('PathFilter', () => {
  it('matches globs on the base name or the name', () => {
    expect(globToRegExp('*-doc').test('abc-foo-doc')).toBe(true);
    expect(globToRegExp('foo-?.[0-9]').test('foo-1.2')).toBe(true);
    expect(globToRegExp('[!a]*').test('abc')).toBe(false);
    const filter = new PathFilter({ include: ['hello*'], exclude: ['*-man'], maxPathSize: 1000 });
    expect(filter.verdict(`${hash('a')}-hello-2.12`, 'hello-2.12', 10)).toBeUndefined();
    expect(filter.verdict(`${hash('a')}-hello-man`, 'hello-man', 10)).toMatch(/exclude/);
    expect(filter.verdict(`${hash('a')}-glibc`, 'glibc', 10)).toMatch(/include/);
    expect(filter.verdict(`${hash('a')}-hello`, 'hello', 5000)).toMatch(/over max-path-size \(1000 B\)/);
  });
});

describe('ByteBudget', () => {
  it('never hands out more than it has, first come first served, clamping huge requests', async () => {
    const budget = new ByteBudget(100);
    const a = await budget.acquire(60);
    let bDone = false;
    const b = budget.acquire(60).then((release) => {
      bDone = true;
      return release;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(bDone).toBe(false);
    expect(budget.inUse).toBe(60);
    a();
    const releaseB = await b;
    expect(budget.inUse).toBe(60);
    releaseB();
    const huge = await budget.acquire(10_000);
    expect(budget.inUse).toBe(100);
    huge();
    huge();
    expect(budget.inUse).toBe(0);
  });

  it('gives back part of a grant and wakes a waiter that now fits', async () => {
    const budget = new ByteBudget(100);
    const a = await budget.acquire(90);
    let granted = false;
    const b = budget.acquire(50).then((release) => {
      granted = true;
      return release;
    });
    a(40);
    expect(budget.inUse).toBe(90);
    expect(await b.then(() => granted)).toBe(true);
    a(60); // keeping more than is held changes nothing
    expect(budget.inUse).toBe(90);
    a();
    (await b)();
    expect(budget.inUse).toBe(0);
  });
});

describe('part sizes and pin names', () => {
  it('uses 10 MiB parts up to ~88 GiB, then multiples of 16 MiB', () => {
    expect(partSizeFor(11 * 1024 * 1024)).toBe(10 * 1024 * 1024);
    expect(partSizeFor(115 * 1024 ** 3)).toBe(16 * 1024 * 1024);
    expect(partSizeFor(1024 ** 4)).toBe(128 * 1024 * 1024);
  });

  it('sanitises ref names and numbers pins of several roots', () => {
    expect(sanitisePinName('refs/heads/feature/x y')).toBe('feature-x-y');
    expect(resolvePinName('auto', { GITHUB_REF_NAME: 'v1.2.3' })).toBe('v1.2.3');
    expect(() => resolvePinName('auto', {})).toThrow(/Input 'pin'/);
    expect(pinNamesFor('main', 1)).toEqual(['main']);
    expect(pinNamesFor('main', 2)).toEqual(['main.1', 'main.2']);
  });
});
