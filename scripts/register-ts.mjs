// Lets Node 24 run the TypeScript sources directly (type stripping) for dev scripts,
// the demo and the bench: `import './x.js'` resolves to `./x.ts` when only that exists.
import { register } from 'node:module';
register('./ts-resolve.mjs', import.meta.url);
