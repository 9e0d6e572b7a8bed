"""Model cards: generated from the catalog, in sync with model_cards/, valid for the Hub, right numbers."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

import fourd_hub
from fourd_hub import FourDSConfig, FourDSForDepthEstimation, MooGConfig
from fourd_hub.cards import (
    ConversionProvenance,
    card_file_name,
    card_metadata,
    read_provenance,
    render_custom_model_card,
    render_model_card,
    write_model_cards,
)
from fourd_hub.catalog import CATALOG
from fourd_hub.conversion import convert_checkpoint

pytestmark = pytest.mark.hub

CARDS_DIR = Path(__file__).resolve().parents[1] / "model_cards"

# Typed by hand from the architecture, not read from the module under test.
# architecture -> (task tag, Hub pipeline tag). No image-widget pipeline tags on video models: the
# Hub's depth / keypoint / detection / feature-extraction widgets send one image (or text).
EXPECTED_TASKS = {
    "FourDSModel": ("feature-extraction", None),
    "MooGModel": ("feature-extraction", None),
    "FourDSForDepthEstimation": ("depth-estimation", None),
    "MooGForPointTracking": ("point-tracking", None),
    "MooGForBoxTracking": ("box-tracking", None),
    "RVMModel": ("feature-extraction", None),
}
FAMILY_TAGS = {"fourds": ("4ds", "arxiv:2412.15212"), "moog": ("moog", "arxiv:2411.05927"), "rvm": ("rvm", "arxiv:2512.13684")}

# Typed by hand from the 4DS paper (arXiv 2412.15212), independently of PAPER_RESULTS: two values
# per table and size. ScanNet is the true AbsRel (the paper prints it x 10: 0.94 -> 0.094).
# card -> row label -> evaluation ("frozen" = Table 2, "fine-tuned" = Table 3) -> column -> text.
EXPECTED_RESULTS = {
    "4ds-s": {"4DS-S": {"frozen": {"SSv2": "40.8", "ScanNet": "0.223"}, "fine-tuned": {"Perception": "75.2", "Waymo": "69.1"}}},
    "4ds-b": {"4DS-B": {"frozen": {"RE10k": "0.51", "Waymo": "72.7"}, "fine-tuned": {"SSv2": "52.4", "ScanNet": "0.151"}}},
    "4ds-l": {"4DS-L": {"frozen": {"Perception": "81.5", "ScanNet": "0.124"}, "fine-tuned": {"RE10k": "0.37", "SSv2": "61.8"}}},
    "4ds-h": {"4DS-H": {"frozen": {"SSv2": "60.4", "Waymo": "76.1"}, "fine-tuned": {"ScanNet": "0.094", "Perception": "81.9"}}},
    "4ds-g": {"4DS-G": {"frozen": {"RE10k": "0.27", "Perception": "82.7"}, "fine-tuned": {"Waymo": "77.2", "ScanNet": "0.081"}}},
    "4ds-e": {"4DS-e": {"frozen": {"ScanNet": "0.094", "SSv2": "64.6"}, "fine-tuned": {"SSv2": "68.9", "RE10k": "0.28"}}},
    "4ds-j": {"4DS-j": {"frozen": {"SSv2": "68.2", "ScanNet": "0.085"}, "fine-tuned": {"Waymo": "78.0", "Perception": "84.2"}}},
    "4ds-b-dist-e": {
        "4DS-B (reference point)": {"frozen": {"SSv2": "49.6", "Perception": "78.9"}, "fine-tuned": {"ScanNet": "0.151", "Waymo": "71.8"}},
        "4DS-e (reference point)": {"frozen": {"RE10k": "0.27", "Waymo": "78.0"}, "fine-tuned": {"ScanNet": "0.075", "Perception": "82.9"}},
    },
}


def section(card: str, title: str) -> str:
    return card.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def table(text: str) -> tuple[list[str], list[list[str]]]:
    """(header cells, data rows' cells) of the first markdown table in ``text``."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in text.splitlines() if line.startswith("|")]
    assert len(rows) >= 3, f"no table in:\n{text}"
    return rows[0], rows[2:]


def code_blocks(card: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", card, flags=re.S)


@pytest.fixture(scope="module")
def cards() -> dict[str, str]:
    return {name: render_model_card(entry) for name, entry in CATALOG.items()}


# ----------------------------------------------------------------------------------------------
# model_cards/ is in sync with the catalog


def test_committed_cards_equal_the_catalog(cards):
    for name, entry in CATALOG.items():
        path = CARDS_DIR / card_file_name(entry)
        assert path.is_file(), f"{path} is missing: run `fourd-hub model-cards model_cards/`"
        assert path.read_text(encoding="utf-8") == cards[name], f"{path} is stale: run `fourd-hub model-cards model_cards/`"
    assert write_model_cards(CARDS_DIR, check=True) == []


def test_check_reports_modified_missing_and_stale_cards(tmp_path):
    written = write_model_cards(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{name}.md" for name in CATALOG)
    assert write_model_cards(tmp_path, check=True) == []
    (tmp_path / "README.md").write_text("# cards\n")
    (tmp_path / "notes.md").write_text("not a card\n")
    modified = tmp_path / "4ds-e.md"
    modified.write_text(modified.read_text(encoding="utf-8").replace("64.6", "64.7"), encoding="utf-8")
    (tmp_path / "moog-ego4d.md").unlink()
    stale = tmp_path / "4ds-x.md"
    shutil.copy(tmp_path / "4ds-s.md", stale)
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(write_model_cards(tmp_path, check=True)) == sorted([modified, tmp_path / "moog-ego4d.md", stale])
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before, "check=True must write nothing"
    write_model_cards(tmp_path)
    assert write_model_cards(tmp_path, check=True) == []
    assert not stale.exists() and (tmp_path / "notes.md").exists() and (tmp_path / "README.md").exists()
    assert not list(tmp_path.glob(".*")), "temporary files left behind"


# ----------------------------------------------------------------------------------------------
# Metadata


def test_metadata_of_every_card(cards):
    for name, entry in CATALOG.items():
        text = cards[name]
        family, paper_tag = FAMILY_TAGS[entry.family]
        task, pipeline_tag = EXPECTED_TASKS[entry.architecture]
        for metadata in (card_metadata(text), ModelCard(text).data.to_dict()):
            assert metadata["library_name"] == "fourd_hub", name
            assert metadata["license"] == "cc-by-4.0", name
            assert {"fourd_hub", "video", family, task} <= set(metadata["tags"]), name
            assert paper_tag in metadata["tags"], name
            assert ("config-only" in metadata["tags"]) == (entry.original_file is None), name
            assert metadata.get("pipeline_tag") == pipeline_tag, name
            if entry.base_model:
                assert metadata["base_model"] == f"fourd-hub/{entry.base_model}", name
                assert re.fullmatch(r"[\w.-]+/[\w.-]+", metadata["base_model"])
            else:
                assert "base_model" not in metadata, name
            facts = metadata["fourd_hub"]
            assert facts["catalog_name"] == name
            assert facts["architecture"] == entry.architecture and facts["preset"] == entry.preset
            assert facts["original_file"] == entry.original_file and facts["original_url"] == entry.original_url
            assert facts["input"]["num_frames"] == entry.input_spec.num_frames
            assert facts["input"]["image_size"] == list(entry.input_spec.image_size)
            assert facts["code_license"] == "apache-2.0" and facts["weights_license"] == "cc-by-4.0"
            assert "provenance" not in facts


def test_card_metadata_errors():
    with pytest.raises(ValueError, match="no YAML front matter"):
        card_metadata("# a card without metadata\n")
    with pytest.raises(ValueError, match="invalid"):
        card_metadata("---\ntags: [unclosed\n---\n# card\n")
    assert card_metadata("---\nlicense: mit\n---\n")["license"] == "mit"


# ----------------------------------------------------------------------------------------------
# Results


def test_results_tables_quote_the_paper(cards):
    for name, rows_expected in EXPECTED_RESULTS.items():
        header, rows = table(section(cards[name], "Results"))
        assert all(("↑" in cell) != ("↓" in cell) for cell in header[2:]), f"{name}: every metric has a direction"
        labels = {row[0] for row in rows}
        assert labels == set(rows_expected), f"{name}: rows {labels}"
        for label, evaluations in rows_expected.items():
            for evaluation, values in evaluations.items():
                row = next(r for r in rows if r[0] == label and r[1].startswith(evaluation))
                for column, text in values.items():
                    index = next(i for i, cell in enumerate(header) if cell.startswith(column))
                    assert row[index] == text, f"{name}, {label}, {evaluation}, {column}: {row[index]} != {text}"


def test_distilled_and_depth_cards_show_reference_points_only(cards):
    dist = section(cards["4ds-b-dist-e"], "Results")
    assert "not evaluated in the paper" in dist and "distilled from 4DS-e" in dist
    _, rows = table(dist)
    assert all(row[0].endswith("(reference point)") and "dist" not in row[0] for row in rows)

    depth = section(cards["4ds-b-dist-e-scannet-depth"], "Results")
    assert "ScanNet depth readout released with `4ds-b-dist-e`" in depth and "reference points" in depth
    header, rows = table(depth)
    assert all("ScanNet" in cell for cell in header[1:])
    assert rows == [["4DS-B (reference point)", "0.164", "0.151"], ["4DS-e (reference point)", "0.094", "0.075"]]


def test_moog_cards_quote_no_numbers(cards):
    for name, entry in CATALOG.items():
        if entry.family != "moog":
            continue
        results = section(cards[name], "Results")
        assert "|" not in results and not re.search(r"\d\.\d", results.replace("2411.05927", "")), name
        assert "https://arxiv.org/abs/2411.05927" in results and "on-the-grid baselines" in results
        for metric in ("average Jaccard", "absolute relative error", "average IoU"):
            assert metric in results


# ----------------------------------------------------------------------------------------------
# Usage, determinism, custom cards


def test_usage_blocks_compile_and_load_the_right_name(cards):
    for name, entry in CATALOG.items():
        blocks = code_blocks(cards[name], "python")
        assert len(blocks) == 1, name
        compile(blocks[0], f"{name} usage", "exec")
        if entry.original_file is None:
            assert f'FourDSConfig.from_pretrained("{name}")' in blocks[0] and "FourDSModel(config)" in blocks[0]
            assert not code_blocks(cards[name], "bash")
        else:
            assert f'{entry.architecture}.from_pretrained("{name}")' in blocks[0]
            assert f'model="{name}"' in blocks[0] and "clip.mp4" in blocks[0]
            (cli,) = code_blocks(cards[name], "bash")
            assert cli.startswith("fourd-hub ") and f"--model {name} " in cli


def test_render_is_deterministic_and_repo_id_is_used():
    entry = CATALOG["moog-ego4d-box-tracking"]
    assert render_model_card(entry) == render_model_card(entry)
    card = render_model_card(entry, repo_id="someone/boxes")
    (block,) = code_blocks(card, "python")
    assert 'MooGForBoxTracking.from_pretrained("someone/boxes")' in block and '"moog-ego4d-box-tracking"' not in block
    assert "--model someone/boxes " in card


def test_custom_card_names_base_model_and_repo_id():
    config = FourDSConfig.from_preset("B", readout={"task": "depth", "decoding_patch_size": [2, 8, 8]})
    text = render_custom_model_card(
        config, architecture="FourDSForDepthEstimation", repo_id="me/depth-finetuned", base_model="4ds-b-dist-e", tags=["scannet"]
    )
    assert text == render_custom_model_card(
        config, architecture="FourDSForDepthEstimation", repo_id="me/depth-finetuned", base_model="4ds-b-dist-e", tags=["scannet"]
    )
    for metadata in (card_metadata(text), ModelCard(text).data.to_dict()):
        assert metadata["base_model"] == "fourd-hub/4ds-b-dist-e"
        assert "pipeline_tag" not in metadata and {"4ds", "depth-estimation", "scannet"} <= set(metadata["tags"])
        assert metadata["fourd_hub"]["architecture"] == "FourDSForDepthEstimation"
    (block,) = code_blocks(text, "python")
    compile(block, "custom usage", "exec")
    assert 'FourDSForDepthEstimation.from_pretrained("me/depth-finetuned")' in block
    assert "width 768, depth 12" in text and "fourd-hub/4ds-b-dist-e" in text
    other = render_custom_model_card(config, architecture="FourDSForDepthEstimation", base_model="someone/else")
    assert card_metadata(other)["base_model"] == "someone/else"


def test_custom_card_of_a_standalone_head():
    # A head is its family's config with the readout, use_pretrained_backbone and the backbone it reads.
    head = MooGConfig(readout={"task": "boxes"}, num_frames=16, use_pretrained_backbone=True, backbone="moog-ego4d")
    text = render_custom_model_card(head, architecture="MooGForBoxTracking", repo_id="me/boxes-head", base_model="moog-ego4d")
    (block,) = code_blocks(text, "python")
    compile(block, "head usage", "exec")
    # from_pretrained loads the backbone its config.json names with it: no from_backbone, no backbone argument.
    assert 'MooGForBoxTracking.from_pretrained("me/boxes-head").eval()' in block
    assert "from_backbone" not in block and "snapshot_download" not in block and "backbone=" not in block
    assert 'pipeline("box-tracking", model="me/boxes-head")(' in block and "query_boxes=queries" in block
    assert "torch.rand(1, 16, 3, 128, 128)" in block and "generator=torch.Generator().manual_seed(0)" in block
    (cli,) = code_blocks(text, "bash")
    assert cli.startswith("fourd-hub box-tracking clip.mp4 --model me/boxes-head --boxes ") and "--backbone" not in cli
    assert "A readout head on its own (MooG): it reads 512-wide features of backbone `moog-ego4d`." in text
    metadata = card_metadata(text)
    assert "pipeline_tag" not in metadata and {"moog", "box-tracking", "arxiv:2411.05927"} <= set(metadata["tags"])
    assert metadata["base_model"] == "fourd-hub/moog-ego4d"
    assert metadata["fourd_hub"]["readout_task"] == "boxes" and metadata["fourd_hub"]["family"] == "moog"
    # Without a backbone in its config, the snippets pass one.
    orphan = MooGConfig(readout={"task": "points"}, use_pretrained_backbone=True)
    (block,) = code_blocks(render_custom_model_card(orphan, architecture="MooGForPointTracking"), "python")
    compile(block, "orphan head usage", "exec")
    assert 'MooGForPointTracking.from_pretrained("path/to/this/model", backbone="path/to/converted/backbone")' in block


def test_custom_card_of_a_moog_backbone():
    text = render_custom_model_card(MooGConfig(), architecture="MooGModel", repo_id="me/moog")
    metadata = card_metadata(text)
    assert "pipeline_tag" not in metadata and {"moog", "feature-extraction", "arxiv:2411.05927"} <= set(metadata["tags"])
    (block,) = code_blocks(text, "python")
    compile(block, "moog usage", "exec")
    assert "generator=torch.Generator().manual_seed(0)" in block and "outputs.last_hidden_state.shape" in block
    # A backbone with its pixel decoder is shown predicting frames.
    assert 'pipeline("video-reconstruction", model="me/moog")' in block
    assert "1024 scene tokens of width 512, with a pixel decoder" in text
    assert "@inproceedings{vansteenkiste2024moving" in section(text, "Citation") and "@misc{carreira2024scaling" in section(text, "Citation")
    (block,) = code_blocks(render_custom_model_card(MooGConfig(decoder=None), architecture="MooGModel"), "python")
    assert 'pipeline("video-feature-extraction", model="path/to/this/model")' in block


def test_custom_card_errors():
    with pytest.raises(ValueError, match="FourDSForPreTraining"):
        render_custom_model_card(FourDSConfig(), architecture="FourDSForPreTraining")
    with pytest.raises(ValueError, match="MooGForPointTracking"):
        render_custom_model_card(FourDSConfig(), architecture="MooGForPointTracking")
    with pytest.raises(TypeError, match="dict"):
        render_custom_model_card({"hidden_size": 8}, architecture="FourDSModel")


# ----------------------------------------------------------------------------------------------
# Provenance


def test_provenance_round_trips_through_a_card(tmp_path):
    provenance = ConversionProvenance(
        original_file="scaling4d_dist_b.npz",
        original_url=CATALOG["4ds-b-dist-e"].original_url,
        original_sha256="ab" * 32,
        layout="4DS backbone under 'params/'",
        model_class="FourDSModel",
        num_parameters=87_439_104,
        dtype="bfloat16",
        fourd_hub_version="9.9.9",
    )
    assert ConversionProvenance.from_metadata(provenance.to_metadata()) == provenance
    card = render_model_card(CATALOG["4ds-b-dist-e"], provenance)
    (tmp_path / "README.md").write_text(card, encoding="utf-8")
    assert read_provenance(tmp_path / "README.md") == provenance
    assert ModelCard(card).data.to_dict()["fourd_hub"]["provenance"]["original_sha256"] == "ab" * 32
    text = section(card, "Conversion provenance")
    assert "ab" * 32 in text and "87,439,104" in text and "bfloat16" in text and "9.9.9" in text
    # Without provenance the card says how the sha256 gets recorded, and reads back as None.
    (tmp_path / "plain.md").write_text(render_model_card(CATALOG["4ds-b-dist-e"]), encoding="utf-8")
    assert read_provenance(tmp_path / "plain.md") is None
    plain = section(render_model_card(CATALOG["4ds-e"]), "Conversion provenance")
    assert "- sha256 of the file converted: computed and recorded in the card by `fourd-hub convert`" in plain
    assert NOT_PINNED in text and "- sha256 of the file converted: `" + "ab" * 32 + "`." in text
    assert read_provenance(tmp_path / "missing.md") is None
    with pytest.raises(ValueError, match="lacks"):
        ConversionProvenance.from_metadata({"fourd_hub": {"provenance": {"original_file": "x.npz"}}})


NOT_PINNED = "- Checksum: not pinned (no sha256 published for the original file; checked by size floor and strict conversion)."


def test_cards_say_plainly_that_released_files_are_not_pinned(cards):
    import dataclasses

    for name, entry in CATALOG.items():
        text = section(cards[name], "Conversion provenance")
        if entry.has_weights:
            assert entry.sha256 is None, f"{name}: the catalog pins a sha256 now; update this test"
            assert NOT_PINNED in text and "`FOURD_HUB_REQUIRE_CHECKSUM=1` refuses such downloads" in text, name
        else:
            assert "not pinned" not in text, name
    # An entry with a published sha256 says it is pinned, and nothing about "not pinned".
    pinned = dataclasses.replace(CATALOG["4ds-e"], sha256="AB" * 32)
    text = section(render_model_card(pinned), "Conversion provenance")
    assert f"- Checksum: sha256 `{'ab' * 32}` pinned in the catalog (a download that differs is refused)." in text
    assert "not pinned" not in text and "sha256 of the file converted" not in text


def _write_card(directory, result):
    from fourd_hub.cards import write_conversion_card

    write_conversion_card(result, directory)


def test_real_conversion_records_provenance(reference, cases, tmp_path):
    from conftest import config_from_case

    source = reference / "fourds_tiny_checkpoint.npz"
    # The converter returns the provenance; the caller writes the card inside the staging directory.
    result = convert_checkpoint(
        source, tmp_path / "out", config=config_from_case(cases["fourds_tiny"]), progress=False, on_staged=_write_card
    )
    card_path = tmp_path / "out" / "README.md"
    provenance = read_provenance(card_path)
    assert provenance is not None
    assert provenance.original_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert provenance.original_file == source.name and provenance.layout == result.layout
    assert provenance.model_class == "FourDSForDepthEstimation" and provenance.dtype == "float32"
    model = FourDSForDepthEstimation.from_pretrained(tmp_path / "out")
    assert provenance.num_parameters == sum(t.numel() for t in model.state_dict().values()) == result.num_parameters
    assert provenance.fourd_hub_version == fourd_hub.__version__
    text = card_path.read_text(encoding="utf-8")
    assert ModelCard(text).data.to_dict()["fourd_hub"]["architecture"] == "FourDSForDepthEstimation"
    (block,) = code_blocks(text, "python")
    compile(block, "converted usage", "exec")


def test_conversion_with_a_catalog_name_writes_the_catalog_card(reference, cases, tmp_path):
    """A MooG head converted under its catalog name gets that entry's card plus the provenance."""
    source = reference / "moog_tiny_points_checkpoint.npz"
    result = convert_checkpoint(source, tmp_path / "head", name="moog-ego4d-point-tracking", progress=False, on_staged=_write_card)
    text = (tmp_path / "head" / "README.md").read_text(encoding="utf-8")
    entry = CATALOG["moog-ego4d-point-tracking"]
    provenance = read_provenance(tmp_path / "head" / "README.md")
    assert text == render_model_card(entry, provenance)
    assert provenance.original_url == entry.original_url and provenance.num_parameters == result.num_parameters
    assert card_metadata(text)["base_model"] == "fourd-hub/moog-ego4d"
