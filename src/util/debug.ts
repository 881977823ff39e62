/**
 * `CACHESAGE_DEBUG`: which diagnostics a user asked to see. `1`, `true` or
 * `all` turn on every one; otherwise a comma-separated list of topics
 * (`webgpu`, `tfjs`, `cli`). Read on every call, so a test can set it.
 */
export function debugWanted(topic: string): boolean {
  const raw = process.env['CACHESAGE_DEBUG'];
  if (raw === undefined || raw === '' || raw === '0' || raw === 'false') return false;
  const topics = raw.split(',').map((part) => part.trim().toLowerCase());
  return topics.some((part) => part === '1' || part === 'true' || part === 'all' || part === topic);
}
