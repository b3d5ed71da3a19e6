"""README.md and docs/*.md as a reader meets them: every relative link reaches a file, every ``#anchor`` a heading
of its target file (GitHub's slugs), and the commands of the README's quick start, of its other code blocks and of
its table of commands and make targets exist: each ``make X`` is a target of the Makefile, each ``mrpc-finetune SUB``
a subcommand of ``mrpc_finetune.cli.build_parser()`` and each ``--flag`` an option of that subcommand. Fast: no
training, no network. A failure lists every broken link or command, with its file and line."""

from __future__ import annotations

import argparse
import os
import re
import shlex
from pathlib import Path
from urllib.parse import unquote

import pytest

from .conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
# [text](target) or [text](target "title"); the text may hold one level of brackets and wrap over lines.
LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//")
MAKE_TARGET = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*:(?!=)", re.M)
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*=")
OPTION = re.compile(r"^--?[A-Za-z][A-Za-z0-9-]*")


def without_fences(text: str) -> str:
    """``text`` with every fenced code block's lines blanked (line numbers kept): no links or headings in code."""
    out, fence = [], None
    for line in text.split("\n"):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0]
            out.append("")
        elif fence is not None:
            if match and match.group(1)[0] == fence:
                fence = None
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def code_blocks(text: str) -> list[tuple[int, list[str]]]:
    """Each fenced code block as (line number of its first line, its lines)."""
    blocks, fence, start, lines = [], None, 0, []
    for number, line in enumerate(text.split("\n"), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence, start, lines = match.group(1)[0], number + 1, []
        elif fence is not None and match and match.group(1)[0] == fence:
            blocks.append((start, lines))
            fence = None
        elif fence is not None:
            lines.append(line)
    return blocks


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text lowercased, punctuation dropped (letters, digits,
    underscores, hyphens and spaces stay), each space a hyphen."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's slug; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in without_fences(text).split("\n"):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        name = base if base not in seen else f"{base}-{seen[base]}"
        seen[base] = seen.get(base, 0) + 1
        found.add(name)
    return found


def links(text: str) -> list[tuple[int, str, str]]:
    """(line, text, target) of every inline link outside code blocks and code spans."""
    prose = without_fences(text)
    prose = CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), prose)  # keep offsets and line numbers
    return [
        (prose.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split()), m.group(2)) for m in LINK.finditer(prose)
    ]


def link_problems(pages: list[Path], root: Path) -> list[str]:
    problems = []
    for page in pages:
        for line, label, target in links(page.read_text()):
            where = f"{page.relative_to(root)}:{line}: [{label}]({target})"
            if SCHEME.match(target):
                continue
            path_part, _, anchor = target.partition("#")
            if not path_part:
                dest = page
            else:
                path = unquote(path_part)
                dest = (root / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
                if not dest.exists():
                    problems.append(f"{where}: no such file {os.path.relpath(dest.resolve(), root.resolve())}")
                    continue
            if anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
                problems.append(f"{where}: no heading #{anchor} in {os.path.relpath(dest.resolve(), root.resolve())}")
    return problems


def make_targets(makefile: Path) -> set[str]:
    return set(MAKE_TARGET.findall(makefile.read_text()))


def cli_options() -> dict[str, set[str]]:
    """Each subcommand of ``mrpc-finetune`` and its option strings."""
    from mrpc_finetune.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        name: {opt for action in sub._actions for opt in action.option_strings}
        for name, sub in subparsers.choices.items()
    }


def words_of(command: str) -> list[str]:
    """A shell line's words, its comment dropped; optional parts in [brackets] count as written."""
    command = command.replace("[", " ").replace("]", " ")
    try:
        return shlex.split(command, comments=True)
    except ValueError:  # an unbalanced quote in a placeholder: words are enough here
        return command.split("#")[0].split()


def command_problems(command: str, where: str, targets: set[str], options: dict[str, set[str]]) -> list[str]:
    """What does not exist in one command line: a make target, a subcommand, an option of that subcommand."""
    words = words_of(command)
    while words and ASSIGNMENT.match(words[0]):  # VAR=value before the command
        words = words[1:]
    if not words:
        return []
    if words[0] == "make":
        wanted = [w for w in words[1:] if not ASSIGNMENT.match(w) and not w.startswith("-")]
        return [f"{where}: `{command.strip()}`: no target {t!r} in the Makefile" for t in wanted if t not in targets]
    if words[0].endswith("mrpc-finetune"):
        rest = words[1:]
    elif len(words) > 2 and words[0].endswith(("python", "python3")) and words[1:3] == ["-m", "mrpc_finetune"]:
        rest = words[3:]
    else:
        return []
    if not rest or rest[0] not in options:
        sub = rest[0] if rest else "(none)"
        return [f"{where}: `{command.strip()}`: no subcommand {sub!r} (there are {', '.join(sorted(options))})"]
    known = options[rest[0]]
    flags = [OPTION.match(w).group(0) for w in rest[1:] if OPTION.match(w)]
    return [f"{where}: `{command.strip()}`: {rest[0]} has no option {f}" for f in flags if f not in known]


def shell_lines(lines: list[str]) -> list[tuple[int, str]]:
    """(offset, line) of a code block's lines, a line ending in a backslash joined with the next."""
    out, pending, first = [], "", 0
    for offset, line in enumerate(lines):
        if not pending:
            first = offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((first, pending + line))
        pending = ""
    if pending:
        out.append((first, pending))
    return out


def section(text: str, title: str) -> tuple[int, str]:
    """(first line number, text) of the ``## title`` section, up to the next heading of level 1 or 2."""
    lines = without_fences(text).split("\n")
    raw = text.split("\n")
    start = next((i for i, line in enumerate(lines) if re.match(rf"^##\s+{re.escape(title)}\s*$", line)), None)
    assert start is not None, f"README.md has no section '## {title}'"
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^#{1,2}\s", lines[i])), len(lines))
    return start + 1, "\n".join(raw[start:end])


def table_rows(text: str) -> list[tuple[int, list[str]]]:
    """(line offset, cells) of the first Markdown table in ``text``, header and separator left out; a ``|`` inside
    a code span does not split cells."""
    rows = []
    for offset, line in enumerate(text.split("\n")):
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells, cell, in_code = [], "", False
        for char in line.strip().strip("|"):
            if char == "`":
                in_code = not in_code
            if char == "|" and not in_code:
                cells.append(cell.strip())
                cell = ""
            else:
                cell += char
        cells.append(cell.strip())
        rows.append((offset, cells))
    return rows[2:]


def readme_command_problems(readme: Path, makefile: Path, options: dict[str, set[str]]) -> list[str]:
    text = readme.read_text()
    targets = make_targets(makefile)
    problems: list[str] = []
    quick_start, _ = section(text, "Quick start")
    blocks = code_blocks(text)
    assert any(start > quick_start for start, _ in blocks), "README.md: no code block in its quick start"
    for start, lines in blocks:  # the quick start's block and every other one of the README
        for offset, line in shell_lines(lines):
            problems += command_problems(line, f"{readme.name}:{start + offset}", targets, options)
    first, table = section(text, "Commands and make targets")
    rows = table_rows(table)
    assert rows, "README.md: no table under '## Commands and make targets'"
    for offset, cells in rows:
        where = f"{readme.name}:{first + offset} (table)"
        spans = [m.group(2) for m in CODE_SPAN.finditer(cells[0])]
        assert spans, f"{where}: the first cell names no command in `code`: {cells[0]!r}"
        sub = None
        for span in spans:
            words = words_of(span)
            if words and words[0].endswith("mrpc-finetune") and len(words) > 1:
                sub = words[1]
            if words and words[0].startswith("--") and sub:  # a bare option: one of the row's subcommand
                span = f"mrpc-finetune {sub} {span}"
            elif words and words[0] not in ("make",) and not words[0].endswith("mrpc-finetune"):
                problems.append(f"{where}: `{span}` is neither a make target nor an mrpc-finetune command")
                continue
            problems += command_problems(span, where, targets, options)
    return problems


def test_github_slugs():
    assert slug("Quick start") == "quick-start"
    assert slug("What to expect: the `mrpc_minilm` recipe over five seeds") == (
        "what-to-expect-the-mrpc_minilm-recipe-over-five-seeds"
    )
    assert slug("Experiment trackers, provenance, model cards and the Hub") == (
        "experiment-trackers-provenance-model-cards-and-the-hub"
    )
    assert slug("W&B, [the Hub](https://huggingface.co) and mean ± std") == "wb-the-hub-and-mean--std"
    assert anchors("# A\n## A\n```\n# A\n```\n### A\n") == {"a", "a-1", "a-2"}  # a fenced '# A' is no heading


def test_every_link_and_anchor_resolves():
    problems = link_problems(PAGES, REPO)
    assert not problems, "broken links in the docs:\n" + "\n".join(problems)


def test_readme_commands_exist():
    problems = readme_command_problems(REPO / "README.md", REPO / "Makefile", cli_options())
    assert not problems, "README commands that do not exist:\n" + "\n".join(problems)


def test_the_checks_name_what_is_broken(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Same\n\n## Same\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\n[ok](docs/a.md#same-1) [gone](docs/b.md) [no heading](docs/a.md#same-2) [here](#title)\n"
        "[wrapped\nlink](#nowhere) `[code](not-a-link.md)`\n\n"
        "## Quick start\n\n```\nmake setup\nmake nope  # a comment\n"
        ".venv/bin/mrpc-finetune train mrpc --bogus 1\nmrpc-finetune fly x\n```\n\n"
        "## Commands and make targets\n\n| command | what |\n| --- | --- |\n"
        "| `make setup` / `make gone` | x |\n| `mrpc-finetune eval RUN --file F` / `--out` | y |\n"
        "| `ls -l` | z |\n"
    )
    (tmp_path / "Makefile").write_text("setup:  ## x\n\tpip install\nVAR := 1\n")
    broken = link_problems([readme, tmp_path / "docs" / "a.md"], tmp_path)
    assert broken == [
        "README.md:3: [gone](docs/b.md): no such file docs/b.md",
        "README.md:3: [no heading](docs/a.md#same-2): no heading #same-2 in docs/a.md",
        "README.md:4: [wrapped link](#nowhere): no heading #nowhere in README.md",
    ]
    options = {"train": {"-h", "--help"}, "eval": {"-h", "--help", "--split", "--file"}}
    wrong = readme_command_problems(readme, tmp_path / "Makefile", options)
    assert wrong == [
        "README.md:11: `make nope  # a comment`: no target 'nope' in the Makefile",
        "README.md:12: `.venv/bin/mrpc-finetune train mrpc --bogus 1`: train has no option --bogus",
        "README.md:13: `mrpc-finetune fly x`: no subcommand 'fly' (there are eval, train)",
        "README.md:20 (table): `make gone`: no target 'gone' in the Makefile",
        "README.md:21 (table): `mrpc-finetune eval --out`: eval has no option --out",
        "README.md:22 (table): `ls -l` is neither a make target nor an mrpc-finetune command",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_page_has_a_title(page):
    assert page.read_text().startswith("# "), f"{page.relative_to(REPO)} does not start with a '# ' title"
