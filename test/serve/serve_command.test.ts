/**
 * `cachesage serve` flags: every mistake is one stderr line naming the flag
 * (or file) and exit status 2, before anything listens; --help lists every
 * flag the parser knows.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { SERVE_HELP, serveSettings } from '../../src/cli/serve_command.js';
import { cliInProcess } from '../cli/in_process.js';

const dir = mkdtempSync(join(tmpdir(), 'cachesage-serve-flags-'));
const tokens = (content: string) => {
  const path = join(dir, `tokens-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, content);
  return path;
};

describe('cachesage serve flags', () => {
  it('prints help naming every flag', async () => {
    const { code, stdout } = await cliInProcess(['serve', '--help']);
    expect(code).toBe(0);
    expect(stdout).toBe(SERVE_HELP);
    for (const flag of ['host', 'port', 'device-blocks', 'host-blocks', 'block-size', 'bytes-per-block', 'policies', 'backend', 'tokens', 'snapshot', 'snapshot-interval', 'body-limit', 'max-batch', 'rate-limit', 'burst', 'no-process-metrics']) {
      expect(stdout).toContain(`--${flag}`);
    }
    // And the parser knows no flag the help leaves out.
    const flags = [...SERVE_HELP.matchAll(/^\s+(--[a-z-]+)/gm)].map((m) => m[1]!);
    for (const flag of flags) expect(() => serveSettings([flag, ...(flag === '--no-process-metrics' ? [] : ['x'])])).not.toThrow(/unknown flag/);
  });

  it.each([
    [['--port', '70000'], 'cachesage serve: --port must be an integer in 0..65535 (got "70000")'],
    [['--device-blocks', '0'], 'cachesage serve: --device-blocks must be an integer in 1..268435456 (got "0")'],
    [['--block-size', 'x'], 'cachesage serve: --block-size must be a number (got "x")'],
    [['--policies', 'belady'], 'cachesage serve: --policies: belady is an offline bound; it exists only in replay'],
    [['--backend', 'quantum'], 'cachesage serve: --backend must be one of auto, cpu, webgpu, cuda, tfjs; got "quantum"'],
    [['--host', '0.0.0.0'], 'cachesage serve: --host listening on 0.0.0.0 (not loopback) needs at least one token: pass --tokens FILE'],
    [['--rate-limit', '-1'], 'cachesage serve: --rate-limit must be > 0 (got "-1")'],
    [['--burst', '5'], 'cachesage serve: --burst needs --rate-limit R'],
    [['--snapshot-interval', '5'], 'cachesage serve: --snapshot-interval needs --snapshot FILE'],
    [['--snapshot', '/nonexistent-dir/x.json'], 'cachesage serve: --snapshot /nonexistent-dir/x.json: its directory /nonexistent-dir does not exist or is not writable'],
    [['--body-limit', '10'], 'cachesage serve: --body-limit must be an integer in 1024..1073741824 (got "10")'],
    [['--verbose'], 'cachesage serve: unknown flag --verbose (see cachesage serve --help)'],
  ])('refuses %j', async (args, message) => {
    const { code, stderr } = await cliInProcess(['serve', ...args]);
    expect(stderr).toBe(message + '\n');
    expect(code).toBe(2);
  });

  it('refuses an unknown policy, listing the known ones', async () => {
    const { code, stderr } = await cliInProcess(['serve', '--policies', 'lru,nope']);
    expect(stderr).toMatch(/^cachesage serve: --policies: unknown policy "nope" \(known: lru, lfu, kvflow, ttl, cachesage, belady, infinite[^)]*\)\n$/);
    expect(code).toBe(2);
  });

  it('refuses a token file that is missing or malformed, naming the file and the entry', async () => {
    const missing = join(dir, 'missing.json');
    expect((await cliInProcess(['serve', '--tokens', missing])).stderr).toBe(`cachesage serve: --tokens ${missing}: cannot read the token file (ENOENT)\n`);
    const cases: [string, string][] = [
      ['{}', 'must be a JSON array of {token, workloads} objects'],
      ['[]', 'holds no tokens'],
      ['[{"token": "short", "workloads": "*"}]', 'entry 0: token must be a string of 16 to 4096 characters without spaces'],
      ['[{"token": "0123456789abcdef", "workloads": []}]', 'entry 0: workloads must be "*" or a non-empty array of workload names'],
      ['[{"token": "0123456789abcdef", "workloads": "*", "role": "x"}]', 'entry 0: unknown field "role" (known: token, workloads, name)'],
      ['[{"token": "0123456789abcdef", "workloads": "*"}, {"token": "0123456789abcdef", "workloads": ["a"]}]', 'entry 1: token is listed twice'],
    ];
    for (const [content, message] of cases) {
      const path = tokens(content);
      const { code, stderr } = await cliInProcess(['serve', '--tokens', path]);
      expect(stderr).toBe(`cachesage serve: --tokens ${path}: ${message}\n`);
      expect(code).toBe(2);
    }
    const notJson = tokens('{oops');
    expect((await cliInProcess(['serve', '--tokens', notJson])).stderr).toMatch(new RegExp(`^cachesage serve: --tokens ${notJson}: not valid JSON`));
  });

  it('refuses to start on a corrupt snapshot, naming the file, and leaves the file as it was', async () => {
    const corrupt = join(dir, 'corrupt.json');
    const content = '{"format": "cachesage.runtime", "version": 1, "policies": {"cachesage": ';
    writeFileSync(corrupt, content);
    const { code, stderr } = await cliInProcess(['serve', '--port', '0', '--snapshot', corrupt]);
    expect(stderr).toMatch(new RegExp(`^cachesage serve: --snapshot ${corrupt}: refused: snapshot ${corrupt} is corrupt: .+\\n$`));
    expect(code).toBe(2);
    expect(readFileSync(corrupt, 'utf8')).toBe(content);
  });

  it('accepts a non-loopback host with a token file', () => {
    const settings = serveSettings(['--host', '0.0.0.0', '--tokens', tokens('[{"token": "0123456789abcdef", "workloads": ["a"]}]')]);
    expect(settings?.host).toBe('0.0.0.0');
    expect(settings?.tokens?.size).toBe(1);
  });
});
