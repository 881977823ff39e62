/**
 * The `cachesage` command-line tool as a function: `replay` one trace, or
 * `bench` the bundled workloads and real traces into a report. The
 * executable is main.ts; this module has no side effects on import.
 *
 * Exit status: 0 on success; 2 on a user error (bad flag, unreadable or
 * malformed trace), with one line on stderr and no stack trace; 1 on an
 * internal error.
 */
import { TraceError } from '../trace/format.js';
import { debugWanted } from '../util/debug.js';
import { UsageError } from './args.js';

const TOOL_HELP = `Usage: cachesage <command> [options]

Agent-aware KV-cache layer for LLM serving: trace replay and benchmarks.

Commands:
  replay    replay one trace under each policy at one capacity
  bench     every workload x policy x capacity, with an HTML report
  engine    serve one trace on the reference engine under each policy
  serve     run the runtime as a sidecar: HTTP API, batched msgpack, metrics

Run \`cachesage <command> --help\` for a command's options.
`;

type Command = (argv: readonly string[]) => Promise<void>;

// Loaded on demand: bench pulls in vega, which replay and --help do not need.
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  replay: async () => (await import('./replay_command.js')).replayCommand,
  bench: async () => (await import('./bench_command.js')).benchCommand,
  engine: async () => (await import('./engine_command.js')).engineCommand,
  serve: async () => (await import('./serve_command.js')).serveCommand,
};

/** One line, whatever the message holds: scripts read the first stderr line. */
function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}

function unknownCommand(name: string): number {
  process.stderr.write(`cachesage: unknown command ${JSON.stringify(name)} (commands: ${Object.keys(COMMANDS).join(', ')}; see cachesage --help)\n`);
  return 2;
}

/**
 * Runs the tool on `argv` (the arguments after the program name) and
 * returns the exit status; it never throws.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined) {
      process.stderr.write(TOOL_HELP);
      return 2;
    }
    if (command === '--help' || command === '-h' || command === 'help') {
      const topic = command === 'help' ? rest[0] : undefined;
      if (topic === undefined) {
        process.stdout.write(TOOL_HELP);
        return 0;
      }
      const load = Object.hasOwn(COMMANDS, topic) ? COMMANDS[topic] : undefined;
      if (!load) return unknownCommand(topic);
      await (await load())(['--help']);
      return 0;
    }
    const load = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (!load) return unknownCommand(command);
    await (await load())(rest);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`cachesage ${oneLine(error.message)}\n`);
      return 2;
    }
    if (error instanceof TraceError) {
      // Already `FILE:LINE: what is wrong`, the form editors and scripts parse.
      process.stderr.write(`${oneLine(error.message)}\n`);
      return 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`cachesage: internal error: ${oneLine(message)}\n`);
    if (debugWanted('cli') && error instanceof Error && error.stack) process.stderr.write(error.stack + '\n');
    return 1;
  }
}
