/**
 * 200 paths through the bundle: the first push uploads them all; a second push of the same
 * closure uploads nothing and takes under a second (as one root, and as 200 roots).
 */
import { startFakeNiks3, type FakeNiks3 } from '../fakes/niks3/index.js';
import { buildDerivations } from '../helpers/nix-fixtures.js';
import { runAction } from '../helpers/run-action.js';
import { pushFakeInputs } from './push-test-support.js';

let fake: FakeNiks3;
let paths: Record<string, string>;

beforeAll(async () => {
  const scripts: Record<string, string> = {};
  for (let i = 0; i < 199; i++) scripts[`p${i}`] = `echo ${i} > $out`;
  scripts['top'] =
    `/bin/mkdir $out; echo ${Array.from({ length: 199 }, (_, i) => `\${p${i}}`).join(' ')} > $out/deps`;
  [fake, paths] = await Promise.all([startFakeNiks3(), buildDerivations(scripts, { namePrefix: 'many-' })]);
}, 120_000);

afterAll(async () => {
  await fake?.close();
});

/** The push's own duration, from its closing log line. */
function pushSeconds(stdout: string): number {
  return Number(/already cached, .* in (\d+(?:\.\d+)?) s\./.exec(stdout)?.[1] ?? NaN);
}

describe('push of 200 paths (bundle, real Nix)', () => {
  it('pushes 200 paths, then a second push uploads nothing in under a second', async () => {
    const first = await runAction('push', {
      inputs: pushFakeInputs(fake, { paths: paths['top'] as string }),
      secrets: [fake.apiToken],
    });
    expect(first.code).toBe(0);
    expect(first.outputs['pushed']).toBe('200');

    const before = fake.requests.length;
    const second = await runAction('push', {
      inputs: pushFakeInputs(fake, { paths: paths['top'] as string }),
      secrets: [fake.apiToken],
    });
    expect(second.code).toBe(0);
    expect(second.outputs['pushed']).toBe('0');
    expect(second.outputs['skipped-cached']).toBe('200');
    expect(fake.requests.slice(before).filter((r) => r.target === 's3')).toEqual([]);
    expect(pushSeconds(second.stdout)).toBeLessThan(1);

    const asRoots = await runAction('push', {
      inputs: pushFakeInputs(fake, { paths: Object.values(paths).join('\n') }),
      secrets: [fake.apiToken],
    });
    expect(asRoots.code).toBe(0);
    expect(asRoots.outputs['skipped-cached']).toBe('200');
    expect(pushSeconds(asRoots.stdout)).toBeLessThan(1);
  }, 120_000);
});
