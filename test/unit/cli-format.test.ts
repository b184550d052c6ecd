/**
 * The tables of `mpbus ps`, `top` and `ls`: an actor's name is any 1-63 bytes from any process
 * of the group, so control characters are escaped (a newline split a row; an escape sequence
 * reached the operator's terminal) and columns are as wide as their cells in code points.
 */
import { describe, expect, it } from 'vitest';
import { formatTable, printable } from '../../src/cli/format.js';

describe('CLI tables', () => {
  it('escape control characters in cells and keep columns aligned', () => {
    expect(printable('a\nb\tc\r\x1b[31mred\x7f\u009b')).toBe('a\\nb\\tc\\r\\x1b[31mred\\x7f\\x9b');
    // a backslash and an n, not a newline
    expect(printable('a\\nb')).toBe('a\\\\nb');
    const table = formatTable(
      ['ACTOR', 'PID'],
      [
        ['new\nline', '1'],
        ['esc\x1b[31mRED', '2'],
        ['ünï', '3'],
      ],
    );
    // the widest cell, `esc\x1b[31mRED` escaped, is 14 code points
    expect(table.split('\n')).toEqual(['ACTOR           PID', 'new\\nline       1', 'esc\\x1b[31mRED  2', 'ünï             3']);
  });
});
