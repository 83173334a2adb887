#!/usr/bin/env node
// The nix-cache CLI: the bundled build of src/cli (dist/cli), so it runs without a TypeScript toolchain.
import '../dist/cli/index.js';
