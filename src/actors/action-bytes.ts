/**
 * An envelope's action (or another of its short strings: an ask's reply address and sender) read
 * from its bytes, for the readers that take messages from their bytes (answer-bytes.ts,
 * tell-bytes.ts, ask-bytes.ts): the string is the last one's while its bytes are the same, so a
 * run of messages for one action makes no string and hands the handler lookup the same string
 * each time (a string looked up again is not hashed again).
 */
export class ActionBytes {
  private lastBytes: Uint8Array = new Uint8Array(0);
  /** The action read last. */
  action = '';

  /**
   * Reads the `length` bytes at `bytes[at]` as the action (the caller checked they are inside
   * the message): false when they are not valid UTF-8 (msgpackr says so, and the message is
   * handled as it was before).
   */
  read(bytes: Buffer, at: number, length: number): boolean {
    if (this.same(bytes, at, length)) return true;
    const action = bytes.toString('utf8', at, at + length);
    if (action.includes('\ufffd')) return false;
    this.action = action;
    this.lastBytes = Uint8Array.prototype.slice.call(bytes, at, at + length);
    return true;
  }

  private same(bytes: Uint8Array, at: number, length: number): boolean {
    const last = this.lastBytes;
    if (length !== last.length) return false;
    for (let i = 0; i < length; i++) if (bytes[at + i] !== last[i]) return false;
    return true;
  }
}
