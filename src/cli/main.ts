#!/usr/bin/env node
/**
 * The `cachesage` executable: runs {@link main} on the process arguments
 * and exits with its status (0 ok, 1 internal error, 2 user error).
 */
import { main } from './cli.js';

// A reader that closes the pipe early (`| head`) is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

process.exitCode = await main(process.argv.slice(2));
