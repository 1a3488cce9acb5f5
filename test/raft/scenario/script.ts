/**
 * The scenario file format, after etcd-io/raft's datadriven `testdata/*.txt`:
 *
 *   # comments say why the output below is right
 *   command arg key=value
 *   ----
 *   expected output, one or more lines, never blank
 *   <blank line or end of file>
 *
 * Blank lines and `#` lines between blocks are kept verbatim on rewrite. A
 * command written without a `----` block (while authoring a script) expects
 * empty output, so it fails until REWRITE=1 fills it in.
 */

export const SEPARATOR = '----';

export interface TextChunk {
  readonly kind: 'text';
  readonly lines: readonly string[];
}

export interface CommandChunk {
  readonly kind: 'command';
  /** 1-based line number of the command in the file, for failure messages. */
  readonly line: number;
  readonly text: string;
  readonly expected: string;
}

export type Chunk = TextChunk | CommandChunk;

function isText(line: string): boolean {
  return line.trim() === '' || line.trimStart().startsWith('#');
}

export function parseScript(source: string): Chunk[] {
  const lines = source.replace(/\r\n/g, '\n').split('\n');
  // A trailing newline is not an extra blank line.
  if (lines[lines.length - 1] === '') lines.pop();
  const chunks: Chunk[] = [];
  let text: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] as string;
    if (isText(line)) {
      text.push(line);
      i++;
      continue;
    }
    if (text.length > 0) chunks.push({ kind: 'text', lines: text });
    text = [];
    const commandLine = i + 1;
    i++;
    const expected: string[] = [];
    if (lines[i] === SEPARATOR) {
      i++;
      while (i < lines.length && (lines[i] as string).trim() !== '') expected.push(lines[i++] as string);
    }
    // The blank line ending the block belongs to it.
    if (i < lines.length && (lines[i] as string).trim() === '') i++;
    chunks.push({ kind: 'command', line: commandLine, text: line.trim(), expected: expected.join('\n') });
  }
  if (text.length > 0) chunks.push({ kind: 'text', lines: text });
  return chunks;
}

/** The file again, with each command's expected block replaced by `outputs[k]` (k counting commands). */
export function renderScript(chunks: readonly Chunk[], outputs: readonly string[]): string {
  const out: string[] = [];
  let k = 0;
  for (const c of chunks) {
    if (c.kind === 'text') {
      out.push(...c.lines);
      continue;
    }
    const output = outputs[k++] ?? c.expected;
    out.push(c.text, SEPARATOR, ...(output === '' ? [] : output.split('\n')), '');
  }
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out.join('\n') + '\n';
}

export interface Command {
  readonly name: string;
  /** Positional arguments, in order (`|` included, for `partition`). */
  readonly args: readonly string[];
  readonly opts: ReadonlyMap<string, string>;
}

export function parseCommand(text: string): Command {
  const [name = '', ...rest] = text.split(/\s+/).filter((t) => t !== '');
  const args: string[] = [];
  const opts = new Map<string, string>();
  for (const tok of rest) {
    const eq = tok.indexOf('=');
    if (eq > 0) opts.set(tok.slice(0, eq), tok.slice(eq + 1));
    else args.push(tok);
  }
  return { name, args, opts };
}
