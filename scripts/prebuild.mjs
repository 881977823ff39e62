#!/usr/bin/env node
/**
 * Builds the prebuilt addon the tarball carries, at
 * prebuilds/<platform>-<arch>/cachesage_native.napi[.glibc|.musl].node: the
 * directory layout and file-name tags node-gyp-build reads, so the loader
 * (src/blocks/addon.ts) picks it by platform, architecture and libc. `npm
 * pack` and `npm publish` run this script (prepack).
 *
 * Release settings, apart from the developer's build/: its own build
 * directory (build-prebuild/), the addon target only, warnings as errors,
 * and no CUDA unless CACHESAGE_CUDA=1. A CUDA prebuild would tie every user
 * to one CUDA runtime and one GPU architecture; GPU machines build the
 * kernels from source instead (the install script does when nvcc is there).
 * No BLAS either: the reference engine's dense products fall back to plain
 * loops, since a prebuild linked to libopenblas would not load where it is
 * not installed. The result is loaded in a fresh process before it is kept.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

import { root, runCmakeJs } from './install.mjs';

const BUILD_DIRECTORY = 'build-prebuild';

/** node-gyp-build's tags for this machine: N-API (any Node version), and on Linux the libc. */
function tags() {
  const list = ['napi'];
  if (process.platform === 'linux') {
    const header = /** @type {{ glibcVersionRuntime?: string }} */ (process.report.getReport().header);
    list.push(header.glibcVersionRuntime ? 'glibc' : 'musl');
  }
  return list;
}

function main() {
  const cuda = /^(1|on|true)$/i.test(process.env.CACHESAGE_CUDA ?? '');
  const status = runCmakeJs(BUILD_DIRECTORY, { CACHESAGE_WERROR: 'ON', CACHESAGE_CUDA: cuda ? 'ON' : 'OFF', CACHESAGE_BLAS: 'OFF' }, ['--target', 'cachesage_native']);
  if (status !== 0) {
    console.error('cachesage: the prebuild failed (cmake output above)');
    return status;
  }
  const built = join(root, BUILD_DIRECTORY, 'Release', 'cachesage_native.node');
  if (!existsSync(built)) {
    console.error(`cachesage: the build succeeded but ${relative(root, built)} is missing`);
    return 1;
  }
  const directory = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  const prebuild = join(directory, ['cachesage_native', ...tags(), 'node'].join('.'));
  copyFileSync(built, prebuild);

  const check = spawnSync(
    process.execPath,
    ['-e', `const a = require(${JSON.stringify(prebuild)}); if (typeof a.NativeBlockManager !== 'function') process.exit(3);`],
    { encoding: 'utf8' },
  );
  if (check.status !== 0) {
    rmSync(prebuild);
    console.error(`cachesage: the prebuild does not load: ${check.stderr.trim() || `exit status ${check.status}`}`);
    return 1;
  }
  const kib = Math.round(statSync(prebuild).size / 1024);
  console.log(`cachesage: prebuilt ${relative(root, prebuild)} (${kib} KiB, CUDA ${cuda ? 'on' : 'off'})`);
  return 0;
}

process.exitCode = main();
