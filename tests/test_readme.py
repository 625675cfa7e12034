"""The README's Python examples run as written."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(__file__), "..", "README.md")
BLOCKS = re.findall(r"```python\n(.*?)```", open(README, encoding="utf-8").read(), re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch, capsys):
    if "import torch" in BLOCKS[index] or ", torch," in BLOCKS[index]:
        pytest.importorskip("torch")  # the PyTorch examples need torch (the test extra installs it)
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index], f"README.md example {index}", "exec"), {})
    assert capsys.readouterr().out  # every example prints something
