/** Typings of native/counters.cc (the shared counters file's mapping). No policy: see src/runtime/counters.ts. */
import { addon } from './addon.js';

export interface CountersBinding {
  /** Maps `[offset, offset + length)` of the file at `path` (created or grown to `fileBytes`), shared; unmapped when collected. */
  countersMapSlot(path: string, fileBytes: number, offset: number, length: number): ArrayBuffer;
  /** Turns a mapping from countersMapSlot into private memory with the same bytes (same addresses). */
  countersRetire(buffer: ArrayBuffer): void;
}

/** The addon's counters functions. */
export function countersNative(): CountersBinding {
  return addon() as unknown as CountersBinding;
}
