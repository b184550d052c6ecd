/** MpBusError as it prints: its own fields are what it says, no `errno: undefined`. */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MpBusError } from '../../src/index.js';

describe('MpBusError', () => {
  it('has an errno field only when one was given', () => {
    expect(Object.keys(new MpBusError('NO_PRIMARY', 'no primary'))).not.toContain('errno');
    expect(inspect(new MpBusError('NO_PRIMARY', 'no primary'))).not.toContain('errno');
    expect(new MpBusError('EEXIST', 'exists', { errno: 17 })).toMatchObject({ code: 'EEXIST', errno: 17 });
  });
});
