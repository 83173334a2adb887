/**
 * Real Nix store fixtures for tests (Nix 2.8 here, sandbox off, root). Every build gets a unique salt,
 * so each test run makes fresh store paths nobody has pushed before. Builders are `/bin/sh` with
 * absolute tool paths; substituters are switched off so nothing tries the network.
 *
 * Exports:
 * - `NIX_TEST_ARGS`: `--option substituters ''` and friends; append to any nix call in tests.
 * - `uniqueSalt()`: a fresh salt string.
 * - `buildDerivations(scripts, { salt?, namePrefix? })`: builds one derivation per entry of
 *   `scripts` (attribute name -> shell script; `$out` is the output, `${other}` interpolates another
 *   entry's output path, making a reference) in ONE `nix build`, and returns attribute -> store path.
 * - `FIXTURE_CASES` (case name -> script), `FixtureName` (its keys plus `large`), `LARGE_CASE_BYTES`.
 * - `buildFixtureClosure({ salt?, large? })`: the standard cases (see `FIXTURE_CASES`): single file,
 *   empty file, empty dir, executable, nested dirs with byte-order names, spaces and non-ASCII names,
 *   symlinks (relative, absolute, dangling, to a dir, and a symlink as the root), small files around
 *   the 8-byte padding and the 128 KiB read threshold, an 11 MiB random file (`large: false` skips
 *   it), a self-reference, a reference chain (chain3 -> chain2 -> chain1) and a diamond (diamondTop ->
 *   diamondLeft, diamondRight -> diamondBottom). Returns `{ salt, byName, roots, all }`: `byName` is
 *   case name -> store path, `roots` the case paths, `all` their whole closure (sorted). About 0.3 s.
 *   Every case's builder prints a line, so each deriver has a build log under /nix/var/log/nix/drvs.
 * - `buildRandomPath(sizeBytes, seed?)`: one store path that is a single file of random bytes.
 * - `buildTextPath(content, { name?, salt? })`: one store path that is a single file with `content`
 *   (two calls with the same content give different paths with byte-identical NARs: dedup tests).
 * - `nixStoreDump(path)`: `nix-store --dump` as a Buffer.
 * - `nixPathInfoJson(paths, recursive)`: the parsed `nix path-info --json` output.
 * - `buildContentAddressed(scripts)`: like `buildDerivations`, but floating content-addressed
 *   derivations (`__contentAddressed = true`, experimental feature `ca-derivations`); returns
 *   `{ paths, file, dispose }` (`file` is the Nix expression, kept for `buildFromCache`).
 * - `buildFromCache(cacheUri, file, attr, { trustedPublicKeys, storeRoot? })`: `nix-build` of one
 *   attribute of such a file into a fresh local store with only `cacheUri` as substituter. The
 *   store cannot run builders, so this succeeds only if Nix substitutes the output (for a CA
 *   derivation: through its realisation in the cache).
 * - `copyFromCache(cacheUri, path, { trustedPublicKeys, storeRoot? })`: `nix copy --from cacheUri`
 *   into a fresh local store under `storeRoot` (a temp dir), signatures required. Resolves to
 *   `{ code, stdout, stderr, storeRoot }`; code 0 means Nix substituted and verified the path.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NIX_TEST_ARGS = ['--option', 'substituters', '', '--option', 'connect-timeout', '1'];
const FEATURES = ['--extra-experimental-features', 'nix-command flakes'];

export function uniqueSalt(): string {
  return `${Date.now().toString(36)}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => undefined); // a child that exits before reading stdin (EPIPE) is judged by its exit code
    child.stdin.end(options.input ?? '');
  });
}

/** Escapes text for a Nix indented string ('' … ''). */
function nixIndented(text: string): string {
  return text.replace(/''/g, "'''").replace(/\$\{(?![A-Za-z_][A-Za-z0-9_-]*\})/g, "''${");
}

/**
 * Builds one derivation per script in one `nix build`. In a script, `${name}` of another entry is a
 * Nix interpolation (so a reference); any other `${` is escaped for Nix and reaches the shell.
 */
export async function buildDerivations(
  scripts: Record<string, string>,
  options: { salt?: string; namePrefix?: string } = {},
): Promise<Record<string, string>> {
  const salt = options.salt ?? uniqueSalt();
  const prefix = options.namePrefix ?? '';
  const names = Object.keys(scripts);
  for (const name of names)
    if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name))
      throw new Error(`fixture name ${name} must be a Nix identifier`);
  const attrs = names
    .map((name) => `  ${name} = mk "${prefix}${name}" ''\n${nixIndented(scripts[name] ?? '')}\n'';`)
    .join('\n');
  const expr = `let\n  salt = "${salt}";\n  mk = name: script: derivation {\n    inherit name salt;\n    system = builtins.currentSystem;\n    builder = "/bin/sh";\n    args = [ "-e" "-c" script ];\n  };\nin rec {\n${attrs}\n}\n`;
  const dir = mkdtempSync(join(tmpdir(), 'nix-fixture-'));
  try {
    const file = join(dir, 'default.nix');
    writeFileSync(file, expr);
    const evaluated = await run('nix', [
      ...FEATURES,
      'eval',
      '--json',
      ...NIX_TEST_ARGS,
      '-f',
      file,
      '--apply',
      'builtins.mapAttrs (n: d: d.outPath)',
      '',
    ]);
    if (evaluated.code !== 0) throw new Error(`nix eval of fixtures failed: ${evaluated.stderr}\n${expr}`);
    const paths = JSON.parse(evaluated.stdout) as Record<string, string>;
    const built = await run('nix', [
      ...FEATURES,
      'build',
      '--no-link',
      ...NIX_TEST_ARGS,
      '-f',
      file,
      ...names,
    ]);
    if (built.code !== 0) throw new Error(`nix build of fixtures failed: ${built.stderr}\n${expr}`);
    return paths;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Builds floating content-addressed derivations (one per script, `${name}` of another entry is a
 * reference) in one `nix-build`; the expression file stays until `dispose()`.
 */
export async function buildContentAddressed(
  scripts: Record<string, string>,
  options: { salt?: string } = {},
): Promise<{ paths: Record<string, string>; file: string; dispose(): void }> {
  const salt = options.salt ?? uniqueSalt();
  const names = Object.keys(scripts);
  const attrs = names
    .map((name) => `  ${name} = mk "ca-${name}" ''\n${nixIndented(scripts[name] ?? '')}\n'';`)
    .join('\n');
  const expr =
    `let\n  salt = "${salt}";\n  mk = name: script: derivation {\n    inherit name salt;\n` +
    `    system = builtins.currentSystem;\n    builder = "/bin/sh";\n    args = [ "-e" "-c" script ];\n` +
    `    __contentAddressed = true;\n    outputHashMode = "recursive";\n    outputHashAlgo = "sha256";\n` +
    `  };\nin rec {\n${attrs}\n}\n`;
  const dir = mkdtempSync(join(tmpdir(), 'nix-ca-fixture-'));
  const file = join(dir, 'default.nix');
  writeFileSync(file, expr);
  const built = await run('nix-build', [
    file,
    '--no-out-link',
    '--extra-experimental-features',
    'ca-derivations',
    ...NIX_TEST_ARGS,
    ...names.flatMap((name) => ['-A', name]),
  ]);
  if (built.code !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`nix-build of content-addressed fixtures failed: ${built.stderr}\n${expr}`);
  }
  const outs = built.stdout.trim().split('\n');
  const paths = Object.fromEntries(names.map((name, i) => [name, outs[i] ?? '']));
  return { paths, file, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * `nix-build <file> -A <attr>` into a fresh local store (a chroot store, which cannot run the
 * `/bin/sh` builders) with `cacheUri` as the only substituter and signatures required.
 */
export async function buildFromCache(
  cacheUri: string,
  file: string,
  attr: string,
  options: { trustedPublicKeys: readonly string[]; storeRoot?: string },
): Promise<{ code: number; stdout: string; stderr: string; storeRoot: string }> {
  const storeRoot = options.storeRoot ?? mkdtempSync(join(tmpdir(), 'nix-store2-'));
  const result = await run('nix-build', [
    file,
    '-A',
    attr,
    '--no-out-link',
    '--store',
    storeRoot,
    '--extra-experimental-features',
    'ca-derivations',
    '--option',
    'substituters',
    cacheUri,
    '--option',
    'trusted-public-keys',
    options.trustedPublicKeys.join(' '),
    '--option',
    'require-sigs',
    'true',
    '--option',
    'connect-timeout',
    '1',
  ]);
  return { ...result, storeRoot };
}

/** The standard cases of buildFixtureClosure (attribute -> builder script). */
export const FIXTURE_CASES = {
  singleFile: 'echo "building singleFile"; echo hello > $out',
  emptyFile: 'echo "building emptyFile"; : > $out',
  emptyDir: 'echo "building emptyDir"; /bin/mkdir $out',
  executable: "echo building executable; printf '#!/bin/sh\\necho hi\\n' > $out; /bin/chmod 0555 $out",
  rootSymlink: 'echo building rootSymlink; /bin/ln -s /bin/sh $out',
  nested: [
    'echo building nested',
    '/bin/mkdir -p $out/deep/b/c $out/empty/inner $out/bin',
    'echo deep > $out/deep/b/c/deep.txt',
    ': > $out/deep/empty-file',
    "printf '#!/bin/sh\\nexit 0\\n' > $out/bin/tool; /bin/chmod 0555 $out/bin/tool",
    'for n in B a _x Z a.b a-b 10 9 é zz "with space" "ünïcödé 🙂"; do echo "$n" > "$out/$n"; done',
    '/bin/mkdir "$out/dir with space"; echo inside > "$out/dir with space/file ü"',
    "for s in 1 7 8 9 15 16 17; do /usr/bin/head -c $s /dev/zero | /usr/bin/tr '\\0' x > $out/size$s; done",
    '/usr/bin/head -c 131072 /dev/urandom > $out/at-threshold',
    '/usr/bin/head -c 131073 /dev/urandom > $out/over-threshold',
    '/usr/bin/head -c 200000 /dev/urandom > $out/mid',
  ].join('\n'),
  symlinks: [
    'echo building symlinks',
    '/bin/mkdir -p $out/sub',
    'echo target > $out/target.txt',
    '/bin/ln -s target.txt $out/rel',
    '/bin/ln -s ../target.txt $out/sub/up',
    '/bin/ln -s /bin/sh $out/abs',
    '/bin/ln -s does-not-exist $out/dangling',
    '/bin/ln -s sub $out/dirlink',
    '/bin/ln -s "with space ü" $out/odd-target',
  ].join('\n'),
  selfRef: 'echo building selfRef; /bin/mkdir $out; echo $out > $out/self',
  chain1: 'echo building chain1; echo chain1 > $out',
  chain2: 'echo building chain2; /bin/mkdir $out; echo ${chain1} > $out/dep',
  chain3: 'echo building chain3; /bin/mkdir $out; /bin/ln -s ${chain2} $out/dep',
  diamondBottom: 'echo building diamondBottom; echo bottom > $out',
  diamondLeft: 'echo building diamondLeft; /bin/mkdir $out; echo ${diamondBottom} > $out/dep',
  diamondRight: 'echo building diamondRight; /bin/mkdir $out; echo ${diamondBottom} > $out/dep',
  diamondTop: 'echo building diamondTop; /bin/mkdir $out; echo ${diamondLeft} ${diamondRight} > $out/deps',
} satisfies Record<string, string>;

/** The case names of buildFixtureClosure: FIXTURE_CASES plus `large`. */
export type FixtureName = keyof typeof FIXTURE_CASES | 'large';

export const LARGE_CASE_BYTES = 11 * 1024 * 1024;

export interface FixtureClosure {
  readonly salt: string;
  /** Case name -> store path (see FIXTURE_CASES; `large` is missing when skipped). */
  readonly byName: Readonly<Record<FixtureName, string>>;
  /** Every case's store path, in FIXTURE_CASES order. */
  readonly roots: readonly string[];
  /** The closure of all roots (sorted). */
  readonly all: readonly string[];
}

export async function buildFixtureClosure(
  options: { salt?: string; large?: boolean } = {},
): Promise<FixtureClosure> {
  const salt = options.salt ?? uniqueSalt();
  const scripts: Record<string, string> = { ...FIXTURE_CASES };
  if (options.large !== false) {
    scripts.large = [
      'echo building large',
      '/bin/mkdir $out',
      'echo before > $out/a-before',
      `/usr/bin/head -c ${LARGE_CASE_BYTES + 3} /dev/urandom > $out/big.bin`,
      'echo after > $out/z-after',
    ].join('\n');
  }
  const byName = (await buildDerivations(scripts, { salt, namePrefix: 'fx-' })) as Record<
    FixtureName,
    string
  >;
  const roots = (Object.keys(scripts) as FixtureName[]).map((name) => byName[name]);
  const closure = execFileSync('nix-store', ['--query', '--requisites', ...roots], { encoding: 'utf8' });
  const all = [...new Set(closure.split('\n').filter(Boolean))].sort();
  return { salt, byName, roots, all };
}

/** One store path: a single file of `sizeBytes` random bytes (seed only makes the path unique). */
export async function buildRandomPath(sizeBytes: number, seed: string = uniqueSalt()): Promise<string> {
  const paths = await buildDerivations(
    { random: `/usr/bin/head -c ${Math.floor(sizeBytes)} /dev/urandom > $out` },
    { salt: seed, namePrefix: `rand${sizeBytes}-` },
  );
  return paths.random as string;
}

/** One store path: a single file containing `content` (plain text, no `''`). */
export async function buildTextPath(
  content: string,
  options: { name?: string; salt?: string } = {},
): Promise<string> {
  const encoded = Buffer.from(content, 'utf8').toString('base64');
  const paths = await buildDerivations(
    { text: `echo '${encoded}' | /usr/bin/base64 -d > $out` },
    { salt: options.salt ?? uniqueSalt(), namePrefix: `${options.name ?? 'text'}-` },
  );
  return paths.text as string;
}

export function nixStoreDump(path: string): Buffer {
  return execFileSync('nix-store', ['--dump', path], { maxBuffer: 1 << 30 });
}

export function nixPathInfoJson(paths: readonly string[], recursive = false): unknown {
  const args = [...FEATURES, 'path-info', '--json', ...(recursive ? ['--recursive'] : []), '--', ...paths];
  return JSON.parse(execFileSync('nix', args, { encoding: 'utf8', maxBuffer: 1 << 28 })) as unknown;
}

/** Removes a private Nix store (its paths are read-only, so they are made writable first). */
export function removeStoreRoot(root: string): void {
  try {
    execFileSync('chmod', ['-R', 'u+w', root], { stdio: 'ignore' });
  } catch {
    // already gone, or partly: rm below does what it can
  }
  rmSync(root, { recursive: true, force: true });
}

/**
 * `nix copy --from <cacheUri> --to <fresh local store> <path>` with signatures required and only
 * `trustedPublicKeys` trusted. The store lives under `storeRoot` (a new temp dir by default; the
 * caller removes it with `removeStoreRoot`).
 */
export async function copyFromCache(
  cacheUri: string,
  path: string,
  options: { trustedPublicKeys: readonly string[]; storeRoot?: string },
): Promise<{ code: number; stdout: string; stderr: string; storeRoot: string }> {
  const storeRoot = options.storeRoot ?? mkdtempSync(join(tmpdir(), 'nix-store2-'));
  const result = await run('nix', [
    ...FEATURES,
    'copy',
    '--from',
    cacheUri,
    '--to',
    storeRoot,
    '--option',
    'trusted-public-keys',
    options.trustedPublicKeys.join(' '),
    '--option',
    'require-sigs',
    'true',
    ...NIX_TEST_ARGS,
    path,
  ]);
  return { ...result, storeRoot };
}
