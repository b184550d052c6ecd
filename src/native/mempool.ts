/** Typings of native/mempool.cc (rte_mempool). No policy: see src/shm/mempool.ts. */
import { addon } from './addon.js';

/** An opaque handle of an `rte_mempool*` (a napi External). */
export type MempoolHandle = { readonly __mempool: unique symbol };

export interface MempoolConstants {
  readonly RTE_MEMPOOL_NAMESIZE: number;
  readonly RTE_MEMPOOL_CACHE_MAX_SIZE: number;
  readonly RTE_MEMPOOL_F_SP_PUT: number;
  readonly RTE_MEMPOOL_F_SC_GET: number;
  readonly RTE_MEMPOOL_F_NO_IOVA_CONTIG: number;
  readonly RTE_MEMPOOL_F_NO_SPREAD: number;
  readonly RTE_MEMPOOL_F_NO_CACHE_ALIGN: number;
}

export interface MempoolInfo {
  name: string;
  size: number;
  populated: number;
  eltSize: number;
  headerSize: number;
  trailerSize: number;
  cacheSize: number;
  flags: number;
  socketId: number;
  address: bigint;
}

/** One contiguous block of a pool's memory, viewed without copying. */
export interface MempoolChunk {
  address: bigint;
  length: number;
  view: ArrayBuffer;
}

export interface MempoolBinding {
  mempoolCreate(name: string, n: number, eltSize: number, cacheSize: number, socketId: number, flags: number): MempoolHandle;
  mempoolLookup(name: string): MempoolHandle;
  mempoolFree(pool: MempoolHandle): void;
  /** False once another process freed the object (its memzone entry no longer names it). */
  mempoolLive(handle: MempoolHandle): boolean;
  mempoolInfo(pool: MempoolHandle): MempoolInfo;
  mempoolAvailCount(pool: MempoolHandle): number;
  mempoolInUseCount(pool: MempoolHandle): number;
  mempoolGet(pool: MempoolHandle): bigint | null;
  mempoolGetBulk(pool: MempoolHandle, out: BigUint64Array, start: number, n: number): boolean;
  mempoolPut(pool: MempoolHandle, address: number | bigint): void;
  mempoolPutBulk(pool: MempoolHandle, addresses: BigUint64Array, start: number, n: number): void;
  mempoolObjectIndex(pool: MempoolHandle, address: number | bigint): number;
  mempoolObjectAt(pool: MempoolHandle, index: number): bigint;
  mempoolRead(pool: MempoolHandle, address: number | bigint, offset: number, length: number): Buffer;
  mempoolWrite(pool: MempoolHandle, address: number | bigint, offset: number, data: Uint8Array): void;
  mempoolObjectView(pool: MempoolHandle, address: number | bigint): ArrayBuffer;
  mempoolMemory(pool: MempoolHandle): MempoolChunk[];
  readonly mempoolConstants: MempoolConstants;
}

/** The addon's mempool functions. */
export function mempoolNative(): MempoolBinding {
  return addon() as unknown as MempoolBinding;
}
