/**
 * A job summary as Markdown, built by the core and written by the entry point (Actions: the
 * GITHUB_STEP_SUMMARY file; CLI: stdout). Cells are escaped so a store path or error cannot break
 * the table.
 */
export class Report {
  private readonly parts: string[] = [];

  heading(text: string, level = 2): this {
    this.parts.push(`${'#'.repeat(level)} ${text}\n`);
    return this;
  }

  paragraph(text: string): this {
    this.parts.push(`${text}\n`);
    return this;
  }

  table(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): this {
    if (rows.length === 0) return this;
    const line = (cells: ReadonlyArray<string | number>): string =>
      `| ${cells.map((c) => escapeCell(String(c))).join(' | ')} |`;
    this.parts.push(
      [line(header), `| ${header.map(() => '---').join(' | ')} |`, ...rows.map(line)].join('\n') + '\n',
    );
    return this;
  }

  list(items: readonly string[]): this {
    if (items.length > 0) this.parts.push(items.map((item) => `- ${item}`).join('\n') + '\n');
    return this;
  }

  code(text: string, language = ''): this {
    const fence = text.includes('```') ? '````' : '```';
    this.parts.push(`${fence}${language}\n${text.replace(/\n$/, '')}\n${fence}\n`);
    return this;
  }

  details(summary: string, body: string): this {
    this.parts.push(`<details><summary>${escapeHtml(summary)}</summary>\n\n${body}\n</details>\n`);
    return this;
  }

  toString(): string {
    return this.parts.join('\n');
  }
}

export function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The consumer snippet: how to use the cache from nix.conf or a flake. */
export function consumerSnippet(cacheUrl: string, publicKey: string): string {
  return [
    '# nix.conf (or /etc/nix/nix.conf)',
    `extra-substituters = ${cacheUrl}`,
    `extra-trusted-public-keys = ${publicKey}`,
    '',
    '# flake.nix',
    'nixConfig = {',
    `  extra-substituters = [ "${cacheUrl}" ];`,
    `  extra-trusted-public-keys = [ "${publicKey}" ];`,
    '};',
  ].join('\n');
}
