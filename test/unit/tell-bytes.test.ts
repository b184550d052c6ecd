/**
 * Tells read from their head's bytes (src/actors/tell-bytes.ts): whatever the reader takes, its
 * action is msgpackr's and the bytes from its payload offset decode to msgpackr's payload;
 * whatever it does not take (another kind or shape, a long or invalid action, no payload) it
 * leaves to the whole message's decode; it never reads outside the message's bounds.
 */
import { describe, expect, it } from 'vitest';
import { placed } from '../harness/placed.js';
import { Unpackr } from 'msgpackr';
import { TellBytes } from '../../src/actors/tell-bytes.js';

const unpackr = new Unpackr({ useRecords: false });

const PAYLOADS: unknown[] = [null, 0, -1, 1.5, true, 'text', 'é→😀', { n: 1000, pad: 'x'.repeat(50) }, [1, 'two', { three: 3 }], new Uint8Array([1, 2, 3])];

describe('TellBytes', () => {
  it('takes [0, action, payload]: the action as msgpackr decodes it, the payload decoded alone from its offset', () => {
    const reader = new TellBytes();
    for (const action of ['count', 'x', '', 'ünïcode', 'a'.repeat(31)])
      for (const payload of PAYLOADS) {
        const { bytes, start, length } = placed([0, action, payload]);
        expect(reader.read(bytes, start, length), `${action} ${String(payload)}`).toBe(true);
        expect(reader.action).toBe(action);
        expect(reader.payloadAt).toBeLessThan(length);
        const whole = unpackr.unpack(bytes.subarray(start, start + length)) as unknown[];
        expect(unpackr.unpack(bytes.subarray(start + reader.payloadAt, start + length))).toEqual(whole[2]);
      }
  });

  it('keeps the action string while its bytes stay the same', () => {
    const reader = new TellBytes();
    const first = placed([0, 'count', 1]);
    expect(reader.read(first.bytes, first.start, first.length)).toBe(true);
    const action = reader.action;
    const again = placed([0, 'count', 2], 40);
    expect(reader.read(again.bytes, again.start, again.length)).toBe(true);
    expect(reader.action).toBe(action);
    const other = placed([0, 'counu', 2]);
    expect(reader.read(other.bytes, other.start, other.length)).toBe(true);
    expect(reader.action).toBe('counu');
  });

  it('leaves everything else to the whole decode: other kinds, other lengths, long or non-string actions', () => {
    const reader = new TellBytes();
    const others: unknown[] = [
      [1, 'count', 4, 1, 'reply'], // an ask
      [2, 'count', 4, 1], // a reply
      [0, 'count', 4, null, null, 'sender'], // a tell with a sender
      [0, 'count'], // no payload
      [0, 'a'.repeat(32), 4], // a str8 action
      [0, 7, 4], // an action that is no string
      { kind: 0 },
      'count',
    ];
    for (const wire of others) {
      const { bytes, start, length } = placed(wire);
      expect(reader.read(bytes, start, length), JSON.stringify(wire)).toBe(false);
    }
  });

  it('reads nothing past the message: a head cut short is left to the whole decode', () => {
    const reader = new TellBytes();
    const { bytes, start, length } = placed([0, 'count', 4]);
    const head = length - 1; // the payload is the last byte
    for (let cut = 0; cut <= head; cut++) expect(reader.read(bytes, start, cut), `cut to ${cut}`).toBe(false);
    expect(reader.read(bytes, start, length)).toBe(true);
  });

  it('leaves an action that is not valid UTF-8 to the whole decode', () => {
    const reader = new TellBytes();
    const bytes = Buffer.from([0x93, 0x00, 0xa2, 0xc3, 0x28, 0x05]);
    expect(reader.read(bytes, 0, bytes.length)).toBe(false);
  });
});
