"""Bad protocol/objects input: one-line error naming the problem and fix, exit 2, nothing written."""
import sys
from pathlib import Path

import pytest
import yaml

from benchbot import cli
from benchbot.core.errors import BenchbotError

REPO = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((REPO / "protocols" / "paper.yaml").read_text())
OBJECTS = yaml.safe_load((REPO / "objects.yaml").read_text())
REC = REPO / "benchbot" / "data" / "recordings" / "default"


def _run(argv, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["benchbot", *argv])
    with pytest.raises(SystemExit) as e:
        cli.main()
    return e.value.code, capsys.readouterr().err


def _mutated(tmp, proto_change=None, objects_change=None, raw=None):
    proto = yaml.safe_load(yaml.safe_dump(PAPER))
    objs = yaml.safe_load(yaml.safe_dump(OBJECTS))
    if proto_change:
        proto_change(proto)
    if objects_change:
        objects_change(objs)
    (tmp / "objects.yaml").write_text(yaml.safe_dump(objs))
    proto["objects_file"] = "objects.yaml"
    path = tmp / "p.yaml"
    path.write_text(raw if raw is not None else yaml.safe_dump(proto))
    return path


def _set(*keys, value):
    def change(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return change


def _delete(*keys):
    def change(d):
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]
    return change


BAD = {
    "unknown top-level key": (dict(proto_change=_set("speeed", value=1)), "unknown key 'speeed'"),
    "unknown nested key": (dict(proto_change=_set("motion", "lift_heigth_m", value=0.1)), "motion.lift_heigth_m"),
    "wrong type": (dict(proto_change=_set("trials_per_object", value="five")), "trials_per_object"),
    "missing key": (dict(proto_change=_delete("success")), "missing key 'success'"),
    "negative opening": (dict(proto_change=_set("gripper", "opening_m", value=-0.1)), "gripper.opening_m"),
    "speed above cap": (dict(proto_change=_set("motion", "speed_mps", value=0.9)), "max_speed_mps"),
    "duplicate method": (dict(proto_change=_set("methods", value=["gqstn", "gqstn"])), "duplicate"),
    "empty objects list": (dict(proto_change=_set("objects", value=[])), "objects"),
    "object not in objects file": (dict(proto_change=_set("objects", value=["mug", "teapot"])), "teapot"),
    "duplicate object id": (dict(objects_change=lambda o: o["objects"].append(dict(o["objects"][0]))),
                            "duplicate object ids"),
    "bad object id": (dict(objects_change=lambda o: o["objects"][0].update(id="Mustard Bottle")), "objects.0.id"),
    "object mass wrong type": (dict(objects_change=lambda o: o["objects"][1].update(mass_kg="heavy")), "mass_kg"),
    "invalid yaml": (dict(raw="name: [unclosed\n"), "not valid YAML"),
    "not a mapping": (dict(raw="- just\n- a list\n"), "mapping"),
    "unknown detector name": (dict(proto_change=_set("methods", value=["gqstn", "teleport"])),
                              "'teleport' is not a known detector"),
    "protocol name with markup": (dict(proto_change=_set("name", value="[/]paper")), "key 'name'"),
    "threshold out of range": (dict(proto_change=_set("robustness", "threshold", value=1.5)), "robustness.threshold"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_protocol_input_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys, monkeypatch):
    kwargs, expected = BAD[case]
    path = _mutated(tmp_path, **kwargs)
    db = tmp_path / "out" / "r.db"
    for argv in (["validate", str(path)],
                 ["run", "--sim", "-p", str(path), "--db", str(db), "--results", str(tmp_path / "out")]):
        code, err = _run(argv, capsys, monkeypatch)
        assert code == 2, err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert expected in lines[0] and "fix:" in lines[0], err
    assert not (tmp_path / "out").exists()


def test_missing_protocol_file(tmp_path, capsys, monkeypatch):
    code, err = _run(["validate", str(tmp_path / "nope.yaml")], capsys, monkeypatch)
    assert code == 2 and "file not found" in err


def test_cli_usage_error_is_exit_2(capsys, monkeypatch):
    code, _ = _run(["run", "--max-trials", "many"], capsys, monkeypatch)
    assert code == 2


def test_validate_paper_protocol(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["benchbot", "validate"])
    cli.main()
    assert "180 trials" in capsys.readouterr().out


def test_duplicate_ids_among_40k_objects_are_named_on_one_line(tmp_path, capsys, monkeypatch):
    """The duplicate checks count once (they compared every id with every other: 47 s for 40k objects).
    40k ids validate here; the duplicates are still found, named, and the line stays short."""
    from benchbot.config.protocol import ObjectsFile, validate_mapping

    objs = [{"id": f"o{i}", "name": f"object {i}", "size_m": [0.1, 0.1, 0.1], "mass_kg": 0.1} for i in range(40_000)]
    assert len(validate_mapping(ObjectsFile, tmp_path / "o.yaml", {"objects": objs}).objects) == 40_000
    with pytest.raises(BenchbotError, match=r"duplicate object ids: o17, o39999$"):
        validate_mapping(ObjectsFile, tmp_path / "o.yaml", {"objects": [*objs, objs[39_999], objs[17]]})
    path = _mutated(tmp_path, objects_change=lambda o: o["objects"].extend([dict(x) for x in o["objects"]]))
    code, err = _run(["validate", str(path)], capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "duplicate object ids: " in err and f"({len(OBJECTS['objects'])} in all)" in err


@pytest.mark.parametrize("name", ["[/]", "[bold]x[/bold]", ":thumbs_up:"])
def test_markup_and_emoji_codes_in_user_text_print_as_typed(name, tmp_path, capsys, monkeypatch):
    """Paths, ids and names are data: rich must neither interpret `[/]` (a traceback) nor `:code:`."""
    folder = tmp_path / name
    folder.mkdir(parents=True)
    path = _mutated(folder)
    monkeypatch.setattr(sys, "argv", ["benchbot", "validate", str(path)])
    cli.main()
    assert f"ok: {path} —" in capsys.readouterr().out
    for argv, shown in ((["validate", str(folder / "missing.yaml")], str(folder / "missing.yaml")),
                        (["detect", str(REC), "-m", name, "--no-robustness", "-o", str(folder / "o.png")],
                         f"unknown detector '{name}'"),
                        (["validate", str(_mutated(folder, proto_change=_set("objects", value=["mug", name])))],
                         f"unknown object id '{name}'")):
        code, err = _run(argv, capsys, monkeypatch)
        assert code == 2 and shown in err, err
    overlay = folder / f"{name}.png"
    monkeypatch.setattr(sys, "argv", ["benchbot", "detect", str(REC), "-m", "centroid", "--no-robustness", "-o",
                                      str(overlay)])
    cli.main()
    assert overlay.is_file() and str(overlay) in capsys.readouterr().out


def test_commands_leave_the_working_directory_as_they_found_it(tmp_path, capsys, monkeypatch):
    """validate, detect (-o elsewhere), run --sim (into --db/--results elsewhere), runs and report run
    from an empty folder and create nothing there."""
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    proto = _mutated(tmp_path, proto_change=lambda p: p.update(objects=["mug"], methods=["centroid"],
                                                               trials_per_object=1))
    db = out / "r.db"
    for argv in (["validate", str(proto)],
                 ["detect", str(REC), "-m", "centroid", "--no-robustness", "-o", str(out / "grasp.png")],
                 ["run", "--sim", "-p", str(proto), "--db", str(db), "--results", str(out / "res"),
                  "--no-robustness"],
                 ["runs", "--db", str(db)], ["report", "--db", str(db)]):
        monkeypatch.setattr(sys, "argv", ["benchbot", *argv])
        try:
            cli.main()
        except SystemExit as e:
            assert e.code == 0, capsys.readouterr().err
        assert sorted(cwd.iterdir()) == [], argv
    assert (out / "grasp.png").is_file() and db.is_file()


def test_detector_options_are_typed_from_the_detector_signature(monkeypatch):
    """`--option key=value` text becomes the parameter's type; what cannot, is refused in one line."""
    from pathlib import Path as P

    from benchbot import detectors
    from benchbot.harness.detect import detector_options

    class Typed:
        def __init__(self, n: int = 1, x_m: float = 0.1, flag: bool = False, path: str | P | None = None,
                     size: int | None = None, scorer: object = None, free=None) -> None:
            pass

    class Forwarding:
        forwards_options_to = "typed"

        def __init__(self, **options) -> None:
            pass

    class Plugin:
        def __init__(self, **anything) -> None:
            pass

    monkeypatch.setattr(detectors, "plugin_targets", lambda: {"typed": lambda: Typed, "fwd": lambda: Forwarding,
                                                              "plugin": lambda: Plugin})
    got = detector_options("typed", {"n": "12", "x_m": "1e-2", "flag": "yes", "path": " a b.pt ", "size": "none",
                                     "free": "[1, 2]"})
    assert got == {"n": 12, "x_m": 0.01, "flag": True, "path": "a b.pt", "size": None, "free": [1, 2]}
    assert detector_options("fwd", {"n": "3"}) == {"n": 3}
    assert detector_options("plugin", {"k": "1.5"}) == {"k": 1.5}
    for method, raw, words in (("typed", {"n": "1.5"}, "n='1.5' is not an integer"),
                               ("typed", {"n": "99999999999999999999"}, "not an integer"),
                               ("typed", {"x_m": "nan"}, "not a finite number"), ("typed", {"flag": "2"}, "true/false"),
                               ("typed", {"path": "  "}, "not text"), ("typed", {"scorer": "1"}, "cannot be set"),
                               ("typed", {"nope": "1"}, "typed has no option 'nope'"),
                               ("fwd", {"nope": "1"}, "typed has no option 'nope'"),
                               ("plugin", {"k": "[unclosed"}, "not a valid value")):
        with pytest.raises(BenchbotError, match=words):
            detector_options(method, raw)
