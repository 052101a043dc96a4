import type { ScoreResult } from "../../../api";

const WIDTH = 1000;
const HEIGHT = 300;
const PAD = { left: 44, right: 16, top: 14, bottom: 34 };

/** Scores near 1 need a third decimal to tell thresholds apart. */
export function formatScore(value: number): string {
  return value >= 0.99 && value < 1 ? value.toFixed(3) : value.toFixed(2);
}

function niceStep(span: number): number {
  const rough = span / 8;
  const power = 10 ** Math.floor(Math.log10(Math.max(rough, 1e-6)));
  for (const m of [1, 2, 5, 10]) if (m * power >= rough) return m * power;
  return 10 * power;
}

/** Score over time (0-1), the threshold dashed, a marker at each detection. */
export function ScoreChart({ result }: { result: ScoreResult }) {
  const lastTime = result.times.length ? result.times[result.times.length - 1] : 0;
  const duration = Math.max(result.duration_seconds, lastTime, 0.1);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + (t / duration) * plotW;
  const y = (s: number) => PAD.top + (1 - Math.max(0, Math.min(1, s))) * plotH;
  const points = result.times.map((t, i) => `${x(t).toFixed(1)},${y(result.scores[i] ?? 0).toFixed(1)}`).join(" ");
  const step = niceStep(duration);
  const xTicks: number[] = [];
  for (let t = 0; t <= duration + 1e-9; t += step) xTicks.push(Number(t.toFixed(6)));
  const scoreAt = (time: number) => {
    let best = 0;
    for (let i = 0; i < result.times.length; i++) {
      if (Math.abs(result.times[i] - time) < Math.abs(result.times[best] - time)) best = i;
    }
    return result.scores[best] ?? result.threshold;
  };

  return (
    <svg
      className="score-chart"
      data-testid="try-chart"
      viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
      role="img"
      aria-label={`Wake score over ${duration.toFixed(1)} seconds`}
    >
      {[0, 0.25, 0.5, 0.75, 1].map((v) => (
        <g key={v}>
          <line className="grid" x1={PAD.left} x2={WIDTH - PAD.right} y1={y(v)} y2={y(v)} />
          <text className="tick" x={PAD.left - 6} y={y(v) + 4} textAnchor="end">
            {v}
          </text>
        </g>
      ))}
      {xTicks.map((t) => (
        <text key={t} className="tick" x={x(t)} y={HEIGHT - PAD.bottom + 16} textAnchor="middle">
          {Number.isInteger(t) ? t : t.toFixed(1)}
        </text>
      ))}
      <text className="axis-label" x={WIDTH - PAD.right} y={HEIGHT - 4} textAnchor="end">
        seconds
      </text>
      <text className="axis-label" x={12} y={PAD.top + plotH / 2} transform={`rotate(-90 12 ${PAD.top + plotH / 2})`} textAnchor="middle">
        score
      </text>
      <line className="threshold" x1={PAD.left} x2={WIDTH - PAD.right} y1={y(result.threshold)} y2={y(result.threshold)} />
      <text className="threshold-label" x={WIDTH - PAD.right - 4} y={y(result.threshold) - 5} textAnchor="end">
        threshold {formatScore(result.threshold)}
      </text>
      {points && <polyline className="score-line" points={points} />}
      {result.detections.map((t) => (
        <g key={t} className="detection" data-time={t}>
          <line x1={x(t)} x2={x(t)} y1={PAD.top} y2={PAD.top + plotH} />
          <circle cx={x(t)} cy={y(scoreAt(t))} r={5} />
          <text x={x(t) + 6} y={PAD.top + 12}>
            {t.toFixed(1)} s
          </text>
        </g>
      ))}
    </svg>
  );
}
