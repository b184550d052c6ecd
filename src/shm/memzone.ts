/**
 * {@link Memzone}: a named block of the group's hugepage memory (`rte_memzone`), visible to every
 * process of the group at the same address. Read and write it by offset, or view it from
 * JavaScript without copying.
 *
 * ```ts
 * const zone = Memzone.reserve('stats', { size: 4096 });
 * const counters = new BigUint64Array(zone.view());  // shared with every process, no copy
 * Atomics.add(counters, 0, 1n);
 * ```
 *
 * Views are detached (their length becomes 0) when this process frees the zone or closes its
 * runtime, because DPDK unmaps the memory then; keep no other reference to the memory.
 */
import { knownKeys, optionKeys } from '../validation.js';
import { MpBusError, ErrorCodes } from '../errors.js';
import { memzoneNative, type MemzoneHandle } from '../native/memzone.js';
import {
  assertUsable,
  checkFitsHugepages,
  explainNativeError,
  isPowerOfTwo,
  openRuntime,
  track,
  reuseOrMake,
  untrack,
  validateCount,
  validateName,
  validateRange,
  validateSocket,
  type SharedObjectState,
} from './common.js';

export interface MemzoneOptions {
  /** Size in bytes (at least 1). */
  size: number;
  /** Alignment of the start, a power of two (default, or 0: DPDK's cache line). */
  align?: number | undefined;
  /** NUMA socket; default any. */
  socketId?: number | undefined;
  /** Page size to reserve from: '2MB', '1GB', or 'any' (default: whatever is available). */
  pageSize?: '2MB' | '1GB' | 'any' | undefined;
  /** Ask for IOVA-contiguous memory (for devices; needs physically contiguous pages). */
  iovaContiguous?: boolean | undefined;
}

const MEMZONE_OPTION_KEYS = optionKeys<MemzoneOptions>({ size: true, align: true, socketId: true, pageSize: true, iovaContiguous: true });

/** Largest single reservation accepted here (the hugepage pool is the real bound). */
const MAX_MEMZONE_SIZE = 2 ** 40;

/** Zones this process holds, by address: one object per zone, so free() invalidates every use. */
const open = new Map<bigint, Memzone>();

export class Memzone {
  /** The zone's name in the group. */
  readonly name: string;
  /** Size in bytes. */
  readonly length: number;
  /** Start address (the same in every process of the group). */
  readonly address: bigint;
  /** NUMA socket of the memory. */
  readonly socketId: number;
  /** Size of the hugepages backing the zone. */
  readonly hugepageSize: number;
  /** @internal */
  readonly handle: MemzoneHandle;
  private readonly state: SharedObjectState = {};

  private constructor(handle: MemzoneHandle) {
    const info = memzoneNative().memzoneInfo(handle);
    this.handle = handle;
    this.name = info.name;
    this.length = info.length;
    this.address = info.address;
    this.socketId = info.socketId;
    this.hugepageSize = info.hugepageSize;
    track(this.state);
  }

  private static adopt(handle: MemzoneHandle): Memzone {
    const address = memzoneNative().memzoneInfo(handle).address;
    return reuseOrMake(
      open,
      address,
      (known) => known.state,
      (known) => memzoneNative().memzoneLive(known.handle),
      () => new Memzone(handle),
    );
  }

  /**
   * Reserves a zone. Any process of the group may.
   * @throws {MpBusError} `EEXIST` when the name is taken, `ENOMEM` when hugepage memory is
   *   short, `EINVAL`, `ENAMETOOLONG`.
   */
  static reserve(name: string, options: MemzoneOptions): Memzone {
    openRuntime('Memzone.reserve');
    const c = memzoneNative().memzoneConstants;
    validateName('Memzone', name, c.RTE_MEMZONE_NAMESIZE);
    if (typeof options !== 'object' || options === null) throw new MpBusError(ErrorCodes.invalidArgument, 'Memzone.reserve needs options with a size');
    knownKeys(options, MEMZONE_OPTION_KEYS, 'Memzone.reserve options', ErrorCodes.invalidArgument);
    // size 0 would make DPDK reserve the largest free block: never what a caller means.
    const size = validateCount('memzone size', options.size, 1, MAX_MEMZONE_SIZE);
    const align = options.align ?? 0;
    if (align !== 0 && (!isPowerOfTwo(align) || align > 2 ** 30)) {
      throw new MpBusError(ErrorCodes.invalidArgument, `memzone align must be a power of two up to 2^30, got ${String(align)}`);
    }
    let flags = 0;
    const pageSize = options.pageSize ?? 'any';
    if (pageSize === '2MB') flags |= c.RTE_MEMZONE_2MB;
    else if (pageSize === '1GB') flags |= c.RTE_MEMZONE_1GB;
    else if (pageSize !== 'any') throw new MpBusError(ErrorCodes.invalidArgument, `pageSize must be '2MB', '1GB' or 'any', got ${String(pageSize)}`);
    if (options.iovaContiguous !== undefined && typeof options.iovaContiguous !== 'boolean') {
      throw new MpBusError(ErrorCodes.invalidArgument, `iovaContiguous must be true or false, got ${String(options.iovaContiguous)}`);
    }
    if (options.iovaContiguous) flags |= c.RTE_MEMZONE_IOVA_CONTIG;
    const socketId = validateSocket(options.socketId);
    checkFitsHugepages('Memzone', name, size);
    try {
      return Memzone.adopt(memzoneNative().memzoneReserve(name, size, socketId, flags, align));
    } catch (err) {
      throw explainNativeError(err, 'Memzone', name, 'create', pageSize === 'any' ? undefined : `in ${pageSize} pages`);
    }
  }

  /**
   * Finds a zone by name, reserved by any process of the group (Node or C).
   * @throws {MpBusError} `ENOENT` when no zone has that name.
   */
  static lookup(name: string): Memzone {
    openRuntime('Memzone.lookup');
    validateName('Memzone', name, memzoneNative().memzoneConstants.RTE_MEMZONE_NAMESIZE);
    try {
      return Memzone.adopt(memzoneNative().memzoneLookup(name));
    } catch (err) {
      throw explainNativeError(err, 'Memzone', name, 'lookup');
    }
  }

  private check(): void {
    assertUsable(this.state, `memzone '${this.name}'`);
  }

  /** Copies `length` bytes from `offset` out of the zone. */
  read(offset: number, length: number): Buffer {
    this.check();
    validateRange(`memzone '${this.name}'`, offset, length, this.length);
    return memzoneNative().memzoneRead(this.handle, offset, length);
  }

  /** Copies `data` into the zone at `offset`. */
  write(offset: number, data: Uint8Array): void {
    this.check();
    if (!(data instanceof Uint8Array)) throw new MpBusError(ErrorCodes.invalidArgument, 'Memzone.write takes a Uint8Array or Buffer');
    validateRange(`memzone '${this.name}'`, offset, data.byteLength, this.length);
    memzoneNative().memzoneWrite(this.handle, offset, data);
  }

  /**
   * The zone's memory as an ArrayBuffer, without copying: writes are seen by every process of
   * the group. Detached when the zone is freed here or the runtime closes.
   */
  view(): ArrayBuffer {
    this.check();
    return memzoneNative().memzoneView(this.handle);
  }

  /** A Uint8Array over the zone (see {@link view}). */
  bytes(): Uint8Array {
    return new Uint8Array(this.view());
  }

  /**
   * Frees the zone (detaching this process's views of it first). Other processes that still
   * use it would touch freed memory: free only when nobody does.
   */
  free(): void {
    this.check();
    memzoneNative().memzoneFree(this.handle);
    this.state.gone = 'freed';
    untrack(this.state);
    open.delete(this.address);
  }

  /** True after free() in this process, or once the runtime closed. */
  get isFreed(): boolean {
    return this.state.gone !== undefined;
  }
}
