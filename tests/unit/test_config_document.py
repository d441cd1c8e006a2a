"""The round-trip document: our edits keep every comment of the operator in place."""
from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from harbor_upgrade.config.document import Document, detect_layout, dump, make_yaml

TEXT = """\
# head of the file
first: 1  # eol of first

# about the section
section:
  # inside, before a
  a: 1
  b: 2  # eol of b
  # trailing comment of section

# about the list
items:
  - one  # eol of one
  # between
  - two
  - three
# the very end
"""


def doc_of(text: str) -> Document:
    layout = detect_layout(text)
    return Document(make_yaml(layout).load(text), layout)


def comments(text: str) -> list[str]:
    return [line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line]


def test_untouched_document_is_byte_identical():
    d = doc_of(TEXT)
    assert dump(d.data, d.layout) == TEXT


@pytest.mark.parametrize("text,expected", [
    ("a:\n  b:\n    - x\n", (2, 4, 2)),
    ("a:\n    b:\n    - x\n", (4, 2, 0)),
    ("a:\n  - x\nb:\n  c: 1\n", (2, 4, 2)),
    ("a: 1\n", (2, 4, 2)),
])
def test_layout_is_read_from_the_file(text, expected):
    layout = detect_layout(text)
    assert (layout.mapping, layout.sequence, layout.offset) == expected
    assert dump(make_yaml(layout).load(text), layout) == text


def test_removed_section_stays_commented_out_with_all_its_comments():
    d = doc_of(TEXT)
    d.step = "2.2.0"
    d.remove((), "section", "gone in this release")
    out = dump(d.data, d.layout)
    assert "section" not in YAML(typ="safe").load(out)
    assert "# harbor-upgrade 2.2.0: gone in this release\n# section:\n#   # inside, before a\n#   a: 1\n" in out
    assert "#   b: 2  # eol of b" in out
    # the comments that followed the section still come before the next key
    assert out.index("# about the list") < out.index("items:")
    for c in comments(TEXT):
        assert c in out


def test_added_key_goes_before_the_comments_of_the_next_key():
    d = doc_of(TEXT)
    d.step = "2.0.0"
    d.add(("section",), "c", 3, "new setting")
    out = dump(d.data, d.layout)
    assert "  b: 2  # eol of b\n  c: 3  # harbor-upgrade 2.0.0: new setting\n  # trailing comment of section\n" in out
    assert YAML(typ="safe").load(out)["section"] == {"a": 1, "b": 2, "c": 3}


def test_added_section_has_a_note_line_above_it():
    d = doc_of(TEXT)
    d.step = "2.0.0"
    d.add((), "trivy", {"insecure": False}, "a new scanner", after="first")
    out = dump(d.data, d.layout)
    assert ("first: 1  # eol of first\n\n# harbor-upgrade 2.0.0: a new scanner\ntrivy:\n  insecure: false\n\n"
            "# about the section\n") in out


def test_list_edits_keep_item_comments():
    d = doc_of(TEXT)
    d.step = "2.2.0"
    d.remove_items((), "items", "one", "no longer a component")
    d.append_item((), "items", "four", "a new component")
    out = dump(d.data, d.layout)
    assert YAML(typ="safe").load(out)["items"] == ["two", "three", "four"]
    for c in comments(TEXT):
        assert c in out
    assert out.rstrip().endswith("# the very end")


def test_changed_value_note_replaces_our_earlier_note_and_keeps_the_operators():
    d = doc_of(TEXT)
    d.step = "2.1.0"
    d.change(("section",), "b", 20, "first change")
    d.step = "2.3.0"
    d.change(("section",), "b", 30, "second change")
    out = dump(d.data, d.layout)
    # ruamel keeps the comment at its old column: one space less after a longer value
    assert "  b: 30 # eol of b  (harbor-upgrade 2.3.0: second change; was 2)\n" in out
    assert d.changes == ["2.1.0: section.b changed (first change)", "2.3.0: section.b changed (second change)"]


def test_removing_the_first_key_of_a_section_keeps_it_as_comment():
    d = doc_of(TEXT)
    d.step = "2.2.0"
    d.remove(("section",), "a", "retired")
    out = dump(d.data, d.layout)
    assert YAML(typ="safe").load(out)["section"] == {"b": 2}
    assert "# a: 1" in out and "retired" in out


def test_a_quoted_value_we_change_stays_quoted():
    d = doc_of('hostname: h\n_version: "2.3.0"  # ours\n')
    d.step = "2.4.0"
    d.change((), "_version", "2.4.0", "new release")
    out = dump(d.data, d.layout)
    assert '_version: "2.4.0"  # ours  (harbor-upgrade 2.4.0: new release; was \'2.3.0\')\n' in out


def test_removing_the_only_key_leaves_an_empty_mapping_and_keeps_the_text():
    d = doc_of("a: 1\nouter:\n  only:\n    x: 1  # eol of x\n# about b\nb: 2\n")
    d.step = "2.2.0"
    d.remove(("outer",), "only", "retired")
    out = dump(d.data, d.layout)
    assert YAML(typ="safe").load(out) == {"a": 1, "outer": {}, "b": 2}
    assert "# only:" in out and "# eol of x" in out and "retired" in out
    assert out.index("# about b") < out.index("b: 2")


@pytest.mark.parametrize("edit", [
    lambda d: d.add(("absent",), "k", 1, "n"),
    lambda d: d.change(("first",), "k", 1, "n"),      # a scalar, not a mapping
    lambda d: d.remove(("absent",), "k", "n"),
    lambda d: d.rename(("absent",), "a", "b", "n"),
    lambda d: d.keep(("absent",), "a", "n"),
])
def test_editing_a_section_that_is_not_there_names_it(edit):
    # Steps edit only sections they checked for; a step that gets it wrong is told where
    # (this used to be an AttributeError on None deep in the edit).
    d = doc_of(TEXT)
    d.step = "9.9.9"
    with pytest.raises(LookupError, match=r"9\.9\.9: no mapping at (absent|first) to edit"):
        edit(d)
    assert dump(d.data, d.layout) == TEXT
