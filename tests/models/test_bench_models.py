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


def test_bench_models_times_the_shipped_architecture(capsys) -> None:
    from benchbot.bench_models import build_gqstn, shipped_config

    assert build_gqstn("shipped").cfg.trans_refine == shipped_config("gqstn").get("trans_refine", 0)
    main(["--presets", "shipped", "--repeats", "1", "--threads", "1", "--no-onnx"])
    out = capsys.readouterr().out
    assert "TOTAL detect (PyTorch fp32)" in out and "TOTAL detect, 8 views (PyTorch fp32)" in out
    if shipped_config("gqstn").get("trans_refine"):
        assert "translation refinement pass(es)" in out
