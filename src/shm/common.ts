/**
 * Pieces shared by {@link Ring}, {@link Mempool} and {@link Memzone}: the runtime they need,
 * validation of names, sizes and ranges (done here, before any native call, so errors say what
 * to change), and detaching zero-copy views before DPDK unmaps the memory.
 */
import { readdirSync } from 'node:fs';
import { MpBusError, ErrorCodes } from '../errors.js';
import { integerIn } from '../validation.js';
import { viewNative } from '../native/ring.js';
import { hugepageBounds, hugepageBytes, mib } from '../runtime/environment.js';
import { Runtime } from '../runtime/runtime.js';

/** Something in shared memory that this process holds a handle to. */
export interface SharedObjectState {
  /** Set when this process freed the object or left the group: its handle must not be used. */
  gone?: 'freed' | 'closed';
}

const hooked = new WeakSet<Runtime>();
const liveObjects = new Set<SharedObjectState>();

/**
 * The open runtime of this process. The first use registers a close hook that detaches every
 * zero-copy view (rte_eal_cleanup unmaps the memory under them) and invalidates handles.
 */
export function openRuntime(what: string): Runtime {
  const rt = Runtime.required(what);
  if (!hooked.has(rt)) {
    hooked.add(rt);
    rt.onClose(() => {
      viewNative().detachSharedViews();
      for (const obj of liveObjects) obj.gone = 'closed';
      liveObjects.clear();
    });
  }
  return rt;
}

/** Tracks a handle so that closing the runtime invalidates it. */
export function track(obj: SharedObjectState): void {
  liveObjects.add(obj);
}

/**
 * One handle object per shared object and process: a lookup of an object this process already
 * holds (same address, not freed or closed, and `stillThere`: not freed by another process since)
 * returns that handle, so its state stays in one place.
 */
export function reuseOrMake<T>(
  open: Map<bigint, T>,
  address: bigint,
  stateOf: (obj: T) => SharedObjectState,
  stillThere: (obj: T) => boolean,
  make: () => T,
): T {
  const known = open.get(address);
  if (known && !stateOf(known).gone) {
    if (stillThere(known)) return known;
    // Another process freed it, and another object is at its address now: the old handle keeps
    // failing with FREED (natively), a new one takes its place here.
    untrack(stateOf(known));
  }
  const made = make();
  open.set(address, made);
  return made;
}

/** Forgets a handle (after free). */
export function untrack(obj: SharedObjectState): void {
  liveObjects.delete(obj);
}

/** Throws when a handle may no longer be used. */
export function assertUsable(obj: SharedObjectState, what: string): void {
  if (obj.gone === 'freed') throw new MpBusError(ErrorCodes.freed, `${what} was freed by this process: look it up again if another process recreated it`);
  if (obj.gone === 'closed') throw new MpBusError(ErrorCodes.closed, `${what} belongs to a runtime that is closed: start a new process to join a group again`);
}

/**
 * Checks a DPDK object name: a non-empty string of printable ASCII without NUL, shorter than
 * `nameSize` bytes (DPDK's *_NAMESIZE counts the terminating NUL).
 */
export function validateName(kind: string, name: unknown, nameSize: number): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new MpBusError(ErrorCodes.invalidArgument, `${kind} name must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  if (!/^[\x21-\x7e]+$/.test(name)) {
    throw new MpBusError(
      ErrorCodes.invalidArgument,
      `${kind} name must be printable ASCII without spaces (C programs look it up too), got ${JSON.stringify(name)}`,
    );
  }
  if (name.length > nameSize - 1) {
    throw new MpBusError(ErrorCodes.nameTooLong, `${kind} name ${JSON.stringify(name)} is ${name.length} characters; DPDK allows at most ${nameSize - 1}`);
  }
  return name;
}

/** Checks a non-negative integer argument no larger than `max`. */
export function validateCount(what: string, value: unknown, min: number, max: number): number {
  return integerIn(value, what, min, max, ErrorCodes.invalidArgument);
}

/** Checks that [offset, offset + length) lies inside an object of `size` bytes. */
export function validateRange(what: string, offset: number, length: number, size: number): void {
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new MpBusError(ErrorCodes.outOfRange, `bytes [${offset}, ${offset + length}) are outside the ${what} (${size} bytes)`);
  }
}

/**
 * Checks an optional NUMA socket id (-1, DPDK's SOCKET_ID_ANY, by default): one this machine has
 * (DPDK's socket ids are the kernel's NUMA node ids), else DPDK would only say it found no memory.
 */
export function validateSocket(socketId: unknown): number {
  if (socketId === undefined) return -1;
  const id = validateCount('socketId', socketId, -1, 1023);
  if (id >= 0 && !numaNodes().includes(id)) {
    throw new MpBusError(
      ErrorCodes.invalidArgument,
      `socketId ${id} is no NUMA socket of this machine (it has ${numaNodes().join(', ')}): give one of those, or -1 for any`,
    );
  }
  return id;
}

/** The machine's NUMA node ids (0 alone on a kernel without NUMA). */
function numaNodes(): number[] {
  try {
    const nodes = readdirSync('/sys/devices/system/node')
      .map((d) => /^node(\d+)$/.exec(d)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number);
    return nodes.length > 0 ? nodes.sort((a, b) => a - b) : [0];
  } catch {
    return [0];
  }
}

const MAX_U64 = 2n ** 64n - 1n;

/** True for a value a ring slot or an address can hold: a safe non-negative integer or a uint64 bigint. */
export function isWord(value: unknown): value is number | bigint {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0;
  return typeof value === 'bigint' && value >= 0n && value <= MAX_U64;
}

/** Checks a pointer-sized value (a ring element or an address). */
export function validateWord(what: string, value: unknown): number | bigint {
  if (!isWord(value))
    throw new MpBusError(ErrorCodes.invalidArgument, `${what} must be a non-negative safe integer or a bigint below 2^64, got ${String(value)}`);
  return value;
}

export function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isInteger(Math.log2(n));
}

/** `[start, start + count)` lies in `values` (counted in values: the native check counts bytes). */
export function checkSpan(what: string, values: BigUint64Array, start: number, count: number): void {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > values.length) {
    throw new MpBusError(
      ErrorCodes.outOfRange,
      `${what}: values [${String(start)}, ${String(start + count)}) are outside the array of ${values.length} values`,
    );
  }
}

/** True when `find` (a native lookup) finds its object, false when it throws. */
export function exists(find: () => unknown): boolean {
  try {
    find();
    return true;
  } catch {
    return false;
  }
}

/**
 * A shared object of at least `bytes` that the machine's hugepages could never hold is `ENOMEM`
 * at once: DPDK would map and zero every free hugepage before it found out (0.3-3 s with the
 * event loop blocked, here with 2 GiB reserved), leaving none to the group's other processes meanwhile.
 */
export function checkFitsHugepages(kind: string, name: string, bytes: number): void {
  const reserved = hugepageBytes();
  if (reserved === undefined || bytes <= reserved) return;
  throw new MpBusError(
    'ENOMEM',
    `cannot create a ${kind} named '${name}' this large (at least ${mib(bytes)}): this machine reserves ${mib(reserved)} of hugepages in all: ask for less, or reserve more hugepages (echo <pages> > /proc/sys/vm/nr_hugepages as root)`,
  );
}

/**
 * Rewrites DPDK's EEXIST / ENOENT into errors that name the object and the fix; other errors
 * pass through unchanged. A create's ENOENT is not "no such object": DPDK says it when it found
 * no memory for one as large as asked. `internalName`: the create's EEXIST came from DPDK's own
 * name for the object's memory, which another object has (the object's own name is free).
 */
export function explainNativeError(err: unknown, kind: string, name: string, op: 'create' | 'lookup', where?: string, internalName?: string): unknown {
  if (!(err instanceof MpBusError)) return err;
  if (op === 'create' && err.code === 'EEXIST' && internalName !== undefined) {
    // The object's own name is free, but DPDK's name for its memory (or ring) is another object's.
    return new MpBusError(
      ErrorCodes.exists,
      `cannot create a ${kind} named '${name}': DPDK keeps it under the name '${internalName}', which another object of the group has (a memzone, ring or mempool of that name): choose another name`,
      { cause: err, errno: err.errno },
    );
  }
  if (op === 'create' && (err.code === 'ENOENT' || err.code === 'ENOMEM')) {
    // (memory of a page size asked for: the machine may have none of that size at all)
    const fix = where === undefined ? '' : `, check that the group has hugepages of that size (grep Huge /proc/meminfo; DPDK uses the mounted sizes),`;
    // (what bounds the memory besides the machine's pages: a hugetlb cgroup, a mount's size=)
    const bounds = hugepageBounds(0, Runtime.current()?.group.activeHugeDir()).note;
    return new MpBusError(
      err.code,
      `cannot create a ${kind} named '${name}' this large${where === undefined ? '' : ` ${where}`}: DPDK found no memory for it (${err.message}): ask for less${fix} or give the group more hugepage memory${bounds === '' ? '' : ` (${bounds})`}`,
      { cause: err, errno: err.errno },
    );
  }
  if (err.code === 'EEXIST') {
    return new MpBusError(ErrorCodes.exists, `a ${kind} named '${name}' already exists in this group: use ${kind}.lookup('${name}') or choose another name`, {
      cause: err,
      errno: err.errno,
    });
  }
  if (err.code === 'ENOENT') {
    return new MpBusError(ErrorCodes.notFound, `no ${kind} named '${name}' exists in this group: create it first (in any process of the group)`, {
      cause: err,
      errno: err.errno,
    });
  }
  return err;
}
