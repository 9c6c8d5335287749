"""The speed benchmark runs and prints its table (no assertion on time: speed is measured by the
command, not by tests)."""
from benchbot.bench_models import main


def test_bench_models_prints_every_stage(capsys) -> None:
    main(["--presets", "small", "--repeats", "1", "--threads", "1", "--no-onnx"])
    out = capsys.readouterr().out
    assert "random weights (timing only)" in out
    for stage in ("trans STN", "rot STN", "scale STN", "crop 96×96 + frozen GQ-CNN", "TOTAL detect (PyTorch fp32)",
                  "decode best cell"):
        assert stage in out, stage
