/**
 * Seeds the fake niks3 with small synthetic closures through its own HTTP API (create a session,
 * PUT each object to its presigned URL, complete), as a push would, at the fake's current clock.
 */
import { randomBytes } from 'node:crypto';
import type { FakeNiks3 } from '../fakes/niks3/index.js';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';

function nix32(length: number): string {
  const bytes = randomBytes(length);
  return [...bytes].map((byte) => NIX32[byte % 32]).join('');
}

export interface SeededClosure {
  readonly storePath: string;
  readonly narinfoKey: string;
  readonly narKey: string;
  readonly narSize: number;
}

async function api(fake: FakeNiks3, method: string, path: string, body?: unknown): Promise<Response> {
  const response = await fetch(`${fake.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${fake.apiToken}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (response.status >= 300)
    throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response;
}

/** One top-level path with its NAR, committed as a closure (a GC root) at the fake's clock. */
export async function seedClosure(fake: FakeNiks3, name = 'seed'): Promise<SeededClosure> {
  const hash = nix32(32);
  const narinfoKey = `${hash}.narinfo`;
  const narKey = `nar/${nix32(52)}.nar.zst`;
  const storePath = `/nix/store/${hash}-${name}`;
  const nar = randomBytes(2048);
  const created = (await (
    await api(fake, 'POST', '/api/pending_closures', {
      closure: narinfoKey,
      objects: [
        { key: narinfoKey, type: 'narinfo', refs: [narKey] },
        { key: narKey, type: 'nar', refs: [], nar_size: nar.length },
      ],
    })
  ).json()) as { id: string; pending_objects: Record<string, { presigned_url?: string }> };
  const narinfo = `StorePath: ${storePath}\nURL: ${narKey}\nCompression: zstd\nNarSize: ${nar.length}\nReferences: \n`;
  for (const [key, pending] of Object.entries(created.pending_objects)) {
    if (!pending.presigned_url) throw new Error(`no presigned URL for ${key}`);
    const put = await fetch(pending.presigned_url, { method: 'PUT', body: key === narKey ? nar : narinfo });
    if (put.status >= 300) throw new Error(`PUT ${key}: ${put.status} ${await put.text()}`);
  }
  await api(fake, 'POST', `/api/pending_closures/${created.id}/complete`);
  return { storePath, narinfoKey, narKey, narSize: nar.length };
}

export async function pin(fake: FakeNiks3, name: string, storePath: string): Promise<void> {
  await api(fake, 'POST', `/api/pins/${name}`, { store_path: storePath });
}

/** Starts a GC straight on the fake (as another runner would). */
export async function startOtherGc(fake: FakeNiks3, olderThan: string): Promise<number> {
  const response = await fetch(`${fake.url}/api/closures?older-than=${olderThan}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${fake.apiToken}` },
  });
  return response.status;
}
