/**
 * The mpbus envelope at the start of an rte_mp param (src/bus/envelope.ts): what one process
 * writes another reads back field for field, raw bytes from C peers are told apart, and a
 * header another process garbled is refused as MALFORMED_MESSAGE, never half-read.
 */
import { describe, expect, it } from 'vitest';
import {
  ENVELOPE_HEADER_BYTES,
  MpEnvelopeKind,
  LARGE_REF_BYTES,
  correlationIdOf,
  decodeValue,
  encodeValue,
  hasEnvelope,
  inlineCapacity,
  readEnvelope,
  writeEnvelope,
  type MpEnvelopeHead,
} from '../../src/bus/envelope.js';

const head: MpEnvelopeHead = { kind: MpEnvelopeKind.request, role: 'secondary', pid: 4242, correlationId: 0xfffffffe, deadlineMs: 123456.5 };

function malformed(param: Buffer, why: string | RegExp): void {
  expect(() => readEnvelope(param)).toThrow(expect.objectContaining({ code: 'MALFORMED_MESSAGE', message: expect.stringMatching(why) }));
}

describe('envelope', () => {
  it('carries kind, role, pid, correlation id, deadline, handler name and an inline value', () => {
    const value = encodeValue({ a: 1, b: 'two', c: [3] });
    const param = writeEnvelope({ ...head, target: Buffer.from('add·é') }, value);
    expect(param.length).toBe(ENVELOPE_HEADER_BYTES + Buffer.byteLength('add·é') + value.length);
    expect(hasEnvelope(param)).toBe(true);
    expect(correlationIdOf(param)).toBe(0xfffffffe);
    const env = readEnvelope(param);
    expect(env).toMatchObject({ kind: MpEnvelopeKind.request, role: 'secondary', pid: 4242, correlationId: 0xfffffffe, deadlineMs: 123456.5, target: 'add·é' });
    expect(env.large).toBeUndefined();
    expect(decodeValue(env.inline!)).toEqual({ a: 1, b: 'two', c: [3] });
  });

  it('carries a reference to a large value in shared memory instead of the value', () => {
    const param = writeEnvelope(
      { ...head, kind: MpEnvelopeKind.message, role: 'primary', correlationId: 0, deadlineMs: 0 },
      { address: 0x6000_0000_1000, length: 1 << 20, token: 77 },
    );
    expect(param.length).toBe(ENVELOPE_HEADER_BYTES + LARGE_REF_BYTES);
    const env = readEnvelope(param);
    expect(env).toMatchObject({ kind: MpEnvelopeKind.message, role: 'primary', target: '', large: { address: 0x6000_0000_1000, length: 1 << 20, token: 77 } });
    expect(env.inline).toBeUndefined();
  });

  it('tells raw bytes (a C peer) from an envelope', () => {
    expect(hasEnvelope(Buffer.from('hello'))).toBe(false);
    expect(hasEnvelope(Buffer.from([0x6d, 0x70, 0x42]))).toBe(false);
    expect(hasEnvelope(Buffer.from([0x6d, 0x70, 0x42, 0x02]))).toBe(false); // another version
    expect(correlationIdOf(Buffer.from('hello world, this is C'))).toBeUndefined();
  });

  it('refuses a header that does not hold together', () => {
    const good = writeEnvelope({ ...head, target: Buffer.from('x') }, encodeValue(1));
    const garbled = (at: number, byte: number): Buffer => {
      const b = Buffer.from(good);
      b[at] = byte;
      return b;
    };
    malformed(good.subarray(0, ENVELOPE_HEADER_BYTES - 1), /shorter than the 24-byte header/);
    malformed(garbled(4, 0), /unknown kind 0/);
    malformed(garbled(4, 6), /unknown kind 6/);
    malformed(garbled(5, 2), /unknown flags 0x2/);
    malformed(garbled(6, 3), /unknown role 3/);
    malformed(garbled(7, 200), /name length 200 overruns/);
    const deadline = (ms: number): Buffer => {
      const b = Buffer.from(good);
      b.writeDoubleLE(ms, 16);
      return b;
    };
    malformed(deadline(NaN), /invalid deadline/);
    malformed(deadline(-1), /invalid deadline/);
    malformed(deadline(Infinity), /invalid deadline/);
  });

  it('refuses a large-value reference of the wrong size or with an impossible address', () => {
    const large = (address: number): Buffer => writeEnvelope({ ...head, kind: MpEnvelopeKind.message }, { address, length: 10, token: 1 });
    malformed(Buffer.concat([large(4096), Buffer.from([0])]), /must be 16 bytes/);
    malformed(large(4096).subarray(0, ENVELOPE_HEADER_BYTES + 8), /must be 16 bytes/);
    malformed(large(0), /invalid shared-memory address/);
    malformed(large(4096.5), /invalid shared-memory address/);
    malformed(large(2 ** 60), /invalid shared-memory address/);
  });

  it('encodes plain data, and refuses what cannot cross a process before anything is sent', () => {
    for (const v of [null, 0, -1.5, 'text', [1, [2]], { nested: { deep: true } }, new Uint8Array([1, 2, 3]), new Date(0)]) {
      expect(decodeValue(encodeValue(v))).toEqual(v);
    }
    expect(() => encodeValue(() => 1)).toThrow(expect.objectContaining({ code: 'ENCODE_FAILED' }));
    expect(() => encodeValue(Symbol('s'))).toThrow(expect.objectContaining({ code: 'ENCODE_FAILED' }));
  });

  it('leaves the param minus the header and handler name for an inline value', () => {
    expect(inlineCapacity(256)).toBe(232);
    expect(inlineCapacity(256, Buffer.from('handler'))).toBe(225);
  });
});
