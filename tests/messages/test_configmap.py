"""`keycourier templates configmap`: the templates folder as a ConfigMap ops can read, and the
volume that lays it out as the folder again, both reading back byte for byte."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.errors import ConfigMapError
from app.messages.configmap import configmap_yaml, volume_yaml
from app.ops.cli import main
from tests.conftest import TEMPLATES


def command(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """Run `keycourier templates configmap ARGS` on the shipped templates, parse its YAML."""
    assert main(["templates", "configmap", *args, "--dir", str(TEMPLATES)]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def laid_out(configmap: dict[str, Any], volume: dict[str, Any]) -> dict[str, bytes]:
    """The files a pod sees: each volume item's path with its key's value, as UTF-8 bytes."""
    data = configmap["data"]
    return {item["path"]: data[item["key"]].encode() for item in volume["configMap"]["items"]}


def test_configmap_and_volume_lay_out_the_folder_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every template file comes back at its path with exactly its bytes, under a key
    without '/'."""
    configmap = command(capsys)
    [volume] = command(capsys, "--volume")
    assert configmap["kind"] == "ConfigMap"
    assert volume["name"] == "templates"
    assert volume["configMap"]["name"] == configmap["metadata"]["name"] == "keycourier-templates"
    on_disk = {
        p.relative_to(TEMPLATES).as_posix(): p.read_bytes()
        for p in TEMPLATES.rglob("*")
        if p.suffix in (".txt", ".html", ".toml")
    }
    assert laid_out(configmap, volume) == on_disk
    assert len(configmap["data"]) == len(on_disk)
    assert not [key for key in configmap["data"] if "/" in key]


def test_every_shipped_template_is_a_block_scalar(capsys: pytest.CaptureFixture[str]) -> None:
    """In the ConfigMap each template reads as in its file (a literal block), not as a
    string of escapes."""
    assert main(["templates", "configmap", "--dir", str(TEMPLATES)]) == 0
    out = capsys.readouterr().out
    values = re.findall(r"^  (\S+): (.*)$", out.split("\ndata:\n", 1)[1], flags=re.MULTILINE)
    assert len(values) == len(yaml.safe_load(out)["data"])
    assert all(header.startswith("|") for _, header in values), values
    sms = (TEMPLATES / "pin_code" / "en" / "sms.txt").read_text()
    assert f"  pin_code__en__sms.txt: |\n    {sms}" in out  # as it is in the file


@pytest.mark.parametrize(
    ("text", "block"),
    [
        ("  indented first line\nthen not\n", True),
        ("no final newline", True),
        ("blank lines at the end\n\n\n", True),
        ("\n\nblank lines first\n", True),
        ("   \n  spaces-only line first\n", True),
        ("\ttab first\n", True),
        ("\n", True),
        ("trailing spaces   \n   \nkept\n", True),
        ("# not a comment\n---\n...\nkey: value\n- item\n", True),
        ("{{ name }}: {% if x %}|{% endif %} > 'quotes' \"too\" \\ é ✓ 🔑\n", True),
        ("", False),
        ("windows\r\nline ends\r\n", False),
        ("a control character \x1b[0m and a NEL \x85 here\n", False),
        ("a line separator \u2028 and \u2029\n", False),
        ('\ufeffa byte order mark, an emoji 🔑 and a quote " \\\n', False),
    ],
)
def test_awkward_text_round_trips(tmp_path: Path, text: str, block: bool) -> None:
    """Leading spaces, no or many final newlines, empty files and characters a block
    cannot hold all read back exactly; a block scalar is used wherever YAML allows one."""
    (tmp_path / "pin_code" / "en").mkdir(parents=True)
    (tmp_path / "pin_code" / "en" / "sms.txt").write_bytes(text.encode())
    (tmp_path / "properties.toml").write_bytes(b"x = 1\n")
    out = configmap_yaml(tmp_path)
    configmap = yaml.safe_load(out)
    [volume] = yaml.safe_load(volume_yaml(tmp_path))
    assert laid_out(configmap, volume) == {
        "pin_code/en/sms.txt": text.encode(),
        "properties.toml": b"x = 1\n",
    }
    header = re.search(r"^  pin_code__en__sms\.txt: (.*)$", out, flags=re.MULTILINE)
    assert header is not None
    assert header.group(1).startswith("|") == block


def test_configmap_refuses_templates_that_fail_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No ConfigMap is printed for a folder with a problem; the problem is."""
    broken = tmp_path / "templates"
    shutil.copytree(TEMPLATES, broken)
    (broken / "pin_code" / "fr" / "sms.txt").write_text("Bonjour, code {{ pin_code }")
    assert main(["templates", "configmap", "--dir", str(broken)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "pin_code/fr/sms.txt:1: syntax error" in captured.err


@pytest.mark.parametrize(
    ("files", "complaint"),
    [
        ({"pin_code/en/my sms.txt": "x"}, "pin_code/en/my sms.txt: a ConfigMap key may hold only"),
        (
            {"pin_code/en/sms.txt": "x", "pin_code__en/sms.txt": "y"},
            "would share the ConfigMap key pin_code__en__sms.txt",
        ),
        ({f"big/{n}.txt": "x" * 260_000 for n in range(5)}, "a ConfigMap holds at most 1 MiB"),
        ({"pin_code/en/sms.txt": "\udcff"}, "pin_code/en/sms.txt is not UTF-8 text"),
    ],
)
def test_what_kubernetes_cannot_hold_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], complaint: str
) -> None:
    """A file name no ConfigMap key can hold, two files on one key, a folder over the 1 MiB
    limit and a file that is not UTF-8 are each a clear error, and nothing is printed."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigMapError, match=re.escape(complaint)):
        configmap_yaml(tmp_path)
    assert main(["templates", "configmap", "--volume", "--dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert complaint in captured.err


def test_a_name_kubernetes_refuses_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """--name must be a Kubernetes object name; another name is printed into the YAML."""
    args = ["templates", "configmap", "--volume", "--dir", str(TEMPLATES)]
    assert main([*args, "--name", "Hotel Templates"]) == 2
    assert "'Hotel Templates' is not a Kubernetes name" in capsys.readouterr().err
    assert main([*args, "--name", "hotel-templates"]) == 0
    [volume] = yaml.safe_load(capsys.readouterr().out)
    assert volume["configMap"]["name"] == "hotel-templates"
