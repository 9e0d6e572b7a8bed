"""The README's quickstart runs, and its model table lists the catalog."""

from __future__ import annotations

import re

from fourd_hub.catalog import CATALOG

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_quickstart_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "the README has no python block"
    exec(compile(blocks[0], "README quickstart", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == ["torch.Size([1, 1568, 384])", "torch.Size([1, 16, 196, 384])", "13"]


def test_model_table_lists_the_catalog():
    models_section = README.split("\n## Models\n", 1)[1].split("\n## ", 1)[0]
    table_names = set(re.findall(r"^\| ([a-z0-9-]+) \|", models_section, flags=re.M)) - {"name"}
    assert table_names == set(CATALOG)


def test_setup_commands_are_what_ci_runs():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    for command in ('pip install -e ".[dev]"', "pytest"):
        assert command in README and command in ci


def test_moog_example_runs(capsys):
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README, flags=re.S) if "MooGConfig.from_preset" in b]
    assert blocks, "the README has no MooG example"
    exec(compile(blocks[0], "README MooG example", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["torch.Size([1, 4, 1024, 512])", "torch.Size([1, 1024, 512])"]


def test_rvm_example_runs(capsys):
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README, flags=re.S) if "RVMConfig.from_preset" in b]
    assert blocks, "the README has no RVM example"
    exec(compile(blocks[0], "README RVM example", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("#")[0].strip() for line in lines[:3]] == ["torch.Size([1, 1, 4, 4, 384])", "torch.Size([1, 17, 384])", "True"]


def test_pipeline_example_runs(capsys, tmp_path, monkeypatch):
    from fourd_hub import open_video

    blocks = [b for b in re.findall(r"```python\n(.*?)```", README, flags=re.S) if "pipeline(" in b]
    assert blocks, "the README has no pipeline example"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README pipeline example", "exec"), {})
    assert capsys.readouterr().out.splitlines()[-1].startswith("(24, 90, 160)")
    with open_video(tmp_path / "depth.mp4") as reader:
        assert len(reader) == 24 and (reader.metadata.height, reader.metadata.width) == (90, 320)
