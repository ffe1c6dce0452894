/**
 * Point encodings on one core: `node --import tsx bench/encodings.ts [--quick] [--precision m]
 * [--fields]`. Prints a markdown table (docs/encodings.md has the measured one); `--fields`: the
 * LiDAR scene with intensity, ring and time instead.
 */
import {
  formatEncodingTable,
  formatFieldsTable,
  runEncodingBench,
  runFieldsBench,
} from './lib/encodings.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const at = args.indexOf('--precision');
const precision = at >= 0 ? Number(args[at + 1]) : 0.001;
if (args.includes('--fields')) {
  const rows = await runFieldsBench({ quick, precision });
  console.log(
    `LiDAR scene with fields, ${rows[0]?.points ?? 0} points, ${rows[0]?.runs ?? 0} runs\n`,
  );
  console.log(formatFieldsTable(rows));
  process.exit(0);
}
const rows = await runEncodingBench({ quick, precision });
console.log(
  `precision ${precision} m, ${rows[0]?.points ?? 0} points, ${rows[0]?.runs ?? 0} runs\n`,
);
console.log(formatEncodingTable(rows));
