/**
 * Pins (spec §3.11): a name → store path mapping that protects the store path's
 * closure row from GC and is mirrored to the bucket as `pins/<name>`.
 */
import type { Niks3Context } from './context.js';
import { goRfc3339Seconds } from './go-duration.js';
import { decodeGoJson, go, GoJsonError } from './go-json.js';
import { drainBody, httpError, noContent, readBody, writeJson } from './http-io.js';
import type { RouteHandler } from './uploads.js';

const PIN_NAME = /^[a-zA-Z0-9._-]+$/;

/** niks3's `storePathToNarinfoKey`: the text after the last `/`, up to the first `-`, must be non-empty. */
export function storePathToNarinfoKey(storePath: string): string | undefined {
  const base = storePath.slice(storePath.lastIndexOf('/') + 1);
  const dash = base.indexOf('-');
  if (dash <= 0) return undefined;
  return base.slice(0, dash) + '.narinfo';
}

/** `POST /api/pins/{name}` */
export const createPin: RouteHandler = async (ctx: Niks3Context, req, res, params) => {
  const name = params['name'] ?? '';
  if (name === '') {
    await drainBody(req);
    return httpError(res, 'missing pin name', 400);
  }
  if (!PIN_NAME.test(name)) {
    await drainBody(req);
    return httpError(
      res,
      'invalid pin name: must contain only alphanumeric characters, dashes, underscores, and dots',
      400,
    );
  }
  if (name.length > 256) {
    await drainBody(req);
    return httpError(res, 'pin name too long: maximum 256 characters', 400);
  }
  // The pin body has no size limit (spec §0.3).
  const raw = await readBody(req);
  let body: { store_path: string };
  try {
    body = decodeGoJson(
      raw,
      go.struct('createPinRequest', { store_path: go.string }),
      'server.createPinRequest',
    );
  } catch (err) {
    if (err instanceof GoJsonError) return httpError(res, `failed to decode request: ${err.message}`, 400);
    throw err;
  }
  if (body.store_path === '') return httpError(res, 'missing store_path', 400);
  const narinfoKey = storePathToNarinfoKey(body.store_path);
  if (narinfoKey === undefined) {
    return httpError(res, `invalid store path: invalid store path format: ${body.store_path}`, 400);
  }
  if (!ctx.state.closures.has(narinfoKey)) {
    return httpError(res, 'closure not found: store path must be pushed before pinning', 404);
  }
  try {
    await ctx.store.put(`pins/${name}`, body.store_path, { contentType: 'text/plain' });
  } catch (err) {
    return httpError(res, `failed to write pin to S3: ${(err as Error).message}`, 500);
  }
  const now = ctx.now();
  const existing = ctx.state.pins.get(name);
  ctx.state.pins.set(name, {
    name,
    narinfoKey,
    storePath: body.store_path,
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
  });
  noContent(res);
};

/** `GET /api/pins` */
export const listPins: RouteHandler = async (ctx, req, res) => {
  await drainBody(req);
  const pins = [...ctx.state.pins.values()]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((p) => ({
      name: p.name,
      store_path: p.storePath,
      created_at: goRfc3339Seconds(p.createdAt),
      updated_at: goRfc3339Seconds(p.updatedAt),
    }));
  writeJson(res, 200, pins);
};

/** `DELETE /api/pins/{name}` */
export const deletePin: RouteHandler = async (ctx, req, res, params) => {
  await drainBody(req);
  const name = params['name'] ?? '';
  if (name === '') return httpError(res, 'missing pin name', 400);
  if (!ctx.state.pins.has(name)) return httpError(res, 'pin not found', 404);
  ctx.state.pins.delete(name);
  try {
    await ctx.store.delete(`pins/${name}`);
  } catch (err) {
    ctx.log(`failed to delete pin from S3: ${(err as Error).message}`);
  }
  noContent(res);
};
