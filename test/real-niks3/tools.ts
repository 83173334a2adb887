/**
 * Where the pinned Go programs of the real-server tests live (built by `.ci/setup` through
 * `tools/go/build.sh` into `.tools/bin`), and how a test file waits for them: without them a
 * real-server suite fails in CI (`CI=true`) with setup's one line, and is skipped with that line
 * as its reason elsewhere.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/run-action.js';

export const TOOLS_BIN = join(ROOT, '.tools', 'bin');
export const NIKS3_SERVER = join(TOOLS_BIN, 'niks3-server');
export const NIKS3_CLI = join(TOOLS_BIN, 'niks3');
export const VERSITYGW = join(TOOLS_BIN, 'versitygw');

/** Why the real-server tests cannot run here, or undefined when every binary is built. */
export function realNiks3Problem(): string | undefined {
  const missing = join(TOOLS_BIN, 'MISSING');
  if (existsSync(missing)) return readFileSync(missing, 'utf8').trim();
  const absent = [NIKS3_SERVER, NIKS3_CLI, VERSITYGW].filter((bin) => !existsSync(bin));
  if (absent.length > 0)
    return `the real niks3 server tests need ${absent.map((b) => b.slice(ROOT.length + 1)).join(', ')}: run .ci/setup (it builds them with Go)`;
  return undefined;
}

/**
 * `describe` when the binaries are there. Without them: in CI one failing test that says why;
 * elsewhere the suite is skipped and its title carries the reason.
 */
export function describeRealNiks3(title: string, body: () => void): void {
  const problem = realNiks3Problem();
  if (problem === undefined) {
    describe(title, body);
  } else if (process.env.CI === 'true') {
    describe(title, () => {
      it('has the real niks3 binaries', () => {
        throw new Error(problem);
      });
    });
  } else {
    describe.skip(`${title} (skipped: ${problem})`, body);
  }
}
