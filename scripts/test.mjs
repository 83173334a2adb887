// Runs jest (ESM TypeScript, on the Node 24 that npm puts first on PATH) and ends with the one plain
// line CI reads: "N passed, N failed", taken from jest's own JSON results. Extra arguments go to jest.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'nix-cache-jest-'));
const results = join(dir, 'results.json');
const jest = join(root, 'node_modules', 'jest', 'bin', 'jest.js');
// A full run (no test paths given) also measures coverage and enforces the thresholds in jest.config.js.
const args = process.argv.slice(2);
const full = !args.some((arg) => !arg.startsWith('-'));
const coverage = full && !args.includes('--coverage') ? ['--coverage'] : [];
const run = spawnSync(process.execPath, [jest, '--json', `--outputFile=${results}`, ...coverage, ...args], {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...process.env,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules`.trim(),
  },
});
let passed = 0;
let failed = 0;
try {
  const json = JSON.parse(readFileSync(results, 'utf8'));
  passed = json.numPassedTests;
  failed = json.numFailedTests + (json.numRuntimeErrorTestSuites ?? 0);
} catch {
  failed = Math.max(failed, 1);
}
rmSync(dir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
