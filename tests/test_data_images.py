"""The robust image loader and the open-time probe, over a corpus of good, odd and broken files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data import DEFAULT_MAX_PIXELS, BadImageError, SkipReport, load_image, probe_image
from cnnlab.data.skips import append_skip_log
from cnnlab.errors import DataError
from tests import data_corpus as corpus


def chw(array: np.ndarray) -> torch.Tensor:
    """[H, W] or [H, W, C] numpy -> [C, H, W] tensor, as load_image returns."""
    return torch.from_numpy(np.array(array if array.ndim == 3 else array[:, :, None])).permute(2, 0, 1)


def pixel(image: torch.Tensor, y: int, x: int) -> list[int]:
    return image[:, y, x].tolist()


# ---- formats and modes that must be handled, not skipped ------------------------------------------


def test_rgb_png_is_exact_and_jpeg_close(tmp_path: Path) -> None:
    png = load_image(corpus.rgb_png(tmp_path / "a.png"))
    assert png.dtype == torch.uint8 and png.shape == (3, 24, 32)
    assert torch.equal(png, chw(corpus.noise(24, 32)))
    jpeg = load_image(corpus.rgb_jpeg(tmp_path / "a.jpg", size=(24, 32)))
    assert jpeg.shape == (3, 24, 32)
    assert (jpeg.float() - chw(corpus.smooth(24, 32)).float()).abs().max() < 12


def test_grey_stays_one_channel_or_is_repeated_to_three(tmp_path: Path) -> None:
    path = corpus.grey_png(tmp_path / "g.png")
    expected = chw(corpus.noise(24, 32, channels=1))
    assert torch.equal(load_image(path), expected)
    assert torch.equal(load_image(path, channels=1), expected)
    assert torch.equal(load_image(path, channels=3), expected.repeat(3, 1, 1))
    assert probe_image(path).grey


def test_colour_to_one_channel_uses_luma(tmp_path: Path) -> None:
    path = corpus.rgb_png(tmp_path / "c.png")
    expected = chw(np.asarray(Image.open(path).convert("L")))
    assert torch.equal(load_image(path, channels=1), expected)
    assert not probe_image(path).grey


def test_cmyk_becomes_rgb(tmp_path: Path) -> None:
    image = load_image(corpus.cmyk_jpeg(tmp_path / "cmyk.jpg"))
    assert image.shape == (3, 16, 16)
    assert np.allclose(pixel(image, 8, 8), corpus.RED, atol=4)


def test_rgba_is_composited_over_white(tmp_path: Path) -> None:
    image = load_image(corpus.rgba_png(tmp_path / "rgba.png"))
    assert image.shape == (3, 8, 8)
    assert pixel(image, 4, 0) == list(corpus.WHITE)  # transparent black -> white, not black
    assert pixel(image, 4, 7) == list(corpus.BLUE)  # opaque stays as it is
    assert pixel(image, 0, 7) == [255, 127, 127]  # half-transparent red over white


def test_palette_with_transparency_is_composited_over_white(tmp_path: Path) -> None:
    image = load_image(corpus.palette_png(tmp_path / "pt.png", transparent=True))
    assert image.shape == (3, 8, 8)
    assert pixel(image, 0, 0) == list(corpus.WHITE)
    assert pixel(image, 0, 7) == list(corpus.GREEN)


def test_palette_without_transparency_is_expanded(tmp_path: Path) -> None:
    image = load_image(corpus.palette_png(tmp_path / "p.png", transparent=False))
    assert pixel(image, 0, 0) == [0, 0, 0]
    assert pixel(image, 0, 7) == list(corpus.GREEN)


@pytest.mark.parametrize("builder", [corpus.grey16_png, corpus.grey32_tiff], ids=["I;16 png", "I tiff"])
def test_sixteen_bit_grey_is_scaled_over_its_full_range(tmp_path: Path, builder) -> None:
    path = builder(tmp_path / "deep")
    assert Image.open(path).mode in ("I;16", "I")
    image = load_image(path)
    assert image.shape == (1, 1, 3)
    assert image[0, 0].tolist() == [0, 128, 255]  # 65535 -> 255, 32768 -> 128 (not clipped to white)
    assert probe_image(path).grey


def test_bilevel_becomes_black_and_white_grey(tmp_path: Path) -> None:
    image = load_image(corpus.bilevel_png(tmp_path / "bits.png"))
    assert image.shape == (1, 8, 8)
    assert set(image[0, 0].tolist()) == {255}
    assert set(image[0, 1:].flatten().tolist()) == {0}


@pytest.mark.parametrize(
    ("orientation", "shape", "corner"),
    [
        (1, (3, 20, 40), (0, 0)),
        (3, (3, 20, 40), (-1, -1)),  # turned 180 degrees
        (6, (3, 40, 20), (0, -1)),  # turned 90 degrees clockwise: H and W swap
        (8, (3, 40, 20), (-1, 0)),  # turned 90 degrees anticlockwise
    ],
)
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, shape: tuple[int, ...], corner) -> None:
    path = corpus.rotated_jpeg(tmp_path / "r.jpg", size=(20, 40), orientation=orientation)
    image = load_image(path)
    assert image.shape == shape
    assert probe_image(path).size == shape[1:]  # the probe predicts the upright size
    y, x = corner
    assert np.allclose(pixel(image, y, x), corpus.RED, atol=40), "the red block is not where it should be"


@pytest.mark.parametrize("trailer", [b"\x00" * 100, b"camera maker's trailer" * 300], ids=["padding", "trailer"])
def test_jpeg_with_bytes_after_its_end_marker_is_kept(tmp_path: Path, trailer: bytes) -> None:
    path = corpus.rgb_jpeg(tmp_path / "a.jpg")
    path.write_bytes(path.read_bytes() + trailer)  # the second one hides FF D9 from the tail check
    assert probe_image(path).size == (24, 32)
    assert load_image(path).shape == (3, 24, 32)


def test_png_without_iend_but_whole_data_is_kept(tmp_path: Path) -> None:
    path = corpus.rgb_png(tmp_path / "a.png")
    path.write_bytes(path.read_bytes()[:-12])  # drop only the IEND chunk
    assert probe_image(path).size == (24, 32)
    assert torch.equal(load_image(path), chw(corpus.noise(24, 32)))


# ---- files that must be skipped, with the right reason --------------------------------------------


@pytest.mark.parametrize(("name", "reason", "builder"), corpus.BAD_FILES, ids=[b[0] for b in corpus.BAD_FILES])
def test_bad_files_are_refused_with_their_reason(tmp_path: Path, name: str, reason: str, builder) -> None:
    path = builder(tmp_path / name)
    for attempt in (probe_image, load_image):
        with pytest.raises(BadImageError) as caught:
            attempt(path)
        assert caught.value.reason == reason
        assert isinstance(caught.value, DataError) and str(path) in str(caught.value)


def test_damaged_header_is_corrupt_not_foreign(tmp_path: Path) -> None:
    path = corpus.rgb_png(tmp_path / "a.png")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(BadImageError) as caught:
        probe_image(path)
    assert caught.value.reason == "corrupt" and "PNG" in caught.value.detail


def test_formats_outside_the_accepted_ones_are_not_images(tmp_path: Path) -> None:
    path = tmp_path / "really_a.png"
    Image.new("RGB", (4, 4)).save(path, "PPM")  # PIL reads PPM, but cnnlab does not accept it
    with pytest.raises(BadImageError) as caught:
        probe_image(path)
    assert caught.value.reason == "not an image" and "PNG" in caught.value.detail


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadImageError) as caught:
        load_image(tmp_path / "gone.png")
    assert caught.value.reason == "missing file"


def test_bomb_is_refused_from_its_header_in_pils_warning_band(tmp_path: Path) -> None:
    # 100 M pixels: above PIL's limit (a warning there) and below twice it (where PIL raises).
    path = corpus.bomb_png(tmp_path / "bomb.png", size=(10_000, 10_000))
    assert path.stat().st_size < 10_000
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning may escape
        for attempt in (probe_image, load_image):
            with pytest.raises(BadImageError) as caught:
                attempt(path)
            # Decoding would have failed as "truncated": the file holds only four rows of pixels.
            assert caught.value.reason == "too large"
            assert "100000000" in caught.value.detail.replace(",", "")
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_PIXELS


def test_max_pixels_is_checked_before_decoding(tmp_path: Path) -> None:
    small = corpus.rgb_png(tmp_path / "small.png", size=(24, 32))
    with pytest.raises(BadImageError) as caught:
        load_image(small, max_pixels=24 * 32 - 1)
    assert caught.value.reason == "too large" and "768 pixels" in caught.value.detail
    assert load_image(small, max_pixels=24 * 32).shape == (3, 24, 32)


def test_max_pixels_above_pils_limit_is_honoured_up_to_twice_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # stands for PIL's 89 M, restored after the test
    warned = corpus.rgb_png(tmp_path / "warned.png", size=(40, 40))  # 1,600: PIL would only warn
    refused = corpus.rgb_png(tmp_path / "refused.png", size=(50, 50))  # 2,500: PIL raises
    with pytest.raises(BadImageError, match="too large"):
        load_image(warned, max_pixels=1000)  # at or below PIL's limit, its warning is a skip
    assert load_image(warned, max_pixels=5000).shape == (3, 40, 40)  # above it, ours decides
    with pytest.raises(BadImageError) as caught:
        load_image(refused, max_pixels=5000)
    assert caught.value.reason == "too large"


def test_channels_must_be_one_or_three(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="channels"):
        load_image(corpus.rgb_png(tmp_path / "a.png"), channels=2)


# ---- the skip report and the shared skip log --------------------------------------------------------


def test_skip_report_counts_caps_examples_and_summarises() -> None:
    report = SkipReport(max_examples=3)
    for i in range(4):
        report.add(f"f{i}.jpg", "truncated", "cut")
    report.add("x.jpg", "not an image", "text")
    assert report.total == 5
    assert report.counts == {"truncated": 4, "not an image": 1}
    assert len(report.examples) == 3
    assert report.examples[0] == {"file": "f0.jpg", "reason": "truncated", "detail": "cut"}
    assert report.summary() == "4 truncated, 1 not an image"
    assert json.loads(json.dumps(report.to_dict()))["total"] == 5
    assert SkipReport().summary() == "nothing skipped"


def test_skip_log_appends_one_json_line_per_call(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "skipped.jsonl"
    append_skip_log(log, "a.jpg", "missing file", "no such file")
    append_skip_log(log, "b\n.jpg", "corrupt", "x" * 10_000)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first == {"file": "a.jpg", "reason": "missing file", "detail": "no such file"}
    assert second["file"] == "b\n.jpg" and len(second["detail"]) <= 300
    assert max(len(line.encode()) for line in lines) < 4096  # one atomic O_APPEND write
