/**
 * `{{name}}`: a Hyphae agent written in JavaScript.
 *
 * Input `{"message": "..."}`; output `{message, length, attempt}`. An empty message is a fatal
 * `invalid_input` error (the host does not retry it).
 */
import { invalidInput, log } from '@hyphae/plugin';

export const info = { description: '{{name}}: says how long a message is' };

/** @param {import('@hyphae/plugin').TaskContext} ctx */
export function execute(ctx) {
  const message = ctx.input?.message;
  if (typeof message !== 'string') throw invalidInput('input.message: a string is required');
  if (!message.trim()) throw invalidInput('input.message is empty: give the text to measure');
  const length = [...message].length;
  log.info(`{{name}}: ${length} characters, attempt ${ctx.attempt}`);
  return { message, length, attempt: ctx.attempt };
}
