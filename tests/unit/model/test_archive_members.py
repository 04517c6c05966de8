"""The ``.keras`` zip (``model.archive``): what is not a Keras archive, the members' caps checked before and while
they are inflated, sizes named in messages, and reproducible writes."""

import json
import shutil
import zipfile

import pytest

from convlens.errors import ConvlensError
from convlens.model import archive
from convlens.model.archive import read_config
from tests.unit.model.archives import rewrite


def test_files_that_are_not_keras_archives_are_refused(tmp_path):
    html = tmp_path / "model.keras"
    html.write_text("<html>Not Found</html>", encoding="utf-8")
    with pytest.raises(ConvlensError, match="is not a Keras .keras archive"):
        read_config(html)
    other = tmp_path / "other.keras"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(ConvlensError, match="not a Keras archive"):
        read_config(other)


def test_oversized_members_are_refused_before_they_are_inflated(tmp_path):
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("config.json", "w", force_zip64=True) as member:
            chunk = b" " * (1 << 20)
            for _ in range(64):
                member.write(chunk)
        z.writestr("model.weights.h5", b"")
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ConvlensError) as err:
        read_config(bomb)
    assert str(err.value) == (
        f"{bomb}: config.json is 64 MiB uncompressed, over the 16 MiB limit (a zip bomb?); "
        "refused: save the model with model.save('name.keras')"
    )


def test_a_size_header_that_lies_never_inflates_past_it(tiny_assets, tmp_path):
    """A deflate stream longer than its header's size: zipfile stops at the stated size (and the CRC fails)."""
    path = rewrite(tiny_assets["model"], tmp_path / "m.keras", raw_config=b" " * (4 << 20) + b"{}")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        local = z.getinfo("config.json").header_offset
    central = next(
        at
        for at in range(len(data) - 4)
        if data[at : at + 4] == b"PK\x01\x02" and data[at + 46 : at + 46 + 11] == b"config.json"
    )
    for offset in (local + 22, central + 24):  # "uncompressed size" in the local and the central header
        data[offset : offset + 4] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ConvlensError, match=r"is not a Keras \.keras archive \(Bad CRC-32"):
        read_config(path)


@pytest.mark.parametrize("extra", [0, 1], ids=["at-the-cap", "one-byte-over"])
def test_a_member_beyond_the_models_own_is_capped_at_16_mib(tiny_assets, tmp_path, extra):
    """Issue 28 §4: an archive may carry other members (assets); each holds at most OTHER_MEMBER_CAP, 16 MiB."""
    path = tmp_path / "assets.keras"
    shutil.copy2(tiny_assets["model"], path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("assets/vocabulary.txt", b"\0" * ((16 << 20) + extra))
    assert path.stat().st_size < 1 << 20
    if extra:
        with pytest.raises(ConvlensError) as err:
            read_config(path)
        assert str(err.value) == (
            f"{path}: assets/vocabulary.txt is 16.0 MiB uncompressed, over the 16 MiB limit (a zip bomb?); "
            "refused: save the model with model.save('name.keras')"
        )
    else:
        assert read_config(path) == read_config(tiny_assets["model"])


def test_sizes_are_named_in_the_largest_whole_unit():
    sizes = [3 << 30, 1536 << 20, 16 << 20, (1 << 20) + (1 << 19), 2048, 1536, 1023, 0]
    assert [archive._size(n) for n in sizes] == [
        "3 GiB",
        "1.5 GiB",
        "16 MiB",
        "1.5 MiB",
        "2 KiB",
        "1.5 KiB",
        "1023 bytes",
        "0 bytes",
    ]


def test_write_reproducible_drops_save_dates(tmp_path):
    from convlens.model.archive import write_reproducible

    copies = []
    for i, (stamp, when) in enumerate(
        [("2024-01-01@00:00:00", (2024, 1, 1, 0, 0, 0)), ("2026-11-25@22:50:18", (2026, 11, 25, 22, 50, 18))]
    ):
        src = tmp_path / f"src{i}.keras"
        with zipfile.ZipFile(src, "w") as z:
            z.writestr(zipfile.ZipInfo("metadata.json", when), json.dumps({"keras_version": "3", "date_saved": stamp}))
            z.writestr(zipfile.ZipInfo("model.weights.h5", when), b"weights")
        write_reproducible(src, tmp_path / f"out{i}.keras")
        copies.append((tmp_path / f"out{i}.keras").read_bytes())
    assert copies[0] == copies[1]
    with zipfile.ZipFile(tmp_path / "out0.keras") as z:
        assert json.loads(z.read("metadata.json")) == {"keras_version": "3"}
        assert z.read("model.weights.h5") == b"weights"
