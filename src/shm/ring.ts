/**
 * {@link Ring}: a DPDK `rte_ring` in the group's shared memory, usable from any process of the
 * group (Node or C). Elements are pointer-sized (64-bit) values: usually addresses of mempool
 * objects, or small descriptors.
 *
 * ```ts
 * const ring = Ring.create('jobs', { size: 1024, producer: 'multi', consumer: 'single' });
 * ring.enqueue(0x1234n);
 * const other = Ring.lookup('jobs');         // in any process of the group
 * const out = new BigUint64Array(32);
 * const n = other.dequeueBurst(out);        // out[0..n) hold the values
 * ```
 */
import { knownKeys, optionKeys } from '../validation.js';
import { MpBusError, ErrorCodes } from '../errors.js';
import { ringNative, type RingHandle } from '../native/ring.js';
import { mempoolNative } from '../native/mempool.js';
import {
  assertUsable,
  checkSpan,
  exists,
  checkFitsHugepages,
  explainNativeError,
  isPowerOfTwo,
  openRuntime,
  track,
  reuseOrMake,
  untrack,
  validateCount,
  validateName,
  validateSocket,
  validateWord,
  type SharedObjectState,
} from './common.js';

/** How producers (or consumers) synchronise: DPDK's SP/MP (SC/MC) and the RTS/HTS variants. */
export type RingSyncMode = 'single' | 'multi' | 'multi-rts' | 'multi-hts';

export interface RingOptions {
  /**
   * Number of slots. A power of two (the ring then holds `size - 1` elements), unless
   * `exactSize` is set, in which case the ring holds exactly `size` elements.
   */
  size: number;
  /** Default 'multi': several threads or processes may enqueue at once. */
  producer?: RingSyncMode | undefined;
  /** Default 'multi': several threads or processes may dequeue at once. */
  consumer?: RingSyncMode | undefined;
  /** RING_F_EXACT_SZ: capacity is exactly `size` (any size), at the cost of a larger ring. */
  exactSize?: boolean | undefined;
  /** NUMA socket of the ring's memory; default any. */
  socketId?: number | undefined;
}

const RING_OPTION_KEYS = optionKeys<RingOptions>({ size: true, producer: true, consumer: true, exactSize: true, socketId: true });

/** Largest `size`: DPDK's RTE_RING_SZ_MASK bounds the ring's internal power-of-two size. */
const MAX_RING_SIZE = 2 ** 30;
const SYNC_MODES: readonly RingSyncMode[] = ['single', 'multi', 'multi-rts', 'multi-hts'];

function syncFlags(side: 'producer' | 'consumer', mode: unknown): number {
  const c = ringNative().ringConstants;
  if (mode === undefined || mode === 'multi') return 0;
  if (!SYNC_MODES.includes(mode as RingSyncMode)) {
    throw new MpBusError(ErrorCodes.invalidArgument, `${side} must be one of ${SYNC_MODES.join(', ')}, got ${String(mode)}`);
  }
  const producer = side === 'producer';
  if (mode === 'single') return producer ? c.RING_F_SP_ENQ : c.RING_F_SC_DEQ;
  if (mode === 'multi-rts') return producer ? c.RING_F_MP_RTS_ENQ : c.RING_F_MC_RTS_DEQ;
  return producer ? c.RING_F_MP_HTS_ENQ : c.RING_F_MC_HTS_DEQ;
}

/** Converts a flags word back to the sync mode of one side. */
function syncMode(flags: number, side: 'producer' | 'consumer'): RingSyncMode {
  const c = ringNative().ringConstants;
  const producer = side === 'producer';
  if (flags & (producer ? c.RING_F_SP_ENQ : c.RING_F_SC_DEQ)) return 'single';
  if (flags & (producer ? c.RING_F_MP_RTS_ENQ : c.RING_F_MC_RTS_DEQ)) return 'multi-rts';
  if (flags & (producer ? c.RING_F_MP_HTS_ENQ : c.RING_F_MC_HTS_DEQ)) return 'multi-hts';
  return 'multi';
}

/** Rings this process holds, by address: one object per ring, so free() invalidates every use. */
const open = new Map<bigint, Ring>();

export class Ring {
  /** The ring's name in the group. */
  readonly name: string;
  /** Internal size (a power of two). */
  readonly size: number;
  /** How many elements the ring can hold at once. */
  readonly capacity: number;
  /** DPDK's RING_F_* flags. */
  readonly flags: number;
  /** Address of the `struct rte_ring` (the same in every process of the group). */
  readonly address: bigint;
  /** @internal */
  readonly handle: RingHandle;
  private readonly state: SharedObjectState = {};

  private constructor(handle: RingHandle) {
    const info = ringNative().ringInfo(handle);
    this.handle = handle;
    this.name = info.name;
    this.size = info.size;
    this.capacity = info.capacity;
    this.flags = info.flags;
    this.address = info.address;
    track(this.state);
  }

  private static adopt(handle: RingHandle): Ring {
    const { address, name, elementSize } = ringNative().ringInfo(handle);
    // A C program may have made it with rte_ring_create_elem: moving 8-byte elements through a
    // ring of other-sized ones would corrupt it.
    if (elementSize !== 0 && elementSize !== 8) {
      throw new MpBusError(
        ErrorCodes.invalidArgument,
        `ring '${name}' holds ${elementSize}-byte elements (made with rte_ring_create_elem); Ring moves pointer-sized (8-byte) elements only`,
      );
    }
    return reuseOrMake(
      open,
      address,
      (known) => known.state,
      (known) => ringNative().ringLive(known.handle),
      () => new Ring(handle),
    );
  }

  /**
   * Creates a ring. Any process of the group may create one (DPDK reserves its memzone
   * `RG_<name>`).
   *
   * @throws {MpBusError} `EEXIST` when the name is taken, `EINVAL` for a bad size or mode,
   *   `ENAMETOOLONG`, `ENOMEM` when hugepage memory is short.
   */
  static create(name: string, options: RingOptions): Ring {
    openRuntime('Ring.create');
    const c = ringNative().ringConstants;
    validateName('Ring', name, c.RTE_RING_NAMESIZE);
    if (typeof options !== 'object' || options === null) throw new MpBusError(ErrorCodes.invalidArgument, 'Ring.create needs options with a size');
    knownKeys(options, RING_OPTION_KEYS, 'Ring.create options', ErrorCodes.invalidArgument);
    const exact = options.exactSize ?? false;
    if (typeof exact !== 'boolean') throw new MpBusError(ErrorCodes.invalidArgument, 'exactSize must be a boolean');
    const size = validateCount('ring size', options.size, exact ? 1 : 2, exact ? MAX_RING_SIZE - 1 : MAX_RING_SIZE);
    if (!exact && !isPowerOfTwo(size)) {
      throw new MpBusError(
        ErrorCodes.invalidArgument,
        `ring size must be a power of two (it holds size - 1 elements), got ${size}: use ${2 ** Math.ceil(Math.log2(size + 1))}, or set exactSize: true for a ring that holds exactly ${size}`,
      );
    }
    const flags = syncFlags('producer', options.producer) | syncFlags('consumer', options.consumer) | (exact ? c.RING_F_EXACT_SZ : 0);
    const socketId = validateSocket(options.socketId);
    // (a slot is a pointer: 8 bytes)
    checkFitsHugepages('Ring', name, size * 8);
    try {
      return Ring.adopt(ringNative().ringCreate(name, size, socketId, flags));
    } catch (err) {
      // (a name taken only by DPDK's memzone of the ring: `Ring.lookup` would not find it)
      throw explainNativeError(err, 'Ring', name, 'create', undefined, exists(() => ringNative().ringLookup(name)) ? undefined : `RG_${name}`);
    }
  }

  /**
   * Finds a ring by name, created by any process of the group (Node or C).
   * @throws {MpBusError} `ENOENT` when no ring has that name.
   */
  static lookup(name: string): Ring {
    openRuntime('Ring.lookup');
    validateName('Ring', name, ringNative().ringConstants.RTE_RING_NAMESIZE);
    const pool = name.startsWith(MEMPOOL_RING_PREFIX) ? name.slice(MEMPOOL_RING_PREFIX.length) : undefined;
    if (pool !== undefined && mempoolExists(pool)) {
      throw new MpBusError(
        ErrorCodes.invalidArgument,
        `ring '${name}' is mempool '${pool}''s own (DPDK names a pool's ring ${MEMPOOL_RING_PREFIX}<pool>): addresses through it would not be checked against the pool's objects; use Mempool.lookup('${pool}') and its get/put`,
      );
    }
    try {
      return Ring.adopt(ringNative().ringLookup(name));
    } catch (err) {
      throw explainNativeError(err, 'Ring', name, 'lookup');
    }
  }

  /** Producer synchronisation mode. */
  get producer(): RingSyncMode {
    return syncMode(this.flags, 'producer');
  }

  /** Consumer synchronisation mode. */
  get consumer(): RingSyncMode {
    return syncMode(this.flags, 'consumer');
  }

  /** Elements in the ring now. */
  get count(): number {
    assertUsable(this.state, `ring '${this.name}'`);
    return ringNative().ringCount(this.handle);
  }

  /** Free slots now. */
  get freeCount(): number {
    assertUsable(this.state, `ring '${this.name}'`);
    return ringNative().ringFreeCount(this.handle);
  }

  /** Enqueues one value; false when the ring is full. */
  enqueue(value: number | bigint): boolean {
    assertUsable(this.state, `ring '${this.name}'`);
    return ringNative().ringEnqueue(this.handle, validateWord('ring element', value));
  }

  /** Dequeues one value; undefined when the ring is empty. */
  dequeue(): bigint | undefined {
    assertUsable(this.state, `ring '${this.name}'`);
    return ringNative().ringDequeue(this.handle) ?? undefined;
  }

  /**
   * Enqueues values in one call: as many as fit (burst), or all or none with `bulk`.
   * A BigUint64Array is passed without copying; other arrays are converted first.
   * @returns how many were enqueued (from the start of `values`).
   */
  enqueueBurst(values: BigUint64Array | readonly (number | bigint)[], options: { count?: number; start?: number; bulk?: boolean } = {}): number {
    assertUsable(this.state, `ring '${this.name}'`);
    const batch = values instanceof BigUint64Array ? values : BigUint64Array.from(values, (v) => BigInt(validateWord('ring element', v)));
    const start = options.start ?? 0;
    const count = options.count ?? batch.length - start;
    checkSpan('enqueueBurst', batch, start, count);
    return ringNative().ringEnqueueBurst(this.handle, batch, start, count, options.bulk ?? false);
  }

  /**
   * Dequeues up to `max` values (default `out.length - start`) into `out` from `start`: as many
   * as there are (burst) or exactly `max` or none with `bulk`.
   * @returns how many were dequeued.
   */
  dequeueBurst(out: BigUint64Array, options: { max?: number; start?: number; bulk?: boolean } = {}): number {
    assertUsable(this.state, `ring '${this.name}'`);
    const start = options.start ?? 0;
    const max = options.max ?? out.length - start;
    checkSpan('dequeueBurst', out, start, max);
    return ringNative().ringDequeueBurst(this.handle, out, start, max, options.bulk ?? false);
  }

  /** Dequeues up to `max` values into a new array (convenient; dequeueBurst avoids the allocation). */
  dequeueMany(max: number): bigint[] {
    validateCount('max', max, 0, Number.MAX_SAFE_INTEGER);
    const out = new BigUint64Array(Math.min(max, this.capacity));
    const n = this.dequeueBurst(out);
    return Array.from(out.subarray(0, n));
  }

  /**
   * Frees the ring's memory. Handles of it in other processes fail with FREED from then on
   * (docs/shared-memory-objects.md, "Freed by another process"); still, free a ring only when no
   * process of the group uses it any more.
   */
  free(): void {
    assertUsable(this.state, `ring '${this.name}'`);
    ringNative().ringFree(this.handle);
    this.state.gone = 'freed';
    untrack(this.state);
    open.delete(this.address);
  }

  /** True after free() in this process, or once the runtime closed. */
  get isFreed(): boolean {
    return this.state.gone !== undefined;
  }
}

/** DPDK's prefix of a mempool's own ring (rte_mempool_ring: `MP_<pool>`). */
const MEMPOOL_RING_PREFIX = 'MP_';

function mempoolExists(name: string): boolean {
  return exists(() => mempoolNative().mempoolLookup(name));
}
