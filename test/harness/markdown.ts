/** Fenced code blocks of a Markdown file, so tests can hold the docs to the code they print. */

export interface CodeBlock {
  /** The fence's info string (`ts`, `jsonc`, `sh`, ...). */
  lang: string;
  /** The block's text, ending with a newline. */
  code: string;
  /** The nearest heading above the block, without its `#`s. */
  heading: string;
  /** The file a block stands for when its first line is a comment `// <path>`, else undefined. */
  path: string | undefined;
}

/** Every fenced (```) block of `markdown`, in order. */
export function codeBlocks(markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  let heading = '';
  let open: { lang: string; lines: string[] } | undefined;
  for (const line of markdown.split('\n')) {
    if (open) {
      if (line.startsWith('```')) {
        const code = open.lines.length > 0 ? `${open.lines.join('\n')}\n` : '';
        const path = /^\/\/ ([\w./-]+\.\w+)$/.exec(open.lines[0] ?? '')?.[1];
        blocks.push({ lang: open.lang, code, heading, path });
        open = undefined;
      } else open.lines.push(line);
    } else if (line.startsWith('```')) open = { lang: line.slice(3).trim(), lines: [] };
    else if (line.startsWith('#')) heading = line.replace(/^#+\s*/, '');
  }
  if (open) throw new Error(`unclosed code block (\`\`\`${open.lang}) under '${heading}'`);
  return blocks;
}

/** The part of `markdown` under the heading `title` (up to the next heading of the same or a higher level). */
export function section(markdown: string, title: string): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^#+ /.test(l) && l.replace(/^#+\s*/, '') === title);
  if (start < 0) throw new Error(`no heading '${title}'`);
  const level = /^#+/.exec(lines[start]!)![0].length;
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level);
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}
