"""``livus analyze --engine ray``: on a local Ray it gives the same outputs as the local engine;
a worker process that dies has its inputs redone; a re-run resumes from the shards (issue 17)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from test_workers import _outputs, inputs, tiny_model_dir  # noqa: F401 - shared fixtures

from livus.infer.pipeline import analyze_paths
from livus.infer.ray_engine import InputWorker, RayEngine, import_ray


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'livus[cluster]')")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never a running cluster
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def cfg_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("cfg") / "cfg.yaml"
    p.write_text("analyze: {threads: 1}\n")
    return p


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, tiny_model_dir, inputs, cfg_path):  # noqa: F811
    out = tmp_path_factory.mktemp("local")
    s = analyze_paths([inputs], out, config_path=cfg_path, model_dir=tiny_model_dir, progress=False, language="en")
    return out, s


def _ray_run(out, engine, model_dir, inputs, cfg_path):
    s = analyze_paths([inputs], out, config_path=cfg_path, model_dir=model_dir, progress=False, language="en",
                      workers=1, engine=engine)
    return s


def _same_as_local(out, s, local_run):
    lout, ls = local_run
    assert _outputs(out) == _outputs(lout)
    assert s.errors == ls.errors and len(s.errors) == 1 and "broken.jpg" in s.errors[0]
    assert [p.replace(str(out), "") for p in s.overlays] == [p.replace(str(lout), "") for p in ls.overlays]
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    keys = [(json.loads(x)["source"], json.loads(x)["frame_index"]) for x in lines]
    assert len(keys) == len(set(keys)) > 0  # nothing twice


def _shard_inputs(shard):
    from livus.infer.ray_engine import read_shards_file

    return [e[0] for e in read_shards_file(shard)]


def test_ray_gives_the_local_results_redoes_a_killed_worker_and_resumes(tmp_path, ray_local, local_run, tiny_model_dir,
                                                                       inputs, cfg_path):  # noqa: F811
    # one Ray run (two runs of actors cost most of this test's time on a busy 2-core machine)
    marker = tmp_path / "kill-once"
    marker.write_text("")

    class DiesOnce(InputWorker):  # a local class: Ray ships it by value to its workers
        def run(self, chunk):
            try:
                os.unlink(marker)  # only the first caller gets here without an error
            except FileNotFoundError:
                return super().run(chunk)
            os._exit(1)  # the worker process dies in the middle of its chunk

    out = tmp_path / "ray"
    engine = RayEngine(out / "shards", actors=2, chunk_inputs=1, worker_cls=DiesOnce)
    s = _ray_run(out, engine, tiny_model_dir, inputs, cfg_path)
    assert not marker.exists()  # a worker did die ...
    _same_as_local(out, s, local_run)  # ... and its input was analysed again by the restarted actor
    assert engine.stats == {"reused": 0, "analysed": 6, "failed": 0}
    shards = sorted((out / "shards").glob("*.pkl"))
    assert len(shards) == 6 and not list((out / "shards").glob(".*.tmp"))

    # re-run after a node died before writing the clip's shard: only the clip is analysed again
    # (and the broken file, which has no result); everything else comes from the shards
    [lost] = [p for p in shards if any(x.endswith("clip.avi") for x in _shard_inputs(p))]
    lost.unlink()
    again = RayEngine(out / "shards", actors=2, chunk_inputs=1)
    s = _ray_run(out, again, tiny_model_dir, inputs, cfg_path)
    _same_as_local(out, s, local_run)
    assert again.stats == {"reused": 4, "analysed": 2, "failed": 0}


def test_a_clear_error_without_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    with pytest.raises(RuntimeError, match=r"livus\[cluster\]"):
        import_ray()


def test_shards_are_reused_only_whole_under_the_same_fingerprint(tmp_path):
    from livus.infer.input_analysis import InputAnalysis
    from livus.infer.ray_engine import read_shards, write_shard

    ok = ("a.png", False, InputAnalysis(path="a.png", case_key="a"), {})
    failed = ("b.png", False, InputAnalysis(path="b.png", error="b.png: unreadable"), {})
    write_shard(tmp_path / "one.pkl", "fp-1", [ok, failed])
    (tmp_path / "cut.pkl").write_bytes(b"\x80\x05 a shard cut off")  # never renamed into place, but say it was
    done = read_shards(tmp_path, "fp-1")
    assert list(done) == [("a.png", False)] and done[("a.png", False)][2].case_key == "a"  # the failed input: again
    assert read_shards(tmp_path, "fp-2") == {}  # another model/config/language: analysed again
    assert not list(tmp_path.glob(".*.tmp"))


def test_ray_reads_inputs_named_by_uri(tmp_path, ray_local, local_run, tiny_model_dir, inputs, cfg_path):  # noqa: F811
    # the actors read file:// URIs through pyarrow as they would s3:// or gs:// ones; results keep the URI
    pytest.importorskip("pyarrow", reason="URIs are read through pyarrow (pip install 'livus[cluster]')")
    uris = [(inputs / "img0.png").as_uri(), (inputs / "a" / "same.png").as_uri()]
    out = tmp_path / "ray-uri"
    engine = RayEngine(out / "shards", actors=1, chunk_inputs=1)
    s = analyze_paths([*uris, "foo://bucket/x.png"], out, config_path=cfg_path, model_dir=tiny_model_dir,
                      progress=False, language="en", workers=1, engine=engine)
    assert engine.stats == {"reused": 0, "analysed": 2, "failed": 0}
    assert s.errors == ["foo://bucket/x.png: unknown URI scheme 'foo' (pyarrow reads file://, s3://, gs://, hdfs://, ...)"]
    got = [json.loads(x) for x in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    local = {json.loads(x)["source"]: json.loads(x) for x in (local_run[0] / "results.jsonl").read_text().splitlines()}
    assert [r["source"] for r in got] == uris
    assert (out / "cases" / "img0" / "overlay_img0_0000.png").is_file()  # drawn by the actor from the URI's pixels
    assert [dict(r, source="") for r in got] == [dict(local[str(inputs / "img0.png")], source=""),
                                                  dict(local[str(inputs / "a" / "same.png")], source="")]
