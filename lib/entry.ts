/**
 * The package's own programs, wherever it runs from: the TypeScript sources
 * under tsx (development, tests) or the compiled JavaScript in dist/ on plain
 * node (an installed package, where tsx is absent). A supervisor or launcher
 * that starts a program names it once, relative to the package root, and
 * gets the right file and node arguments for both.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(import.meta.url);

/** The folder holding store/, coordinator/, demo/...: the repository, or dist/ when compiled. */
export const PACKAGE_ROOT = resolve(dirname(HERE), '..');

/** Whether this code runs from the .ts sources (so a child needs tsx). */
export const FROM_SOURCES = HERE.endsWith('.ts');

/** A program's entry file, e.g. programPath('store/node/main') → .../store/node/main.ts or dist/store/node/main.js. */
export function programPath(relativeWithoutExtension: string): string {
  return join(PACKAGE_ROOT, `${relativeWithoutExtension}${FROM_SOURCES ? '.ts' : '.js'}`);
}

/**
 * A program's entry file in the compiled package, what an installed package
 * runs (dist/ of the repository, or the package itself when it is installed):
 * for measuring the code that ships rather than the sources under tsx.
 */
export function builtProgramPath(relativeWithoutExtension: string): string {
  return join(PACKAGE_ROOT, FROM_SOURCES ? 'dist' : '', `${relativeWithoutExtension}.js`);
}

/** Node's arguments that run an entry file: through tsx for a .ts file, as is for a .js one. */
export function nodeArgsFor(entryFile: string): string[] {
  return entryFile.endsWith('.ts') ? ['--import', 'tsx', entryFile] : [entryFile];
}
