"""The catalog of named checkpoints: the single source that the CLI, conversion, ``from_pretrained``
and the model cards read.

Every released original file (architecture.md section 1) has an entry, plus a config-only entry
per 4DS size of Table 1 (no released weights: users pretrain them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ORIGINAL_URL_BASE = "https://storage.googleapis.com/representations4d/checkpoints/"
DEFAULT_HUB_ORG = "fourd-hub"
CODE_LICENSE = "Apache-2.0"
WEIGHTS_LICENSE = "CC-BY-4.0"
#: Why a file without a catalog sha256 is still accepted, as the model cards and the download log say it.
NOT_PINNED_REASON = "no sha256 published for the original file; checked by size floor and strict conversion"


@dataclass(frozen=True)
class InputSpec:
    """What a checkpoint expects: clip length, frame size (height, width), value range, layout."""

    num_frames: int
    image_size: tuple[int, int]
    value_range: tuple[float, float] = (0.0, 1.0)
    layout: str = "pixel_values_videos (B, T, C, H, W), RGB float, no mean/std normalisation"


@dataclass(frozen=True)
class CatalogEntry:
    """One named checkpoint.

    Attributes:
        name: our name (``4ds-e``), used by ``from_pretrained``, the CLI and the hub repo id.
        family: the family's registry name (``"fourds"``, ``"moog"``, ``"rvm"``).
        architecture: the fourd_hub model class its weights load into.
        preset: the config preset (a 4DS size of Table 1, a MooG preset name, an RVM size).
        description: one line for listings and model cards.
        original_file: file name under :data:`ORIGINAL_URL_BASE`; ``None`` for config-only entries.
        file_size_mb: approximate size of the original file (architecture.md), for messages and
            the free-space check.
        file_size: exact size of the original file in bytes when known (downloads are checked
            against it before and after streaming).
        sha256: checksum of the original file when known (downloads are refused on a mismatch).
            Google DeepMind publishes none, so the released entries have none: their downloads
            are "not pinned" (:attr:`checksum_note`), and ``FOURD_HUB_REQUIRE_CHECKSUM=1``
            refuses them.
        num_parameters: parameter count (from the key manifests; they match the paper's Table 1).
        input_spec: expected input.
        config_overrides: fields set on top of the preset (e.g. readout settings).
        base_model: catalog name of the backbone a head checkpoint was trained on.
        license: license of the weights.
    """

    name: str
    family: str
    architecture: str
    preset: str
    description: str
    num_parameters: int
    input_spec: InputSpec
    original_file: str | None = None
    file_size_mb: int | None = None
    file_size: int | None = None
    sha256: str | None = None
    config_overrides: dict[str, Any] = field(default_factory=dict)
    base_model: str | None = None
    license: str = WEIGHTS_LICENSE

    @property
    def original_url(self) -> str | None:
        """The file's official URL (downloads use ``fourd_hub.hub.original_url``, which honours mirrors)."""
        return ORIGINAL_URL_BASE + self.original_file if self.original_file else None

    @property
    def checksum_pinned(self) -> bool:
        """Whether the original file's sha256 is known (downloads are then verified against it)."""
        return self.sha256 is not None

    @property
    def checksum_note(self) -> str:
        """How a download of the original file is checked, in one phrase (the card and the download log)."""
        if self.sha256 is not None:
            return f"checksum: sha256 `{self.sha256.lower()}` pinned in the catalog (a download that differs is refused)"
        return f"checksum: not pinned ({NOT_PINNED_REASON})"

    def hub_repo_id(self, org: str = DEFAULT_HUB_ORG) -> str:
        return f"{org}/{self.name}"

    @property
    def has_weights(self) -> bool:
        return self.original_file is not None


_VIDEO_224 = InputSpec(num_frames=16, image_size=(224, 224))
_VIDEO_256 = InputSpec(num_frames=16, image_size=(256, 256))
_MOOG_INPUT = InputSpec(num_frames=16, image_size=(128, 128))

# Parameter counts: sums over the key manifests (shared/reference/manifests; equal to Table 1).
_FOURDS_SIZE_PARAMS = {
    "S": 22_485_888, "B": 87_439_104, "L": 305_488_896, "H": 633_652_480,
    "G": 1_846_529_664, "e": 3_809_464_064, "j": 21_493_977_088,
}

_ENTRIES: list[CatalogEntry] = [
    CatalogEntry(
        name="4ds-b-dist-e", family="fourds", architecture="FourDSModel", preset="B",
        description="4DS ViT-B backbone distilled from 4DS-e",
        num_parameters=_FOURDS_SIZE_PARAMS["B"], input_spec=_VIDEO_224,
        original_file="scaling4d_dist_b.npz", file_size_mb=334,
    ),
    CatalogEntry(
        name="4ds-e", family="fourds", architecture="FourDSModel", preset="e",
        description="4DS ViT-e backbone (3.8B parameters)",
        num_parameters=_FOURDS_SIZE_PARAMS["e"], input_spec=_VIDEO_224,
        original_file="scaling4d_e.npz", file_size_mb=14_000,
    ),
    CatalogEntry(
        name="4ds-b-dist-e-scannet-depth", family="fourds", architecture="FourDSForDepthEstimation", preset="B",
        description="4DS-B-dist-e with its ScanNet depth readout (metres, 16x224x224 clips)",
        num_parameters=105_026_944, input_spec=_VIDEO_224,
        original_file="scaling4d_dist_b_depth.npz", file_size_mb=420,
        config_overrides={"readout": {"task": "depth", "decoding_patch_size": [2, 8, 8]}},
        base_model="4ds-b-dist-e",
    ),
    CatalogEntry(
        name="moog-ego4d", family="moog", architecture="MooGModel", preset="ego4d",
        description="MooG backbone trained on Ego4D (encoder, recurrent core, decoder)",
        num_parameters=36_967_507, input_spec=_MOOG_INPUT,
        original_file="moog_ego4d_backbone_ckpt_164335139.npz", file_size_mb=140,
    ),
    CatalogEntry(
        name="moog-ego4d-point-tracking", family="moog", architecture="MooGForPointTracking", preset="ego4d",
        description="MooG point-tracking readout head",
        num_parameters=11_338_760, input_spec=_MOOG_INPUT,
        original_file="moog_ego4d_point_track_head_ckpt_164335139.npz", base_model="moog-ego4d",
        config_overrides={"readout": {"task": "points", "num_frames": 16}},  # the head's 16-frame temporal embedding
    ),
    CatalogEntry(
        name="moog-ego4d-box-tracking", family="moog", architecture="MooGForBoxTracking", preset="ego4d",
        description="MooG box-tracking readout head",
        num_parameters=11_424_832, input_spec=_MOOG_INPUT,
        original_file="moog_ego4d_box_track_head_ckpt_164335139.npz", base_model="moog-ego4d",
        config_overrides={"readout": {"task": "boxes", "num_frames": 16}},
    ),
]

# RVM: every released file holds the encoder, the recurrent core and the decoder (rvm.md section 1).
# Parameter counts: sums over manifests/rvm.json (= file size / 4 bytes). The README's "# Params"
# counts the encoder and core only (34M / 375M / 743M for S / L / H); its 117M for B is not
# consistent with its own file (125.8M for encoder and core, 160.3M in all).
_RVM_FILES = {  # preset: (original file, parameters, file size in MB)
    "S": ("pretrain_rvm_small16_256_204031069.npz", 67_480_448, 270),
    "B": ("pretrain_rvm_base16_256_203916225.npz", 160_270_848, 641),
    "L": ("pretrain_rvm_large16_256_202497301.npz", 409_069_824, 1_636),
    "H": ("pretrain_rvm_huge16_256_203854202.npz", 776_895_488, 3_108),
}
for _size, (_file, _params, _megabytes) in _RVM_FILES.items():
    _ENTRIES.append(
        CatalogEntry(
            name=f"rvm-{_size.lower()}", family="rvm", architecture="RVMModel", preset=_size,
            description=f"RVM-{_size}: ViT-{_size}/16 encoder, recurrent core and masked-reconstruction decoder",
            num_parameters=_params, input_spec=_VIDEO_256, original_file=_file, file_size_mb=_megabytes,
        )
    )

# Config-only entries, one per Table 1 size (the released 4DS-e file is also "4ds-e" above).
for _size, _params in _FOURDS_SIZE_PARAMS.items():
    if _size == "e":
        continue
    _ENTRIES.append(
        CatalogEntry(
            name=f"4ds-{_size.lower()}", family="fourds", architecture="FourDSModel", preset=_size,
            description=f"4DS-{_size} configuration (Table 1; no released weights)",
            num_parameters=_params, input_spec=_VIDEO_256 if _size == "j" else _VIDEO_224,
        )
    )

CATALOG: dict[str, CatalogEntry] = {entry.name: entry for entry in _ENTRIES}

def get_entry(name: str) -> CatalogEntry:
    """The catalog entry called ``name`` (case-insensitive); a clear error lists the known names."""
    entry = CATALOG.get(name) or CATALOG.get(name.lower())
    if entry is None:
        known = ", ".join(sorted(CATALOG))
        raise KeyError(f"{name!r} is not in the fourd_hub catalog; known names: {known}")
    return entry


def entry_for_file(file_name: str) -> CatalogEntry | None:
    """The entry whose original file is called ``file_name`` (the basename), if any."""
    for entry in CATALOG.values():
        if entry.original_file == file_name:
            return entry
    return None
