/**
 * Peak memory against trace size: generates traces of about 10k, 30k and
 * 100k calls with a bundled workload (src/workloads), then for each runs in
 * a fresh child process
 *
 * - `stream`: the trace reader alone, keeping no call (readTrace);
 * - `read`:   the reader keeping every call, as replay does (readTraceFile);
 * - `replay`: `cachesage replay --trace FILE --json` with one policy,
 *
 * and records the child's peak resident set (getrusage maxRSS, read in the
 * child's exit hook). Bounded memory shows as a flat column; a column that
 * grows with the calls holds something per call.
 *
 *   npx tsx bench/memory.ts [--json] [--sizes 10000,30000,100000]
 *     [--workload pipeline] [--policies cachesage]
 *
 * The replays of large traces take minutes and gigabytes: the table is the
 * measurement, not a test.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { readTrace, readTraceFile } from '../src/trace/reader.js';
import { generateWorkload, writeTrace } from '../src/workloads/index.js';

const MODES = ['stream', 'read', 'replay'] as const;
type Mode = (typeof MODES)[number];
const MARKER = 'cachesage-bench-memory maxrss-kib ';
const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = join(SCRIPT, '..', '..');

/** Child side: reads the trace one way and exits; the exit hook reports the peak. */
async function child(mode: 'stream' | 'read', file: string): Promise<void> {
  process.on('exit', () => process.stderr.write(`${MARKER}${process.resourceUsage().maxRSS}\n`));
  let calls = 0;
  if (mode === 'read') calls = (await readTraceFile(file)).calls.length;
  else for await (const _call of readTrace(file)) calls++;
  process.stdout.write(`${calls}\n`);
}

interface Row {
  calls: number;
  traceMiB: number;
  peakMiB: Record<Mode, number>;
  replaySeconds: number;
}

/** Writes a trace of whole sessions of `workload` with at least `target` calls; returns its call count. */
async function makeTrace(path: string, workload: string, target: number): Promise<number> {
  const pilot = generateWorkload(workload, { seed: 1, sessions: 20 }).calls.length / 20;
  let sessions = Math.ceil(target / pilot);
  for (;;) {
    const { header, calls } = generateWorkload(workload, { seed: 1, sessions });
    if (calls.length >= target) {
      await writeTrace(path, header, calls);
      return calls.length;
    }
    sessions = Math.ceil(sessions * 1.05) + 1;
  }
}

/** Runs `args` in a child Node with tsx and an exit hook that reports maxRSS; returns MiB and seconds. */
function measure(args: string[]): { mib: number; seconds: number } {
  const hook = `data:text/javascript,process.on('exit',()=>process.stderr.write('${MARKER}'+process.resourceUsage().maxRSS+'\\n'))`;
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--import', hook, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const line = result.stderr.split('\n').find((l) => l.startsWith(MARKER));
  if (result.status !== 0 || line === undefined) {
    throw new Error(`bench:memory: ${args.join(' ')} failed (status ${result.status}): ${result.stderr.slice(-2000)}`);
  }
  return { mib: Number(line.slice(MARKER.length)) / 1024, seconds };
}

function parseArgs(argv: string[]) {
  const options = { json: false, sizes: [10_000, 30_000, 100_000], workload: 'pipeline', policies: 'cachesage' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`bench:memory: ${flag} needs a value`);
      return v;
    };
    if (flag === '--json') options.json = true;
    else if (flag === '--sizes') options.sizes = value().split(',').map(Number);
    else if (flag === '--workload') options.workload = value();
    else if (flag === '--policies') options.policies = value();
    else throw new Error(`bench:memory: unknown flag ${flag} (expected --json, --sizes, --workload, --policies)`);
  }
  if (options.sizes.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new Error('bench:memory: --sizes takes positive integers');
  return options;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') return child(argv[1] as 'stream' | 'read', argv[2]!);
  const options = parseArgs(argv);
  const dir = mkdtempSync(join(tmpdir(), 'cachesage-bench-memory-'));
  const rows: Row[] = [];
  try {
    for (const target of options.sizes) {
      const file = join(dir, `${options.workload}-${target}.jsonl`);
      const calls = await makeTrace(file, options.workload, target);
      const stream = measure([SCRIPT, '--child', 'stream', file]);
      const read = measure([SCRIPT, '--child', 'read', file]);
      const replay = measure(['src/cli/main.ts', 'replay', '--trace', file, '--json', '--policies', options.policies]);
      rows.push({
        calls,
        traceMiB: statSync(file).size / 2 ** 20,
        peakMiB: { stream: stream.mib, read: read.mib, replay: replay.mib },
        replaySeconds: replay.seconds,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Growth between the smallest and largest trace, per 1,000 calls: ~0 when bounded.
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  const span = (last.calls - first.calls) / 1000;
  const perThousandCalls = Object.fromEntries(MODES.map((m) => [m, span > 0 ? (last.peakMiB[m] - first.peakMiB[m]) / span : 0])) as Record<Mode, number>;
  if (options.json) {
    process.stdout.write(JSON.stringify({ workload: options.workload, policies: options.policies, rows, growthMiBPer1000Calls: perThousandCalls }) + '\n');
    return;
  }
  const pad = (text: string, width: number) => text.padStart(width);
  const mib = (n: number) => n.toFixed(1);
  const lines = [
    `peak RSS (MiB) by trace size, workload ${options.workload}, replay policies ${options.policies}`,
    [pad('calls', 8), pad('trace MiB', 10), pad('stream', 8), pad('read', 8), pad('replay', 8), pad('replay s', 9)].join(' '),
    ...rows.map((r) => [pad(String(r.calls), 8), pad(mib(r.traceMiB), 10), ...MODES.map((m) => pad(mib(r.peakMiB[m]), 8)), pad(r.replaySeconds.toFixed(1), 9)].join(' ')),
    [pad('MiB/1k', 8), pad('', 10), ...MODES.map((m) => pad(perThousandCalls[m].toFixed(2), 8)), pad('', 9)].join(' '),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

await main();
