"""The tfp-flows command end to end on tiny settings: training as a subprocess (the console
script, as a shell runs it), the other commands in-process through ``cli.main`` (what the
console script calls), which spares each a start of TensorFlow."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import tfp_flows
from tfp_flows import cli

TINY = ["--epochs", "1", "--batch-size", "64", "--num-steps", "2", "--hidden", "8", "--no-jit"]


def tfp_flows_cmd(*args, cwd):
    exe = shutil.which("tfp-flows") or os.path.join(os.path.dirname(sys.executable), "tfp-flows")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def tfp_flows_main(*args, cwd, capsys):
    """``(exit status, stdout, stderr)`` of ``cli.main(args)`` run in ``cwd``."""
    here = os.getcwd()
    os.chdir(cwd)
    try:
        code = cli.main([str(arg) for arg in args])
    finally:
        os.chdir(here)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    table = rng.standard_normal((300, 3)).astype(np.float32)
    np.savetxt(root / "table.csv", table, delimiter=",", header="a,b,c", comments="")
    np.save(root / "pixels.npy", rng.integers(0, 4, (80, 4, 4, 1)).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def trained(workdir):
    result = tfp_flows_cmd("train", "--data", "table.csv", *TINY, "--out", "run", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return workdir / "run", result


def test_train_writes_model_history_pictures_export_and_prints_scores(trained):
    out, result = trained
    assert "test NLL" in result.stdout and "bits/dim" in result.stdout
    for name in ("model.keras", "history.json", "metrics.json", "samples.npy", "loss.png",
                 "export/1/saved_model.pb"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["test_nll"])
    assert not list(out.parent.glob(".run.partial-*"))


def test_train_glow_on_integer_images(workdir, capsys):
    code, _, err = tfp_flows_main("train", "--data", "pixels.npy", *TINY, "--num-levels", "1",
                                  "--out", "images", cwd=workdir, capsys=capsys)
    assert code == 0, err
    for name in ("samples.png", "temperatures.png", "normalizing.png", "interpolation.png"):
        assert (workdir / "images" / name).exists(), name
    flow = tfp_flows.io.load_flow(workdir / "images" / "model.keras")
    assert flow.discrete and flow.num_values == 4
    code, _, err = tfp_flows_main("sample", workdir / "images" / "model.keras", "-n", "8",
                                  "--out", "image-draws", cwd=workdir, capsys=capsys)
    assert code == 0, err
    for name in ("samples.png", "temperatures.png", "normalizing.png"):
        assert (workdir / "image-draws" / name).exists(), name


def test_evaluate_sample_export(trained, workdir, capsys):
    out, _ = trained
    code, stdout, err = tfp_flows_main("evaluate", out / "model.keras", "--data", "table.csv",
                                       cwd=workdir, capsys=capsys)
    assert code == 0 and "test NLL" in stdout, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"{metrics['test_nll']:.4f}" in stdout  # same split, same score
    code, _, err = tfp_flows_main("sample", out / "model.keras", "-n", "16", "--temperature",
                                  "0.5", "--out", "draws", cwd=workdir, capsys=capsys)
    assert code == 0, err
    assert np.load(workdir / "draws" / "samples.npy").shape == (16, 3)
    code, _, err = tfp_flows_main("export", out / "model.keras", "--out", "served",
                                  "--next-version", cwd=workdir, capsys=capsys)
    assert code == 0, err
    assert (workdir / "served" / "1" / "saved_model.pb").exists()


def write_bad_files(root):
    (root / "words.csv").write_text("a,b\n1.0,2.0\n3.0,oops\n")
    (root / "holes.csv").write_text("1.0,2.0\nnan,1.0\n3.0,4.0\n5.0,inf\n")
    np.save(root / "odd.npy", np.zeros((20, 6, 6, 1), np.uint8))
    (root / "broken.keras").write_bytes(b"PK\x03\x04 not really a zip")
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(root / "dense.keras")


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "missing.npy"], "missing.npy: no such data file"),
    (["train", "--data", "moonz"], "unknown data set 'moonz'"),
    (["train", "--data", "words.csv"], "'oops' in data row 2, column 2 is not a number"),
    (["train", "--data", "holes.csv"], "2 of 4 rows contain NaN or infinity"),
    (["train", "--data", "odd.npy", "--num-levels", "2"], "cannot be halved 2 times"),
    (["train", "--levels", "256"], "--levels was renamed --num-values"),
    (["evaluate", "dense.keras"], "holds a Sequential, not a tfp_flows Flow"),
    (["evaluate", "broken.keras"], "not a readable .keras archive"),
    (["export", "absent.keras"], "absent.keras: no such model file"),
])
def test_bad_input_exits_2_with_one_line_and_no_output(args, message, tmp_path, monkeypatch,
                                                      capsys):
    """In-process (``main``, what the console script calls): one subprocess below checks
    that the exit code and stderr reach the shell as they are."""
    write_bad_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = [*args, "--out" if args[0] != "evaluate" else "--seed",
            "result" if args[0] != "evaluate" else "0"]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("tfp-flows: error:"), captured.err
    assert message in lines[0]
    assert "Traceback" not in captured.err and not captured.out.strip()
    assert not (tmp_path / "result").exists() and not list(tmp_path.glob(".result.partial-*"))


def test_bad_input_from_the_shell_exits_2_with_one_line(tmp_path):
    write_bad_files(tmp_path)
    result = tfp_flows_cmd("train", "--data", "holes.csv", "--out", "result", cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "2 of 4 rows contain NaN or infinity" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "result").exists()
