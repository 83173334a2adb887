/**
 * Checks a push from the reader's side: each root's narinfo is fetched from the public cache URL
 * (what Nix substituters use), must name the right store path, and must carry a signature that one
 * of the server's public keys verifies. Catches a wrong `cache-url`, a bucket that is not public,
 * and a server signing with a key other than the one announced.
 */
import { normaliseBaseUrl } from '../settings/values.js';
import { zstdDecompressSync } from 'node:zlib';
import { sleep as realSleep, networkDetail, type Sleep } from '../http.js';
import { parseNarInfo, type NarInfo } from '../nix/narinfo.js';
import { fingerprint, verifySignature } from '../nix/signing-key.js';
import { narInfoKey } from '../nix/object-keys.js';
import { toFullStorePath } from '../nix/store-path.js';
import { USER_AGENT } from '../version.js';
import { WorkerPool } from './worker-pool.js';
import { fetchWhole, nodeFetch } from '../node-http.js';

export interface VerifyOptions {
  readonly cacheUrl: string;
  /** `name:base64` keys; when empty, signatures are not checked. */
  readonly publicKeys: readonly string[];
  readonly fetch?: typeof fetch;
  readonly sleep?: Sleep;
  /** Tries per narinfo on 404 / network errors (default 3, 1 s apart). */
  readonly attempts?: number;
  readonly storeDir?: string;
  /** Root -> the NAR key its narinfo should name (the NAR is then probed while the narinfo is fetched). */
  readonly narKeys?: ReadonlyMap<string, string>;
}

export interface VerifyResult {
  readonly verified: readonly string[];
  readonly problems: readonly string[];
  /** Roots whose narinfo verifies but whose NAR the public URL does not serve (the bucket lost it). */
  readonly missingNars: readonly string[];
}

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

export async function verifyAtPublicUrl(
  roots: readonly string[],
  options: VerifyOptions,
): Promise<VerifyResult> {
  const verified: string[] = [];
  const problems: string[] = [];
  const missingNars: string[] = [];
  const base = normaliseBaseUrl(options.cacheUrl);
  const fetchFn = options.fetch ?? nodeFetch;
  const doSleep = options.sleep ?? realSleep;
  const attempts = options.attempts ?? 3;

  const check = async (root: string): Promise<void> => {
    const url = `${base}/${narInfoKey(root)}`;
    let lastProblem = '';
    const expectedNar = options.narKeys?.get(root);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) await doSleep(1000);
      // The NAR probe runs alongside the narinfo fetch when the NAR key is known.
      const narProbe = expectedNar ? publicObjectExists(base, expectedNar, { fetch: fetchFn }) : undefined;
      let body: Buffer;
      try {
        const response = await fetchWhole(fetchFn, url, {
          headers: { 'user-agent': USER_AGENT },
          signal: AbortSignal.timeout(15_000),
        });
        body = response.body;
        if (response.status === 404) {
          lastProblem = `${url} answered 404: check cache-url (or the server's --cache-url) and that the bucket is publicly readable`;
          continue;
        }
        if (response.status !== 200) {
          lastProblem = `${url} answered HTTP ${response.status}: check that the public cache URL (cache-url, or the server's --cache-url) serves the bucket, then re-run`;
          continue;
        }
      } catch (error) {
        lastProblem = `${url} could not be fetched: ${networkDetail(error)}: check that the public cache URL (cache-url, or the server's --cache-url) is reachable from here, then re-run`;
        continue;
      }
      const checked = checkNarinfo(root, body, options);
      if (typeof checked === 'string') {
        problems.push(`${url}: ${checked}`);
        return;
      }
      // The NAR too: a narinfo whose NAR is gone makes every substitution of the root fail.
      const narServed =
        narProbe && checked.url === expectedNar
          ? await narProbe
          : await publicObjectExists(base, checked.url, { fetch: fetchFn });
      if (!narServed) {
        missingNars.push(root);
        problems.push(
          `${base}/${checked.url} (the NAR of ${root}) is not served although its narinfo is: the bucket lost it; push with verify-s3: true to upload it again`,
        );
        return;
      }
      verified.push(root);
      return;
    }
    problems.push(lastProblem);
  };
  await new WorkerPool().run(roots, 32, check);
  return { verified, problems, missingNars };
}

/** The parsed narinfo when it is right, else the problem. */
function checkNarinfo(root: string, body: Buffer, options: VerifyOptions): NarInfo | string {
  let text: string;
  try {
    text = (body.subarray(0, 4).equals(ZSTD_MAGIC) ? zstdDecompressSync(body) : body).toString('utf8');
  } catch {
    return 'the narinfo is not valid zstd';
  }
  let info;
  try {
    info = parseNarInfo(text);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  if (info.storePath !== root) return `the narinfo is for ${info.storePath}, not ${root}`;
  if (options.publicKeys.length === 0) return info;
  const fp = fingerprint(
    info.storePath,
    info.narHash,
    info.narSize,
    info.references.map((ref) => toFullStorePath(ref, options.storeDir)),
  );
  const good = info.sigs.some((sig) => options.publicKeys.some((key) => verifySignature(key, fp, sig)));
  if (good) return info;
  return info.sigs.length === 0
    ? 'the narinfo has no signature'
    : `no signature verifies with the server's public key(s) ${options.publicKeys.join(', ')}`;
}

/**
 * Whether the object `key` is readable at the public cache URL (a HEAD that answers 2xx). niks3
 * v1.7.0 has no `HEAD /api/objects`, so this is how a push learns that a NAR whose multipart
 * complete lost its answer was stored after all. Network errors and other statuses count as absent.
 */
export async function publicObjectExists(
  cacheUrl: string,
  key: string,
  options: { fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<boolean> {
  const fetchFn = options.fetch ?? nodeFetch;
  const url = `${cacheUrl.replace(/\/+$/, '')}/${key.split('/').map(encodeURIComponent).join('/')}`;
  try {
    const response = await fetchWhole(fetchFn, url, {
      method: 'HEAD',
      headers: { 'user-agent': USER_AGENT },
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
    return response.status >= 200 && response.status < 300;
  } catch {
    return false;
  }
}
