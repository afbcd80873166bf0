"""The Seam stand-in finds an access method's grants through an index (a benchmark's store holds
thousands): it must answer what a scan of the store would."""

from __future__ import annotations

from typing import Any

from app.standins.seam import SeamStandin


def _grant(grant_id: str, *methods: str) -> dict[str, Any]:
    return {"access_grant_id": grant_id, "access_method_ids": list(methods)}


def _scan(seam: SeamStandin, method_id: str) -> list[str]:
    found = seam.matching("access_grant", lambda g: method_id in g.get("access_method_ids", []))
    return [g["access_grant_id"] for g in found]


def _indexed(seam: SeamStandin, method_id: str) -> list[str]:
    return [g["access_grant_id"] for g in seam.grants_of([method_id])]


def test_the_index_answers_as_a_scan_through_replacements_and_removals() -> None:
    seam = SeamStandin()
    for grant in (_grant("g1", "m1"), _grant("g2", "m2"), _grant("g3", "m1", "m2")):
        seam.put_access_grant(grant)
    assert _indexed(seam, "m1") == _scan(seam, "m1") == ["g1", "g3"]

    seam.put_access_grant(_grant("g1", "m2"))  # m1 taken off g1, m2 put on: same place
    seam.put_access_grant(_grant("g2", "m1", "m2"))
    assert _indexed(seam, "m1") == _scan(seam, "m1") == ["g2", "g3"]
    assert _indexed(seam, "m2") == _scan(seam, "m2") == ["g1", "g2", "g3"]

    seam._stores["access_grant"].pop("g2")  # as tests remove a grant Seam deleted
    seam.put_access_grant(_grant("g4", "m1"))
    assert _indexed(seam, "m1") == _scan(seam, "m1") == ["g3", "g4"]
    seam.put_access_grant(_grant("g2", "m1"))  # back, and now last in the store
    assert _indexed(seam, "m1") == _scan(seam, "m1") == ["g3", "g4", "g2"]

    seam.clear()
    assert _indexed(seam, "m1") == _scan(seam, "m1") == []


def test_a_copy_is_returned() -> None:
    seam = SeamStandin()
    seam.put_access_grant(_grant("g1", "m1"))
    seam.grants_of(["m1"])[0]["access_method_ids"].append("m9")
    assert seam.grants_of(["m9"]) == []
