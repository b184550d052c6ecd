/** Text formatting shared by the `mpbus` commands: aligned tables, sizes, durations, rates. */

/** Control characters (C0, DEL, C1): a newline would split a row, an escape sequence would reach the terminal; and the backslash the escapes start with. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\\]/gu;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

/**
 * `text` with its control characters written as escapes (`\n`, `\x1b`), and a backslash as `\\`
 * (so that a name with a backslash and an `n` does not read as one with a newline): names come from any
 * process of the group (an actor's name is any 1-63 bytes), and are printed on the operator's
 * terminal.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Rows under a header, each column as wide as its widest cell (in code points), two spaces apart; cells made {@link printable}. */
export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows].map((r) => r.map(printable));
  const width = (cell: string): number => [...cell].length;
  const widths = header.map((_, i) => Math.max(...all.map((r) => width(r[i] ?? ''))));
  return all
    .map((r) =>
      r
        .map((cell, i) => cell + ' '.repeat(widths[i]! - width(cell)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Bytes as MiB. */
export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

/** A duration as `1h02m`, `3m05s` or `12s`. */
export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** A count or rate with k/M suffixes past 10 000. */
export function amount(n: number): string {
  if (n >= 1e7) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** A latency in ms, or '-' when there is none. */
export function latency(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (ms === Infinity) return '>1m';
  if (ms < 1) return `${(ms * 1000).toFixed(0)}µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 0)}ms`;
  return `${(ms / 1000).toFixed(1)}s`;
}
