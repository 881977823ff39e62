/** `cachesage serve --redis` and its companion flags: each mistake is a UsageError naming the flag. */
import { describe, expect, it } from 'vitest';

import { serveSettings } from '../../src/cli/serve_command.js';

const REDIS = ['--redis', 'redis://127.0.0.1:6379', '--bytes-per-block', '4096'];

describe('serve --redis flags', () => {
  it('reads the remote settings, with their defaults', () => {
    expect(serveSettings(REDIS)!.redis).toEqual({ url: 'redis://127.0.0.1:6379', replica: null, modelKey: 'default', namespace: 'cachesage', exchangeIntervalSeconds: 5 });
    const all = serveSettings([...REDIS, '--replica-id', 'gpu-3', '--model-key', 'llama3-8b.bf16', '--redis-namespace', 'prod', '--exchange-interval', '0.5']);
    expect(all!.redis).toEqual({ url: 'redis://127.0.0.1:6379', replica: 'gpu-3', modelKey: 'llama3-8b.bf16', namespace: 'prod', exchangeIntervalSeconds: 0.5 });
    expect(serveSettings([])!.redis).toBeNull();
  });

  it('refuses each mistake, naming the flag', () => {
    expect(() => serveSettings(['--redis', 'redis://127.0.0.1:6379'])).toThrow(/--redis needs --bytes-per-block N/);
    expect(() => serveSettings(['--redis', 'localhost:6379', '--bytes-per-block', '64'])).toThrow(/--redis must look like redis:\/\/host:port, got "localhost:6379"/);
    expect(() => serveSettings(['--replica-id', 'a'])).toThrow(/--replica-id needs --redis URL/);
    expect(() => serveSettings(['--exchange-interval', '1'])).toThrow(/--exchange-interval needs --redis URL/);
    expect(() => serveSettings([...REDIS, '--replica-id', 'has space'])).toThrow(/--replica-id must be 1\.\.200 printable characters without spaces/);
    expect(() => serveSettings([...REDIS, '--exchange-interval', '0'])).toThrow(/--exchange-interval must be > 0/);
    expect(() => serveSettings([...REDIS, '--exchange-interval', '0.001'])).toThrow(/--exchange-interval must be between 0\.01 and 86400 seconds/);
  });
});
