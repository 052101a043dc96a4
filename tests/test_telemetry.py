"""GPU telemetry says what it measured, or why it could not."""

from __future__ import annotations

from waketrain.jobs.telemetry import gpu_telemetry


def test_cpu_training_reports_telemetry_as_not_available() -> None:
    assert gpu_telemetry("cpu") == {"available": False, "reason": "training on the CPU"}


def test_cuda_telemetry_is_measured_or_explained() -> None:
    telemetry = gpu_telemetry("cuda")
    if telemetry["available"]:  # a machine with an NVIDIA driver or a Jetson
        assert 0 <= telemetry["utilization_percent"] <= 100
    else:  # no driver here: NVML fails to load and there is no Jetson load file
        assert "NVML" in telemetry["reason"]
