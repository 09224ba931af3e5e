"""The engine benchmark runs (on a small workload of the tiny model) and prints its ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_benchmark_prints_its_ratios() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "engine_staggered.py"),
            "--requests",
            "3",
            "--seconds",
            "0.5",
            "--gap",
            "0.05",
            "--slots",
            "2",
            "--cancel-rows",
            "2",
            "--peer",
            "--parts",
            "policies,burst,cancel",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    for line in (
        "continuous:",
        "static:",
        "one at a time:",
        "throughput continuous / static",
        "p95 first audio / solo",
        "cancel: step",
        "audiocraft MusicGen.generate per request",
    ):
        assert line in out, out


def test_the_diffusion_benchmark_prints_its_ratios() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "diffusion.py")]
        + ["--seconds", "1", "--steps", "1", "--longest", "2", "--models", "ace-step"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    assert "ace-step (tiny):" in out and "s per audio s" in out and "4 sequential" in out, out


def test_the_real_shape_timings_run_their_own_code_at_small_sizes() -> None:
    """What the GPU check times at the real sizes (bench/gpu/run.py --diffusion), run through
    here at small widths so a wrong call is found before a GPU's minutes are spent."""
    sys.path.insert(0, str(ROOT))
    from bench.diffusion import real_shape_stable_audio, real_shape_stable_audio_3

    small_dit = {
        "sample_size": 64,
        "num_layers": 1,
        "attention_head_dim": 8,
        "num_attention_heads": 2,
        "num_key_value_attention_heads": 1,
        "cross_attention_dim": 16,
        "time_proj_dim": 8,
        "global_states_input_dim": 32,
        "cross_attention_input_dim": 16,
    }
    small_vae = {"decoder_channels": 4, "channel_multiples": [1, 1, 1, 1, 1]}
    sao = real_shape_stable_audio(1.0, 8, dit_sizes=small_dit, vae_sizes=small_vae)
    small_dit3 = {
        "io_channels": 8,
        "embed_dim": 32,
        "depth": 1,
        "num_heads": 4,
        "cond_token_dim": 16,
        "global_cond_dim": 16,
        "local_add_cond_dim": 9,
        "timestep_features_dim": 16,
        "num_memory_tokens": 4,
    }
    small_same = {
        "encoder_channels": 16,
        "encoder_c_mults": (1,),
        "encoder_transformer_depths": (1,),
        "latent_dim": 8,
        "dim_heads": 8,
    }
    sa3 = real_shape_stable_audio_3(30.0, 8, dit_sizes=small_dit3, vae_sizes=small_same)
    for result in (sao, sa3):
        assert result["denoiser_step_s"] > 0 and result["decode_s"] > 0
        expected = 8 * result["denoiser_step_s"] + result["decode_s"]
        assert result["extrapolated_clip_s"] == expected
        assert "random weights" in result["model"]


def test_the_gpu_check_runs_on_the_cpu_at_the_tiny_shape(tmp_path: Path) -> None:
    """bench/gpu/run.py is meant for a GPU machine; here it must run end to end all the same."""
    import json

    figures = tmp_path / "gpu.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "gpu" / "run.py"),
            "--device",
            "cpu",
            "--shape",
            "tiny",
            "--batches",
            "1",
            "2",
            "--steps",
            "5",
            "--long-seconds",
            "3",
            "--window-s",
            "2",
            "--stride-s",
            "1",
            "--out",
            str(figures),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    mono, stereo = json.loads(figures.read_text())
    for result, channels in ((mono, 1), (stereo, 2)):
        assert result["alone_equals_joined"] is True  # exact on the CPU
        assert result["long"] == {
            "seconds": 3.0,
            "channels": channels,
            "exact_length": True,
            "finite": True,
        }
        assert [b["batch"] for b in result["batches"]] == [1, 2]
