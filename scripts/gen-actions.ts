// Writes actions/<name>/action.yml and the input/output tables of actions/<name>/README.md from the
// one declaration of each action (src/actions/specs.ts), and nix-cache.example.json from the stack settings. `--check` writes nothing and fails when a
// file differs from what would be written (the drift check CI runs).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderActionYaml, renderReadmeTables, spliceReadme } from '../src/actions/action-metadata.js';
import { ACTION_SPECS } from '../src/actions/specs.js';
import { exampleStackFile } from '../src/cli/stack-file.js';

const root = new URL('..', import.meta.url).pathname;
const check = process.argv.includes('--check');
const drift: string[] = [];

function emit(path: string, content: string): void {
  const old = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  if (old === content) return;
  if (check) drift.push(path);
  else writeFileSync(path, content);
}

for (const spec of ACTION_SPECS) {
  const dir = join(root, 'actions', spec.name);
  mkdirSync(dir, { recursive: true });
  emit(join(dir, 'action.yml'), renderActionYaml(spec));
  const readmePath = join(dir, 'README.md');
  const readme = existsSync(readmePath)
    ? readFileSync(readmePath, 'utf8')
    : `# ${spec.title}\n\n${spec.description}\n`;
  emit(readmePath, spliceReadme(readme, renderReadmeTables(spec)));
}

emit(join(root, 'nix-cache.example.json'), exampleStackFile());

if (drift.length > 0) {
  console.error(`out of date (run \`npm run gen\`):\n${drift.map((p) => `  ${p}`).join('\n')}`);
  process.exit(1);
}
