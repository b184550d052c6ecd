/**
 * {@link Mempool}: a DPDK `rte_mempool` of fixed-size objects in the group's shared memory. Any
 * process (Node or C) gets an object, fills it, passes its address through a {@link Ring}, and
 * the receiver reads it and puts it back.
 *
 * ```ts
 * const pool = Mempool.create('msgs', { size: 4095, elementSize: 256 });
 * const obj = pool.get()!;                       // an address (bigint)
 * pool.write(obj, 0, Buffer.from('hello'));
 * ring.enqueue(obj);
 * // receiver, in any process:
 * const addr = ring.dequeue()!;
 * if (pool.contains(addr)) { pool.read(addr, 0, 5); pool.put(addr); }
 * ```
 *
 * Addresses that come from another process are untrusted: every read, write and put checks
 * that the address is one of this pool's objects (`NOT_IN_POOL` otherwise) and that the byte
 * range lies inside the object (`ERANGE`).
 */
import { knownKeys, optionKeys } from '../validation.js';
import { MpBusError, ErrorCodes } from '../errors.js';
import { mempoolNative, type MempoolHandle } from '../native/mempool.js';
import {
  assertUsable,
  checkSpan,
  exists,
  checkFitsHugepages,
  explainNativeError,
  openRuntime,
  track,
  reuseOrMake,
  untrack,
  validateCount,
  validateName,
  validateRange,
  validateSocket,
  validateWord,
  isWord,
  type SharedObjectState,
} from './common.js';

export interface MempoolOptions {
  /** Number of objects. DPDK advises 2^q - 1 (the pool's ring then wastes nothing). */
  size: number;
  /** Bytes per object. */
  elementSize: number;
  /**
   * Objects kept per lcore in a cache (default 0). A cache speeds get/put, but objects cached by
   * one process are invisible to the others and are lost if that process dies: keep 0 for pools
   * shared between processes unless each process only puts back what it got.
   */
  cacheSize?: number | undefined;
  /** 'single' when only one thread of one process ever puts objects back (RTE_MEMPOOL_F_SP_PUT). */
  put?: 'single' | 'multi' | undefined;
  /** 'single' when only one thread of one process ever gets objects (RTE_MEMPOOL_F_SC_GET). */
  get?: 'single' | 'multi' | undefined;
  /** NUMA socket; default any. */
  socketId?: number | undefined;
}

const MEMPOOL_OPTION_KEYS = optionKeys<MempoolOptions>({ size: true, elementSize: true, cacheSize: true, put: true, get: true, socketId: true });

/** A chunk of the pool's memory (see {@link Mempool.memory}). */
export interface MempoolMemoryChunk {
  /** Start address of the chunk. */
  address: bigint;
  length: number;
  /** The chunk's bytes, no copy; detached when the pool is freed or the runtime closes. */
  view: ArrayBuffer;
}

/** Its ring holds size + 1 rounded up to a power of two, which DPDK caps at 2^30 (RTE_RING_SZ_MASK). */
const MAX_POOL_SIZE = 2 ** 30 - 1;
const MAX_ELEMENT_SIZE = 2 ** 30;
/** DPDK refuses a cache larger than size / 1.5 (its flush threshold multiplier). */
const CACHE_FLUSH_MULTIPLIER = 1.5;

/** Pools this process holds, by address: one object per pool, so free() invalidates every use. */
const open = new Map<bigint, Mempool>();

export class Mempool {
  /** The pool's name in the group. */
  readonly name: string;
  /** Number of objects. */
  readonly size: number;
  /** Bytes per object (the part readable and writable here). */
  readonly elementSize: number;
  /** Per-lcore cache size. */
  readonly cacheSize: number;
  /** Address of the `struct rte_mempool` (the same in every process). */
  readonly address: bigint;
  /** @internal */
  readonly handle: MempoolHandle;
  private readonly state: SharedObjectState = {};

  private constructor(handle: MempoolHandle) {
    const info = mempoolNative().mempoolInfo(handle);
    this.handle = handle;
    this.name = info.name;
    this.size = info.size;
    this.elementSize = info.eltSize;
    this.cacheSize = info.cacheSize;
    this.address = info.address;
    track(this.state);
  }

  private static adopt(handle: MempoolHandle): Mempool {
    const address = mempoolNative().mempoolInfo(handle).address;
    return reuseOrMake(
      open,
      address,
      (known) => known.state,
      (known) => mempoolNative().mempoolLive(known.handle),
      () => new Mempool(handle),
    );
  }

  /**
   * Creates a pool and fills it with `size` objects. Any process of the group may.
   * @throws {MpBusError} `EEXIST`, `EINVAL`, `ENAMETOOLONG`, `ENOMEM` when hugepage memory is short.
   */
  static create(name: string, options: MempoolOptions): Mempool {
    openRuntime('Mempool.create');
    const c = mempoolNative().mempoolConstants;
    validateName('Mempool', name, c.RTE_MEMPOOL_NAMESIZE);
    if (typeof options !== 'object' || options === null)
      throw new MpBusError(ErrorCodes.invalidArgument, 'Mempool.create needs options with size and elementSize');
    knownKeys(options, MEMPOOL_OPTION_KEYS, 'Mempool.create options', ErrorCodes.invalidArgument);
    const size = validateCount('mempool size', options.size, 1, MAX_POOL_SIZE);
    const elementSize = validateCount('mempool elementSize', options.elementSize, 1, MAX_ELEMENT_SIZE);
    const cacheSize = validateCount('mempool cacheSize', options.cacheSize ?? 0, 0, c.RTE_MEMPOOL_CACHE_MAX_SIZE);
    if (cacheSize * CACHE_FLUSH_MULTIPLIER > size) {
      throw new MpBusError(
        ErrorCodes.invalidArgument,
        `mempool cacheSize ${cacheSize} is too large for ${size} objects: DPDK needs cacheSize * 1.5 <= size (at most ${Math.floor(size / CACHE_FLUSH_MULTIPLIER)})`,
      );
    }
    let flags = 0;
    for (const [side, value, flag] of [
      ['put', options.put, c.RTE_MEMPOOL_F_SP_PUT],
      ['get', options.get, c.RTE_MEMPOOL_F_SC_GET],
    ] as const) {
      if (value === 'single') flags |= flag;
      else if (value !== undefined && value !== 'multi')
        throw new MpBusError(ErrorCodes.invalidArgument, `mempool ${side} must be 'single' or 'multi', got ${String(value)}`);
    }
    const socketId = validateSocket(options.socketId);
    // (its objects alone: DPDK adds a header to each, and the ring)
    checkFitsHugepages('Mempool', name, size * elementSize);
    try {
      return Mempool.adopt(mempoolNative().mempoolCreate(name, size, elementSize, cacheSize, socketId, flags));
    } catch (err) {
      // (a name taken only by another object named as DPDK names the pool's memory and ring: MP_<name>)
      throw explainNativeError(err, 'Mempool', name, 'create', undefined, exists(() => mempoolNative().mempoolLookup(name)) ? undefined : `MP_${name}`);
    }
  }

  /**
   * Finds a pool by name, created by any process of the group (Node or C).
   * @throws {MpBusError} `ENOENT` when no pool has that name.
   */
  static lookup(name: string): Mempool {
    openRuntime('Mempool.lookup');
    validateName('Mempool', name, mempoolNative().mempoolConstants.RTE_MEMPOOL_NAMESIZE);
    try {
      return Mempool.adopt(mempoolNative().mempoolLookup(name));
    } catch (err) {
      throw explainNativeError(err, 'Mempool', name, 'lookup');
    }
  }

  private check(): void {
    assertUsable(this.state, `mempool '${this.name}'`);
  }

  /** Objects free in the pool (its caches included). */
  get availableCount(): number {
    this.check();
    return mempoolNative().mempoolAvailCount(this.handle);
  }

  /**
   * Objects taken out of the pool: `size` minus what is free at this read. Each count is a read
   * of its own, so under traffic `availableCount + inUseCount` read one after the other need not
   * be `size` (use one of them and `size`).
   */
  get inUseCount(): number {
    this.check();
    return mempoolNative().mempoolInUseCount(this.handle);
  }

  /** Takes one object; its address, or undefined when the pool is empty. */
  get(): bigint | undefined {
    this.check();
    return mempoolNative().mempoolGet(this.handle) ?? undefined;
  }

  /** Takes `count` objects (default `out.length - start`) into `out` at `start`: all or none. */
  getBulk(out: BigUint64Array, options: { count?: number; start?: number } = {}): boolean {
    this.check();
    const start = options.start ?? 0;
    const count = options.count ?? out.length - start;
    checkSpan('getBulk', out, start, count);
    return mempoolNative().mempoolGetBulk(this.handle, out, start, count);
  }

  /** Puts one object back. @throws {MpBusError} `NOT_IN_POOL` for an address that is not one of its objects. */
  put(address: number | bigint): void {
    this.check();
    mempoolNative().mempoolPut(this.handle, validateWord('address', address));
  }

  /** Puts objects back; every address is checked before any is put. */
  putBulk(addresses: BigUint64Array, options: { count?: number; start?: number } = {}): void {
    this.check();
    const start = options.start ?? 0;
    const count = options.count ?? addresses.length - start;
    checkSpan('putBulk', addresses, start, count);
    mempoolNative().mempoolPutBulk(this.handle, addresses, start, count);
  }

  /** True when `address` is the start of one of this pool's objects (check untrusted addresses with it). */
  contains(address: unknown): boolean {
    return this.indexOf(address) >= 0;
  }

  /** Index (0..size-1, in address order) of the object at `address`, or -1 when it is not one. */
  indexOf(address: unknown): number {
    this.check();
    if (!isWord(address)) return -1;
    return mempoolNative().mempoolObjectIndex(this.handle, address);
  }

  /** Address of the object with this index (see {@link indexOf}). */
  objectAt(index: number): bigint {
    this.check();
    validateCount('object index', index, 0, this.size - 1);
    return mempoolNative().mempoolObjectAt(this.handle, index);
  }

  /** Copies `length` bytes at `offset` out of the object at `address`. */
  read(address: number | bigint, offset: number, length: number): Buffer {
    this.check();
    validateRange(`object of mempool '${this.name}'`, offset, length, this.elementSize);
    return mempoolNative().mempoolRead(this.handle, validateWord('address', address), offset, length);
  }

  /** Copies `data` into the object at `address`, at `offset`. */
  write(address: number | bigint, offset: number, data: Uint8Array): void {
    this.check();
    if (!(data instanceof Uint8Array)) throw new MpBusError(ErrorCodes.invalidArgument, 'Mempool.write takes a Uint8Array or Buffer');
    validateRange(`object of mempool '${this.name}'`, offset, data.byteLength, this.elementSize);
    mempoolNative().mempoolWrite(this.handle, validateWord('address', address), offset, data);
  }

  /** The object's `elementSize` bytes without copying (about 1 µs per call: prefer {@link memory} in hot paths). */
  objectView(address: number | bigint): ArrayBuffer {
    this.check();
    return mempoolNative().mempoolObjectView(this.handle, validateWord('address', address));
  }

  /**
   * The pool's memory as zero-copy views, one per contiguous chunk (usually one). An object at
   * address `a` inside chunk `c` starts at byte `Number(a - c.address)` of `c.view`.
   */
  memory(): MempoolMemoryChunk[] {
    this.check();
    return mempoolNative().mempoolMemory(this.handle);
  }

  /** Frees the pool (detaching this process's views of it). Only when no process uses it any more. */
  free(): void {
    this.check();
    mempoolNative().mempoolFree(this.handle);
    this.state.gone = 'freed';
    untrack(this.state);
    open.delete(this.address);
  }

  /** True after free() in this process, or once the runtime closed. */
  get isFreed(): boolean {
    return this.state.gone !== undefined;
  }
}
