"""configs/references.toml parses, holds the thesis' tables with their sources, and matches runs by setting."""

import pytest

from musicssl.downstream.references import Reference, load_references, matches, probe_kind, published_for


def _find(table: str, row: str, probe: str, column: str = "") -> Reference:
    found = [
        r
        for r in load_references()
        if r.table == table and r.row == row and r.column == column and r.setting.get("probe") == probe
    ]
    assert len(found) == 1, (table, row, column, probe, found)
    return found[0]


def test_every_table_is_held_with_its_source() -> None:
    references = load_references()
    assert {r.table for r in references} == {"4.1", "A.1", "A.2", "B.1", "B.2"}
    assert all(r.document == "thesis" and r.setting["task"] == "mtat" for r in references)
    assert all(set(r.values) <= {"roc_auc_tagwise", "pr_auc_tagwise"} and r.values for r in references)
    assert _find("A.1", "5000 epochs", "mlp", "CLMR").values == {"roc_auc_tagwise": 87.39, "pr_auc_tagwise": 32.43}
    assert _find("A.2", "32", "linear", "VICReg").values["roc_auc_tagwise"] == 77.19
    assert _find("B.1", "1792", "mlp").setting["batch_size"] == "1792"
    assert _find("B.2", "VICReg", "linear", "CLMR Projector").values["pr_auc_tagwise"] == 30.21
    assert len([r for r in references if r.table == "B.1"]) == 18  # 9 batch sizes x 2 probes


def test_self_contradictions_are_both_held_with_a_note() -> None:
    table_4_1 = _find("4.1", "VICReg (ours), FMA", "linear")
    table_a_1 = _find("A.1", "8000 epochs", "linear", "VICReg")
    assert table_4_1.setting == table_a_1.setting  # one setting ...
    assert table_4_1.values["roc_auc_tagwise"] == 87.78 and table_a_1.values["roc_auc_tagwise"] == 87.93  # two values
    assert "Table A.1" in table_4_1.note and "Table 4.1" in table_a_1.note


def test_matching_needs_every_setting_key_with_an_equal_value() -> None:
    reference = _find("A.1", "300 epochs", "linear", "CLMR")
    params = {"task": "mtat", "pretext": "contrastive", "pretrain_data": "fma", "embed_dim": "512", "probe": "linear"}
    assert matches(reference, params | {"pretrain_epochs": "300.0"})  # numbers compare as numbers
    assert not matches(reference, params)  # a run that does not say its epochs is not compared
    assert not matches(reference, params | {"pretrain_epochs": "300", "probe": "mlp"})
    assert matches(reference, params, ignore=("pretrain_epochs",))
    assert probe_kind({"probe_hidden_dim": "None"}) == "linear" and probe_kind({"probe_hidden_dim": "512"}) == "mlp"
    swept = published_for(load_references(), params, "pr_auc_tagwise", swept="pretrain_epochs")
    assert sorted((f.reference.table, f.x) for f in swept)[:2] == [("4.1", 300.0), ("A.1", 300.0)]
    assert pytest.approx(sorted(f.value for f in swept if f.reference.table == "A.1")) == [
        31.33,
        31.46,
        31.70,
        31.88,
        33.40,
    ]
