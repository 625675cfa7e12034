"""Citations in code and docs point at something a reader of the repository can open: the repository's own docs
with section and equation numbers they really have, or a public source by name; never a path on a developer's
machine or a document outside the repository."""
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = (".py", ".pyx", ".pxd", ".h", ".md", ".sh", ".toml", ".txt", ".cfg")
FORBIDDEN = [r"arith\.md", r"/work/", r"\bshared/", r"ANCHORS\.md", r"KERNELS\.md", r"STYLE\.md"]


def tracked_files():
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        names = out.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the tree
        names = [os.path.relpath(os.path.join(d, f), ROOT) for d, _, fs in os.walk(ROOT) for f in fs]
    return [n for n in names if n.endswith(TEXT) or n == ".ci/run"]


def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8", errors="replace") as f:
        return f.read()


def test_no_citation_of_paths_outside_the_repository():
    this = os.path.relpath(__file__, ROOT)
    bad = []
    for name in tracked_files():
        if name == this:
            continue
        for no, line in enumerate(read(name).splitlines(), 1):
            for pattern in FORBIDDEN:
                if re.search(pattern, line):
                    bad.append(f"{name}:{no}: {line.strip()[:100]}")
    assert not bad, "\n".join(bad)


def equations(doc):
    return set(re.findall(r"^\((\d+'?)\)", read(doc), re.M)) | set(re.findall(r"\n\((\d+'?)\) ", read(doc)))


def sections(doc):
    return set(re.findall(r"^#+ (\d+(?:\.\d+)*)\.? ", read(doc), re.M))


def test_equation_and_section_numbers_exist():
    eqs = equations("docs/arithmetic.md")
    assert {"1", "4", "7", "7'", "9"} <= eqs
    secs = {doc: sections(doc) for doc in ("docs/arithmetic.md", "docs/format.md")}
    bad = []
    for name in tracked_files():
        text = read(name)
        for m in re.finditer(r"docs/arithmetic\.md[,:]?\s*(?:\(|eq(?:uations?|s?\.)\s*)?\(?(\d+'?)\)?(?:\s*(?:-|and|,)\s*\(?(\d+'?)\))?", text):
            for n in m.groups():
                if n and n not in eqs and not re.search(r"section\s*$", text[m.start():m.start(1)]):
                    bad.append(f"{name}: docs/arithmetic.md ({n}) is not an equation of it")
        for m in re.finditer(r"(docs/(?:arithmetic|format)\.md),? section (\d+(?:\.\d+)?)", text):
            if m.group(2) not in secs[m.group(1)]:
                bad.append(f"{name}: {m.group(1)} has no section {m.group(2)}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("kernel", ["eltwise", "pool", "reduce", "requant"])
def test_kernel_equation_labels_exist(kernel):
    """Ops cite their kernel's own labelled equations, e.g. 'intrt/kernels/pool.pyx, eq. (P1)-(P3)'."""
    labels = set(re.findall(r"\(([A-Z]\d)\)", read(f"intrt/kernels/{kernel}.pyx")))
    for name in tracked_files():
        for m in re.finditer(rf"intrt/kernels/{kernel}\.pyx, eq\. ((?:\([A-Z]\d\)[-, ]*)+)", read(name)):
            for label in re.findall(r"\(([A-Z]\d)\)", m.group(1)):
                assert label in labels, f"{name} cites ({label}) of {kernel}.pyx"
