/**
 * The tools each bundled shape's agents call in the gaps between calls
 * (tools.ts draws them). Names and mixes follow what the systems the shapes
 * model give their agents: flight search and reservations for a tau-bench
 * airline agent; files and tests for ChatDev / MetaGPT coders; the web and
 * files for Magentic-One's workers. Costs set each tool's usual share of a
 * gap (a test run dwarfs reading a file). The group chat and map-reduce
 * shapes have no gaps, so no tools.
 */
import type { ToolProfile } from './tools.js';

/** tau-bench airline: searches and arithmetic are pure; a reservation is the customer's own and changes when updated. */
export const AIRLINE_TOOLS: ToolProfile = {
  uses: [
    { tool: 'search_flights', kind: 'pure', weight: 3, distinctArgs: 200, cost: 1 },
    { tool: 'calculate', kind: 'pure', weight: 1, distinctArgs: 50, cost: 0.2 },
    { tool: 'get_reservation', kind: 'reads', resource: 'reservations', ttlSeconds: 30, weight: 2.5, distinctArgs: 4, cost: 0.5 },
    { tool: 'update_reservation', kind: 'writes', resource: 'reservations', weight: 0.8, distinctArgs: 4, cost: 1 },
    { tool: 'now', kind: 'clock', weight: 0.4, cost: 0.05 },
  ],
  callsPerGap: { '1': 0.7, '2': 0.25, '3': 0.05 },
  zipfExponent: 1.1,
  costSigma: 0.5,
};

/** A coding team's tools: the session's checkout is read, written and tested; documentation search is pure. */
export const CODING_TOOLS: ToolProfile = {
  uses: [
    { tool: 'read_file', kind: 'reads', resource: 'repo', ttlSeconds: 600, weight: 3, distinctArgs: 12, cost: 0.2 },
    { tool: 'write_file', kind: 'writes', resource: 'repo', weight: 1.5, distinctArgs: 12, cost: 0.3 },
    { tool: 'run_tests', kind: 'reads', resource: 'repo', ttlSeconds: 600, weight: 2, distinctArgs: 1, cost: 6 },
    { tool: 'search_docs', kind: 'pure', weight: 1, distinctArgs: 150, cost: 1 },
  ],
  callsPerGap: { '1': 0.5, '2': 0.3, '3': 0.2 },
  zipfExponent: 1.1,
  costSigma: 0.5,
};

/** Magentic-One style workers: web search and pages are pure; files are the session's own; a clock. */
export const RESEARCH_TOOLS: ToolProfile = {
  uses: [
    { tool: 'search', kind: 'pure', weight: 3, distinctArgs: 300, cost: 1 },
    { tool: 'fetch_page', kind: 'pure', weight: 3, distinctArgs: 400, cost: 1.5 },
    { tool: 'read_file', kind: 'reads', resource: 'files', ttlSeconds: 300, weight: 1.5, distinctArgs: 10, cost: 0.3 },
    { tool: 'write_file', kind: 'writes', resource: 'files', weight: 0.5, distinctArgs: 10, cost: 0.3 },
    { tool: 'now', kind: 'clock', weight: 0.3, cost: 0.05 },
  ],
  callsPerGap: { '1': 0.6, '2': 0.3, '3': 0.1 },
  zipfExponent: 1.1,
  costSigma: 0.5,
};

/** Nested teams that research and then build: the web, the repository and its tests. */
export const TEAM_TOOLS: ToolProfile = {
  uses: [
    { tool: 'search', kind: 'pure', weight: 2, distinctArgs: 200, cost: 1 },
    { tool: 'fetch_page', kind: 'pure', weight: 2, distinctArgs: 300, cost: 1.5 },
    { tool: 'read_file', kind: 'reads', resource: 'repo', ttlSeconds: 600, weight: 2, distinctArgs: 16, cost: 0.2 },
    { tool: 'write_file', kind: 'writes', resource: 'repo', weight: 1, distinctArgs: 16, cost: 0.3 },
    { tool: 'run_tests', kind: 'reads', resource: 'repo', ttlSeconds: 600, weight: 1, distinctArgs: 1, cost: 5 },
  ],
  callsPerGap: { '1': 0.6, '2': 0.3, '3': 0.1 },
  zipfExponent: 1.1,
  costSigma: 0.5,
};
