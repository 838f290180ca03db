"""``livus analyze --inputs-from LIST`` with inputs named by URI (``file://`` here, read through
pyarrow like s3:// or gs://): the same results as the local files, under the URI's name; an
unknown scheme or a missing object is listed, the others are analysed (issue 17)."""

from __future__ import annotations

import json

import pytest

from test_workers import inputs, tiny_model_dir  # noqa: F401 - shared fixtures

from livus.cli import main

pytest.importorskip("pyarrow", reason="URIs are read through pyarrow (pip install 'livus[cluster]')")


def _results(out, rename=None):
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    for r in rows:
        r["source"] = (rename or {}).get(r["source"], r["source"])
    return rows


def test_analyze_an_input_list_of_uris_and_paths(tmp_path, monkeypatch, capsys, tiny_model_dir, inputs):  # noqa: F811
    monkeypatch.setenv("LIVUS_MODEL_DIR", str(tiny_model_dir))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("analyze: {threads: 1}\n")
    uri = (inputs / "img0.png").as_uri()
    lst = tmp_path / "list.txt"
    lst.write_text(f"# tonight\n{uri}\nfoo://bucket/a.png\n{inputs.as_uri()}/missing.png\n{inputs / 'img1.png'}\n"
                   f"{(inputs / 'b').as_uri()}\n", encoding="utf-8")
    out = tmp_path / "uri"
    assert main(["analyze", "--inputs-from", str(lst), "--out", str(out), "--config", str(cfg), "--language", "en",
                 "--no-overlays"]) == 0
    printed = capsys.readouterr().out
    assert "2 input(s) could not be analysed" in printed
    assert "foo://bucket/a.png: unknown URI scheme 'foo'" in printed
    assert f"{inputs.as_uri()}/missing.png: no such file" in printed  # found missing when read
    ref = tmp_path / "local"
    assert main(["analyze", str(inputs / "img0.png"), str(inputs / "img1.png"), str(inputs / "b" / "same.jpg"),
                 "--out", str(ref), "--config", str(cfg), "--language", "en", "--no-overlays"]) == 0

    got = _results(out)
    assert [r["source"] for r in got] == [uri, str(inputs / "img1.png"), (inputs / "b" / "same.jpg").as_uri()]
    assert got and got == _results(ref, {str(inputs / "img0.png"): uri,
                                         str(inputs / "b" / "same.jpg"): (inputs / "b" / "same.jpg").as_uri()})
    summary = (out / "summary.csv").read_text(encoding="utf-8")
    assert uri in summary
    case = json.loads((out / "cases" / "img0" / "case.json").read_text(encoding="utf-8"))
    assert case["sources"] == [uri]
    assert (out / "cases" / "img0" / "report_img0_en.pdf").is_file()
