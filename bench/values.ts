/**
 * The values every benchmark row carries, so rows compare the same work: an object
 * `{ seq, body }` whose msgpackr encoding (`useRecords: false`) is exactly `payloadBytes` long
 * for sequence numbers 256..65535 (msgpackr's uint16; a byte or two shorter below, longer
 * above), and raw Buffers of exactly `payloadBytes` for the rows without a codec.
 */
import { Packr } from 'msgpackr';

/** The payload sizes of issue 4: 64-byte and 1 KiB values. */
export const PAYLOAD_SIZES = [64, 1024] as const;

/** The codec configuration every encoded row uses. */
export function benchPackr(): Packr {
  return new Packr({ useRecords: false });
}

export interface BenchValue {
  seq: number;
  body: string;
}

/** A value whose encoding is `payloadBytes` long (for seq 256..65535). */
export function benchValue(payloadBytes: number, seq = 1000): BenchValue {
  const packr = benchPackr();
  let bodyLength = Math.max(0, payloadBytes - 16);
  for (let tries = 0; tries < 8; tries++) {
    const encoded = packr.pack({ seq, body: 'x'.repeat(bodyLength) }).length;
    if (encoded === payloadBytes) break;
    bodyLength = Math.max(0, bodyLength + payloadBytes - encoded);
  }
  return { seq, body: 'x'.repeat(bodyLength) };
}

/** A raw payload of exactly `payloadBytes`. */
export function rawPayload(payloadBytes: number): Buffer {
  return Buffer.alloc(payloadBytes, 0x61);
}
