/**
 * Asks read from their bytes (src/actors/ask-bytes.ts) and the end of a msgpack value found
 * without decoding it (src/actors/msgpack-extent.ts): whatever the reader takes, its fields are
 * msgpackr's and the payload's bytes decode to msgpackr's payload; whatever it does not take it
 * leaves to the whole message's decode; neither reads outside the message's bounds.
 */
import { describe, expect, it } from 'vitest';
import { Packr, Unpackr } from 'msgpackr';
import { placed } from '../harness/placed.js';
import { AskBytes } from '../../src/actors/ask-bytes.js';
import { msgpackEnd } from '../../src/actors/msgpack-extent.js';
import { encodeValue } from '../../src/bus/value-codec.js';
import { WireFrames } from '../../src/actors/wire-frames.js';
import { EnvelopeKind, makeEnvelope } from '../../src/actors/transport.js';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

const VALUES: unknown[] = [
  null,
  undefined,
  0,
  -1,
  -33,
  127,
  128,
  70000,
  2 ** 32 + 1,
  -(2 ** 40),
  1.5,
  true,
  false,
  '',
  'text',
  'é→😀',
  'x'.repeat(31),
  'x'.repeat(50),
  'y'.repeat(300),
  'z'.repeat(70000),
  { n: 1000, pad: 'x'.repeat(50) },
  [1, 'two', { three: [3, { four: null }] }],
  Array.from({ length: 20 }, (_, i) => i),
  Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
  new Uint8Array([1, 2, 3]),
  new Uint8Array(300),
  new Date(1_700_000_000_000),
];

/** Values msgpackr writes as a one-byte extension tag and another value after it: left to the whole decode. */
const TAGGED: unknown[] = [encodeValue(new Map([[1, 'one']])), encodeValue(10n ** 30n), { inside: [encodeValue(new Set([1]))] }];

describe('msgpackEnd', () => {
  it('finds where each value ends, whatever follows it', () => {
    for (const value of VALUES) {
      const packed = packr.pack(value);
      const bytes = Buffer.concat([Buffer.from([0xc3]), packed, Buffer.from([0x01, 0x02])]);
      expect(msgpackEnd(bytes, 1, bytes.length), String(value)).toBe(1 + packed.length);
    }
  });

  it('answers -1 for a value whose end depends on the receiver (a one-byte extension tag)', () => {
    for (const value of TAGGED) {
      const packed = Buffer.from(packr.pack(value));
      expect(msgpackEnd(packed, 0, packed.length)).toBe(-1);
    }
  });

  it('answers -1 for a value cut short, at every cut, and for the unused type 0xc1', () => {
    for (const value of VALUES.filter((v) => typeof v !== 'string' || v.length < 1000)) {
      const packed = Buffer.from(packr.pack(value));
      for (let cut = 0; cut < packed.length; cut++) expect(msgpackEnd(packed, 0, cut), `${String(value)} cut to ${cut}`).toBe(-1);
    }
    expect(msgpackEnd(Buffer.from([0xc1]), 0, 1)).toBe(-1);
    expect(msgpackEnd(Buffer.from([0x92, 0x01, 0xc1]), 0, 3)).toBe(-1);
  });

  it('ends at the bound for a forged count, reading nothing past it', () => {
    // array 32 of 2^32 - 1 elements, map 32 likewise, a str 32 that claims 4 GiB
    for (const head of [
      [0xdd, 0xff, 0xff, 0xff, 0xff],
      [0xdf, 0xff, 0xff, 0xff, 0xff],
      [0xdb, 0xff, 0xff, 0xff, 0xff],
    ]) {
      const bytes = Buffer.alloc(64, 0x01);
      bytes.set(head);
      expect(msgpackEnd(bytes, 0, 32)).toBe(-1);
    }
  });
});

/** An ask's message as a batched send writes it (head, payload, tail: WireFrames), at offset 7 of a larger buffer. */
function framed(payload: unknown, id: number, replyTo: string, sender: string | undefined, deadline: number): { bytes: Buffer; start: number; length: number } {
  const frames = new WireFrames();
  expect(frames.set(makeEnvelope(EnvelopeKind.ask, 'square', payload, id, replyTo, sender, deadline))).toBe(true);
  const { bytes: head, tail, tailLength } = frames.frame;
  const message = Buffer.concat([head!, packr.pack(payload), tail.subarray(0, tailLength)]);
  const bytes = Buffer.alloc(7 + message.length + 9, 0x94);
  bytes.set(message, 7);
  return { bytes, start: 7, length: message.length };
}

describe('AskBytes', () => {
  it('takes [1, action, payload, id, replyTo, sender?, deadline?]: the fields as msgpackr decodes them, the payload decoded alone', () => {
    const reader = new AskBytes();
    const tails: Array<[number | null, string | null, string | null, number | undefined]> = [
      [7, '$reply.0.1234.1', null, undefined],
      [300, '$reply.0.1234.1', 'caller-actor', undefined],
      [70_000, '$reply.0.1234.1', null, 1_765_000_000_000.25],
      [2 ** 32 - 1, 'r'.repeat(120), 's'.repeat(40), 5.5],
      [null, null, null, undefined],
    ];
    for (const [id, replyTo, sender, deadline] of tails)
      for (const payload of VALUES) {
        const wire: unknown[] = [1, 'square', payload, id, replyTo];
        if (sender !== null || deadline !== undefined) wire.push(sender);
        if (deadline !== undefined) wire.push(deadline);
        const { bytes, start, length } = placed(wire);
        const taken = reader.read(bytes, start, length);
        expect(taken, `${JSON.stringify(wire.slice(3))} ${String(payload)}`).toBe(true);
        const whole = unpackr.unpack(bytes.subarray(start, start + length)) as unknown[];
        expect(reader.action).toBe('square');
        expect(reader.id).toBe(whole[3] ?? undefined);
        expect(reader.replyTo).toBe(whole[4] ?? undefined);
        expect(reader.sender).toBe(whole[5] ?? undefined);
        expect(reader.deadline).toBe(whole[6] ?? undefined);
        expect(unpackr.unpack(bytes.subarray(start + reader.payloadAt, start + reader.payloadEnd))).toEqual(whole[2]);
      }
  });

  it('takes what the sending side frames, with its float64 deadline', () => {
    const reader = new AskBytes();
    const { bytes, start, length } = framed({ n: 1000, pad: 'x'.repeat(50) }, 12345, '$reply.0.1234.1', undefined, 1_765_000_000_000);
    expect(reader.read(bytes, start, length)).toBe(true);
    expect([reader.id, reader.replyTo, reader.sender, reader.deadline]).toEqual([12345, '$reply.0.1234.1', undefined, 1_765_000_000_000]);
  });

  // (Whether the string is the last one's object cannot be seen from JavaScript: this checks that
  // the strings kept for equal bytes, and those read anew for changed bytes, are the right ones.)
  it('reads the right strings when later messages repeat them and when they change', () => {
    const reader = new AskBytes();
    const first = placed([1, 'square', 1, 1, '$reply.0.1.1', 'me']);
    expect(reader.read(first.bytes, first.start, first.length)).toBe(true);
    const [action, replyTo, sender] = [reader.action, reader.replyTo, reader.sender];
    const again = placed([1, 'square', 2, 2, '$reply.0.1.1', 'me'], 40);
    expect(reader.read(again.bytes, again.start, again.length)).toBe(true);
    expect([reader.action, reader.replyTo, reader.sender]).toEqual([action, replyTo, sender]);
    const other = placed([1, 'square', 2, 2, '$reply.0.1.2', 'me']);
    expect(reader.read(other.bytes, other.start, other.length)).toBe(true);
    expect(reader.replyTo).toBe('$reply.0.1.2');
  });

  it('leaves everything else to the whole decode', () => {
    const reader = new AskBytes();
    const others: unknown[] = [
      [0, 'square', 4], // a tell
      [0, 'square', 4, null, null, 'sender'], // a tell with a sender
      [2, 'square', 4, 1], // a reply
      [1, 'square', 4, 1], // no reply address
      [1, 'square', 4, 1, 'r', null, 1.5, 'trace'], // a trace
      [1, 'a'.repeat(32), 4, 1, 'r'], // a str8 action
      [1, 7, 4, 1, 'r'], // an action that is no string
      [1, 'square', 4, -1, 'r'], // an id that is not a uint32
      [1, 'square', 4, 2 ** 33, 'r'],
      [1, 'square', 4, 'id', 'r'],
      [1, 'square', 4, 1, 7], // a reply address that is no string
      [1, 'square', 4, 1, 'r'.repeat(256)], // a str16 reply address
      [1, 'square', 4, 1, 'r', 7], // a sender that is no string
      [1, 'square', 4, 1, 'r', null, 'soon'], // a deadline that is no number
      ...TAGGED.map((payload) => [1, 'square', payload, 1, 'r']), // a payload whose end bytes alone do not tell
      { kind: 1 },
      'square',
    ];
    for (const wire of others) {
      const { bytes, start, length } = placed(wire);
      expect(reader.read(bytes, start, length), JSON.stringify(wire)).toBe(false);
    }
  });

  it('reads nothing past the message: one cut short anywhere is left to the whole decode', () => {
    const reader = new AskBytes();
    const { bytes, start, length } = placed([1, 'square', { n: 1000, pad: 'x'.repeat(50) }, 300, '$reply.0.1234.1', 'me', 1.5]);
    for (let cut = 0; cut < length; cut++) expect(reader.read(bytes, start, cut), `cut to ${cut}`).toBe(false);
    expect(reader.read(bytes, start, length)).toBe(true);
  });

  it('leaves strings that are not valid UTF-8 to the whole decode', () => {
    const reader = new AskBytes();
    const bytes = Buffer.from([0x95, 0x01, 0xa1, 0x61, 0x05, 0x01, 0xa2, 0xc3, 0x28]);
    expect(reader.read(bytes, 0, bytes.length)).toBe(false);
  });
});
