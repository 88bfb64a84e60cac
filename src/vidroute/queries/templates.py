"""Query template grammar: packaged YAML vocabularies and templates, parsed once and rendered with a seeded RNG.

Template syntax (also used inside vocabulary entries, so lists can build on each other):

- ``{name}``         a random entry of vocabulary list ``name`` (never the same entry twice in one query);
- ``{name:FORM}``    the same, with the entry's first word conjugated: ``s`` (jumps), ``ing`` (jumping),
                     ``prog`` (is jumping), ``base``; ``:@`` passes on the form the enclosing slot was asked for
                     and ``:@p`` does so with plural agreement (birds chirp / are chirping);
- ``{a|b|c}``        one alternative at random (empty alternatives allowed: ``{very |}``);
- ``^verb``          in an entry whose subject comes first ("bacon ^sizzle"), marks the word a form applies to
                     (``^^verb`` for a plural subject); without a mark the entry's first word is the verb.

Templates live in ``templates.yaml`` (``intent -> [ {id, text, weight, style, domain} ]``); vocabularies in
``vocab_*.yaml`` (``name -> [entries]``). Everything is validated at load: unknown lists, cycles, bad forms.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import yaml

from vidroute.errors import ConfigError

INTENTS = ("visual", "audio", "transcription", "metadata", "mixed")
STYLES = ("keep", "caption", "sentence", "lower", "spoken", "title")
FORMS = ("base", "s", "ing", "prog", "@", "@p")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_MAX_DEPTH = 12

# A parsed sequence is a tuple of parts: str (literal), Slot, or Alt.


@dataclass(frozen=True)
class Slot:
    name: str
    form: str | None = None


@dataclass(frozen=True)
class Alt:
    options: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Template:
    """One query pattern; ``id`` is what a generated record's ``source`` names."""

    id: str
    intent: str
    text: str
    seq: tuple[Any, ...]
    weight: float = 1.0
    style: str = "keep"
    domain: str = "general"


def parse(text: str) -> tuple[Any, ...]:
    """Parse a template string into a sequence of literals, slots and alternatives."""
    seq, i = _parse_seq(text, 0, top=True)
    if i != len(text):  # pragma: no cover - _parse_seq consumes everything at top level or raises
        raise ConfigError(f"template {text!r}: unexpected {text[i]!r} at {i}")
    return seq


def _parse_seq(text: str, i: int, *, top: bool) -> tuple[tuple[Any, ...], int]:
    parts: list[Any] = []
    buf: list[str] = []
    while i < len(text):
        c = text[i]
        if c == "{":
            if buf:
                parts.append("".join(buf))
                buf = []
            node, i = _parse_brace(text, i + 1)
            parts.append(node)
            continue
        if c == "}" or (c == "|" and not top):  # outside braces "|" is literal ("Title | Channel")
            if top:
                raise ConfigError(f"template {text!r}: unbalanced {c!r} at position {i}")
            break
        buf.append(c)
        i += 1
    if buf:
        parts.append("".join(buf))
    return tuple(parts), i


def _parse_brace(text: str, i: int) -> tuple[Any, int]:
    start = i
    options: list[tuple[Any, ...]] = []
    while True:
        seq, i = _parse_seq(text, i, top=False)
        options.append(seq)
        if i >= len(text):
            raise ConfigError(f"template {text!r}: '{{' at position {start - 1} is never closed")
        if text[i] == "|":
            i += 1
            continue
        i += 1  # the closing brace
        break
    if len(options) == 1:
        body = options[0]
        if len(body) != 1 or not isinstance(body[0], str):
            raise ConfigError(f"template {text!r}: '{{...}}' at {start - 1} is neither a list name nor a choice a|b")
        name, _, form = body[0].partition(":")
        if not _NAME.match(name) or (form and form not in FORMS):
            raise ConfigError(
                f"template {text!r}: bad slot {{{body[0]}}}: use {{list_name}} or {{list_name:FORM}} "
                f"with FORM one of {FORMS}"
            )
        return Slot(name, form or None), i
    return Alt(tuple(options)), i


# --- verb conjugation (first word of a phrase) --------------------------------------------------------

_IRREGULAR_S = {"be": "is", "have": "has", "do": "does", "go": "goes"}
_IRREGULAR_ING = {"be": "being", "lie": "lying", "die": "dying", "tie": "tying", "ski": "skiing", "see": "seeing"}
# Verbs whose final consonant doubles before -ing (one stressed syllable ending consonant-vowel-consonant).
_DOUBLING_WORDS = """
bat bet begin chat chop clap cut dig dip drag drip drop drum fan fit flip get grab grin grip hit hop hug hum
jam jog knit mop nod pat pet plan plug put rub run scan scrub set ship shop shut sip sit skip slam slip snap
sob spin step stir stop strum swim tap tip trim tug wrap whip win zip rip pop shrug whir unwrap yip trot jot
strap skim trap wag spot blur admit forget regret upset refer prefer control patrol
"""
_DOUBLING = frozenset(_DOUBLING_WORDS.split())


def third_person(word: str) -> str:
    if word in _IRREGULAR_S:
        return _IRREGULAR_S[word]
    if word.endswith(("s", "sh", "ch", "x", "z", "o")):
        return word + "es"
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def gerund(word: str) -> str:
    if word in _IRREGULAR_ING:
        return _IRREGULAR_ING[word]
    if word in _DOUBLING:
        return word + word[-1] + "ing"
    if word.endswith("ie"):
        return word[:-2] + "ying"
    if word.endswith(("ee", "ye", "oe")):
        return word + "ing"
    if word.endswith("e") and len(word) > 2:
        return word[:-1] + "ing"
    if word.endswith("c"):
        return word + "king"
    return word + "ing"


def conjugate(phrase: str, form: str | None, *, plural: bool = False) -> str:
    """Conjugate a verb phrase written in base form (``jump off a board``) by its first word."""
    if not form or form == "base" or not phrase:
        return phrase
    word, sep, rest = phrase.partition(" ")
    if form == "s":
        head = word if plural else third_person(word)
    elif form == "ing":
        head = gerund(word)
    elif form == "prog":
        head = ("are " if plural else "is ") + gerund(word)
    else:  # pragma: no cover - forms are validated at parse time
        raise ConfigError(f"unknown verb form {form!r}")
    return head + sep + rest


# --- grammar ------------------------------------------------------------------------------------------


class Grammar:
    """Vocabularies plus templates, validated; ``render`` turns one template into one query string."""

    def __init__(self, vocab: dict[str, list[str]], templates: dict[str, list[dict[str, Any]]]) -> None:
        self.vocab_text = vocab
        self.vocab: dict[str, list[tuple[Any, ...]]] = {}
        for name, entries in vocab.items():
            if not _NAME.match(name):
                raise ConfigError(f"vocabulary list name {name!r} must match {_NAME.pattern}")
            if not isinstance(entries, list) or not entries:
                raise ConfigError(f"vocabulary list {name!r} must be a non-empty list")
            self.vocab[name] = [parse(str(e)) for e in entries]
        self.templates: dict[str, list[Template]] = {}
        seen_ids: set[str] = set()
        for intent, rows in templates.items():
            if intent not in INTENTS:
                raise ConfigError(f"templates.yaml: unknown intent {intent!r}; expected one of {INTENTS}")
            out = []
            for row in rows:
                tid, style = row["id"], row.get("style", "keep")
                if tid in seen_ids:
                    raise ConfigError(f"templates.yaml: duplicate template id {tid!r}")
                if style not in STYLES:
                    raise ConfigError(f"template {tid!r}: style {style!r} is not one of {STYLES}")
                seen_ids.add(tid)
                out.append(
                    Template(
                        id=tid,
                        intent=intent,
                        text=row["text"],
                        seq=parse(row["text"]),
                        weight=float(row.get("weight", 1.0)),
                        style=style,
                        domain=row.get("domain", "general"),
                    )
                )
            self.templates[intent] = out
        self._validate()

    def _validate(self) -> None:
        def slots(seq: tuple[Any, ...]):
            for p in seq:
                if isinstance(p, Slot):
                    yield p.name
                elif isinstance(p, Alt):
                    for o in p.options:
                        yield from slots(o)

        deps = {name: {s for e in entries for s in slots(e)} for name, entries in self.vocab.items()}
        for name, ds in deps.items():
            for d in ds:
                if d not in self.vocab:
                    raise ConfigError(f"vocabulary list {name!r} refers to unknown list {{{d}}}")
        for ts in self.templates.values():
            for t in ts:
                for d in slots(t.seq):
                    if d not in self.vocab:
                        raise ConfigError(f"template {t.id!r} refers to unknown vocabulary list {{{d}}}")
        # Cycles would recurse forever: depth-first search with colours.
        state: dict[str, int] = {}

        def visit(n: str, path: list[str]) -> None:
            if state.get(n) == 2:
                return
            if state.get(n) == 1:
                raise ConfigError(f"vocabulary lists refer to each other in a cycle: {' -> '.join([*path, n])}")
            state[n] = 1
            for d in deps[n]:
                visit(d, [*path, n])
            state[n] = 2

        for n in deps:
            visit(n, [])

    @property
    def n_templates(self) -> int:
        return sum(len(v) for v in self.templates.values())

    @property
    def n_entries(self) -> int:
        return sum(len(v) for v in self.vocab.values())

    def render(self, template: Template, rng: random.Random) -> str:
        used: dict[str, set[int]] = {}
        text = self._render_seq(template.seq, rng, used, None, False, 0)
        return finish(text, template.style, rng)

    def render_text(self, text: str, rng: random.Random, style: str = "keep") -> str:
        """Render an ad-hoc template string against the packaged vocabularies (for tests and exploration)."""
        seq = parse(text)
        return finish(self._render_seq(seq, rng, {}, None, False, 0), style, rng)

    def _render_seq(
        self,
        seq: tuple[Any, ...],
        rng: random.Random,
        used: dict[str, set[int]],
        form: str | None,
        plural: bool,
        depth: int,
    ) -> str:
        out: list[str] = []
        for p in seq:
            if isinstance(p, str):
                out.append(p)
            elif isinstance(p, Alt):
                opt = p.options[rng.randrange(len(p.options))]
                out.append(self._render_seq(opt, rng, used, form, plural, depth))
            else:
                out.append(self._render_slot(p, rng, used, form, plural, depth))
        return "".join(out)

    def _render_slot(
        self, slot: Slot, rng: random.Random, used: dict[str, set[int]], form: str | None, plural: bool, depth: int
    ) -> str:
        if depth > _MAX_DEPTH:  # pragma: no cover - cycles are rejected at load
            raise ConfigError(f"vocabulary nesting deeper than {_MAX_DEPTH} at {{{slot.name}}}")
        entries = self.vocab[slot.name]
        taken = used.setdefault(slot.name, set())
        k = rng.randrange(len(entries))
        for _ in range(6):  # the same list twice in one query should give two different entries
            if k not in taken:
                break
            k = rng.randrange(len(entries))
        taken.add(k)
        if slot.form in ("@", "@p"):
            own_form, own_plural = form, slot.form == "@p"
        else:
            own_form, own_plural = slot.form, False
        # Nested slots see the form this slot was asked for; this slot conjugates only what it renders itself.
        inner = self._render_seq(entries[k], rng, used, own_form, own_plural, depth + 1)
        if own_form and not _has_formed_slot(entries[k]):
            inner = _conjugate_marked(inner, own_form, own_plural)
        return inner


_MARK = re.compile(r"\^(\^?)([A-Za-z-]+)")


def _conjugate_marked(text: str, form: str, plural: bool) -> str:
    # "bacon ^sizzle in a pan": the marked word is the verb ("^^" = plural subject); unmarked phrases start with it.
    # Every marked verb is conjugated, so "^bark and then ^whine" becomes "barks and then whines".
    if "^" not in text:
        return conjugate(text, form, plural=plural)
    first = True

    def one(m: re.Match[str]) -> str:
        nonlocal first
        # "is barking and then whining": the auxiliary goes on the first verb only.
        f = form if first or form != "prog" else "ing"
        first = False
        return conjugate(m.group(2), f, plural=plural or bool(m.group(1)))

    return _MARK.sub(one, text)


@cache
def _has_formed_slot(seq: tuple[Any, ...]) -> bool:
    # An entry such as "{dog_np} {dog_verb:@}" conjugates inside; conjugating its first word again would be wrong.
    for p in seq:
        if isinstance(p, Slot) and p.form:
            return True
        if isinstance(p, Alt) and any(_has_formed_slot(o) for o in p.options):
            return True
    return False


# --- surface clean-up and casing styles ---------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:)])")
_A_AN = re.compile(r"\b([Aa])n? (?=([A-Za-z]+))")
_VOWEL_SOUND_EXCEPTIONS = ("uni", "use", "usu", "uti", "one", "once", "eu", "ur", "uk", "us ")
_SILENT_H = ("hour", "honest", "honou", "heir")


def _article(match: re.Match[str]) -> str:
    a, word = match.group(1), match.group(2).lower()
    vowel = word[0] in "aeiou" and not word.startswith(_VOWEL_SOUND_EXCEPTIONS)
    vowel = vowel or word.startswith(_SILENT_H) or (len(word) == 1 and word in "aefhilmnorsx")
    return (a + "n " if vowel else a + " ") if a in "Aa" else match.group(0)


def finish(text: str, style: str, rng: random.Random) -> str:
    """Fix spacing and a/an, then apply a casing/punctuation style (real queries are typed many ways)."""
    text = _SPACES.sub(" ", text.replace("^", "")).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _A_AN.sub(_article, text)
    if not text:
        return text
    if style == "caption":
        r = rng.random()
        if r < 0.45:
            return text[0].lower() + text[1:]
        text = text[0].upper() + text[1:]
        return text + "." if r < 0.8 and text[-1] not in ".!?" else text
    if style == "sentence":
        text = text[0].upper() + text[1:]
        return text + "." if rng.random() < 0.5 and text[-1] not in '.!?"' else text
    if style == "lower":
        return text.lower()
    if style == "spoken":
        # Subtitles keep punctuation; people typing a line they remember often do not.
        if rng.random() < 0.25:
            return _SPACES.sub(" ", re.sub(r"[^\w\s']", " ", text.lower())).strip()
        return text[0].upper() + text[1:]
    if style == "title" and rng.random() < 0.15:
        return text.lower()
    return text


# --- loading ------------------------------------------------------------------------------------------


def _package_files() -> list[tuple[str, str]]:
    root = resources.files("vidroute.queries")
    return sorted((p.name, p.read_text("utf-8")) for p in root.iterdir() if p.name.endswith(".yaml"))


def load_grammar_from(files: list[tuple[str, str]]) -> Grammar:
    vocab: dict[str, list[str]] = {}
    templates: dict[str, list[dict[str, Any]]] | None = None
    for name, text in files:
        try:
            data = yaml.load(text, Loader=_LOADER) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{name}: not valid YAML ({exc})") from exc
        if name == "templates.yaml":
            templates = data
            continue
        for key, entries in data.items():
            if key in vocab:
                raise ConfigError(f"{name}: vocabulary list {key!r} is defined twice")
            vocab[key] = entries
    if templates is None:
        raise ConfigError("templates.yaml is missing from the query package")
    return Grammar(vocab, templates)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster on these files


@lru_cache(maxsize=1)
def load_grammar() -> Grammar:
    """The packaged grammar (cached: parsing takes a few milliseconds, not worth repeating)."""
    return load_grammar_from(_package_files())


def grammar_sha256() -> str:
    """Hash of every packaged YAML file, so a manifest says exactly which templates made a dataset."""
    h = hashlib.sha256()
    for name, text in _package_files():
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()


def code_sha256() -> str:
    """Hash of the generator's own Python modules: a code change that alters output invalidates old files too."""
    h = hashlib.sha256()
    root = resources.files("vidroute.queries")
    for p in sorted(root.iterdir(), key=lambda p: p.name):
        if p.name.endswith(".py"):
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()
