/**
 * `npm run bench`: runs every suite in bench/suites (or those named on the command line), prints
 * one table with each row's ratio to mpbus, then the ratios across suites of bench/figures.ts
 * (from this run's rows only), and writes bench/results.json.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { issueFigures, peerRatios, type WaitingCpu } from './figures.js';
import { placementArg, type BenchContext, type BenchRow } from './lib.js';

const here = dirname(fileURLToPath(import.meta.url));
const resultsPath = join(here, '..', '..', 'bench', 'results.json');
const args = process.argv.slice(2);
const placement = placementArg(args);
const quick = args.includes('--quick');
const only = args.filter((a) => !a.startsWith('--'));

interface Results {
  date: string;
  machine: { cpus: number; model: string };
  idleCpuPercent?: number;
  rows: BenchRow[];
  [field: string]: unknown;
}

let previous: Partial<Results> = {};
try {
  previous = JSON.parse(readFileSync(resultsPath, 'utf8')) as Results;
} catch {
  // first run
}
const results: Results = {
  ...previous,
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown' },
  rows: only.length > 0 ? (previous.rows ?? []) : [],
};

/** Rows measured in this run (by transport and size): ratios never mix in rows of earlier runs. */
const fresh: BenchRow[] = [];
const freshFields = new Set<string>();
const ctx: BenchContext = {
  quick,
  placement,
  addRows(rows) {
    for (const row of rows) {
      fresh.push(row);
      const i = results.rows.findIndex((r) => r.transport === row.transport && r.payloadBytes === row.payloadBytes);
      if (i >= 0) results.rows[i] = row;
      else results.rows.push(row);
    }
  },
  setField(name, value) {
    freshFields.add(name);
    results[name] = value;
  },
  progress(message) {
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${message}`);
    else process.stderr.write(`${message}\n`);
  },
};

const suiteDir = join(here, 'suites');
const suites = readdirSync(suiteDir)
  .filter((f) => f.endsWith('.js'))
  .map((f) => f.slice(0, -3))
  .filter((name) => only.length === 0 || only.includes(name))
  .sort();
for (const name of suites) {
  ctx.progress(`suite ${name}...`);
  const mod = (await import(pathToFileURL(join(suiteDir, `${name}.js`)).href)) as { run(c: BenchContext): Promise<void> };
  await mod.run(ctx);
}
if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');

function fmt(n: number | undefined, digits = 1): string {
  return n === undefined || Number.isNaN(n) ? '-' : n >= 1000 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits);
}
function fmtX(n: number | undefined): string {
  return n === undefined ? '-' : `${n.toFixed(2)}x`;
}
const table = results.rows.map((row) => {
  // rows that carry raw bytes (no codec) compare with mpbus_raw; the C ring pair is one of them
  const raw = row.transport.endsWith('_raw') || row.transport === 'c_rte_ring';
  const base = results.rows.find((r) => r.transport === (raw ? 'mpbus_raw' : 'mpbus') && r.payloadBytes === row.payloadBytes);
  const ratio = base?.throughputMsgsPerSec && row.throughputMsgsPerSec ? (row.throughputMsgsPerSec / base.throughputMsgsPerSec).toFixed(2) + 'x' : '-';
  return {
    transport: row.transport,
    bytes: row.payloadBytes,
    'msgs/s': fmt(row.throughputMsgsPerSec, 0),
    'vs mpbus': ratio,
    'rtt p50 µs': fmt(row.rttP50Us),
    'rtt p99 µs': fmt(row.rttP99Us),
  };
});
console.table(table);
if (results.idleCpuPercent !== undefined) console.log(`idle CPU of a process with open mailboxes: ${results.idleCpuPercent}%`);

// Ratios of rows measured in this run only (bench/figures.ts).
const ratios = peerRatios(fresh);
if (ratios.length > 0) {
  console.log('mpbus / peer (above 1: mpbus better; throughputs mpbus/peer, latencies peer/mpbus), this run:');
  console.table(
    ratios.map((r) => ({
      mpbus: r.mpbus,
      peer: r.peer,
      'asks/s @128': fmtX(r.window128Throughput),
      'seq p50': fmtX(r.seqP50),
      'p99 @128': fmtX(r.window128P99),
      'tells/s': fmtX(r.tellThroughput),
    })),
  );
  results.peersRatios = ratios;
} else delete results.peersRatios;
const figures = issueFigures(fresh, freshFields.has('peersWaitingCpu') ? (results.peersWaitingCpu as WaitingCpu) : undefined);
if (figures.some((f) => f.value !== undefined)) {
  console.log('actor figures, this run:');
  console.table(
    figures.map((f) => ({
      figure: f.figure,
      value: f.value === undefined ? '-' : `${f.value}${f.unit === 'ratio' ? '' : f.unit === 'x' ? 'x' : ` ${f.unit}`}`,
      target: f.target,
      met: f.met === undefined ? '' : f.met ? 'yes' : 'no',
      note: f.note ?? '',
    })),
  );
  results.actorFigures = figures;
} else delete results.actorFigures;
writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
console.log(`written ${resultsPath}`);
