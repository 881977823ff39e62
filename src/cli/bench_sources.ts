/**
 * The workloads `cachesage bench` sweeps: the bundled generator's shapes
 * and every `*.jsonl` trace in the trace directories, each cut to its first
 * whole sessions within a call limit so one huge trace cannot dominate the
 * run.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

import type { ToolDeclaration, TraceCall } from '../trace/format.js';
import { readTrace } from '../trace/reader.js';
import { generateWorkload, WORKLOAD_NAMES } from '../workloads/index.js';
import type { BenchWorkload } from '../report/results.js';
import { UsageError } from './args.js';

/** A workload ready to replay: its description and the calls kept. */
export interface LoadedWorkload {
  info: BenchWorkload;
  calls: TraceCall[];
  /** The tools its header declares (a bundled workload's or a trace file's), for policies that memoise tool results. */
  tools?: Record<string, ToolDeclaration>;
}

/**
 * The `*.jsonl` files of `dirs`, each directory's files in name order, a
 * file reached twice (same real path) listed once.
 *
 * @throws UsageError naming `--traces` when a directory cannot be listed.
 */
export function traceFiles(dirs: readonly string[]): string[] {
  const seen = new Set<string>();
  const files: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      if (!statSync(dir).isDirectory()) throw new Error('not a directory');
      names = readdirSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such directory' : code === 'EACCES' ? 'permission denied' : (error as Error).message;
      throw new UsageError(`bench: --traces ${dir}: ${why}`);
    }
    for (const name of names.filter((n) => n.endsWith('.jsonl')).sort()) {
      const path = join(dir, name);
      const real = realpathSync(path);
      if (seen.has(real)) continue;
      seen.add(real);
      files.push(path);
    }
  }
  return files;
}

/**
 * Keeps the longest run of whole sessions, in order of first appearance,
 * whose calls fit in `maxCalls`; at least the first session, however long.
 */
function firstSessions(sessions: readonly TraceCall[][], maxCalls: number): TraceCall[][] {
  const kept: TraceCall[][] = [];
  let calls = 0;
  for (const session of sessions) {
    if (kept.length > 0 && calls + session.length > maxCalls) break;
    kept.push(session);
    calls += session.length;
  }
  return kept;
}

function describe(name: string, source: 'bundled' | 'trace', kept: TraceCall[][], totalCalls: number, totalSessions: number, path?: string): LoadedWorkload {
  const calls = kept.flat();
  const info: BenchWorkload = {
    name,
    source,
    ...(path === undefined ? {} : { path }),
    calls: calls.length,
    sessions: kept.length,
    totalCalls,
    totalSessions,
    truncated: kept.length < totalSessions,
  };
  return { info, calls };
}

function groupBySession(calls: Iterable<TraceCall>): TraceCall[][] {
  const sessions = new Map<string, TraceCall[]>();
  for (const call of calls) {
    let list = sessions.get(call.session);
    if (!list) sessions.set(call.session, (list = []));
    list.push(call);
  }
  return [...sessions.values()];
}

/**
 * Reads a trace, keeping only its first whole sessions within `maxCalls`.
 * The whole file is still read (and checked), to count what was left out,
 * but calls of sessions that cannot be kept are not held in memory.
 *
 * @throws TraceError when the file is unreadable or malformed.
 */
export async function loadTrace(path: string, name: string, maxCalls: number): Promise<LoadedWorkload> {
  const sessions = new Map<string, TraceCall[] | null>();
  let stored = 0;
  let totalCalls = 0;
  let tools: Record<string, ToolDeclaration> | undefined;
  for await (const call of readTrace(path, { onHeader: (header) => (tools = header.tools) })) {
    totalCalls++;
    let list = sessions.get(call.session);
    if (list === undefined) {
      // Sessions are kept in order of first appearance, so once the budget is
      // spent no later session can be among the kept ones.
      list = stored < maxCalls ? [] : null;
      sessions.set(call.session, list);
    }
    if (list) {
      list.push(call);
      stored++;
    }
  }
  const candidates = [...sessions.values()].filter((s): s is TraceCall[] => s !== null);
  const loaded = describe(name, 'trace', firstSessions(candidates, maxCalls), totalCalls, sessions.size, path);
  return tools === undefined ? loaded : { ...loaded, tools };
}

/** One bundled workload shape, generated with `seed`, cut like a trace. */
export function loadBundled(name: string, seed: number, sessions: number | undefined, maxCalls: number): LoadedWorkload {
  const { header, calls } = generateWorkload(name, sessions === undefined ? { seed } : { seed, sessions });
  const grouped = groupBySession(calls);
  const loaded = describe(name, 'bundled', firstSessions(grouped, maxCalls), calls.length, grouped.length);
  return header.tools === undefined ? loaded : { ...loaded, tools: header.tools };
}

/**
 * Every workload of a bench run: the bundled shapes, then the trace files,
 * named by file (with a suffix when two files share a name); a trace with
 * no calls is left out.
 */
export async function loadWorkloads(options: {
  seed: number;
  bundledSessions: number | undefined;
  traceFiles: readonly string[];
  maxCalls: number;
  onLoaded?: (workload: BenchWorkload) => void;
  /** Called instead of `onLoaded` for a trace file with no calls, which is left out. */
  onEmpty?: (path: string) => void;
}): Promise<LoadedWorkload[]> {
  const loaded: LoadedWorkload[] = [];
  const names = new Set<string>();
  const unique = (base: string) => {
    let name = base;
    for (let i = 2; names.has(name); i++) name = `${base}#${i}`;
    names.add(name);
    return name;
  };
  for (const shape of WORKLOAD_NAMES) {
    const workload = loadBundled(shape, options.seed, options.bundledSessions, options.maxCalls);
    workload.info.name = unique(shape);
    loaded.push(workload);
    options.onLoaded?.(workload.info);
  }
  for (const path of options.traceFiles) {
    const workload = await loadTrace(path, basename(path, '.jsonl'), options.maxCalls);
    if (workload.calls.length === 0) {
      options.onEmpty?.(path);
      continue;
    }
    workload.info.name = unique(workload.info.name);
    loaded.push(workload);
    options.onLoaded?.(workload.info);
  }
  return loaded;
}
