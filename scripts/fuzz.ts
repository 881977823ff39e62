/**
 * N-API fuzz: random calls at every entry point of the addon, bypassing the
 * TypeScript checks (the driver is test/blocks/fuzz_driver.ts, whose short
 * slice runs in the test suite).
 *
 *   npm run --silent fuzz -- [--calls N] [--seed S] [--chunk C] [--json]
 *
 * The calls run in child processes of C calls each (chunk k uses seed S + k),
 * so a crash is counted, not fatal: a child that dies by a signal or exits
 * without a report is a crash, and the line that names it gives the
 * command that replays it. Prints calls, rejections, violations, crashes and
 * elapsed time; exits 1 on any violation or crash, 2 on bad flags.
 * CACHESAGE_ADDON picks another build of the addon (a sanitizer build).
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { runFuzz, type FuzzReport } from '../test/blocks/fuzz_driver.js';

interface Flags {
  calls: number;
  seed: number;
  chunk: number;
  json: boolean;
  child: boolean;
}

function parseFlags(argv: readonly string[]): Flags {
  const flags: Flags = { calls: 1_000_000, seed: 1, chunk: 100_000, json: false, child: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--json') flags.json = true;
    else if (flag === '--child') flags.child = true;
    else if (flag === '--calls' || flag === '--seed' || flag === '--chunk') {
      const value = Number(argv[++i]);
      const min = flag === '--seed' ? 0 : 1;
      if (!Number.isSafeInteger(value) || value < min) usage(`${flag} needs an integer >= ${min}, got ${JSON.stringify(argv[i])}`);
      flags[flag.slice(2) as 'calls' | 'seed' | 'chunk'] = value;
    } else usage(`unknown flag ${JSON.stringify(flag)}`);
  }
  return flags;
}

function usage(problem: string): never {
  process.stderr.write(`fuzz: ${problem}\nusage: npm run --silent fuzz -- [--calls N] [--seed S] [--chunk C] [--json]\n`);
  process.exit(2);
}

interface Chunk {
  seed: number;
  calls: number;
  report: FuzzReport | null;
  /** Why the child gave no report: the signal or exit status. */
  crash: string | null;
}

/** Runs one chunk in a child process; its stderr (sanitizer reports) passes through. */
function runChunk(seed: number, calls: number): Chunk {
  const script = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, script, '--child', '--calls', String(calls), '--seed', String(seed)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  });
  let report: FuzzReport | null = null;
  try {
    report = child.status === 0 ? (JSON.parse(child.stdout) as FuzzReport) : null;
  } catch {
    report = null;
  }
  const crash = report !== null ? null : child.signal !== null ? `killed by ${child.signal}` : `exited with status ${child.status} and no report`;
  return { seed, calls, report, crash };
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.child) {
    process.stdout.write(JSON.stringify(await runFuzz({ calls: flags.calls, seed: flags.seed })));
    return;
  }
  const start = performance.now();
  const chunks: Chunk[] = [];
  for (let done = 0, k = 0; done < flags.calls; k++) {
    const calls = Math.min(flags.chunk, flags.calls - done);
    chunks.push(runChunk(flags.seed + k, calls));
    done += calls;
  }
  const elapsedS = (performance.now() - start) / 1000;
  const reports = chunks.flatMap((c) => (c.report ? [c.report] : []));
  const crashes = chunks.filter((c) => c.crash !== null);
  const violations = reports.flatMap((r) => r.violations);
  const summary = {
    calls: reports.reduce((n, r) => n + r.calls, 0) + crashes.reduce((n, c) => n + c.calls, 0),
    rejections: reports.reduce((n, r) => n + r.rejected, 0),
    violations: violations.length,
    crashes: crashes.length,
    elapsedS: Math.round(elapsedS * 10) / 10,
    seed: flags.seed,
    chunks: chunks.length,
    entryPoints: new Set(reports.flatMap((r) => Object.keys(r.entries))).size,
    cuda: reports[0]?.cuda ?? null,
  };
  if (flags.json) {
    process.stdout.write(JSON.stringify({ ...summary, violationList: violations, crashList: crashes.map(({ seed, calls, crash }) => ({ seed, calls, crash })) }) + '\n');
  } else {
    for (const v of violations) process.stdout.write(`violation: ${v}\n`);
    for (const c of crashes) process.stdout.write(`crash: chunk seed ${c.seed} (${c.crash}); replay: npm run --silent fuzz -- --calls ${c.calls} --seed ${c.seed}\n`);
    process.stdout.write(
      `fuzz: calls=${summary.calls} rejections=${summary.rejections} violations=${summary.violations} crashes=${summary.crashes} ` +
        `elapsed=${summary.elapsedS}s seed=${summary.seed} chunks=${summary.chunks} entry-points=${summary.entryPoints}\n`,
    );
  }
  process.exitCode = violations.length > 0 || crashes.length > 0 ? 1 : 0;
}

await main();
