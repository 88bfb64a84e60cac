"""Sidecar JSON, metadata CSV, container tags, their priority, and error messages that name file and field."""

from __future__ import annotations

import json

import pytest

from vidroute.errors import DataFormatError
from vidroute.ingest.metadata import (
    from_container_tags,
    humanise_stem,
    load_metadata,
    metadata_text,
    normalise_date,
    read_metadata_csv,
)


@pytest.fixture
def media(tmp_path):
    path = tmp_path / "his_girl-friday.mp4"
    path.write_bytes(b"not read by metadata code")
    return path


def test_defaults_from_file_name_and_tags(media):
    meta = load_metadata(media, tags={"creation_time": "2018-11-01T04:34:53.000000Z", "artist": "Cary Grant"})
    assert meta.title == "his girl friday" == humanise_stem(media.stem)
    assert meta.date == "2018-11-01"
    assert meta.people == ["Cary Grant"]


def test_sidecar_overrides_tags_and_csv(media, tmp_path):
    media.with_suffix(".json").write_text(
        json.dumps(
            {
                "title": "His Girl Friday",
                "people": "Cary Grant; Rosalind Russell",
                "date": 1940,
                "tags": ["comedy", "newspaper"],
                "segments": [{"start": 0, "end": 3, "visual": "two people in an office", "audio": "phone rings"}],
            }
        )
    )
    csv_path = tmp_path / "meta.csv"
    csv_path.write_text(
        "file,title,description,people,genre,date,tags\n"
        f"{media.name},CSV title,From the CSV,Ralph Bellamy,comedy,1940-01-18,screwball|classic\n"
    )
    meta = load_metadata(media, tags={"title": "tag title", "genre": "drama"}, csv_path=csv_path)
    assert meta.title == "His Girl Friday"  # sidecar beats CSV beats tags
    assert meta.description == "From the CSV"  # the sidecar has none, the CSV fills it
    assert meta.people == ["Cary Grant", "Rosalind Russell"]
    assert meta.genre == "comedy"  # CSV beats container tag
    assert meta.date == "1940"
    assert meta.tags == ["comedy", "newspaper"]
    assert [n.visual for n in meta.notes_for(2, 5)] == ["two people in an office"]
    assert meta.notes_for(3, 5) == []
    line = metadata_text(meta, notes=meta.notes_for(0, 2))
    assert "His Girl Friday" in line and "People: Cary Grant, Rosalind Russell" in line and "Genre: comedy" in line


def test_csv_matches_relative_path(tmp_path):
    sub = tmp_path / "videos"
    sub.mkdir()
    media = sub / "clip.mp4"
    media.write_bytes(b"x")
    csv_path = tmp_path / "all.csv"
    csv_path.write_text('file,title,people\nvideos/clip.mp4,By path,"Ann, Bob"\nclip.mp4,By name,\n')
    assert load_metadata(media, csv_path=csv_path).title == "By path"
    assert load_metadata(media, csv_path=csv_path).people == ["Ann", "Bob"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"date": "last tuesday"}, "date"),
        ({"titel": "typo"}, "titel"),
        ({"people": [1, 2]}, "people"),
        ({"segments": [{"start": 5, "end": 2}]}, "segments.0"),
        ({"segments": [{"start": 0, "end": 2, "colour": "red"}]}, "segments.0.colour"),
    ],
)
def test_sidecar_errors_name_file_and_field(media, payload, field):
    sidecar = media.with_suffix(".json")
    sidecar.write_text(json.dumps(payload))
    with pytest.raises(DataFormatError) as err:
        load_metadata(media)
    assert sidecar.name in str(err.value)
    assert f"field '{field}'" in str(err.value)


def test_sidecar_bad_json(media):
    media.with_suffix(".json").write_text("{not json")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        load_metadata(media)
    media.with_suffix(".json").write_text("[1, 2]")
    with pytest.raises(DataFormatError, match="JSON object"):
        load_metadata(media)


def test_csv_errors(tmp_path):
    bad_col = tmp_path / "a.csv"
    bad_col.write_text("file,title,rating\nx.mp4,t,5\n")
    with pytest.raises(DataFormatError, match="unknown column"):
        read_metadata_csv(bad_col)
    no_file = tmp_path / "b.csv"
    no_file.write_text("title\nt\n")
    with pytest.raises(DataFormatError, match="'file' column"):
        read_metadata_csv(no_file)
    bad_date = tmp_path / "c.csv"
    bad_date.write_text("file,date\nx.mp4,2020-13-01\n")
    with pytest.raises(DataFormatError, match=r"line 2 \(x.mp4\).*field 'date'"):
        read_metadata_csv(bad_date)


@pytest.mark.parametrize(
    ("raw", "iso"),
    [("1999", "1999"), ("1999-07", "1999-07"), ("1999-07-04", "1999-07-04"), ("2018-11-01T04:34:53Z", "2018-11-01")],
)
def test_dates(raw, iso):
    assert normalise_date(raw) == iso


def test_container_tags_with_bad_date_are_ignored():
    meta = from_container_tags({"date": "sometime", "year": "2001", "comment": "hi", "genre": "Rock"})
    assert (meta.date, meta.description, meta.genre) == ("2001", "hi", "Rock")
