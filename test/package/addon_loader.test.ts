/**
 * Which addon file the loader picks: the CACHESAGE_ADDON override, then a
 * build under build/, then the prebuild for this platform; and what it says
 * when none is there or one does not load.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { loadAddon, locateAddon, locatePackagedAddon } from '../../src/blocks/addon.js';

const root = join(import.meta.dirname, '..', '..');
/** The addon this checkout built (the override tests load a copy of it). */
const builtAddon = join(root, 'build', 'Release', 'cachesage_native.node');
const prebuildDirectory = `prebuilds/${process.platform}-${process.arch}`;

let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'cachesage-loader-'));
});
afterEach(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function place(relativePath: string): string {
  const path = join(scratch, relativePath);
  mkdirSync(join(path, '..'), { recursive: true });
  copyFileSync(builtAddon, path);
  return path;
}

describe('locatePackagedAddon', () => {
  it('finds the prebuild for this platform', () => {
    const prebuild = place(`${prebuildDirectory}/cachesage_native.napi.node`);
    expect(locatePackagedAddon(scratch)).toEqual({ source: 'prebuild', path: prebuild });
  });

  it('prefers a build under build/Release to the prebuild', () => {
    place(`${prebuildDirectory}/cachesage_native.napi.node`);
    const build = place('build/Release/cachesage_native.node');
    expect(locatePackagedAddon(scratch)).toEqual({ source: 'build', path: build });
  });

  it('ignores a prebuild for another platform and says what it tried', () => {
    place('prebuilds/plan9-mips/cachesage_native.napi.node');
    const tried = [
      '^cachesage: no native addon found\\. Tried CACHESAGE_ADDON \\(not set\\), ',
      '.*build/Release and build/Debug \\(nothing built\\), ',
      `.*${prebuildDirectory} \\(No native build was found for platform=${process.platform} arch=${process.arch} `,
      '.*npm rebuild cachesage',
    ];
    expect(() => locatePackagedAddon(scratch)).toThrow(new RegExp(tried.join('')));
  });
});

describe('locateAddon', () => {
  it('takes CACHESAGE_ADDON before the packaged addon', () => {
    place('build/Release/cachesage_native.node');
    const override = place('elsewhere/asan.node');
    expect(locateAddon({ CACHESAGE_ADDON: override }, scratch)).toEqual({ source: 'override', path: override });
  });

  it('treats an empty CACHESAGE_ADDON as unset', () => {
    const build = place('build/Release/cachesage_native.node');
    expect(locateAddon({ CACHESAGE_ADDON: '' }, scratch)).toEqual({ source: 'build', path: build });
  });

  it('refuses a missing override, naming the variable and the path, without falling back', () => {
    place('build/Release/cachesage_native.node');
    const missing = join(scratch, 'missing.node');
    expect(() => locateAddon({ CACHESAGE_ADDON: missing }, scratch)).toThrow(`cachesage: CACHESAGE_ADDON=${missing}: no such file`);
  });

  it('refuses a relative override', () => {
    expect(() => locateAddon({ CACHESAGE_ADDON: 'build/x.node' }, scratch)).toThrow(
      'cachesage: CACHESAGE_ADDON=build/x.node must be an absolute path to a .node file',
    );
  });
});

describe('loadAddon', () => {
  it('loads the addon and checks it is cachesage', () => {
    const addon = loadAddon({ source: 'override', path: place('copy.node') });
    expect(typeof addon.NativeBlockManager).toBe('function');
  });

  it('names the override and the loader reason for a file that does not load', () => {
    const broken = join(scratch, 'broken.node');
    writeFileSync(broken, 'not a shared object');
    expect(() => loadAddon({ source: 'override', path: broken })).toThrow(
      new RegExp(`^cachesage: CACHESAGE_ADDON=${broken.replace(/[.]/g, '\\.')} did not load: .*(invalid ELF header|file too short|not a valid)`),
    );
  });
});

describe('nativeAddon in a fresh process', () => {
  const probe = "import('./src/blocks/addon.ts').then((m) => console.log(JSON.stringify(m.nativeAddonLocation())))";

  it('loads the CACHESAGE_ADDON file', () => {
    const override = place('override.node');
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', probe], {
      cwd: root,
      env: { ...process.env, CACHESAGE_ADDON: override },
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual({ source: 'override', path: override });
  });

  it('fails on a missing CACHESAGE_ADDON even though build/Release exists', () => {
    const missing = join(scratch, 'gone.node');
    const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', probe], {
      cwd: root,
      env: { ...process.env, CACHESAGE_ADDON: missing },
      encoding: 'utf8',
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(`cachesage: CACHESAGE_ADDON=${missing}: no such file`);
  });
});
