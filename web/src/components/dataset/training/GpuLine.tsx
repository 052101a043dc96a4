export interface GpuTelemetry {
  available: boolean;
  reason?: string;
  utilization_percent?: number;
  memory_used_mb?: number;
  memory_total_mb?: number;
  temperature_c?: number;
}

export function GpuLine({ gpu }: { gpu: GpuTelemetry | null }) {
  if (!gpu) return <span className="muted">no report yet</span>;
  if (!gpu.available) return <span>{gpu.reason ?? "no GPU telemetry"}</span>;
  const parts: string[] = [];
  if (gpu.utilization_percent !== undefined) parts.push(`${Math.round(gpu.utilization_percent)} % busy`);
  if (gpu.memory_used_mb !== undefined) {
    parts.push(
      gpu.memory_total_mb !== undefined
        ? `${(gpu.memory_used_mb / 1024).toFixed(1)} / ${(gpu.memory_total_mb / 1024).toFixed(1)} GB`
        : `${(gpu.memory_used_mb / 1024).toFixed(1)} GB used`,
    );
  }
  if (gpu.temperature_c !== undefined) parts.push(`${gpu.temperature_c} °C`);
  return (
    <span className="gpu-line">
      {gpu.utilization_percent !== undefined && (
        <span className="mini-bar" aria-hidden="true">
          <span style={{ width: `${Math.min(100, gpu.utilization_percent)}%` }} />
        </span>
      )}
      {parts.join(" · ") || "GPU in use"}
    </span>
  );
}
