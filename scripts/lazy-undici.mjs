// One rewrite of an ncc bundle, run by bundle.mjs after each build.
//
// @actions/http-client (under @actions/core) imports undici at load, but only to build a proxy
// agent for callers that ask it for a fetch dispatcher; @actions/core never does. Evaluating
// undici costs every action about 50 ms of CPU before its first line runs, a seventh of a cached
// re-push. Where a bundle uses undici for nothing but that `ProxyAgent`, the module is required on
// the first use of `ProxyAgent` instead of at load: the same code, still in the bundle, loaded
// later. Where anything else of undici is used (@actions/github's fetch, in gc and the CLI), the
// bundle is left as ncc wrote it.

const DECLARATION =
  /^\/\/ EXTERNAL MODULE: \.\/node_modules\/undici\/index\.js\nvar (\w+) = __nccwpck_require__\((\d+)\);$/gm;

/**
 * The bundle with undici required lazily where only its ProxyAgent is used, and how many
 * declarations were rewritten. The declaration is in the bundle's top scope, where ncc puts the
 * ES modules it concatenates; their uses of it all come after it.
 */
export function lazyUndici(source) {
  let rewritten = 0;
  const out = source.replace(DECLARATION, (whole, name, id, offset) => {
    const after = source.slice(offset + whole.length);
    // Uses as an identifier: not inside a word, a string, a path or a property chain.
    const uses = [
      ...after.matchAll(
        new RegExp(`(?<![\\w$'"/.:-])${name}(?![\\w$'":-])(/\\* (\\w+) \\*/\\.(\\w+))?`, 'g'),
      ),
    ];
    const exported = new Set(uses.map((use) => (use[2] === 'ProxyAgent' ? use[3] : undefined)));
    if (uses.length === 0 || exported.has(undefined) || exported.size !== 1) return whole;
    const [key] = exported;
    rewritten += 1;
    return (
      `// EXTERNAL MODULE: ./node_modules/undici/index.js (required on first use: scripts/lazy-undici.mjs)\n` +
      `var ${name} = { get ${key}() { return __nccwpck_require__(${id}).${key}; } };`
    );
  });
  return { source: out, rewritten };
}
