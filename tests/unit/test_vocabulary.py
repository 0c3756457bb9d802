"""The shared vocabulary (ledger.vocabulary): fideslang vendored, extensions, aliases, hierarchy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.dev.simulate import simulate
from ledger.model import taxonomy
from ledger.model.vocabulary import ALIASES, EXTENSIONS, VOCABULARY_VERSION, VocabularyError, default_vocabulary

DATA = Path(__file__).resolve().parents[2] / "ledger" / "model" / "vocabulary_data"


def test_fideslang_data_is_vendored_whole_with_its_licence_and_version():
    """The vendored file holds fideslang 3.1.4's three taxonomies; the licence and source note sit beside it."""
    data = json.loads((DATA / "fideslang-3.1.4.json").read_text())
    assert data["version"] == "3.1.4"
    assert len(data["data_categories"]) == 85 and len(data["data_uses"]) == 56 and len(data["data_subjects"]) == 15
    assert (DATA / "LICENSE-fideslang").read_text().startswith("Attribution 4.0 International")
    assert "fideslang 3.1.4" in (DATA / "SOURCE.md").read_text()
    assert VOCABULARY_VERSION.startswith("fideslang 3.1.4")


def test_every_fideslang_parent_exists():
    """The hierarchy is closed: every term's parent is a term of the same kind."""
    v = default_vocabulary()
    for kind in ("category", "purpose", "subject"):
        for term in v.terms(kind).values():
            assert term.parent is None or term.parent in v.terms(kind), term


def test_every_alias_points_at_a_real_key_and_every_extension_sits_under_fideslang():
    """Aliases resolve to keys of the vocabulary; extensions have a fideslang parent and are labelled."""
    v = default_vocabulary()
    for kind, table in ALIASES.items():
        for old, new in table.items():
            assert new in v.terms(kind) and old not in v.terms(kind), (old, new)
    for kind, key, label, _ in EXTENSIONS:
        term = v.terms(kind)[key]
        assert term.origin == "ledger" and v.terms(kind)[term.parent].origin == "fideslang" and label


def test_every_key_the_project_used_before_is_known():
    """Every category and purpose of the old taxonomy table still labels and matches, through an alias if renamed."""
    v = default_vocabulary()
    for code in taxonomy.DATA_CATEGORIES:
        assert v.known("category", code), code
    for code in taxonomy.PURPOSES:
        assert v.known("purpose", code), code


def test_the_simulator_emits_only_vocabulary_keys_and_no_old_aliases():
    """Every key a simulated workload carries is a canonical key of the vocabulary."""
    v = default_vocabulary()
    for e in simulate(seed=3, events=4000, subjects=100).events:
        for code in [*e.get("data_categories", ()), *e.get("requested_categories", ())]:
            assert code in v.terms("category"), code
        if "purpose" in e:
            assert e["purpose"] in v.terms("purpose"), e["purpose"]


def test_a_rule_on_a_parent_covers_its_children_aliases_and_unknown_descendants():
    """user.contact covers user.contact.email, the old user.contact.phone and an unknown user.contact.x.y."""
    v = default_vocabulary()
    assert v.covers("category", "user.contact", "user.contact.email")
    assert v.covers("category", "user.contact", "user.contact.phone")
    assert v.covers("category", "user.contact", "user.contact.x.y")
    assert not v.covers("category", "user.contact.email", "user.contact")
    assert v.covers("purpose", "essential.service.operations", "essential.service.support")
    assert v.covers("purpose", "marketing", "marketing.email")


def test_labels_resolve_aliases_and_unknown_keys_are_their_own_label():
    """An old key shows the label of the key it stands for; an unknown key shows itself."""
    v = default_vocabulary()
    assert v.label("purpose", "marketing.email") == v.label("purpose", "marketing.communications.email")
    assert v.label("category", "user.pets.names") == "user.pets.names"
    assert taxonomy.category_label("user.behavior.call_records").startswith("Call detail records")


def test_company_keys_need_an_existing_parent_and_a_new_name():
    """extended() adds a key under an existing parent and refuses orphans and duplicates."""
    v = default_vocabulary().extended([("category", "user.financial.payment_card.token", "Card token", None)])
    assert v.covers("category", "user.financial", "user.financial.payment_card.token")
    with pytest.raises(VocabularyError, match="parent"):
        v.extended([("category", "user.pets.names", "Pet names", None)])
    with pytest.raises(VocabularyError, match="already exists"):
        v.extended([("category", "user.contact.phone", "Phone", None)])
