"""Device grouping, leave-one-group-out and time-sliced splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from livus.io.dataset import ImageRecord, load_dataset
from livus.train.robustness import (
    OTHER_GROUP,
    device_groups,
    fan_geometry,
    introduce_device_late,
    random_split_like,
    group_table,
    leave_one_group_out_splits,
    split_cutoff,
    time_sliced_split,
)


def _rec(i: int, device: str | None, w: int = 100, h: int = 80, when: str | None = None, patient: str | None = None,
         clip: str | None = None, cls: str = "benign") -> ImageRecord:
    return ImageRecord(id=i, file_name=f"images/{i}.png", width=w, height=h, device=device, acquired_at=when,
                       patient_id=patient or f"p{i}", clip_id=clip, image_class=cls)


def test_small_devices_pool_into_other_and_groups_partition_the_ids():
    recs = [_rec(i, "A") for i in range(30)] + [_rec(100 + i, "B") for i in range(26)] + [_rec(200 + i, "C") for i in range(3)]
    recs.append(_rec(300, None, 64, 48))
    groups = device_groups(recs, min_group_size=25)
    assert set(groups.values()) == {"A", "B", OTHER_GROUP}
    assert groups[200] == OTHER_GROUP and groups[300] == OTHER_GROUP
    splits = leave_one_group_out_splits(recs, groups)
    assert [g for _, _, g in splits] == ["A", "B", OTHER_GROUP]
    all_ids = {r.id for r in recs}
    for train, test, g in splits:
        assert set(train) | set(test) == all_ids and not set(train) & set(test)
        assert all(groups[i] == g for i in test) and all(groups[i] != g for i in train)


def test_leave_one_group_out_needs_two_groups():
    with pytest.raises(ValueError, match="two device groups"):
        leave_one_group_out_splits([_rec(i, "A") for i in range(5)], min_group_size=1)


def test_time_sliced_split_is_chronological_keeps_clips_and_drops_seen_patients():
    recs = [_rec(i, "A", when=f"2023-01-{i + 1:02d}T10:00:00", patient=f"p{i % 8}") for i in range(20)]
    # a clip late in time: its frames must stay together
    recs += [_rec(100 + k, "A", when=f"2023-01-25T10:00:{k:02d}", patient="clip_patient", clip="c1") for k in range(4)]
    train, test = time_sliced_split(recs, 0.3)
    by_id = {r.id: r for r in recs}
    last_train, first_test = split_cutoff(recs, train, test)
    assert last_train < first_test
    assert {100, 101, 102, 103} <= set(test)
    train_patients = {by_id[i].patient_id for i in train}
    assert not any(by_id[i].patient_id in train_patients for i in test)
    # without dropping seen patients the test part is larger and overlaps the training patients
    _, test_all = time_sliced_split(recs, 0.3, drop_seen_patients=False)
    assert len(test_all) > len(test)


def test_time_sliced_split_refuses_data_without_dates():
    recs = [_rec(i, "A") for i in range(10)]
    with pytest.raises(ValueError, match="acquired_at"):
        time_sliced_split(recs, 0.2)
    with pytest.raises(ValueError, match="fraction"):
        time_sliced_split([_rec(1, "A", when="2023-01-01")], 1.5)


def test_fan_geometry_sector_vs_rectangle():
    rect = fan_geometry([[20, 10], [80, 10], [80, 70], [20, 70]], 100, 80)
    assert rect.opening_deg == pytest.approx(0.0, abs=1.0)
    assert rect.aspect == pytest.approx(1.0, abs=0.05)
    # a triangle-like sector with a 60 degree opening (sides at +-30 degrees from vertical)
    import math
    h = 60.0
    half = h * math.tan(math.radians(30))
    sector = fan_geometry([[50, 10], [50 + half, 10 + h], [50 - half, 10 + h]], 100, 80)
    assert sector.opening_deg == pytest.approx(60.0, abs=4.0)


@pytest.mark.slow
def test_groups_on_simulated_dataset_are_the_profiles(tmp_path: Path):
    from livus.simulate.dataset import simulate_dataset

    simulate_dataset(tmp_path / "sim", 12, seed=3)
    ds = load_dataset(tmp_path / "sim")
    groups = device_groups(ds, min_group_size=1)
    assert {groups[r.id] for r in ds} == {r.device for r in ds}
    table = group_table(ds, groups)
    assert sum(int(row["images"]) for row in table.values()) == len(ds)
    train, test = time_sliced_split(ds, 0.25, drop_seen_patients=False)
    assert len(test) >= 3 and len(train) + len(test) == len(ds)


def test_aul_groups(aul_dir: Path):
    import json

    ds_path = Path("/tmp/aul_ds")
    if not (ds_path / "annotations.json").is_file():
        pytest.skip("imported AUL dataset /tmp/aul_ds not present")
    ds = load_dataset(ds_path)
    groups = device_groups(ds)
    names = set(groups.values())
    assert {"1024x768", "720x576"} <= names
    table = group_table(ds, groups)
    assert table["1024x768"]["images"] > 200
    json.dumps(table)  # serialisable for the docs
    with pytest.raises(ValueError, match="AUL"):
        time_sliced_split(ds, 0.2)


def test_random_split_like_has_the_sizes_and_keeps_patients_apart():
    recs = [_rec(i, "A", when=f"2023-01-{i % 28 + 1:02d}T10:00:00", patient=f"p{i // 3}") for i in range(60)]
    train, test = time_sliced_split(recs, 0.25)
    rtr, rte = random_split_like(recs, len(train), len(test), seed=1)
    assert (len(rtr), len(rte)) == (len(train), len(test))
    by_id = {r.id: r for r in recs}
    assert not {by_id[i].patient_id for i in rtr} & {by_id[i].patient_id for i in rte}
    assert random_split_like(recs, len(train), len(test), seed=1) == (rtr, rte)
    assert random_split_like(recs, len(train), len(test), seed=2) != (rtr, rte)
    with pytest.raises(ValueError):
        random_split_like(recs, 50, 20)


def test_introduce_device_late_moves_one_device_after_the_others():
    recs = [_rec(i, "A" if i % 2 else "B", when=f"2023-01-{i + 1:02d}T10:00:00") for i in range(20)]
    moved = introduce_device_late(recs, "B", gap_days=2)
    last_a = max(r.acquired_at for r in moved if r.device == "A")
    b = sorted((r for r in moved if r.device == "B"), key=lambda r: r.id)
    assert min(r.acquired_at for r in b) > last_a
    assert [r.acquired_at for r in b] == sorted(r.acquired_at for r in b)  # own order kept
    assert [r.acquired_at for r in moved if r.device == "A"] == [r.acquired_at for r in recs if r.device == "A"]
    assert recs[0].acquired_at == "2023-01-01T10:00:00"  # input untouched
    # the time-sliced test part is now device B
    _, test = time_sliced_split(moved, 0.25)
    assert {r.device for r in moved if r.id in set(test)} == {"B"}
    with pytest.raises(ValueError):
        introduce_device_late(recs, "C")
