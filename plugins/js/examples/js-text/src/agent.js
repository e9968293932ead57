/**
 * `js-text`: word, sentence and keyword statistics of a text (the JavaScript twin of `text-stats`
 * and `py-text`).
 *
 * Input `{"text": "...", "keywords": ["..."], "top": 5}` (all optional). Without `text`, the `text`
 * fields of the previous results' outputs are analysed, joined by blank lines. The output carries
 * `text` forward so that a pipeline can chain.
 */
import { invalidInput, log } from '@hyphae/plugin';

const STOP_WORDS = new Set(
  ('the and for are but not you all any can had her was one our out has him his how its may who did yet ' +
    'this that with from they them then than there their what when which will would could should have ' +
    'been were into also such these those some more most very just only over each about').split(' '),
);

/** A letter or a digit (the component's JavaScript engine has no Unicode property escapes). */
const isWordChar = (c) => /[0-9]/.test(c) || c.toLowerCase() !== c.toUpperCase();

/** Lower-cased words: runs of letters, digits and inner apostrophes. */
export function words(text) {
  const out = [];
  let word = '';
  for (const c of `${text} `) {
    if (isWordChar(c) || ((c === "'" || c === '’') && word)) {
      word += c;
    } else if (word) {
      out.push(word.replace(/['’]+$/, '').toLowerCase());
      word = '';
    }
  }
  return out.filter(Boolean);
}

/** Sentences end at `.`, `!` or `?` (a run counts once); trailing words make one more. */
export function sentenceCount(text) {
  let count = 0;
  let open = false;
  for (const c of text) {
    if ('.!?'.includes(c)) {
      count += open ? 1 : 0;
      open = false;
    } else if (isWordChar(c)) {
      open = true;
    }
  }
  return count + (open ? 1 : 0);
}

function topKeywords(ws, top) {
  const counts = new Map();
  for (const w of ws) {
    if (w.length > 2 && !STOP_WORDS.has(w) && !/^\d+$/.test(w)) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  return [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, top)
    .map(([word, count]) => ({ word, count }));
}

function countPhrase(ws, phrase) {
  const target = words(phrase);
  if (target.length === 0) return 0;
  let n = 0;
  for (let i = 0; i + target.length <= ws.length; i++) {
    if (target.every((t, j) => ws[i + j] === t)) n++;
  }
  return n;
}

/** @param {import('@hyphae/plugin').TaskContext} ctx */
export function execute(ctx) {
  const data = ctx.input && typeof ctx.input === 'object' ? ctx.input : {};
  let text = data.text;
  let source = 'input';
  if (text === undefined || text === null) {
    const texts = ctx.previousOutputs().filter((o) => o && typeof o.text === 'string').map((o) => o.text);
    if (texts.length === 0) throw invalidInput('no text: give input.text, or depend on a task whose output has `text`');
    text = texts.join('\n\n');
    source = 'previous_results';
  }
  if (typeof text !== 'string') throw invalidInput('input.text: a string is required');
  const ws = words(text);
  log.info(`js-text: ${ws.length} words from ${source}`);
  const keywords = Array.isArray(data.keywords) ? [...data.keywords].map(String).sort() : [];
  return {
    text,
    source,
    word_count: ws.length,
    sentence_count: sentenceCount(text),
    character_count: [...text].length,
    top_keywords: topKeywords(ws, Number.isInteger(data.top) ? data.top : 5),
    keyword_counts: Object.fromEntries(keywords.map((k) => [k, countPhrase(ws, k)])),
  };
}
