/**
 * Reads an ask from its bytes in the pool, `[1, action, payload, id, replyTo, sender?,
 * deadline?]` as WireFrames writes it: the action, reply address and sender from their bytes
 * (each the last one's string while its bytes stay the same), the id and deadline as numbers,
 * and where the payload starts and ends, so that msgpackr decodes the payload alone. What it
 * cannot read this way (another shape, a trace, a type the sender does not write here) it
 * leaves to the whole message's decode, as before.
 *
 * Why: a worker asked at hundreds of thousands a second spent about a third of its CPU in
 * msgpackr's decode of the ask. Most of that is the payload, which msgpackr still decodes; the
 * rest made an array, a new action and reply-address string per ask (the reply address then
 * hashed anew where it is looked up), and for a payload string longer than 31 bytes msgpackr's
 * native extraction took the tail's strings too. Read here, the peers suite's ask costs 3% fewer
 * instructions and allocates 247 bytes instead of ~456 (docs/benchmarks.md, "Thirty-eighth pass").
 */
import { ActionBytes } from './action-bytes.js';
import { msgpackEnd } from './msgpack-extent.js';

/** What reads an ask's bytes (one per actor mailbox: it keeps the last strings). */
export class AskBytes {
  private readonly actions = new ActionBytes();
  private readonly replyTos = new ActionBytes();
  private readonly senders = new ActionBytes();
  /** The fields read by {@link read} (valid until the next call). */
  action = '';
  id: number | undefined = undefined;
  replyTo: string | undefined = undefined;
  sender: string | undefined = undefined;
  deadline: number | undefined = undefined;
  /** Where the payload starts and ends, from the message's start (set by {@link read}). */
  payloadAt = 0;
  payloadEnd = 0;

  /**
   * Reads the message `bytes[start .. start + length)`: true when it is an ask this reader
   * takes (its fields are then set, and its payload is the message's bytes from
   * {@link payloadAt} to {@link payloadEnd}), false when the whole message must be decoded. Only
   * reads inside those bounds.
   */
  read(bytes: Buffer, start: number, length: number): boolean {
    const end = start + length;
    // a fixarray of 5 to 7, kind 1 (an ask), a fixstr action
    const fields = bytes[start]! - 0x90;
    if (length < 8 || fields < 5 || fields > 7 || bytes[start + 1] !== 0x01) return false;
    const head = bytes[start + 2]!;
    if ((head & 0xe0) !== 0xa0) return false;
    const actionLength = head & 0x1f;
    const payloadAt = start + 3 + actionLength;
    if (payloadAt >= end || !this.actions.read(bytes, start + 3, actionLength)) return false;
    const payloadEnd = msgpackEnd(bytes, payloadAt, end);
    if (payloadEnd < 0 || payloadEnd >= end) return false;
    let at = payloadEnd;
    const idType = bytes[at++]!;
    let id: number | undefined;
    if (idType < 0x80) id = idType;
    else if (idType === 0xc0) id = undefined;
    else if (idType === 0xcc && at + 1 <= end) id = bytes[at++]!;
    else if (idType === 0xcd && at + 2 <= end) {
      id = bytes[at]! * 0x100 + bytes[at + 1]!;
      at += 2;
    } else if (idType === 0xce && at + 4 <= end) {
      id = bytes[at]! * 0x1000000 + bytes[at + 1]! * 0x10000 + bytes[at + 2]! * 0x100 + bytes[at + 3]!;
      at += 4;
    } else return false;
    if ((at = this.readString(bytes, at, end, this.replyTos)) < 0) return false;
    const replyTo = this.lastString;
    let sender: string | undefined;
    if (fields > 5) {
      if ((at = this.readString(bytes, at, end, this.senders)) < 0) return false;
      sender = this.lastString;
    }
    let deadline: number | undefined;
    if (fields > 6) {
      if (at >= end) return false;
      const type = bytes[at++]!;
      if (type === 0xcb && at + 8 <= end) {
        deadline = this.viewOf(bytes).getFloat64(at);
        at += 8;
      } else if (type !== 0xc0) return false;
    }
    if (at !== end) return false;
    this.action = this.actions.action;
    this.id = id;
    this.replyTo = replyTo;
    this.sender = sender;
    this.deadline = deadline;
    this.payloadAt = payloadAt - start;
    this.payloadEnd = payloadEnd - start;
    return true;
  }

  /** A view of the buffer messages were last read from (the pool: made once), for the deadline. */
  private view: DataView | undefined;
  private viewBytes: Buffer | undefined;

  private viewOf(bytes: Buffer): DataView {
    if (bytes !== this.viewBytes || this.view === undefined) {
      this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      this.viewBytes = bytes;
    }
    return this.view;
  }

  /** The string read by the last {@link readString}. */
  private lastString: string | undefined = undefined;

  /** Reads nil or a string of up to 255 bytes at `at` into {@link lastString}: the offset after it, or -1. */
  private readString(bytes: Buffer, at: number, end: number, strings: ActionBytes): number {
    if (at >= end) return -1;
    const type = bytes[at++]!;
    let length: number;
    if (type === 0xc0) {
      this.lastString = undefined;
      return at;
    }
    if ((type & 0xe0) === 0xa0) length = type & 0x1f;
    else if (type === 0xd9 && at < end) length = bytes[at++]!;
    else return -1;
    if (at + length > end || !strings.read(bytes, at, length)) return -1;
    this.lastString = strings.action;
    return at + length;
  }
}
