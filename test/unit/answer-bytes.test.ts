/**
 * Answers read from their bytes (src/actors/answer-bytes.ts): whatever the reader takes, it
 * reads as msgpackr decodes it (value, id, action); whatever it does not take (another shape, a
 * failure, another value, a cut or padded message) it leaves to msgpackr; it never reads
 * outside the message's bounds.
 */
import { describe, expect, it } from 'vitest';
import { placed } from '../harness/placed.js';
import { Unpackr } from 'msgpackr';
import { AnswerBytes } from '../../src/actors/answer-bytes.js';

const unpackr = new Unpackr({ useRecords: false });

const VALUES: unknown[] = [
  undefined,
  null,
  true,
  false,
  0,
  1,
  127,
  128,
  255,
  256,
  65_535,
  65_536,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53,
  -1,
  -32,
  -33,
  -128,
  -129,
  -32_768,
  -32_769,
  -(2 ** 31),
  -(2 ** 31) - 1,
  1.5,
  -2.25,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
];
const IDS = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1];

describe('AnswerBytes', () => {
  it('reads replies of numbers, booleans, null and undefined as msgpackr decodes them', () => {
    const reader = new AnswerBytes();
    for (const value of VALUES) {
      for (const id of IDS) {
        for (const action of ['square', 'x', '', 'ünïcode', 'a'.repeat(31)]) {
          const { bytes, start, length } = placed([2, action, value, id]);
          const decoded = unpackr.unpack(bytes.subarray(start, start + length)) as unknown[];
          expect(reader.read(bytes, start, length), `${String(value)} ${id} ${action}`).toBe(true);
          expect(Object.is(reader.value, decoded[2]), `${String(value)}`).toBe(true);
          expect(reader.id).toBe(decoded[3]);
          expect(reader.action).toBe(decoded[1]);
        }
      }
    }
  });

  it('keeps the action string while its bytes stay the same, and reads a new one when they change', () => {
    const reader = new AnswerBytes();
    const first = placed([2, 'square', 4, 1]);
    expect(reader.read(first.bytes, first.start, first.length)).toBe(true);
    const action = reader.action;
    const again = placed([2, 'square', 9, 2], 40);
    expect(reader.read(again.bytes, again.start, again.length)).toBe(true);
    expect(reader.action).toBe(action);
    const other = placed([2, 'squarf', 9, 3]);
    expect(reader.read(other.bytes, other.start, other.length)).toBe(true);
    expect(reader.action).toBe('squarf');
  });

  it('leaves everything else to msgpackr: failures, other kinds, other values, long actions, large ids', () => {
    const reader = new AnswerBytes();
    const others: unknown[] = [
      [3, 'square', { code: 'X', message: 'no' }, 1], // a failure
      [1, 'square', 4, 1], // an ask
      [2, 'square', 4], // no id
      [2, 'square', 4, 1, 'extra'],
      [2, 'square', 'a string', 1],
      [2, 'square', { n: 1 }, 1],
      [2, 'square', [1, 2], 1],
      [2, 'square', new Uint8Array([1, 2]), 1],
      [2, 'square', 2n ** 64n - 1n, 1],
      [2, 'square', -(2n ** 63n), 1],
      [2, 'a'.repeat(32), 4, 1], // a str8 action
      [2, 'square', 4, 2 ** 32], // an id past uint32
      [2, 'square', 4, -1],
      [2, 7, 4, 1], // an action that is no string
      { kind: 2 },
      'square',
      4,
    ];
    for (const wire of others) {
      const { bytes, start, length } = placed(wire);
      expect(
        reader.read(bytes, start, length),
        JSON.stringify(wire, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
      ).toBe(false);
    }
  });

  it('reads nothing past the message: a reply cut short, or with bytes after it, is left to msgpackr', () => {
    const reader = new AnswerBytes();
    for (const value of VALUES) {
      const { bytes, start, length } = placed([2, 'square', value, 70_000]);
      for (let cut = 0; cut < length; cut++) expect(reader.read(bytes, start, cut), `${String(value)} cut to ${cut}`).toBe(false);
      expect(reader.read(bytes, start, length + 1)).toBe(false);
    }
  });

  it('leaves an action that is not valid UTF-8 to msgpackr', () => {
    const reader = new AnswerBytes();
    const bytes = Buffer.from([0x94, 0x02, 0xa2, 0xc3, 0x28, 0x05, 0x01]);
    expect(reader.read(bytes, 0, bytes.length)).toBe(false);
  });
});
