/**
 * What a message may hold across processes, and how it crosses: one rule close to Node's
 * structured clone (what `worker_threads` `postMessage` carries), applied by one function each
 * way, wherever a value is encoded for another process.
 *
 * - {@link encodeValue} walks the value once. Plain data (strings, numbers, booleans, null,
 *   undefined, plain objects and arrays, `Uint8Array`/`Buffer`, `Date`, with no object reached
 *   twice) is returned as it is and msgpack-encoded as before: the fast path costs one walk.
 *   A value that needs more (`Map`, `Set`, `RegExp`, `BigInt`, `Error`, typed arrays,
 *   `ArrayBuffer`, `DataView`, instances of registered classes, objects reached twice: shared
 *   references and cycles) is returned as a {@link Extended} wrapper around a tagged tree, which
 *   msgpack carries as extension type 0x4d. A value that cannot cross (a function, a symbol, a
 *   class instance whose class is not registered, a `Promise`, a `WeakMap`...) throws
 *   `ENCODE_FAILED` naming where it is (`msg.items[3].cb`).
 * - Decoding needs no call: the 0x4d extension is registered with msgpackr when this module
 *   loads, so every unpacker of the process rebuilds extended values.
 * - {@link checkValue} is the same walk without encoding: the actor system checks local
 *   messages with it (option `checkValues`), so a unit test fails where production would.
 * - {@link registerClass}: instances of a registered class cross with their own enumerable
 *   fields and arrive with the class's prototype (the constructor is not run), in every process
 *   that registered the class under the same name.
 *
 * The tagged tree: every object of the value is an array `[tag, ...]` (numbered in the order the
 * walk first meets it, so a later `[REF, n]` points back at it: shared references and cycles);
 * primitives, strings and `Buffer`s stay as they are.
 */
import { types } from 'node:util';
import { addExtension } from 'msgpackr';
import { MpBusError, ErrorCodes } from '../errors.js';
import { logger } from '../log.js';

const EXTENSION_TYPE = 0x4d; // 'M'

const enum Tag {
  object = 0,
  array = 1,
  map = 2,
  set = 3,
  regexp = 4,
  error = 5,
  bigint = 6,
  bytes = 7,
  instance = 8,
  ref = 9,
  date = 10,
  /** -0, which msgpack writes as the integer 0 */
  negativeZero = 11,
  /** an instance of a registered subclass of a built-in (Map, Date, Uint8Array...): the built-in's tree, the class, its fields */
  subclass = 12,
}

/** The tags a {@link Tag.subclass} may wrap: the built-ins a class can extend and still cross. */
const SUBCLASSABLE: ReadonlySet<unknown> = new Set([Tag.array, Tag.map, Tag.set, Tag.regexp, Tag.date, Tag.bytes]);

/** The largest number of keys msgpackr writes as a plain map (a 16-bit size); more go as a tagged tree. */
const PLAIN_KEYS_MAX = 0xffff;

/** A value in its extended wire form (msgpack extension 0x4d around a tagged tree). */
export class Extended {
  constructor(readonly tree: unknown) {}
}

// ---------------------------------------------------------------- registered classes

const namesByPrototype = new Map<object, string>();
const classesByName = new Map<string, abstract new (...args: never[]) => unknown>();

/** Options of {@link registerClass}. */
export interface RegisterClassOptions {
  /** The name the class travels under (default: `Ctor.name`); the same in every process. */
  name?: string | undefined;
}

/**
 * Lets instances of `Ctor` cross processes: they travel as their own enumerable fields (each
 * following the same rule) and arrive as objects with `Ctor.prototype`, built without running
 * the constructor (like `structuredClone` does for the fields, plus the prototype). Register the
 * class in every process that sends or receives it, under the same name. Subclasses need their
 * own registration. An `Error` subclass keeps `message`, `stack`, `cause` and its fields too.
 *
 * @throws {MpBusError} `INVALID_OPTION` when `Ctor` is not a class, or the name is taken by
 *   another class.
 */
export function registerClass(Ctor: abstract new (...args: never[]) => unknown, options: RegisterClassOptions = {}): void {
  if (typeof Ctor !== 'function' || typeof Ctor.prototype !== 'object' || Ctor.prototype === null) {
    throw new MpBusError(ErrorCodes.invalidOption, `registerClass takes a class, got ${describe(Ctor)}`);
  }
  const name = options.name ?? Ctor.name;
  if (typeof name !== 'string' || name.length === 0) {
    throw new MpBusError(ErrorCodes.invalidOption, 'registerClass: the class has no name: give one with { name }');
  }
  const known = classesByName.get(name);
  if (known !== undefined && known !== Ctor) {
    throw new MpBusError(ErrorCodes.invalidOption, `registerClass: the name '${name}' is already registered for another class: give this one another { name }`);
  }
  classesByName.set(name, Ctor);
  namesByPrototype.set(Ctor.prototype as object, name);
}

// MpBusErrors thrown by a remote handler arrive as MpBusErrors.
registerClass(MpBusError);

// ---------------------------------------------------------------- the walk

/** Thrown inside the walk; turned into ENCODE_FAILED with the path at the top. */
class Unsendable {
  readonly path: string[] = [];
  constructor(readonly what: string) {}
}

const PLAIN = 0;
const EXTENDED = 1;

/**
 * Objects met by the walk in progress (one reached twice is a shared reference or a cycle). The
 * first few in an array searched linearly, more in a Set made for that walk: a module-wide Set
 * would need `clear()` after each walk, which costs V8 a new table (microseconds) every time.
 */
const FEW = 32;
const firstSeen: Array<object | undefined> = new Array(FEW).fill(undefined);
let seenCount = 0;
let manySeen: Set<object> | undefined;

/** Notes `o` as met; true when it was met before in this walk. */
function metBefore(o: object): boolean {
  const n = seenCount < FEW ? seenCount : FEW;
  for (let i = 0; i < n; i++) if (firstSeen[i] === o) return true;
  if (manySeen !== undefined && manySeen.has(o)) return true;
  if (seenCount < FEW) firstSeen[seenCount] = o;
  else (manySeen ??= new Set()).add(o);
  seenCount++;
  return false;
}

/** Forgets what the walk met (and lets go of it). */
function forgetSeen(): void {
  const n = seenCount < FEW ? seenCount : FEW;
  for (let i = 0; i < n; i++) firstSeen[i] = undefined;
  seenCount = 0;
  manySeen = undefined;
}

const standardErrors = new Map<string, ErrorConstructor>([
  ['Error', Error],
  ['TypeError', TypeError],
  ['RangeError', RangeError],
  ['SyntaxError', SyntaxError],
  ['ReferenceError', ReferenceError],
  ['EvalError', EvalError],
  ['URIError', URIError],
]);

const typedArrays = new Map<string, new (buffer: ArrayBuffer) => ArrayBufferView>(
  [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array].map(
    (C) => [C.name, C as new (buffer: ArrayBuffer) => ArrayBufferView],
  ),
);

/**
 * The prototype of the built-in class whose internal slots `v` has (`Map.prototype` for a Map or
 * an instance of a subclass of Map...), or undefined when it is none of those that cross. Asked
 * of the object itself, not of its prototype chain: `Object.create(Map.prototype)` is no Map.
 */
function builtinPrototype(v: object): object | undefined {
  if (Array.isArray(v)) return Array.prototype;
  if (types.isTypedArray(v)) return typedArrays.get(v[Symbol.toStringTag])?.prototype;
  if (types.isMap(v)) return Map.prototype;
  if (types.isSet(v)) return Set.prototype;
  if (types.isDate(v)) return Date.prototype;
  if (types.isRegExp(v)) return RegExp.prototype;
  if (types.isArrayBuffer(v)) return ArrayBuffer.prototype;
  if (types.isDataView(v)) return DataView.prototype;
  return undefined;
}

/** Whether an object with prototype `proto` and built-in `base` is an instance of a subclass (a Buffer is a Uint8Array). */
function isSubclass(proto: object | null, base: object): boolean {
  return proto !== base && !(base === Uint8Array.prototype && proto === Buffer.prototype);
}

/** Own enumerable keys of a built-in's subclass instance that are its fields (an array's items are not). */
function subclassFieldKeys(v: object, base: object): string[] {
  const keys = Object.keys(v);
  if (base !== Array.prototype && !types.isTypedArray(v)) return keys;
  return keys.filter((k) => !/^(0|[1-9]\d*)$/.test(k));
}

function describe(v: unknown): string {
  if (typeof v === 'function') return `a function${v.name ? ` (${v.name})` : ''}`;
  if (typeof v === 'symbol') return `a symbol (${String(v.description)})`;
  if (v === null || typeof v !== 'object') return `a ${typeof v}`;
  const ctor = (Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null)?.constructor?.name;
  return ctor ? `an instance of ${ctor}` : 'an object';
}

/** Whether `v` crosses as plain data (0), needs the extended form (1), or throws Unsendable. */
function classify(v: unknown): number {
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
      return PLAIN;
    case 'bigint':
      return EXTENDED;
    case 'object':
      break;
    default:
      throw new Unsendable(`${describe(v)}, which cannot be sent to another process`);
  }
  if (v === null) return PLAIN;
  if (metBefore(v)) return EXTENDED; // reached twice: a shared reference or a cycle
  return classifyObject(v);
}

/** {@link classify} of an object met for the first time. */
function classifyObject(v: object): number {
  const proto = Object.getPrototypeOf(v) as object | null;
  if (proto === Object.prototype || proto === null) return classifyFields(v as Record<string, unknown>, PLAIN);
  if (proto === Array.prototype) {
    const a = v as unknown[];
    let kind = PLAIN;
    for (let i = 0; i < a.length; i++) {
      try {
        kind |= classify(a[i]);
      } catch (err) {
        throw at(err, i);
      }
    }
    return kind;
  }
  if (v instanceof Uint8Array && (proto === Buffer.prototype || proto === Uint8Array.prototype)) return PLAIN;
  if (proto === Date.prototype) return PLAIN;
  const base = builtinPrototype(v);
  if (base === undefined) return classifyOther(v, proto);
  let kind = EXTENDED;
  if (isSubclass(proto, base)) {
    // A subclass crosses as its built-in with its class and fields, once registered (as a
    // class of plain objects must be); else it would arrive as the bare built-in, or not decode.
    const baseName = (base as { constructor: { name: string } }).constructor.name;
    if (proto === null || !namesByPrototype.has(proto)) {
      throw new Unsendable(
        `${describe(v)} (a subclass of ${baseName}), which cannot be sent to another process: register its class with registerClass(), or send a plain ${baseName}`,
      );
    }
    for (const k of subclassFieldKeys(v, base)) {
      try {
        kind |= classify((v as Record<string, unknown>)[k]);
      } catch (err) {
        throw at(err, k);
      }
    }
  }
  if (base === Array.prototype) {
    const a = v as unknown[];
    for (let i = 0; i < a.length; i++) {
      try {
        classify(a[i]);
      } catch (err) {
        throw at(err, i);
      }
    }
    return kind;
  }
  if (base === Map.prototype) {
    let i = 0;
    for (const [k, value] of Map.prototype.entries.call(v as Map<unknown, unknown>)) {
      try {
        classify(k);
        classify(value);
      } catch (err) {
        throw at(err, `<map entry ${i}>`);
      }
      i++;
    }
    return kind;
  }
  if (base === Set.prototype) {
    let i = 0;
    for (const item of Set.prototype.values.call(v as Set<unknown>)) {
      try {
        classify(item);
      } catch (err) {
        throw at(err, `<set item ${i}>`);
      }
      i++;
    }
    return kind;
  }
  // RegExp, Date, typed arrays, ArrayBuffer, DataView
  return kind;
}

/** {@link classifyObject} of an object that is no built-in: an Error, or an instance of a registered class. */
function classifyOther(v: object, proto: object | null): number {
  if (v instanceof Error) {
    // Any Error crosses: as its nearest registered class, else as the standard error of its name.
    const cause = (v as { cause?: unknown }).cause;
    if (cause !== undefined) {
      try {
        classify(cause);
      } catch (err) {
        throw at(err, 'cause');
      }
    }
    if (v instanceof AggregateError) {
      try {
        classify(v.errors);
      } catch (err) {
        throw at(err, 'errors');
      }
    }
    return classifyFields(v as unknown as Record<string, unknown>, EXTENDED, true);
  }
  if (proto !== null && namesByPrototype.has(proto)) return classifyFields(v as Record<string, unknown>, EXTENDED);
  if (v instanceof Promise) throw new Unsendable(`${describe(v)}, which cannot be sent to another process: await it, and send what it resolves to`);
  // (their contents cannot be read, so no registered class could carry them)
  if (v instanceof WeakMap || v instanceof WeakSet || v instanceof WeakRef) {
    throw new Unsendable(`${describe(v)}, which cannot be sent to another process: its entries cannot be read; send a Map, a Set or the value itself`);
  }
  throw new Unsendable(`${describe(v)}, which cannot be sent to another process: register its class with registerClass(), or send plain data`);
}

/** Fields an Error carries apart from its own enumerable ones (and so skips among them). */
function isErrorOwnField(k: string): boolean {
  return k === 'message' || k === 'stack' || k === 'cause';
}

function classifyFields(o: Record<string, unknown>, kind: number, isError = false): number {
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (isError && isErrorOwnField(k)) continue;
    try {
      kind |= classify(o[k]);
    } catch (err) {
      throw at(err, k);
    }
  }
  return kind;
}

function at(err: unknown, step: string | number): unknown {
  if (err instanceof Unsendable)
    err.path.push(
      typeof step === 'number' ? `[${step}]` : step.startsWith('<') ? `[${step}]` : /^[A-Za-z_$][\w$]*$/.test(step) ? `.${step}` : `[${JSON.stringify(step)}]`,
    );
  return err;
}

const UNSENDABLE = 2;

/**
 * The fast walk: PLAIN, EXTENDED or UNSENDABLE, without a path (no try/catch, no path kept:
 * this runs on every message). {@link classify} walks again to say where, when it is needed.
 */
function kindOf(v: unknown): number {
  if (typeof v !== 'object') {
    if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'undefined') return PLAIN;
    // -0 (0 === -0; only its reciprocal tells): msgpack would write the integer 0
    if (typeof v === 'number') return v !== 0 || 1 / v > 0 ? PLAIN : EXTENDED;
    return typeof v === 'bigint' ? EXTENDED : UNSENDABLE;
  }
  if (v === null) return PLAIN;
  if (metBefore(v)) return EXTENDED;
  const proto = Object.getPrototypeOf(v) as object | null;
  let kind = PLAIN;
  if (proto === Object.prototype) {
    // for-in: no key array allocated (an object with this prototype inherits no enumerable keys)
    let keys = 0;
    for (const k in v) {
      kind |= kindOf((v as Record<string, unknown>)[k]);
      if (kind >= UNSENDABLE) return UNSENDABLE;
      // msgpackr renames a `__proto__` key when it reads one, and writes at most 65,535 keys
      if (k === '__proto__' || ++keys > PLAIN_KEYS_MAX) kind |= EXTENDED;
    }
    return kind;
  }
  if (proto === Array.prototype) {
    const a = v as unknown[];
    for (let i = 0; i < a.length; i++) {
      kind |= kindOf(a[i]);
      if (kind >= UNSENDABLE) return UNSENDABLE;
    }
    return kind;
  }
  if (proto === Buffer.prototype || proto === Uint8Array.prototype || proto === Date.prototype) return PLAIN;
  // everything else is rare: the careful walk decides (and throws where it cannot cross)
  return kindOfOther(v);
}

function kindOfOther(v: object): number {
  try {
    return classifyObject(v) | EXTENDED;
  } catch (err) {
    if (err instanceof Unsendable) return UNSENDABLE;
    throw err;
  }
}

/** Walks `value`; the kind it needs. Throws ENCODE_FAILED (with the path) when it cannot cross. */
function walk(value: unknown, root: string): number {
  try {
    const kind = kindOf(value);
    if (kind < UNSENDABLE) return kind;
    forgetSeen();
    return classify(value); // again, to say where
  } catch (err) {
    if (err instanceof Unsendable) {
      const path = root + err.path.reverse().join('');
      const e = new MpBusError(ErrorCodes.encodeFailed, `${path} is ${err.what}`);
      e.path = path;
      throw e;
    }
    if (err instanceof RangeError) throw new MpBusError(ErrorCodes.encodeFailed, `${root} is nested too deeply to be sent to another process`, { cause: err });
    throw err;
  } finally {
    forgetSeen();
  }
}

/**
 * Checks that `value` may cross processes (the rule of {@link encodeValue}), without encoding it.
 *
 * @param root what the path in the error starts with (`msg`, `reply`...).
 * @throws {MpBusError} `ENCODE_FAILED` naming where the part that cannot cross is (also in its `path`).
 */
export function checkValue(value: unknown, root = 'msg'): void {
  walk(value, root);
}

/**
 * The form of `value` to hand to msgpack: `value` itself when it is plain data, else its
 * extended form. The one encoding step of every value that crosses processes.
 *
 * @throws {MpBusError} `ENCODE_FAILED` naming where the part that cannot cross is.
 */
export function encodeValue(value: unknown, root = 'msg'): unknown {
  // Primitive payloads need no walk at all (but -0, which msgpack would write as 0).
  if (value === null || (typeof value !== 'object' && typeof value !== 'bigint' && typeof value !== 'function' && typeof value !== 'symbol')) {
    return value !== 0 || 1 / value > 0 ? value : NEGATIVE_ZERO;
  }
  if (walk(value, root) === PLAIN) return value;
  const ids = new Map<object, number>();
  return new Extended(toTree(value, ids));
}

// ---------------------------------------------------------------- extended form

const NEGATIVE_ZERO = new Extended([Tag.negativeZero]);

function toTree(v: unknown, ids: Map<object, number>): unknown {
  if (typeof v === 'bigint') return [Tag.bigint, v.toString()];
  if (v === 0 && 1 / v < 0) return [Tag.negativeZero];
  if (typeof v !== 'object' || v === null) return v;
  const known = ids.get(v);
  if (known !== undefined) return [Tag.ref, known];
  ids.set(v, ids.size);
  const proto = Object.getPrototypeOf(v) as object | null;
  if (proto === Object.prototype || proto === null) return fieldsTree(Tag.object, v as Record<string, unknown>, ids);
  if (proto === Array.prototype) {
    const a = v as unknown[];
    const out: unknown[] = [Tag.array];
    for (let i = 0; i < a.length; i++) out.push(toTree(a[i], ids));
    return out;
  }
  const base = builtinPrototype(v);
  if (base !== undefined) {
    const tree = builtinTree(v, base, ids);
    if (!isSubclass(proto, base)) return tree;
    const fields: unknown[] = [Tag.object];
    for (const k of subclassFieldKeys(v, base)) fields.push(k, toTree((v as Record<string, unknown>)[k], ids));
    return [Tag.subclass, namesByPrototype.get(proto)!, tree, fields];
  }
  if (v instanceof Error) {
    const cause = (v as { cause?: unknown }).cause;
    // cause first, then the fields: the order the reader meets them in
    return [
      Tag.error,
      v.name,
      v.message,
      v.stack ?? null,
      registeredErrorClass(proto),
      cause === undefined ? null : [toTree(cause, ids)],
      fieldsTree(Tag.object, v as unknown as Record<string, unknown>, ids, true),
      // (an AggregateError's `errors`, like `cause`, is not an enumerable field)
      ...(v instanceof AggregateError ? [[toTree(v.errors, ids)]] : []),
    ];
  }
  return [Tag.instance, namesByPrototype.get(proto)!, fieldsTree(Tag.object, v as Record<string, unknown>, ids)];
}

/** The tree of a built-in's value (its class, if a subclass, is the caller's). */
function builtinTree(v: object, base: object, ids: Map<object, number>): unknown[] {
  if (base === Array.prototype) {
    const a = v as unknown[];
    const out: unknown[] = [Tag.array];
    for (let i = 0; i < a.length; i++) out.push(toTree(a[i], ids));
    return out;
  }
  if (base === Date.prototype) return [Tag.date, Date.prototype.getTime.call(v)];
  if (base === Map.prototype) {
    const out: unknown[] = [Tag.map];
    for (const [k, value] of Map.prototype.entries.call(v as Map<unknown, unknown>)) out.push(toTree(k, ids), toTree(value, ids));
    return out;
  }
  if (base === Set.prototype) {
    const out: unknown[] = [Tag.set];
    for (const item of Set.prototype.values.call(v as Set<unknown>)) out.push(toTree(item, ids));
    return out;
  }
  if (base === RegExp.prototype) return [Tag.regexp, (v as RegExp).source, (v as RegExp).flags];
  if (base === ArrayBuffer.prototype) return [Tag.bytes, 'ArrayBuffer', Buffer.from(new Uint8Array(v as ArrayBuffer))];
  const view = v as ArrayBufferView;
  // a Uint8Array arrives as a Buffer, as on the plain path (and a Buffer's subclass as a Buffer's)
  const kind =
    base === DataView.prototype
      ? 'DataView'
      : v instanceof Buffer || (base === Uint8Array.prototype && !isSubclass(Object.getPrototypeOf(v) as object, base))
        ? 'Buffer'
        : (v as Uint8Array)[Symbol.toStringTag];
  return [Tag.bytes, kind, Buffer.from(view.buffer, view.byteOffset, view.byteLength)];
}

function fieldsTree(tag: Tag, o: Record<string, unknown>, ids: Map<object, number>, isError = false): unknown[] {
  const out: unknown[] = [tag];
  for (const k of Object.keys(o)) if (!isError || !isErrorOwnField(k)) out.push(k, toTree(o[k], ids));
  return out;
}

/** The name of the nearest registered class of an Error (MpBusError for mpbus's own), or null. */
function registeredErrorClass(proto: object | null): string | null {
  for (let p = proto; p !== null && p !== Error.prototype; p = Object.getPrototypeOf(p) as object | null) {
    const name = namesByPrototype.get(p);
    if (name !== undefined) return name;
  }
  return null;
}

function bad(why: string): MpBusError {
  return new MpBusError(ErrorCodes.decodeFailed, `an extended value could not be decoded: ${why}`);
}

/** Rebuilds a value from its tagged tree (written by another process: every part is checked). */
function fromTree(t: unknown, objects: unknown[]): unknown {
  if (!Array.isArray(t)) return t;
  const tag = t[0] as unknown;
  switch (tag) {
    case Tag.bigint:
      if (typeof t[1] !== 'string' || !/^-?\d+$/.test(t[1])) throw bad('a BigInt that is not decimal digits');
      return BigInt(t[1]);
    case Tag.negativeZero:
      return -0;
    case Tag.ref: {
      const n = t[1] as unknown;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= objects.length) throw bad('a reference to an object not read yet');
      return objects[n];
    }
    case Tag.object: {
      const o: Record<string, unknown> = {};
      objects.push(o);
      fillFields(o, t, 1, objects);
      return o;
    }
    case Tag.array: {
      const a: unknown[] = [];
      objects.push(a);
      for (let i = 1; i < t.length; i++) a.push(fromTree(t[i], objects));
      return a;
    }
    case Tag.date: {
      const d = new Date(typeof t[1] === 'number' ? t[1] : NaN);
      objects.push(d);
      return d;
    }
    case Tag.map: {
      const m = new Map<unknown, unknown>();
      objects.push(m);
      for (let i = 1; i + 1 < t.length; i += 2) {
        const k = fromTree(t[i], objects);
        m.set(k, fromTree(t[i + 1], objects));
      }
      return m;
    }
    case Tag.set: {
      const s = new Set<unknown>();
      objects.push(s);
      for (let i = 1; i < t.length; i++) s.add(fromTree(t[i], objects));
      return s;
    }
    case Tag.regexp: {
      let r: RegExp;
      try {
        r = new RegExp(String(t[1]), String(t[2]));
      } catch {
        throw bad('an invalid RegExp');
      }
      objects.push(r);
      return r;
    }
    case Tag.bytes: {
      const kind = t[1] as unknown;
      const bytes = t[2] as unknown;
      if (typeof kind !== 'string' || !(bytes instanceof Uint8Array)) throw bad('typed array without its bytes');
      let out: unknown;
      if (kind === 'Buffer') out = Buffer.from(bytes);
      else {
        const buffer = new Uint8Array(bytes).buffer; // a copy: aligned, owned
        if (kind === 'ArrayBuffer') out = buffer;
        else if (kind === 'DataView') out = new DataView(buffer);
        else {
          const C = typedArrays.get(kind);
          if (!C) throw bad(`unknown typed array '${kind}'`);
          try {
            out = new C(buffer);
          } catch {
            throw bad(`${kind} of ${bytes.length} bytes`);
          }
        }
      }
      objects.push(out);
      return out;
    }
    case Tag.error: {
      const [, name, message, stack, registered] = t as [unknown, unknown, unknown, unknown, unknown];
      let e: Error;
      const C = typeof registered === 'string' ? classFor(registered) : undefined;
      if (C !== undefined) {
        e = Object.create(C.prototype as object) as Error;
        Object.defineProperty(e, 'message', { value: String(message), writable: true, configurable: true });
      } else {
        const C = standardErrors.get(String(name)) ?? Error;
        // (AggregateError takes its errors first: they are set below)
        e = name === 'AggregateError' ? new AggregateError([], String(message)) : new C(String(message));
        if (e.name !== name) Object.defineProperty(e, 'name', { value: String(name), writable: true, configurable: true });
      }
      Object.defineProperty(e, 'stack', {
        value: typeof stack === 'string' ? stack : `${String(name)}: ${String(message)}`,
        writable: true,
        configurable: true,
      });
      objects.push(e);
      const cause = t[5] as unknown;
      if (Array.isArray(cause)) Object.defineProperty(e, 'cause', { value: fromTree(cause[0], objects), writable: true, configurable: true });
      const fields = t[6] as unknown;
      if (!Array.isArray(fields) || fields[0] !== Tag.object) throw bad('an Error without its fields');
      fillFields(e as unknown as Record<string, unknown>, fields, 1, objects);
      const errors = t[7] as unknown;
      if (Array.isArray(errors)) Object.defineProperty(e, 'errors', { value: fromTree(errors[0], objects), writable: true, configurable: true });
      return e;
    }
    case Tag.subclass: {
      const inner = t[2] as unknown;
      if (!Array.isArray(inner) || !SUBCLASSABLE.has(inner[0])) throw bad('a subclass of a built-in without the built-in');
      const C = classFor(t[1]);
      const o = fromTree(inner, objects) as object;
      const builtin = Object.getPrototypeOf(o) as object;
      // (a class that does not extend what arrived would make an object its methods cannot use:
      // registered under the same name for another class here; the bare built-in arrives)
      if (C !== undefined && Object.prototype.isPrototypeOf.call(builtin, C.prototype)) Object.setPrototypeOf(o, C.prototype as object);
      else if (C !== undefined)
        warnOnce(
          `${String(t[1])} (not a subclass of ${(builtin as { constructor: { name: string } }).constructor.name} here)`,
          'a value of a class registered here for a class that does not extend its built-in arrived: it is delivered as the bare built-in; register the same class under that name in every process',
        );
      const fields = t[3] as unknown;
      if (!Array.isArray(fields) || fields[0] !== Tag.object) throw bad('a subclass instance without its fields');
      for (let i = 1; i < fields.length; i += 2) {
        if (Object.prototype.hasOwnProperty.call(o, fields[i] as PropertyKey)) throw bad('a field of a subclass instance that hides its items');
      }
      fillFields(o as Record<string, unknown>, fields, 1, objects);
      return o;
    }
    case Tag.instance: {
      const C = classFor(t[1]);
      const o = (C === undefined ? {} : Object.create(C.prototype as object)) as Record<string, unknown>;
      objects.push(o);
      const fields = t[2] as unknown;
      if (!Array.isArray(fields) || fields[0] !== Tag.object) throw bad('an instance without its fields');
      fillFields(o, fields, 1, objects);
      return o;
    }
    default:
      throw bad(`unknown tag ${String(tag)}`);
  }
}

function fillFields(o: Record<string, unknown>, t: unknown[], from: number, objects: unknown[]): void {
  for (let i = from; i + 1 < t.length; i += 2) {
    const k = t[i];
    if (typeof k !== 'string') throw bad('a field name that is not a string');
    // defineProperty: a field named __proto__ stays a field, as it was on the sender
    Object.defineProperty(o, k, { value: fromTree(t[i + 1], objects), writable: true, enumerable: true, configurable: true });
  }
}

const unknownClassesWarned = new Set<string>();

/**
 * The registered class of that name; undefined (and a warning, once per name) when this process
 * did not register it: its instances then arrive as plain objects, the message is not lost.
 */
function classFor(name: unknown): (abstract new (...args: never[]) => unknown) | undefined {
  if (typeof name !== 'string') throw bad('a class name that is not a string');
  const C = classesByName.get(name);
  if (C === undefined) {
    warnOnce(
      name,
      'a value of a class this process did not register arrived: it is delivered as a plain object (a built-in as itself); call registerClass() for it in every process that receives it',
    );
  }
  return C;
}

/** Logs `message` about class `name` once per name (at most 1,000 names: a sender may make up any). */
function warnOnce(name: string, message: string): void {
  if (unknownClassesWarned.has(name) || unknownClassesWarned.size >= 1000) return;
  unknownClassesWarned.add(name);
  // Made here, not at import: the application's logger (the runtime option) is set after the import.
  logger('value-codec').warn({ className: name }, message);
}

/** Decodes an extended value's tree (what the 0x4d extension carries). Exported for tests. */
export function decodeTree(tree: unknown): unknown {
  return fromTree(tree, []);
}

/**
 * An extended value this process could not rebuild (a process of another mpbus version, a class
 * registered differently, bytes changed), in place of that value, where the reader asked for it
 * with {@link decodeTolerantly}: the rest of the message (an ask's id and reply address) still
 * decodes, so its sender can be told.
 */
export class UndecodableValue {
  constructor(readonly error: MpBusError) {}
}

let tolerant = false;

/**
 * Runs `decode` (an unpack) with extended values that do not decode read as
 * {@link UndecodableValue}s, not thrown: for readers that answer for a message's value (the
 * actor transport), not for those that take the value as it came.
 */
export function decodeTolerantly<T>(decode: () => T): T {
  tolerant = true;
  try {
    return decode();
  } finally {
    tolerant = false;
  }
}

addExtension({
  Class: Extended,
  type: EXTENSION_TYPE,
  write: (e: Extended) => e.tree,
  read: (tree: unknown) => {
    if (!tolerant) return decodeTree(tree);
    try {
      return decodeTree(tree);
    } catch (err) {
      return new UndecodableValue(err instanceof MpBusError ? err : bad(String((err as Error)?.message ?? err)));
    }
  },
});
