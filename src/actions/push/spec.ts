import type { ActionSpec } from '../../core/settings/input-spec.js';
import { AUDIENCE, AUTH, CONNECT_TIMEOUT, SERVER_URL, TOKEN } from '../common-inputs.js';

export const PUSH_SPEC: ActionSpec = {
  name: 'push',
  title: 'nix-cache push',
  description:
    'Make your niks3 cache the substituter of the job and push every path the job builds (or the closures you list), signed by the server, authenticated with GitHub OIDC.',
  icon: 'upload-cloud',
  color: 'blue',
  inputs: [
    SERVER_URL,
    {
      name: 'installables',
      description:
        'Installables, one per line (e.g. `.#default`); built with `nix build --no-link`, then pushed in this step (explicit mode).',
      type: 'lines',
      example: '.#default',
    },
    {
      name: 'paths',
      description:
        'Store paths, one per line, or symlinks to them (e.g. `./result`), pushed in this step (explicit mode). With neither `paths` nor `installables`, the step makes the cache a substituter and pushes what the rest of the job builds (watch or scan mode).',
      type: 'lines',
      example: './result',
    },
    AUTH,
    TOKEN,
    AUDIENCE,
    {
      name: 'max-concurrent-uploads',
      description: 'How many uploads run at once.',
      type: 'integer',
      default: '30',
      min: 1,
      max: 256,
    },
    {
      name: 'compression-level',
      description: 'zstd compression level of NARs.',
      type: 'integer',
      default: '3',
      min: 1,
      max: 19,
    },
    {
      name: 'upstream-filter',
      description: 'Skip closure members that an upstream cache already serves.',
      type: 'boolean',
      default: 'true',
    },
    {
      name: 'upstream-caches',
      description: 'Upstream caches to check, one URL per line.',
      type: 'lines',
      default: 'https://cache.nixos.org',
      pattern: /^https?:\/\/[^\s/]+(\/\S*)?$/,
      accepts: 'one http(s) URL per line',
    },
    {
      name: 'upstream-keys',
      description:
        'Key names of upstream caches, one per line: a path signed by one of them is skipped without a request.',
      type: 'lines',
      default: 'cache.nixos.org-1',
      pattern: /^[^\s:]+$/,
      accepts: 'one key name (without the `:key` part) per line',
    },
    {
      name: 'include',
      description:
        'Glob patterns on store path names (`hash-name` or `name`), one per line: only matching paths are pushed.',
      type: 'lines',
    },
    {
      name: 'exclude',
      description: 'Glob patterns on store path names, one per line: matching paths are not pushed.',
      type: 'lines',
    },
    {
      name: 'max-path-size',
      description: 'Skip, and list, paths whose NAR is larger than this; `0` means no limit.',
      type: 'size',
      default: '0',
    },
    {
      name: 'pin',
      description:
        'Pin the pushed roots under this name, so GC keeps them; `auto` uses the sanitised branch or tag name.',
      type: 'string',
      pattern: /^[A-Za-z0-9._-]{1,128}$/,
      accepts: 'a pin name of letters, digits, `.`, `_` and `-` (at most 128), or `auto`',
      invalid: ['has space', 'a/b'],
    },
    {
      name: 'verify',
      description:
        'After the push, check each root narinfo and NAR at the public cache URL (every root this run uploaded something for, and up to 8 roots that were cached already, picked at random); a root whose NAR is missing is pushed again with `verify-s3`.',
      type: 'boolean',
      default: 'true',
    },
    {
      name: 'verify-s3',
      description:
        'Ask the server to check that every object its database calls stored is really in the bucket (one S3 HEAD per object, so slower on large closures), and upload what is missing.',
      type: 'boolean',
      default: 'false',
    },
    {
      name: 'cache-url',
      description: 'Public read URL of the cache, when the server does not announce one.',
      type: 'url',
    },
    CONNECT_TIMEOUT,
    {
      name: 'mode',
      description:
        'Without `paths`/`installables`: `auto` picks `watch` (a Nix post-build hook hands each build to a background uploader) when the hook can be installed, else `scan` (the post step pushes the store paths that appeared during the job); `watch` or `scan` forces one.',
      type: 'enum',
      values: ['auto', 'watch', 'scan'],
      default: 'auto',
    },
    {
      name: 'pull-only',
      description:
        'Only make the cache a substituter for the rest of the job; push nothing (no token needed).',
      type: 'boolean',
      default: 'false',
    },
    {
      name: 'drain-timeout',
      description:
        'Seconds the post step waits for the background uploader to finish the queue (watch mode) and for its own push, before it stops and reports what was not pushed.',
      type: 'integer',
      default: '600',
      min: 1,
      max: 21600,
    },
    {
      name: 'on-failure',
      description:
        '`fail` or `warn`: whether a failed push fails the step. A job without an OIDC token (fork pull requests) only warns and pushes nothing, unless `fail` is set explicitly.',
      type: 'enum',
      values: ['fail', 'warn'],
      // No default in action.yml, so that an explicit `fail` can be told apart from the default.
      defaultText: '`fail`',
    },
  ],
  outputs: [
    { name: 'store-paths', description: 'JSON list of the root store paths.' },
    { name: 'pushed', description: 'Number of paths uploaded.' },
    { name: 'skipped-cached', description: 'Number of paths already in the cache.' },
    { name: 'skipped-upstream', description: 'Number of paths an upstream cache serves.' },
    { name: 'skipped-filtered', description: 'Number of paths left out by include/exclude/max-path-size.' },
    { name: 'uploaded-bytes', description: 'Compressed bytes uploaded.' },
    { name: 'nar-bytes', description: 'Uncompressed NAR bytes of the uploaded paths.' },
    { name: 'cache-url', description: 'Public read URL of the cache.' },
    { name: 'public-key', description: 'Public key the cache signs with (`name:base64`).' },
    {
      name: 'mode',
      description: '`explicit`, `watch`, `scan` or `pull-only`: how this step ran (see the mode rule).',
    },
    {
      name: 'pushed-during-build',
      description: 'Watch mode (post step): paths the background uploader pushed while the job was building.',
    },
    {
      name: 'pushed-in-post',
      description:
        'Watch and scan mode (post step): paths pushed by the post step (queue drain, unseen paths, retries).',
    },
    {
      name: 'substituted',
      description: 'Watch, scan and pull-only mode (post step): paths the job substituted from this cache.',
    },
    {
      name: 'substituted-bytes',
      description:
        'Watch, scan and pull-only mode (post step): NAR bytes of the paths substituted from this cache.',
    },
  ],
  post: true,
  postIf: 'always()',
};
