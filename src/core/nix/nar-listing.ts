/**
 * The `.ls` listing of a NAR (shared/spec/niks3.md §4.5): its types, and its text exactly as the Go
 * client writes it. The NAR writers build it in the same pass as the NAR.
 */
export interface NarListingRegular {
  type: 'regular';
  size: number;
  executable?: true;
  /** Offset in the uncompressed NAR where the contents start (just after their 8-byte length). */
  narOffset?: number;
}
export interface NarListingDirectory {
  type: 'directory';
  entries: Record<string, NarListingEntry>;
}
export interface NarListingSymlink {
  type: 'symlink';
  target: string;
}
export type NarListingEntry = NarListingRegular | NarListingDirectory | NarListingSymlink;

/** The `.ls` document: `{"version":1,"root":<entry>}`. */
export interface NarListing {
  version: 1;
  root: NarListingEntry;
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function renderEntry(entry: NarListingEntry): string {
  switch (entry.type) {
    case 'regular': {
      let out = `{"type":"regular","size":${entry.size}`;
      if (entry.executable) out += ',"executable":true';
      if (entry.narOffset !== undefined) out += `,"narOffset":${entry.narOffset}`;
      return `${out}}`;
    }
    case 'symlink':
      return `{"type":"symlink","target":${JSON.stringify(entry.target)}}`;
    case 'directory': {
      const names = Object.keys(entry.entries).sort(compareUtf8);
      const parts = names.map(
        (name) => `${JSON.stringify(name)}:${renderEntry(entry.entries[name] as NarListingEntry)}`,
      );
      return `{"type":"directory","entries":{${parts.join(',')}}}`;
    }
  }
}

/**
 * The `.ls` JSON text as the Go client writes it: fields in the order type, size, executable,
 * narOffset / entries / target, directory entries sorted by name bytes (JSON.stringify would put
 * integer-like names such as "10" first). No trailing newline.
 */
export function renderNarListing(listing: NarListing): string {
  return `{"version":1,"root":${renderEntry(listing.root)}}`;
}
