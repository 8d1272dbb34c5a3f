"""benchmarks/nas.py: flags, and (slow) one tiny ENAS search end to end."""

from __future__ import annotations

import math

import pytest

from benchmarks.nas import main, run_search


def test_unknown_method_names_the_flag() -> None:
    with pytest.raises(ValueError, match="--methods"):
        main(["--methods", "ENAS,nope"])


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_quick_enas_search_ends_with_one_final_training(ray_session) -> None:
    r = run_search("ENAS", 0, quick=True)
    assert r["method"] == "ENAS" and 0.1 < r["final_acc"] <= 1.0
    assert r["cpu_s"] > 0 and math.isfinite(r["cpu_s"])
    # 6 search trials, 2 FINAL_EVAL, 1 FINAL_TRAIN
    assert r["n_trials"] == 9 and len(r["arch"]) == 12


def test_rows_file_skips_a_torn_line_and_the_table_checks_the_target(tmp_path) -> None:
    from benchmarks.nas import _load_rows, table

    rows = [{"method": m, "seed": s, "final_acc": 0.99, "test_acc": a, "cpu_s": c,
             "n_trials": 71}
            for s in (0, 1) for m, a, c in (("ENAS", 0.95, 100.0), ("RandomNAS", 0.93, 100.0),
                                            ("random-standalone", 0.94, 520.0))]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(__import__("json").dumps(r) + "\n" for r in rows) + '{"method": "EN')
    assert _load_rows(path) == rows
    text = "\n".join(table(rows, ["ENAS", "RandomNAS"]))
    assert "| ENAS | 0.9500 | 0.950 0.950 | 0.9900 |" in text
    assert "met (0.9500 vs 0.9400" in text
    # the score is the retrained test accuracy, not the search's own validation accuracy
    worse = [dict(r, test_acc=0.9, final_acc=1.0) if r["method"] == "ENAS" else r for r in rows]
    assert "NOT met" in "\n".join(table(worse, ["ENAS"]))


def test_the_score_is_a_retraining_on_a_split_no_method_selects_on() -> None:
    from benchmarks.nas import load_micro, retrain, splits

    train, val, test = splits(load_micro(), 0, 300)
    assert len(train[0]) == 300 and abs(len(val[0]) - len(test[0])) <= 1
    seen = {x.tobytes() for x in train[0]} | {x.tobytes() for x in val[0]}
    assert not any(x.tobytes() in seen for x in test[0][:50])
    arch = [0, "conv3x3", 1, "identity", 0, "maxpool", 2, "conv3x3", 1, "avgpool", 3, "identity"]
    a = retrain(arch, 0, True, 2)
    assert len(a) == 2 and all(0.1 < x <= 1.0 for x in a)
    assert retrain(arch, 0, True, 2) == a  # fresh seeds, but fixed ones


def test_rows_of_the_old_protocol_are_not_reused() -> None:
    from benchmarks.nas import PROTOCOL, reusable

    new = {"method": "ENAS", "seed": 0, "quick": False, "protocol": PROTOCOL,
           "test_accs": [0.9, 0.9, 0.9]}
    old = {k: v for k, v in new.items() if k not in ("protocol", "test_accs")}
    assert reusable([old, new, dict(new, quick=True)], False, 3) == [new]
    assert reusable([new], False, 2) == []
