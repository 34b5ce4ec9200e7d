"""Schemas: the text form and Python classes give the same schema; fingerprints; errors; compatibility."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import ClassVar, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marrow import errors
from marrow.errors import IncompatibleSchemaError, NotFoundError, SchemaError
from marrow.store import Field, FieldType, Float, Int, ObjectSchema, Schema
from marrow.store.schema import COLLECTIONS, SCALARS

CATALOG = """
Person @PrimaryKey(id) {
    long id;
    string name;
}
Title @PrimaryKey(id) {
    long id;
    string title;
    int year;
    float rating;
    double score;
    boolean kids;
    bytes poster;
    Person director;
    list<Person> cast;
    set<string> genres;
    map<string, double> scores;
}
"""


# --- text form -----------------------------------------------------------------------------------------


def test_parse_reads_every_field_type() -> None:
    schema = Schema.parse(CATALOG)
    assert list(schema) == ["Person", "Title"]
    title = schema["Title"]
    assert title.primary_key == ("id",)
    kinds = {f.name: f.type for f in title.fields}
    assert kinds["year"] == FieldType("int") and kinds["id"] == FieldType("long")
    assert kinds["rating"] == FieldType("float") and kinds["score"] == FieldType("double")
    assert kinds["director"] == FieldType("ref", target="Person")
    assert kinds["cast"] == FieldType("list", element=FieldType("ref", target="Person"))
    assert kinds["genres"] == FieldType("set", element=FieldType("string"))
    assert kinds["scores"] == FieldType("map", element=FieldType("string"), value=FieldType("double"))
    assert title.field_names == [
        "id",
        "title",
        "year",
        "rating",
        "score",
        "kids",
        "poster",
        "director",
        "cast",
        "genres",
        "scores",
    ]


def test_text_round_trip_is_canonical() -> None:
    schema = Schema.parse(CATALOG)
    again = Schema.parse(schema.text)
    assert again == schema and again.text == schema.text and again.fingerprint == schema.fingerprint
    messy = """
        # types may come in any order, with comments and any spacing
        Title@PrimaryKey( id ){long id;string title;int year;float rating;double score;boolean kids;
          bytes poster; Person director; list < Person > cast; set<string>genres;
          map<string,double> scores;}   # trailing comment
        Person @PrimaryKey(id) { long id; string name; }
    """
    assert Schema.parse(messy) == schema
    assert Schema.parse(messy).fingerprint == schema.fingerprint


def test_types_come_in_dependency_order() -> None:
    schema = Schema.parse("A { C c; B b; } B { list<C> cs; } C { long x; } D { A a; }")
    order = list(schema)
    assert order.index("C") < order.index("B") < order.index("A") < order.index("D")


def test_references_may_form_a_cycle() -> None:
    schema = Schema.parse("Node @PrimaryKey(id) { long id; Node parent; list<Node> children; }")
    assert schema["Node"].field("parent").type == FieldType("ref", target="Node")
    assert Schema.parse(schema.text) == schema


def test_composite_primary_key() -> None:
    schema = Schema.parse("Episode @PrimaryKey(show, number) { long show; int number; string name; }")
    assert schema["Episode"].primary_key == ("show", "number")
    assert "@PrimaryKey(show, number)" in schema.text


NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n not in SCALARS and n not in COLLECTIONS
)


@st.composite
def schemas(draw: st.DrawFn) -> Schema:
    """Any valid schema: scalar, reference and collection fields; primary keys of scalar fields."""
    names = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
    element = st.one_of(
        st.sampled_from([FieldType(k) for k in SCALARS]),
        st.sampled_from([FieldType("ref", target=n) for n in names]),
    )
    ftype = st.one_of(
        element,
        st.builds(FieldType, st.sampled_from(["list", "set"]), element=element),
        st.builds(FieldType, st.just("map"), element=element, value=element),
    )
    types = []
    for name in names:
        fnames = draw(st.lists(NAMES, max_size=6, unique=True))
        fields = tuple(Field(f, draw(ftype)) for f in fnames)
        scalar = [f.name for f in fields if not f.type.is_collection]
        key = draw(st.lists(st.sampled_from(scalar), unique=True, max_size=2)) if scalar else []
        types.append(ObjectSchema(name, fields, tuple(key)))
    return Schema(draw(st.permutations(types)))


@settings(max_examples=100)
@given(schemas())
def test_any_schema_survives_its_text_form(schema: Schema) -> None:
    again = Schema.parse(schema.text)
    assert again == schema
    assert again.text == schema.text
    assert again.fingerprint == schema.fingerprint
    for name, t in schema.items():
        assert again[name] == t


# --- fingerprints ----------------------------------------------------------------------------------------


def test_fingerprint_is_the_hash_of_the_canonical_text() -> None:
    schema = Schema.parse(CATALOG)
    assert schema.fingerprint == hashlib.sha256(schema.text.encode()).hexdigest()[:16]
    # Blobs already published carry this value: the canonical text must not drift.
    assert Schema.parse("T @PrimaryKey(id) { long id; list<string> tags; }").text == (
        "T @PrimaryKey(id) {\n    long id;\n    list<string> tags;\n}\n"
    )
    assert Schema.parse("T @PrimaryKey(id) { long id; list<string> tags; }").fingerprint == "17f7d6fef4cc3fa7"


@pytest.mark.parametrize(
    "change",
    [
        ("int year;", "long year;"),  # a field's type
        ("int year;", "int years;"),  # a field's name
        ("string title;\n    int year;", "int year;\n    string title;"),  # field order
        ("Title @PrimaryKey(id)", "Title"),  # the primary key
        ("set<string> genres;", "list<string> genres;"),  # collection kind
        ("map<string, double>", "map<string, float>"),  # map value type
        ("Person director;", ""),  # a field less
        ("bytes poster;", "bytes poster; boolean extra;"),  # a field more
    ],
)
def test_fingerprint_changes_with_meaning(change: tuple[str, str]) -> None:
    old, new = change
    assert old in CATALOG
    assert Schema.parse(CATALOG.replace(old, new)).fingerprint != Schema.parse(CATALOG).fingerprint


def test_fingerprint_of_a_renamed_type() -> None:
    renamed = CATALOG.replace("Person", "People")
    assert Schema.parse(renamed).fingerprint != Schema.parse(CATALOG).fingerprint


# --- Python classes --------------------------------------------------------------------------------------


@dataclass
class Person:
    __primary_key__ = "id"
    id: int
    name: str | None = None


@dataclass
class Title:
    __primary_key__ = ("id",)
    kind: ClassVar[str] = "title"  # class variables are not fields
    id: int
    title: Optional[str] = None  # noqa: UP045 - Optional is one of the spellings under test
    year: Int | None = None
    rating: Float | None = None
    score: float | None = None
    kids: bool | None = None
    poster: bytes | None = None
    director: Person | None = None
    cast: list[Person] = field(default_factory=list)
    genres: frozenset[str] = frozenset()
    scores: dict[str, float] = field(default_factory=dict)
    _cache: dict[str, str] = field(default_factory=dict)  # private: not a field


def test_classes_give_the_same_schema_as_text() -> None:
    assert Schema.from_classes(Title) == Schema.parse(CATALOG)
    assert Schema.from_classes(Title, Person).fingerprint == Schema.parse(CATALOG).fingerprint


class Tag:
    __type_name__ = "Label"
    name: str
    weight: Int
    aliases: set[str]


class Show:
    __primary_key__ = ("network", "number")
    network: str
    number: Int
    labels: list[Tag]


def test_plain_annotated_class_and_set_and_type_name() -> None:
    schema = Schema.from_classes(Show)
    assert schema == Schema.parse(
        "Label { string name; int weight; set<string> aliases; }"
        "Show @PrimaryKey(network, number) { string network; int number; list<Label> labels; }"
    )


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        (tuple[int, int], "cannot store a field of type"),
        (int | str, "one type"),
        (list[list[int]], "cannot hold another collection"),
        (dict[str, set[int]], "cannot hold another collection"),
        # A bare collection says nothing of its elements: not a reference to a type named "list".
        (list, "say what the list holds"),
        (set, "say what the set holds"),
        (frozenset, "say what the set holds"),
        (dict, "say what the map holds"),
    ],
)
def test_unsupported_annotations_are_refused_naming_the_field(annotation: object, message: str) -> None:
    cls = type("Bad", (), {"__annotations__": {"id": int, "odd": annotation}})
    with pytest.raises(SchemaError, match=message) as info:
        Schema.from_classes(cls)
    assert "Bad.odd" in str(info.value)


def test_unresolvable_annotation_is_a_schema_error() -> None:
    class Broken:
        other: Missing  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(SchemaError, match="Broken"):
        Schema.from_classes(Broken)


# --- errors ----------------------------------------------------------------------------------------------


def test_unknown_referenced_type_names_the_field_and_the_type() -> None:
    with pytest.raises(SchemaError, match=r"Title\.director refers to type 'Persn'") as info:
        Schema.parse("Person { long id; } Title { Persn director; }")
    assert "does not declare" in str(info.value)
    with pytest.raises(SchemaError, match=r"Title\.cast refers to type 'Nobody'"):
        Schema.parse("Title { list<Nobody> cast; }")
    with pytest.raises(SchemaError, match=r"Title\.m refers to type 'Nobody'"):
        Schema.parse("Title { map<string, Nobody> m; }")


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("Title {\n    long id;\n    string title int year;\n}", 3, "expected ';', found 'int'"),
        ("Title {\n    long id;\n}\nOther {\n  long id;\n  string $name;\n}", 6, "unexpected '\\s*\\$name"),
        # The line is the offending token's, not the line where the whitespace before it starts.
        ("Title\n\n\n(\n    long id;\n}", 4, "expected '{', found '\\('"),
        ("Title @PrimaryKey id) {\n long id; }", 1, "expected '\\('"),
        ("Title {\n long id;\n list<string tags;\n}", 3, "expected '>'"),
    ],
)
def test_bad_syntax_names_the_line(text: str, line: int, what: str) -> None:
    with pytest.raises(SchemaError, match=f"line {line}: {what}"):
        Schema.parse(text)


def test_text_that_ends_early() -> None:
    with pytest.raises(SchemaError, match="ends early"):
        Schema.parse("Title { long id;")


def test_collection_of_a_collection_is_refused() -> None:
    with pytest.raises(SchemaError, match="cannot hold another collection"):
        Schema.parse("T { list<set<string>> x; }")


@pytest.mark.parametrize("name", ["list", "string", "1abc", "int"])
def test_reserved_or_malformed_type_names_are_refused(name: str) -> None:
    with pytest.raises(SchemaError, match="not a valid name"):
        ObjectSchema(name, (Field("id", FieldType("long")),))


def test_duplicate_field_and_type() -> None:
    with pytest.raises(SchemaError, match=r"Title\.id is declared twice"):
        Schema.parse("Title { long id; string id; }")
    with pytest.raises(SchemaError, match="type Title is declared twice"):
        Schema.parse("Title { long id; } Title { long id; }")


def test_primary_key_must_name_a_scalar_field() -> None:
    with pytest.raises(
        SchemaError, match=r"primary key of Title names 'key', which is not one of its fields"
    ):
        Schema.parse("Title @PrimaryKey(key) { long id; }")
    with pytest.raises(SchemaError, match=r"primary key field Title\.tags is a collection"):
        Schema.parse("Title @PrimaryKey(tags) { list<string> tags; }")

    @dataclass
    class Keyed:
        __primary_key__ = "missing"
        id: int

    with pytest.raises(SchemaError, match="names 'missing'"):
        Schema.from_classes(Keyed)


def test_every_schema_error_is_a_marrow_error() -> None:
    assert issubclass(SchemaError, errors.MarrowError)
    assert issubclass(IncompatibleSchemaError, SchemaError)


def test_missing_type_or_field_is_not_found() -> None:
    schema = Schema.parse(CATALOG)
    with pytest.raises(NotFoundError, match=r"no type 'Nope'.*Person"):
        schema["Nope"]
    with pytest.raises(KeyError):  # a NotFoundError is also a KeyError, as Mapping expects
        schema["Nope"]
    assert schema.get("Nope") is None
    with pytest.raises(NotFoundError, match="has no field 'nope'"):
        schema["Title"].field("nope")


# --- compatibility ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "new",
    [
        CATALOG.replace("bytes poster;", "bytes poster; string tagline; list<long> ids;"),  # fields added
        CATALOG.replace("bytes poster;", ""),  # a field removed
        CATALOG.replace("Person director;", ""),  # a reference removed
        CATALOG + "Studio @PrimaryKey(name) { string name; }",  # a type added
        CATALOG.replace("Person director;", "")
        .replace("list<Person> cast;", "")
        .replace("Person @PrimaryKey(id) {\n    long id;\n    string name;\n}", ""),  # a type removed
    ],
)
def test_adding_or_removing_fields_and_types_is_compatible(new: str) -> None:
    old, changed = Schema.parse(CATALOG), Schema.parse(new)
    assert changed != old
    old.check_compatible(changed)
    changed.check_compatible(old)


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("int year;", "long year;", "Title.year"),
        ("int year;", "string year;", "Title.year"),
        ("set<string> genres;", "list<string> genres;", "Title.genres"),
        ("map<string, double> scores;", "map<string, float> scores;", "Title.scores"),
        ("Person director;", "long director;", "Title.director"),
    ],
)
def test_changing_a_field_type_is_incompatible_and_names_the_field(old: str, new: str, where: str) -> None:
    with pytest.raises(IncompatibleSchemaError) as info:
        Schema.parse(CATALOG).check_compatible(Schema.parse(CATALOG.replace(old, new)))
    message = str(info.value)
    assert where in message
    assert "new name" in message  # what to do about it


def test_changing_a_primary_key_is_incompatible() -> None:
    old = Schema.parse(CATALOG)
    for new in (
        CATALOG.replace("Title @PrimaryKey(id)", "Title @PrimaryKey(title)"),
        CATALOG.replace("Title @PrimaryKey(id)", "Title"),
        CATALOG.replace("Title @PrimaryKey(id)", "Title @PrimaryKey(id, year)"),
    ):
        with pytest.raises(IncompatibleSchemaError, match="primary key of Title"):
            old.check_compatible(Schema.parse(new))
