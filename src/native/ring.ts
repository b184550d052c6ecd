/** Typings of native/ring.cc (rte_ring) and native/shm_view.cc. No policy: see src/shm/ring.ts. */
import { addon } from './addon.js';

/** An opaque handle of an `rte_ring*` (a napi External). */
export type RingHandle = { readonly __ring: unique symbol };

export interface RingConstants {
  readonly RTE_RING_NAMESIZE: number;
  readonly RING_F_SP_ENQ: number;
  readonly RING_F_SC_DEQ: number;
  readonly RING_F_EXACT_SZ: number;
  readonly RING_F_MP_RTS_ENQ: number;
  readonly RING_F_MC_RTS_DEQ: number;
  readonly RING_F_MP_HTS_ENQ: number;
  readonly RING_F_MC_HTS_DEQ: number;
  readonly RTE_RING_SZ_MASK: number;
}

export interface RingInfo {
  name: string;
  size: number;
  capacity: number;
  flags: number;
  address: bigint;
  /** Bytes per element, deduced from the ring's memzone (0 when unknown). */
  elementSize: number;
}

export interface RingBinding {
  ringCreate(name: string, count: number, socketId: number, flags: number): RingHandle;
  ringLookup(name: string): RingHandle;
  ringFree(ring: RingHandle): void;
  /** False once another process freed the object (its memzone entry no longer names it). */
  ringLive(handle: RingHandle): boolean;
  ringInfo(ring: RingHandle): RingInfo;
  ringCount(ring: RingHandle): number;
  ringFreeCount(ring: RingHandle): number;
  ringEnqueue(ring: RingHandle, value: number | bigint): boolean;
  ringDequeue(ring: RingHandle): bigint | null;
  ringEnqueueBurst(ring: RingHandle, values: BigUint64Array, start: number, count: number, bulk: boolean): number;
  ringDequeueBurst(ring: RingHandle, out: BigUint64Array, start: number, max: number, bulk: boolean): number;
  readonly ringConstants: RingConstants;
}

/** Functions of native/shm_view.cc: zero-copy views of shared memory. */
export interface SharedViewBinding {
  /** Detaches the views overlapping [address, address + length), or every view without arguments. */
  detachSharedViews(address?: bigint, length?: number): number;
  /** How many views are alive (not yet collected or detached). */
  liveSharedViews(): number;
}

/** The addon's ring functions. */
export function ringNative(): RingBinding {
  return addon() as unknown as RingBinding;
}

/** The addon's shared-view functions. */
export function viewNative(): SharedViewBinding {
  return addon() as unknown as SharedViewBinding;
}
