"""`py-text`: word, sentence and keyword statistics of a text (the Python twin of `text-stats`).

Input `{"text": "...", "keywords": ["..."], "top": 5}` (all optional). Without `text`, the `text`
fields of the previous results' outputs are analysed, joined by blank lines. The output carries
`text` forward so that a pipeline can chain.
"""

import re
from collections import Counter

from hyphae_plugin import TaskContext, invalid_input, log

STOP_WORDS = set(
    "the and for are but not you all any can had her was one our out has him his how its may who did yet "
    "this that with from they them then than there their what when which will would could should have "
    "been were into also such these those some more most very just only over each about".split()
)


def words(text: str) -> list[str]:
    """Lower-cased words: runs of letters, digits and inner apostrophes."""
    return [w.strip("'’").lower() for w in re.split(r"[^\w'’]+|_", text) if w.strip("'’")]


def sentence_count(text: str) -> int:
    """Sentences end at `.`, `!` or `?` (a run counts once); trailing words make one more."""
    count, open_ = 0, False
    for c in text:
        if c in ".!?":
            count += open_
            open_ = False
        elif c.isalnum():
            open_ = True
    return count + open_


def top_keywords(ws: list[str], top: int) -> list[dict]:
    counts = Counter(w for w in ws if len(w) > 2 and w not in STOP_WORDS and not w.isdigit())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"word": w, "count": n} for w, n in ranked]


def count_phrase(ws: list[str], phrase: str) -> int:
    target = words(phrase)
    if not target:
        return 0
    return sum(ws[i:i + len(target)] == target for i in range(len(ws) - len(target) + 1))


def execute(ctx: TaskContext) -> dict:
    data = ctx.input if isinstance(ctx.input, dict) else {}
    text, source = data.get("text"), "input"
    if text is None:
        texts = [o["text"] for o in ctx.previous_outputs() if isinstance(o, dict) and isinstance(o.get("text"), str)]
        if not texts:
            raise invalid_input("no text: give input.text, or depend on a task whose output has `text`")
        text, source = "\n\n".join(texts), "previous_results"
    if not isinstance(text, str):
        raise invalid_input("input.text: a string is required")
    ws = words(text)
    keywords = data.get("keywords") or []
    log.info(f"py-text: {len(ws)} words from {source}")
    return {
        "text": text,
        "source": source,
        "word_count": len(ws),
        "sentence_count": sentence_count(text),
        "character_count": len(text),
        "top_keywords": top_keywords(ws, int(data.get("top", 5))),
        "keyword_counts": {k: count_phrase(ws, k) for k in sorted(keywords)},
    }
