/**
 * Server-sent events as the store writes them (store/api/watch.ts): blocks
 * separated by a blank line (`\n\n`), `field: value` lines, comment lines
 * starting with `:`. Only what the store sends is understood: `event`,
 * `data` (joined with `\n` when repeated) and `id`; a block without data
 * (a comment, a keepalive) is no message.
 */

export interface SseMessage {
  readonly event: string;
  readonly data: string;
  readonly id?: string;
}

/** An incremental parser: text in, in any pieces; whole messages out. */
export class SseParser {
  private buffer = '';

  /** The messages completed by `text`; a partial block waits for the next push. */
  push(text: string): SseMessage[] {
    this.buffer += text;
    const out: SseMessage[] = [];
    let cut: number;
    while ((cut = this.buffer.indexOf('\n\n')) >= 0) {
      const msg = parseBlock(this.buffer.slice(0, cut));
      this.buffer = this.buffer.slice(cut + 2);
      if (msg) out.push(msg);
    }
    return out;
  }
}

function parseBlock(block: string): SseMessage | undefined {
  let event = 'message';
  let data = '';
  let id: string | undefined;
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data += (data === '' ? '' : '\n') + value;
    else if (field === 'id') id = value;
  }
  if (data === '') return undefined;
  return id === undefined ? { event, data } : { event, data, id };
}

/**
 * Splits an SSE byte (or text) stream into messages: a fetch body, or the
 * chunks of a simulated connection. Leaving the loop early returns the
 * source's iterator, which closes a fetch body.
 */
export async function* parseSse(body: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  const parser = new SseParser();
  // Node's web ReadableStream is async-iterable, though TypeScript's DOM-less lib does not say so.
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
    const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    yield* parser.push(text);
  }
}
