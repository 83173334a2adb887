// Builds one ncc bundle per action found from actions/*/action.yml (plus its post step and its
// background uploader, if the action has them) and one for the CLI. `node scripts/bundle.mjs push deploy` rebuilds only those.
// Source maps are written beside each bundle but not committed (.gitignore): a map is one long
// line, so every rebuild would otherwise rewrite megabytes of history.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lazyUndici } from './lazy-undici.mjs';

const root = new URL('..', import.meta.url).pathname;
const ncc = join(root, 'node_modules', '@vercel', 'ncc', 'dist', 'ncc', 'cli.js');
const only = process.argv.slice(2);

const actions = readdirSync(join(root, 'actions')).filter((name) =>
  existsSync(join(root, 'actions', name, 'action.yml')),
);
const targets = [];
for (const name of actions) {
  targets.push({ entry: `src/actions/${name}/index.ts`, out: `dist/${name}`, name });
  for (const extra of ['post', 'uploader']) {
    if (existsSync(join(root, 'src', 'actions', name, `${extra}.ts`))) {
      targets.push({ entry: `src/actions/${name}/${extra}.ts`, out: `dist/${name}/${extra}`, name });
    }
  }
}
targets.push({ entry: 'src/cli/index.ts', out: 'dist/cli', name: 'cli' });

if (only.length === 0) rmSync(join(root, 'dist'), { recursive: true, force: true });
for (const target of targets) {
  if (only.length > 0 && !only.includes(target.name)) continue;
  if (!existsSync(join(root, target.entry))) {
    console.error(`skipping ${target.entry}: not written yet`);
    continue;
  }
  if (only.length > 0) rmSync(join(root, target.out, 'index.js'), { force: true });
  console.error(`ncc: ${target.entry} -> ${target.out}`);
  execFileSync(
    process.execPath,
    [
      ncc,
      'build',
      target.entry,
      '-o',
      target.out,
      '--source-map',
      '--license',
      'licenses.txt',
      '--target',
      'es2022',
      '--quiet',
    ],
    { cwd: root, stdio: 'inherit' },
  );
  const file = join(root, target.out, 'index.js');
  const { source, rewritten } = lazyUndici(readFileSync(file, 'utf8'));
  if (rewritten > 0) writeFileSync(file, source);
}
