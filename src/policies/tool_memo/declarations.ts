/**
 * What a deployment declares about its tools, for memoization: a pure tool
 * (its result depends on its arguments only) is answered from the memo for
 * as long as it is kept; a tool with `ttlSeconds` for that long; a `never`
 * tool never; a tool that `reads` a resource loses its entries when a tool
 * that `writes` it runs (and, without `ttlSeconds`, only then). Undeclared
 * tools keep the policy's default TTL (0 unless set: a tool nobody declared
 * may be stateful).
 */
import { checkToolDeclarations, type ToolDeclaration } from '../../trace/format.js';

export type { ToolDeclaration } from '../../trace/format.js';

/** A declaration as the policy uses it: how long an entry answers, and what it reads and writes. */
export interface ToolRule {
  /** Seconds an entry answers; 0: never memoised; Infinity: until invalidated. */
  ttlSeconds: number;
  pure: boolean;
  reads: readonly string[];
  writes: readonly string[];
}

/**
 * Checks `options.tools`, with the rules of a trace header's `tools`.
 *
 * @throws TypeError / RangeError naming `options.tools.<tool>.<field>`.
 */
export function checkDeclarations(value: unknown, owner: string): Map<string, ToolDeclaration> {
  if (value === undefined) return new Map();
  const refuse = (problem: string, kind: 'type' | 'range'): never => {
    throw kind === 'type' ? new TypeError(problem) : new RangeError(problem);
  };
  return new Map(Object.entries(checkToolDeclarations(value, `${owner}: options.tools`, refuse)));
}

/** The rule of a tool: its declaration's, or the default TTL for an undeclared tool. */
export function ruleOf(declaration: ToolDeclaration | undefined, defaultTtlSeconds: number): ToolRule {
  const reads = declaration?.reads ?? [];
  const writes = declaration?.writes ?? [];
  if (declaration?.never === true) return { ttlSeconds: 0, pure: false, reads, writes };
  const pure = declaration?.pure === true;
  // A pure tool's answer never goes stale, nor does a read's until a declared write
  // invalidates it (ttlSeconds bounds one whose resource also changes by other means);
  // a tool that writes is not answered (its effect is the point).
  const kept = pure || reads.length > 0 ? Infinity : defaultTtlSeconds;
  const ttlSeconds = writes.length > 0 ? 0 : (declaration?.ttlSeconds ?? kept);
  return { ttlSeconds, pure, reads, writes };
}
