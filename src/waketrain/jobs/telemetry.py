"""GPU telemetry for progress events: NVML on discrete NVIDIA GPUs, the load file on Jetson."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Jetson (Orin) exposes GPU load in tenths of a percent here; NVML is not supported there.
JETSON_GPU_LOAD = (Path("/sys/devices/platform/gpu.0/load"), Path("/sys/devices/gpu.0/load"))


def gpu_telemetry(device_type: str) -> dict[str, Any]:
    """Utilisation, memory and temperature of GPU 0, or why they are not available."""
    if device_type != "cuda":
        return {"available": False, "reason": "training on the CPU"}
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        util = pynvml.nvmlDeviceGetUtilizationRates(handle)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        return {
            "available": True,
            "source": "nvml",
            "utilization_percent": util.gpu,
            "memory_used_mb": round(memory.used / 2**20),
            "memory_total_mb": round(memory.total / 2**20),
            "temperature_c": pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
        }
    except Exception as exc:  # no NVML library, or a Jetson where NVML is not supported
        for path in JETSON_GPU_LOAD:
            if path.exists():
                return {
                    "available": True,
                    "source": str(path),
                    "utilization_percent": int(path.read_text().strip()) / 10,
                }
        return {"available": False, "reason": f"no NVML and no Jetson load file ({exc})"}
