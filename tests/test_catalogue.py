"""The catalogues match the contract and every seed quotation is really in its seed document."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seed_data import catalogue
from store.vocabulary import SDS_ITEMS, WARNING_SIGNS

REQUIRED_SIDE_EFFECTS = {
    "dizziness",
    "nausea",
    "vomiting",
    "dissociation",
    "headache",
    "sedation",
    "elevated_blood_pressure",
    "blurred_vision",
    "anxiety",
    "confusion",
    "urinary_symptoms",
    "other",
}

QUOTED_SIDE_EFFECTS = [effect for effect in catalogue.side_effects() if effect.named_in_seeds]


def _seed_file(source: str) -> Path:
    """The seed document a quotation names; a missing folder or file fails the test, never skips."""
    try:
        folder = catalogue.seeds_dir()
    except FileNotFoundError as error:
        pytest.fail(f"seed documents are required to check quotations: {error}")
    path = folder / source
    assert path.is_file(), f"seed file {source} named by the catalogue is not in {folder}"
    return path


def test_warning_sign_ids_are_the_contract_vocabulary_in_order():
    assert tuple(sign.id for sign in catalogue.warning_signs()) == WARNING_SIGNS


@pytest.mark.parametrize("sign", catalogue.warning_signs(), ids=lambda sign: sign.id)
def test_warning_sign_quotation_is_exact_text_of_its_seed(sign):
    text = _seed_file(sign.source).read_text(encoding="utf-8")
    assert sign.quotation, f"{sign.id} has no quotation"
    assert sign.quotation in text, f"{sign.id}: quotation not found verbatim in {sign.source}"


@pytest.mark.parametrize("effect", QUOTED_SIDE_EFFECTS, ids=lambda effect: effect.id)
def test_side_effect_quotation_is_exact_text_of_its_seed(effect):
    text = _seed_file(effect.source).read_text(encoding="utf-8")
    assert effect.quotation in text, f"{effect.id}: quotation not found verbatim in {effect.source}"


def test_the_seeds_name_the_side_effects_the_brief_lists():
    quoted = {effect.id for effect in QUOTED_SIDE_EFFECTS}
    assert {"dizziness", "nausea", "vomiting", "dissociation"} <= quoted


@pytest.mark.parametrize("sign", catalogue.warning_signs(), ids=lambda sign: sign.id)
def test_warning_sign_quotation_check_catches_a_one_character_change(sign):
    """Guards the test above: the same check rejects the quotation with one character altered."""
    text = _seed_file(sign.source).read_text(encoding="utf-8")
    middle = len(sign.quotation) // 2
    replacement = "#" if sign.quotation[middle] != "#" else "@"
    altered = sign.quotation[:middle] + replacement + sign.quotation[middle + 1 :]
    assert altered not in text


@pytest.mark.parametrize("sign", catalogue.warning_signs(), ids=lambda sign: sign.id)
def test_warning_sign_is_complete(sign):
    assert sign.label.strip()
    assert sign.patient_wording.strip()
    assert sign.why.strip()
    assert sign.weight > 0
    assert sign.specificity in catalogue.SPECIFICITIES
    assert "two weeks" in sign.patient_wording, "checklist questions are about the past two weeks"


def test_specific_signs_weigh_more_than_every_nonspecific_sign():
    signs = catalogue.warning_signs()
    lightest_specific = min(sign.weight for sign in signs if sign.is_specific)
    heaviest_nonspecific = max(sign.weight for sign in signs if not sign.is_specific)
    assert lightest_specific > heaviest_nonspecific


def test_relapse_look_alikes_are_nonspecific():
    for sign_id in ("sleep_disturbance", "appetite_change", "social_withdrawal", "dissociation_outside_sessions"):
        assert catalogue.warning_sign(sign_id).specificity == "nonspecific"
    for sign_id in ("secrecy", "tolerance", "recreational_seeking", "non_prescribed_use"):
        assert catalogue.warning_sign(sign_id).specificity == "specific"


@given(st.sampled_from(WARNING_SIGNS))
def test_warning_sign_lookup_returns_the_item_with_that_id(sign_id):
    assert catalogue.warning_sign(sign_id).id == sign_id


@given(st.text(min_size=1, max_size=30).filter(lambda s: s not in WARNING_SIGNS))
def test_unknown_warning_sign_is_a_key_error(sign_id):
    with pytest.raises(KeyError):
        catalogue.warning_sign(sign_id)


def test_warning_signs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalogue.warning_signs()[0].weight = 99.0  # type: ignore[misc]


def test_checklist_answers_are_the_contract_anchors():
    answers = catalogue.warning_sign_answers()
    assert len(answers) == 4
    assert answers[0].lower() == "not at all"
    assert answers[1].lower() == "a little"
    assert answers[2].lower() == "clearly"
    assert "nearly every day" in answers[3].lower()


def test_side_effect_ids_include_the_required_ones_and_are_snake_case():
    ids = catalogue.side_effect_ids()
    assert REQUIRED_SIDE_EFFECTS <= ids
    assert len(ids) == len(catalogue.side_effects()), "side effect ids are unique"
    for effect in catalogue.side_effects():
        assert effect.id == effect.id.lower() and " " not in effect.id and ":" not in effect.id and ";" not in effect.id
        assert effect.label.strip()
        if not effect.named_in_seeds:
            assert effect.quotation is None and effect.source is None


def test_phq9_has_nine_items_and_contiguous_bands():
    phq9 = catalogue.instruments()["phq9"]
    assert len(phq9["item"]) == 9
    assert all(item["wording"].strip() for item in phq9["item"])
    assert len(phq9["answers"]) == 4
    bands = phq9["band"]
    assert bands[0]["min"] == phq9["total_min"] == 0
    assert bands[-1]["max"] == phq9["total_max"] == 27
    assert all(later["min"] == earlier["max"] + 1 for earlier, later in zip(bands, bands[1:]))
    assert [band["min"] for band in bands[1:]] == [5, 10, 15, 20]
    assert [item["id"] for item in phq9["item"] if item["safety_item"]] == ["phq9_9"]


def test_sds_has_five_items_with_four_answers_each():
    sds = catalogue.instruments()["sds"]
    assert tuple(item["id"] for item in sds["item"]) == SDS_ITEMS == tuple(sds["columns"])
    for item in sds["item"]:
        assert item["wording"].strip()
        assert len(item["answers"]) == 4
    assert sds["total_max"] == len(sds["item"]) * sds["item_max"] == 15
    assert sds["validated_ketamine_cutoff"] is False
    assert sds["item"][4]["answers"][-1] == "Impossible"


def test_craving_and_cadss_ranges_match_the_import_format():
    instruments = catalogue.instruments()
    craving = instruments["craving"]
    assert (craving["min"], craving["max"]) == (0, 10)
    assert [anchor["score"] for anchor in craving["anchor"]] == [0, 5, 10]
    cadss = instruments["cadss"]
    assert (cadss["total_min"], cadss["total_max"]) == (0, 92) == (0, cadss["items"] * cadss["item_max"])
    assert cadss["significant_above"] == 4


def test_instruments_cannot_be_changed_by_a_caller():
    catalogue.instruments()["phq9"]["item"].clear()
    assert len(catalogue.instruments()["phq9"]["item"]) == 9


def test_seeds_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(catalogue.SEEDS_DIR_ENV, str(tmp_path))
    assert catalogue.seeds_dir() == tmp_path


def test_seeds_dir_set_to_a_missing_folder_is_a_clear_error(tmp_path, monkeypatch):
    """A setting like any other: checked when the settings are read, so every command stops at the start (IT review)."""
    from store.settings import SettingsInvalid, get_settings

    monkeypatch.setenv(catalogue.SEEDS_DIR_ENV, str(tmp_path / "nowhere"))
    get_settings.cache_clear()
    with pytest.raises(SettingsInvalid) as refused:
        catalogue.seeds_dir()
    assert refused.value.lines == [f"setting KETAWATCH_SEEDS_DIR: no folder at {tmp_path / 'nowhere'}; give the folder "
                                   "that holds the seed documents"]


def test_seeds_dir_in_the_env_file_is_used(tmp_path, monkeypatch):
    """The .env file is where the README puts settings; os.environ alone missed it there."""
    from store.settings import get_settings

    monkeypatch.delenv(catalogue.SEEDS_DIR_ENV, raising=False)
    (tmp_path / ".env").write_text(f"KETAWATCH_SEEDS_DIR={tmp_path}\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    assert catalogue.seeds_dir() == tmp_path


def test_seed_text_refuses_paths_outside_the_seeds_folder():
    with pytest.raises(ValueError):
        catalogue.seed_text("../CONTRACT.md")


def test_side_effects_read_in_words_whatever_form_they_come_in():
    from seed_data.catalogue import side_effect_words

    label = {e.id: e.label for e in catalogue.side_effects()}["elevated_blood_pressure"]
    expected = f"Nausea (mild), {label} (severe)"
    assert side_effect_words("nausea:mild;elevated_blood_pressure:severe") == expected  # as stored
    assert side_effect_words(["nausea:mild", "elevated_blood_pressure:severe"]) == expected  # the amend picker
    assert side_effect_words([("nausea", "mild"), ("elevated_blood_pressure", "severe")]) == expected  # validated
    assert side_effect_words("") == "" and side_effect_words(None) == ""
    assert side_effect_words("nausea") == "Nausea"  # an old entry without a severity: no empty brackets


def test_every_seed_document_cited_has_a_title_of_its_own_not_page_furniture():
    """The saved pages begin with 'Image3', 'top of page' or 'TL;DR:': a clinician must see what the page is."""
    from seed_data.catalogue import seed_citation, seeds_dir, warning_signs

    sources = {s.source for s in warning_signs() if s.source} | {p.name for p in seeds_dir().glob("*.txt")}
    for source in sorted(sources):
        cited = seed_citation(source)
        assert cited.endswith(f"({source})") and cited.startswith("\u201c"), cited
        assert not any(junk in cited for junk in ("Image3", "top of page", "TL;DR")), cited
    assert seed_citation("003_0fcb1e60d6a91944.txt") == "\u201cIs Ketamine Addictive?\u201d (003_0fcb1e60d6a91944.txt)"


def test_without_the_seed_documents_a_citation_still_names_the_title_or_the_file(monkeypatch, tmp_path):
    from seed_data import catalogue

    monkeypatch.setenv(catalogue.SEEDS_DIR_ENV, str(tmp_path))  # a folder without the documents
    catalogue.seed_citation.cache_clear()
    try:
        assert catalogue.seed_citation("003_0fcb1e60d6a91944.txt").startswith("\u201cIs Ketamine Addictive?")
        assert catalogue.seed_citation("009_unknown.txt") == "009_unknown.txt"
    finally:
        catalogue.seed_citation.cache_clear()
