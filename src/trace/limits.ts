/**
 * The limits of the trace format: what one line, one call and one trace may
 * hold. The reader enforces every one of them as it reads, so a value that
 * would make a replay run for minutes or exhaust memory fails on its own
 * line, in milliseconds. docs/trace-format.md has them as a table.
 *
 * Each is generous next to the real traces (the largest call there holds
 * 50,874 tokens, the longest prompt 61 segments, the largest converted
 * trace 76,440 calls and about 152 million tokens) and next to a model with
 * a 1M-token context, while keeping a replay's memory bounded: at the
 * default block size of 16 tokens a trace within them makes at most 2^24
 * blocks, the most a replay holds.
 */

/** Tokens one segment may hold: a whole 1M-token context fits twice. */
export const MAX_SEGMENT_TOKENS = 2 ** 21;

/** Tokens one call may hold, its prompt and its reply together. */
export const MAX_CALL_TOKENS = 2 ** 21;

/** Segments one prompt may list (65,536: a 1M-token context in 16-token messages). */
export const MAX_SEGMENTS_PER_CALL = 2 ** 16;

/** Calls one trace may hold (about 14 times the largest converted real trace). */
export const MAX_CALLS = 2 ** 20;

/**
 * Tokens of all calls of a trace together, prompts and replies (268,435,456):
 * 2^24 blocks of 16 tokens, the most a replay holds at the default block size.
 */
export const MAX_TRACE_TOKENS = 2 ** 28;

/** Distinct agent names one trace may use (a step graph of KVFlow holds as many). */
export const MAX_AGENTS = 1024;

/** Longest segment or output id, in characters. */
export const MAX_ID_LENGTH = 64;

/** Longest session or agent name, in characters: the runtime's limit on names. */
export const MAX_NAME_LENGTH = 256;

/** Latest `t` or `t_end`: one year, in seconds since the session started. */
export const MAX_TIME_SECONDS = 365 * 24 * 3600;

/**
 * Longest line, in characters (16 MiB). A call within the other limits,
 * written as compact JSON, is at most about 6 million characters.
 */
export const MAX_LINE_LENGTH = 2 ** 24;

/** A count with thousands separators, as the limits appear in messages and docs. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
