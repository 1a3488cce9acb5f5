// Goal: run every scripted Raft scenario in test/raft/scenarios/*.txt (the
// etcd-io/raft datadriven style) and check each command's output against the
// expected block beneath it. The scripts are the documentation of how the
// core behaves in split votes, partitions, Figure 8, log repair, PreVote,
// snapshots, membership changes, transfer and ReadIndex.
//
// REWRITE=1 npx vitest run test/raft/scenario.test.ts regenerates the
// expected blocks in place; commit the result only once the change is understood.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Interpreter } from './scenario/interpreter.js';
import { parseScript, renderScript } from './scenario/script.js';

const here = dirname(fileURLToPath(import.meta.url));
const dir = join(here, 'scenarios');
const rewrite = process.env.REWRITE === '1';
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.txt'))
  .sort();

describe('raft scenarios', () => {
  it('has scripts', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    it(file, () => {
      const path = join(dir, file);
      const chunks = parseScript(readFileSync(path, 'utf8'));
      const interp = new Interpreter();
      const outputs: string[] = [];
      const failures: { line: number; text: string; expected: string; actual: string }[] = [];
      for (const c of chunks) {
        if (c.kind !== 'command') continue;
        let actual: string;
        try {
          actual = interp.run(c.text);
        } catch (e) {
          throw new Error(`${relative(process.cwd(), path)}:${c.line}: ${c.text}: ${(e as Error).message}`, { cause: e });
        }
        outputs.push(actual);
        if (actual !== c.expected) failures.push({ line: c.line, text: c.text, expected: c.expected, actual });
      }
      if (rewrite) {
        writeFileSync(path, renderScript(chunks, outputs));
        return;
      }
      const first = failures[0];
      if (first !== undefined) {
        const more = failures.length > 1 ? ` (and ${failures.length - 1} later blocks differ)` : '';
        const where = `${relative(process.cwd(), path)}:${first.line}: ${first.text}${more}; REWRITE=1 regenerates`;
        expect(first.actual, where).toBe(first.expected);
      }
    });
  }
});
