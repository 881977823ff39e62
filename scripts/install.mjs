#!/usr/bin/env node
/**
 * The package's install step (`install` in package.json; `npm rebuild
 * cachesage` runs it again): make sure a native addon loads, and build one
 * from source only when that is needed. It prints one line saying what it
 * did (npm shows a dependency's install output only with
 * `--foreground-scripts` or when the script fails).
 *
 * Installed as a dependency (no .git beside package.json):
 * - the addon the package would load (a build under build/, else the
 *   prebuild for this platform in prebuilds/) loads and has what was asked
 *   for: nothing to do;
 * - else the addon is built from source with cmake-js into build/, which
 *   the loader prefers to the prebuild; when that is impossible the script
 *   says exactly what to install and fails the install;
 * - `npm install --build-from-source` (node-gyp-build's convention) or
 *   CACHESAGE_BUILD_FROM_SOURCE=1 always builds.
 * In a git checkout (the project's own development and CI) it always builds,
 * incrementally, like `npm run build:native`.
 *
 * CUDA. As a dependency, the kernels are built only when asked for
 * (CACHESAGE_CUDA=1) or when `nvidia-smi -L` lists a GPU, never merely
 * because nvcc exists; CACHESAGE_CUDA=0 turns them off. A prebuild without
 * CUDA where CUDA is wanted is replaced by a source build when nvcc and the
 * build tools are there, and kept (the CPU kernels) with a note otherwise.
 * In a checkout CMake's default applies: the .cu files are compiled wherever
 * nvcc is found (CACHESAGE_CUDA=0/1 forces it either way).
 *
 * Warnings. Whether they are errors is decided in CMakeLists.txt, so that
 * this script, `npm run build:native` and a plain cmake build agree:
 * CACHESAGE_WERROR defaults to ON in a git checkout and OFF elsewhere. It is
 * deliberately not keyed to $CI: a consumer's CI sets CI too, and a newer
 * compiler's new warning must not fail their install. CACHESAGE_WERROR=0/1
 * in the environment overrides.
 *
 * Install scripts and npm 11. npm 11.16+ warns about dependencies whose
 * install scripts the consuming project's `allowScripts` does not cover, and
 * npm 12 skips them by default. A package cannot approve itself
 * (`allowScripts` is read from the root project only). Where a prebuild
 * matches, nothing is lost when this script is skipped: the loader finds
 * the prebuild on its own. A source build needs it:
 * `npm install-scripts approve cachesage`, then `npm rebuild cachesage`.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The package root: this script lives in scripts/. */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const say = (message) => console.log(`cachesage: ${message}`);

/** The first executable called `name` on PATH, or null. */
export function findExecutable(name, path = process.env.PATH ?? '') {
  const suffixes = process.platform === 'win32' ? ['.exe', '.cmd', ''] : [''];
  for (const directory of path.split(delimiter)) {
    if (directory === '') continue;
    for (const suffix of suffixes) {
      const candidate = join(directory, name + suffix);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // Not here; keep looking.
      }
    }
  }
  return null;
}

/** The cmake-js command line script, resolved from this package, or null when cmake-js is not installed. */
export function cmakeJsScript() {
  try {
    const manifest = createRequire(join(root, 'package.json')).resolve('cmake-js/package.json');
    return join(dirname(manifest), 'bin', 'cmake-js');
  } catch {
    return null;
  }
}

function resolvable(name) {
  try {
    createRequire(join(root, 'package.json')).resolve(name);
    return true;
  } catch {
    return false;
  }
}

/** What a source build lacks here, as install instructions; empty when it can go ahead. */
export function missingBuildTools() {
  const missing = [];
  if (findExecutable('cmake') === null) {
    missing.push('CMake 3.20 or later (Debian/Ubuntu: `apt-get install cmake`; macOS: `brew install cmake`)');
  }
  const compilers = process.env.CXX ? [process.env.CXX] : ['c++', 'g++', 'clang++'];
  if (process.platform !== 'win32' && !compilers.some((name) => (name.includes('/') ? existsSync(name) : findExecutable(name) !== null))) {
    missing.push('a C++17 compiler (Debian/Ubuntu: `apt-get install g++`; macOS: `xcode-select --install`)');
  }
  const packages = ['cmake-js', 'node-addon-api'].filter((name) => !resolvable(name));
  if (packages.length > 0) {
    missing.push(`the build packages in your project: \`npm install --save-dev ${packages.join(' ')}\``);
  }
  return missing;
}

/** The nvcc CMake would find (PATH, CUDACXX, /usr/local/cuda), or null. */
function findNvcc() {
  if (process.env.CUDACXX && existsSync(process.env.CUDACXX)) return process.env.CUDACXX;
  return findExecutable('nvcc') ?? (existsSync('/usr/local/cuda/bin/nvcc') ? '/usr/local/cuda/bin/nvcc' : null);
}

/** Whether a consumer build should compile the CUDA kernels, and why. */
function cudaWanted() {
  const setting = process.env.CACHESAGE_CUDA;
  if (setting !== undefined && setting !== '') return { wanted: truthy(setting), why: `CACHESAGE_CUDA=${setting}` };
  const probe = findExecutable('nvidia-smi') && spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 15_000 });
  const gpu = probe && probe.status === 0 && /^GPU \d+:/m.test(probe.stdout);
  return gpu ? { wanted: true, why: 'nvidia-smi lists a GPU' } : { wanted: false, why: 'no GPU listed by nvidia-smi' };
}

/**
 * Runs `cmake-js compile` in the package root with `defines` as -D flags.
 * Returns the exit status; cmake's output goes to this process's stdout and stderr.
 */
export function runCmakeJs(outDirectory, defines, extraArguments = []) {
  const script = cmakeJsScript();
  if (script === null) throw new Error('cmake-js is not installed');
  const args = [script, 'compile', '--out', outDirectory, ...extraArguments];
  for (const [name, value] of Object.entries(defines)) args.push(`--CD${name}=${value}`);
  const run = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (run.error) throw run.error;
  return run.status ?? 1;
}

/** The addon the package would load (override left out), loaded: { location, addon } or { reason }. */
async function packagedAddon() {
  const loader = join(root, 'dist', 'src', 'blocks', 'addon.js');
  if (!existsSync(loader)) return { reason: 'dist/ is missing, so the loader cannot be asked' };
  const { loadAddon, locatePackagedAddon } = await import(pathToFileURL(loader).href);
  let location;
  try {
    location = locatePackagedAddon(root);
  } catch {
    const libc = process.platform === 'linux' ? (process.report.getReport().header.glibcVersionRuntime ? ', glibc' : ', musl') : '';
    return { reason: `no prebuilt addon for ${process.platform}-${process.arch}${libc}` };
  }
  try {
    return { location, addon: loadAddon(location) };
  } catch (error) {
    return { reason: error instanceof Error ? error.message.replace(/^cachesage: /, '') : String(error) };
  }
}

function cudaBuilt(addon) {
  try {
    return typeof addon.cudaInfo === 'function' && addon.cudaInfo().built === true;
  } catch {
    return false;
  }
}

function describeAddon(location) {
  const path = relative(root, location.path);
  return location.source === 'prebuild' ? `prebuilt addon ${path}` : `the addon built here, ${path}`;
}

function truthy(value) {
  return value !== undefined && /^(1|true|on|yes)$/i.test(value);
}

/** Builds from source for a consumer; returns the exit status this script should end with. */
async function buildForConsumer(reason, cuda, fallback) {
  const missing = missingBuildTools();
  if (cuda.wanted && findNvcc() === null) {
    if (fallback) missing.push('nvcc, the CUDA compiler (the CUDA toolkit)');
    else say(`CUDA wanted (${cuda.why}) but no nvcc found; building without the CUDA kernels`);
  }
  if (missing.length > 0) {
    if (fallback) {
      const needs = missing.join('; ');
      say(`using ${describeAddon(fallback.location)} without CUDA; ${cuda.why}, but building the CUDA kernels needs ${needs}; then \`npm rebuild cachesage\``);
      return 0;
    }
    console.error(`cachesage: cannot build the native addon from source (${reason}). Install ${missing.join('; ')}; then \`npm rebuild cachesage\`.`);
    return 1;
  }
  say(`building the addon from source with cmake-js (${reason}; CUDA ${cuda.wanted ? 'on' : 'off'}: ${cuda.why}) ...`);
  // The addon alone: the C ABI, its tests and the benchmarks are the project's, not a consumer's.
  const status = runCmakeJs('build', { CACHESAGE_CUDA: cuda.wanted ? 'ON' : 'OFF' }, ['--target', 'cachesage_native']);
  if (status !== 0) {
    if (fallback) {
      say(`the source build failed (above); using ${describeAddon(fallback.location)} without CUDA`);
      return 0;
    }
    console.error('cachesage: the source build of the native addon failed (cmake output above)');
    return status;
  }
  const built = await packagedAddon();
  if (!built.addon) {
    console.error(`cachesage: the addon was built but does not load: ${built.reason}`);
    return 1;
  }
  say(`built ${relative(root, built.location.path)} (CUDA kernels: ${cudaBuilt(built.addon) ? 'yes' : 'no'})`);
  return 0;
}

async function main() {
  if (existsSync(join(root, '.git'))) {
    const missing = missingBuildTools();
    if (missing.length > 0) {
      console.error(`cachesage: cannot build the native addon: install ${missing.join('; ')}`);
      return 1;
    }
    const setting = process.env.CACHESAGE_CUDA;
    const defines = setting === undefined || setting === '' ? {} : { CACHESAGE_CUDA: truthy(setting) ? 'ON' : 'OFF' };
    say('building the addon from source with cmake-js (git checkout) ...');
    return runCmakeJs('build', defines);
  }

  const cuda = cudaWanted();
  if (truthy(process.env.npm_config_build_from_source) || truthy(process.env.CACHESAGE_BUILD_FROM_SOURCE)) {
    return buildForConsumer('a build from source was asked for', cuda, null);
  }
  const found = await packagedAddon();
  if (!found.addon) return buildForConsumer(`no prebuilt addon loads here: ${found.reason}`, cuda, null);
  if (!cuda.wanted || cudaBuilt(found.addon)) {
    say(`using ${describeAddon(found.location)}`);
    return 0;
  }
  return buildForConsumer(`${describeAddon(found.location)} has no CUDA kernels`, cuda, found);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main();
}
