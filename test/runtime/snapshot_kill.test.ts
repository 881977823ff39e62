/**
 * Runtime snapshots survive SIGKILL: real child processes
 * (snapshot_writer.ts) write snapshots of a runtime whose state changes
 * with every write and are killed at seeded random points. After each kill
 * the file must restore to the state of the last write the child reported,
 * or of the one it was making, never a broken one, and the temp files a
 * killed writer leaves must be removed by the next writer.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { packageRoot } from '../../src/blocks/addon.js';
import { seededRandom } from '../../src/util/random.js';
import { snapshotRuntime, teach } from './snapshot_writer.js';

const WRITER = fileURLToPath(new URL('./snapshot_writer.ts', import.meta.url));
const SNAPSHOT = 'learned.json';
/** Concurrent chains of children, each on its own file, and kills per chain. */
const CHAINS = 3;
const KILLS_PER_CHAIN = 20;

/** What a runtime learned after lessons 1..k, as the policies part of its snapshot. */
class Lessons {
  readonly #states: string[] = [];
  readonly #runtime = snapshotRuntime();
  readonly #scratch: string;

  constructor(dir: string) {
    this.#scratch = join(dir, 'expected.json');
  }

  policies(k: number): string {
    while (this.#states.length <= k) {
      if (this.#states.length > 0) teach(this.#runtime, this.#states.length);
      this.#runtime.snapshot(this.#scratch);
      this.#states.push(policiesOf(this.#scratch));
    }
    return this.#states[k]!;
  }
}

function policiesOf(path: string): string {
  return JSON.stringify((JSON.parse(readFileSync(path, 'utf8')) as { policies: unknown }).policies);
}

interface Life {
  pid: number;
  /** The last lesson the child said it wrote; `start` when it wrote none. */
  written: number;
}

/** Runs a writer from lesson `start`, and kills it with SIGKILL `delayMs` after its `writes`-th write (or after "ready"). */
function liveAndDie(path: string, start: number, writes: number, delayMs: number): Promise<Life> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, path, String(start)], {
      cwd: packageRoot(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let written = start;
    let seen = 0;
    let killing = false;
    let buffered = '';
    let stderr = '';
    const killLater = () => {
      killing = true;
      setTimeout(() => child.kill('SIGKILL'), delayMs);
    };
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('wrote ')) {
          written = Number(line.slice(6));
          seen++;
        }
        if (!killing && (line === 'ready' ? writes === 0 : seen >= writes)) killLater();
      }
    });
    // 'close' comes after every line the child wrote before it died has been read.
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited with ${code ?? signal} before it was killed: ${stderr}`));
      else resolve({ pid: child.pid!, written });
    });
  });
}

/** The pid in a temp file's name, `.learned.json.PID.MS.tmp`. */
function tempPid(name: string): number {
  const match = /^\.learned\.json\.(\d+)\.\d+\.tmp$/.exec(name);
  if (match === null) throw new Error(`unexpected file ${name} beside the snapshot`);
  return Number(match[1]);
}

type Outcome = 'previous' | 'new' | 'none';

/** One chain: a child per kill, each resuming from the lesson on disk. */
async function chain(dir: string, seed: number, lessons: Lessons): Promise<{ outcomes: Outcome[]; tempsLeft: number }> {
  const random = seededRandom(seed);
  const path = join(dir, SNAPSHOT);
  const check = join(mkdtempSync(join(tmpdir(), 'cachesage-restored-')), SNAPSHOT);
  let onDisk = 0;
  let mayLinger = new Set<number>();
  const outcomes: Outcome[] = [];
  let tempsLeft = 0;
  for (let kill = 0; kill < KILLS_PER_CHAIN; kill++) {
    const start = onDisk;
    const life = await liveAndDie(path, start, Math.floor(random() * 3), random() * 25);
    // The file holds the last reported write, or the one in flight when it was killed.
    let outcome: Outcome = 'none';
    if (existsSync(path)) {
      const found = policiesOf(path);
      outcome = found === lessons.policies(life.written) ? 'previous' : found === lessons.policies(life.written + 1) ? 'new' : 'none';
      expect(outcome, `kill ${kill} of chain ${seed}: the snapshot is neither lesson ${life.written} nor ${life.written + 1}`).not.toBe('none');
      const restored = snapshotRuntime();
      restored.restore(path);
      restored.snapshot(check);
      expect(policiesOf(check)).toBe(found);
      onDisk = outcome === 'previous' ? life.written : life.written + 1;
    } else {
      // No file yet: only before this chain's first complete write.
      expect(life.written).toBe(0);
    }
    outcomes.push(outcome);
    // A writer that completed a write removed the temp files of the dead ones before it.
    mayLinger = life.written > start ? new Set([life.pid]) : new Set([...mayLinger, life.pid]);
    for (const name of readdirSync(dir)) {
      if (name === SNAPSHOT) continue;
      const pid = tempPid(name);
      expect(mayLinger.has(pid), `temp file ${name} of an earlier writer was left behind`).toBe(true);
      if (pid === life.pid) tempsLeft++;
    }
  }
  // One more write, by a live process: every temp file of the dead writers goes.
  const last = snapshotRuntime();
  last.restore(path);
  last.snapshot(path);
  expect(readdirSync(dir)).toEqual([SNAPSHOT]);
  return { outcomes, tempsLeft };
}

describe('runtime snapshots under SIGKILL', () => {
  it(`restore to the previous or the new complete state after ${CHAINS * KILLS_PER_CHAIN} kills at random points`, { timeout: 240_000 }, async () => {
    const lessons = new Lessons(mkdtempSync(join(tmpdir(), 'cachesage-lessons-')));
    const results = await Promise.all(
      Array.from({ length: CHAINS }, (_, c) => {
        return chain(mkdtempSync(join(tmpdir(), `cachesage-kill-${c}-`)), 20261205 + c, lessons);
      }),
    );
    const outcomes = results.flatMap((r) => r.outcomes);
    expect(outcomes).toHaveLength(CHAINS * KILLS_PER_CHAIN);
    const tally = { previous: 0, new: 0, none: 0, tempsLeft: results.reduce((n, r) => n + r.tempsLeft, 0) };
    for (const o of outcomes) tally[o]++;
    console.log(`snapshot kills: ${JSON.stringify(tally)}`);
    // Kills landed both between writes and inside them (a temp file left behind).
    expect(tally.previous).toBeGreaterThan(0);
    expect(tally.tempsLeft).toBeGreaterThan(0);
  });

  it("removes a dead writer's temp file, keeps a live one's, and removes its own when the rename fails", () => {
    const dir = mkdtempSync(join(tmpdir(), 'cachesage-temps-'));
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    writeFileSync(join(dir, `.${SNAPSHOT}.${dead}.1.tmp`), '{"format":');
    writeFileSync(join(dir, `.${SNAPSHOT}.${process.ppid}.1.tmp`), '{"format":');
    const rt = snapshotRuntime();
    teach(rt, 1);
    rt.snapshot(join(dir, SNAPSHOT));
    expect(readdirSync(dir).sort()).toEqual([`.${SNAPSHOT}.${process.ppid}.1.tmp`, SNAPSHOT]);
    // A directory in the way: the rename fails, and the temp file goes with the error.
    mkdirSync(join(dir, 'taken.json', 'inside'), { recursive: true });
    expect(() => rt.snapshot(join(dir, 'taken.json'))).toThrow();
    expect(readdirSync(dir).sort()).toEqual([`.${SNAPSHOT}.${process.ppid}.1.tmp`, SNAPSHOT, 'taken.json']);
  });
});
