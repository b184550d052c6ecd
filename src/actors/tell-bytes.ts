/**
 * Reads the head of a tell from its bytes in the pool, `[0, action, payload]` with a short
 * action: the action from its bytes, the payload decoded alone by msgpackr (it is the array's
 * last element, so it ends where the message ends). What it cannot read this way (any other
 * shape) it leaves to the whole message's decode, as before.
 *
 * Why: a worker that is told at hundreds of thousands a second spends most of its work in
 * msgpackr's decode (docs/benchmarks.md, "Thirty-fifth pass"); decoding the array and a new
 * action string for every tell was a part of it that reading a few bytes here replaces.
 */
import { ActionBytes } from './action-bytes.js';

/** What reads a tell's head (one per actor mailbox: it keeps the last action). */
export class TellBytes {
  private readonly actions = new ActionBytes();
  /** The action read by {@link read}. */
  action = '';
  /** Where the payload starts, from the message's start (set by {@link read}). */
  payloadAt = 0;

  /**
   * Reads the head of the message `bytes[start .. start + length)`: true when it is a tell this
   * reader takes (its action is then in {@link action}, and its payload is the message's bytes
   * from {@link payloadAt} on), false when the whole message must be decoded. Only reads inside
   * those bounds.
   */
  read(bytes: Buffer, start: number, length: number): boolean {
    // fixarray of 3, kind 0 (a tell), a fixstr action, then at least one byte of payload
    if (length < 4 || bytes[start] !== 0x93 || bytes[start + 1] !== 0x00) return false;
    const head = bytes[start + 2]!;
    if ((head & 0xe0) !== 0xa0) return false;
    const actionLength = head & 0x1f;
    if (3 + actionLength >= length) return false;
    if (!this.actions.read(bytes, start + 3, actionLength)) return false;
    this.action = this.actions.action;
    this.payloadAt = 3 + actionLength;
    return true;
  }
}
