// Prints the plain closing line CI reads ("N passed, N failed") from vitest's JSON report
// (preceded by "N skipped" when tests were skipped).
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? '.vitest-report.json';
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch {
  console.log('0 passed, 1 failed');
  console.error(`no vitest report at ${file}: the test run did not complete`);
  process.exit(0);
}
const failedSuites = report.numFailedTestSuites ?? 0;
const failed = (report.numFailedTests ?? 0) + (report.numFailedTests ? 0 : failedSuites);
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
if (skipped > 0) console.log(`${skipped} skipped`);
console.log(`${report.numPassedTests ?? 0} passed, ${failed} failed`);
