/** Typings of native/memzone.cc (rte_memzone). No policy: see src/shm/memzone.ts. */
import { addon } from './addon.js';

/** An opaque handle of an `rte_memzone*` (a napi External). */
export type MemzoneHandle = { readonly __memzone: unique symbol };

export interface MemzoneConstants {
  readonly RTE_MEMZONE_NAMESIZE: number;
  readonly RTE_MEMZONE_2MB: number;
  readonly RTE_MEMZONE_1GB: number;
  readonly RTE_MEMZONE_SIZE_HINT_ONLY: number;
  readonly RTE_MEMZONE_IOVA_CONTIG: number;
  readonly SOCKET_ID_ANY: number;
}

export interface MemzoneInfo {
  name: string;
  length: number;
  address: bigint;
  socketId: number;
  flags: number;
  hugepageSize: number;
}

export interface MemzoneBinding {
  memzoneReserve(name: string, length: number, socketId: number, flags: number, align: number): MemzoneHandle;
  /** False once another process freed the object (its memzone entry no longer names it). */
  memzoneLive(handle: MemzoneHandle): boolean;
  memzoneLookup(name: string): MemzoneHandle;
  memzoneFree(zone: MemzoneHandle): void;
  memzoneInfo(zone: MemzoneHandle): MemzoneInfo;
  memzoneRead(zone: MemzoneHandle, offset: number, length: number): Buffer;
  memzoneWrite(zone: MemzoneHandle, offset: number, data: Uint8Array): void;
  memzoneView(zone: MemzoneHandle): ArrayBuffer;
  readonly memzoneConstants: MemzoneConstants;
}

/** The addon's memzone functions. */
export function memzoneNative(): MemzoneBinding {
  return addon() as unknown as MemzoneBinding;
}
