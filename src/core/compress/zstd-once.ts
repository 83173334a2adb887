/**
 * One-shot zstd for whole objects (small NARs, listings, logs, narinfos), with one compression
 * context per level kept for the whole process and one reused output buffer.
 *
 * Why not `zstdCompressSync` per object: each call builds a new context (its tables are fresh
 * memory, faulted in page by page) and returns a slice of a new output buffer of the size asked
 * for, so a push of 200 paths allocated about its whole NAR size again in buffers the garbage
 * collector had to find. Here the frame is written into one scratch buffer of zstd's worst-case
 * size and copied into a buffer of exactly the compressed size: the same bytes as
 * `zstdCompressSync` (one `ZSTD_e_end` call, so zstd knows the source size), a fraction of the
 * allocations.
 *
 * The context is driven through the stream's native handle, which node:zlib itself uses for its
 * synchronous calls but does not document. When that handle is missing or misbehaves (another Node
 * version), or zstd reports an error, the object is compressed with `zstdCompressSync` instead and
 * the context is dropped, so a change in Node costs speed, never correctness.
 */
import { constants, createZstdCompress, zstdCompressSync, type ZstdCompress } from 'node:zlib';

/** zstd's worst case for `n` input bytes (ZSTD_COMPRESSBOUND), with a little slack. */
export function compressBound(n: number): number {
  return n + (n >> 8) + (n < 131_072 ? (131_072 - n) >> 11 : 0) + 1024;
}

export function zstdLevelParams(level: number): { params: Record<number, number> } {
  return { params: { [constants.ZSTD_c_compressionLevel]: level } };
}

interface NativeHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOffset: number,
    inLength: number,
    output: Uint8Array,
    outOffset: number,
    outLength: number,
  ): void;
}

interface Context {
  readonly stream: ZstdCompress;
  readonly handle: NativeHandle;
  /** [output bytes left, input bytes left] after each writeSync (node:zlib's write state). */
  readonly state: Uint32Array;
  error: unknown;
}

const contexts = new Map<number, Context | null>();
let scratch: Buffer | undefined;
/** Scratch buffers up to this size are kept between calls (a small NAR's worst case). */
const SCRATCH_KEPT = 11 * 1024 * 1024;

function contextFor(level: number): Context | undefined {
  const known = contexts.get(level);
  if (known !== undefined) return known ?? undefined;
  let context: Context | null = null;
  try {
    const stream = createZstdCompress(zstdLevelParams(level));
    const inner = stream as unknown as { _handle?: Partial<NativeHandle>; _writeState?: unknown };
    const handle = inner._handle;
    const state = inner._writeState;
    if (
      handle &&
      typeof handle.writeSync === 'function' &&
      state instanceof Uint32Array &&
      state.length >= 2
    ) {
      const made: Context = { stream, handle: handle as NativeHandle, state, error: undefined };
      stream.on('error', (error: unknown) => {
        made.error = error;
      });
      context = made;
    } else {
      stream.close();
    }
  } catch {
    context = null;
  }
  contexts.set(level, context);
  return context ?? undefined;
}

function drop(level: number, context: Context): void {
  contexts.set(level, null);
  try {
    context.stream.close();
  } catch {
    // already gone
  }
}

/** The zstd frame of `data` at `level`, in a buffer of exactly its size. */
export function zstdOnce(data: string | Uint8Array, level: number): Buffer {
  const input = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const context = contextFor(level);
  if (context) {
    const bound = compressBound(input.length);
    const out = scratch && scratch.length >= bound ? scratch : Buffer.allocUnsafe(bound);
    try {
      context.handle.writeSync(constants.ZSTD_e_end, input, 0, input.length, out, 0, out.length);
      const [outLeft, inLeft] = context.state as unknown as [number, number];
      // Done when zstd took all input and had room to spare: with ZSTD_e_end, output left over
      // means the frame is complete.
      if (context.error === undefined && inLeft === 0 && outLeft > 0) {
        const size = out.length - outLeft;
        const body = Buffer.allocUnsafe(size);
        out.copy(body, 0, 0, size);
        if (out.length <= SCRATCH_KEPT && out !== scratch) scratch = out;
        return body;
      }
    } catch {
      // fall through: the one-call API below
    }
    drop(level, context);
  }
  return zstdCompressSync(input, { ...zstdLevelParams(level), chunkSize: compressBound(input.length) });
}
