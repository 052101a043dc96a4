import { useRef } from "react";
import { formatScore } from "../format";
import { useWidth } from "../hooks";

/** The width `height` is given at: the chart keeps that shape at any width, */
const BASE_WIDTH = 1000;
/** but a narrow one keeps this much plot height (CSS px), to be read. */
const MIN_PLOT_HEIGHT = 100;
const PAD = { left: 44, right: 16, top: 14, bottom: 34 };
/** CSS px per x-axis label, so that a phone gets fewer of them. */
const TICK_SPACING = 70;

function niceStep(span: number, ticks: number): number {
  const rough = span / ticks;
  const power = 10 ** Math.floor(Math.log10(Math.max(rough, 1e-6)));
  for (const m of [1, 2, 5, 10]) if (m * power >= rough) return m * power;
  return 10 * power;
}

/** A moment worth pointing at: a detection, or a capture's peak. */
export interface ChartMark {
  time: number;
  label: string;
}

interface Props {
  /** Stream time (s) at the end of each hop's window, one per score. */
  times: number[];
  scores: number[];
  threshold: number;
  durationSeconds: number;
  marks: ChartMark[];
  testId: string;
  /** Height at 1000 px wide; the chart is drawn at its box's width, one unit a CSS px. */
  height?: number;
  /** Where playback is (s): a thin line, so the curve can be read against what is heard. */
  playhead?: number | null;
}

/** Score over time (0-1), the threshold dashed, a marker at each mark. */
export function ScoreChart(props: Props) {
  const { times, scores, threshold, durationSeconds, marks, testId, height: baseHeight = 300, playhead = null } = props;
  // Drawn at the width it is shown at, so that its text stays at its CSS size on a phone.
  const svg = useRef<SVGSVGElement>(null);
  const width = useWidth(svg) ?? BASE_WIDTH;
  const height = Math.max(Math.round((baseHeight * width) / BASE_WIDTH), MIN_PLOT_HEIGHT + PAD.top + PAD.bottom);
  const lastTime = times.length ? times[times.length - 1] : 0;
  const duration = Math.max(durationSeconds, lastTime, 0.1);
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + (t / duration) * plotW;
  const y = (s: number) => PAD.top + (1 - Math.max(0, Math.min(1, s))) * plotH;
  const points = times.map((t, i) => `${x(t).toFixed(1)},${y(scores[i] ?? 0).toFixed(1)}`).join(" ");
  const step = niceStep(duration, Math.max(2, Math.min(8, Math.floor(plotW / TICK_SPACING))));
  const xTicks: number[] = [];
  for (let t = 0; t <= duration + 1e-9; t += step) xTicks.push(Number(t.toFixed(6)));
  const scoreAt = (time: number) => {
    let best = 0;
    for (let i = 0; i < times.length; i++) {
      if (Math.abs(times[i] - time) < Math.abs(times[best] - time)) best = i;
    }
    return scores[best] ?? threshold;
  };

  return (
    <svg
      ref={svg}
      className="score-chart"
      data-testid={testId}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={`Wake score over ${duration.toFixed(1)} seconds`}
    >
      {[0, 0.25, 0.5, 0.75, 1].map((v) => (
        <g key={v}>
          <line className="grid" x1={PAD.left} x2={width - PAD.right} y1={y(v)} y2={y(v)} />
          <text className="tick" x={PAD.left - 6} y={y(v) + 4} textAnchor="end">
            {v}
          </text>
        </g>
      ))}
      {xTicks.map((t) => (
        <text key={t} className="tick" x={x(t)} y={height - PAD.bottom + 16} textAnchor="middle">
          {Number.isInteger(t) ? t : t.toFixed(1)}
        </text>
      ))}
      <text className="axis-label" x={width - PAD.right} y={height - 4} textAnchor="end">
        seconds
      </text>
      <text className="axis-label" x={12} y={PAD.top + plotH / 2} transform={`rotate(-90 12 ${PAD.top + plotH / 2})`} textAnchor="middle">
        score
      </text>
      <line className="threshold" x1={PAD.left} x2={width - PAD.right} y1={y(threshold)} y2={y(threshold)} />
      <text className="threshold-label" x={width - PAD.right - 4} y={y(threshold) - 5} textAnchor="end">
        threshold {formatScore(threshold)}
      </text>
      {points && <polyline className="score-line" points={points} />}
      {playhead !== null && playhead > 0 && (
        <line className="playhead" x1={x(playhead)} x2={x(playhead)} y1={PAD.top} y2={PAD.top + plotH} />
      )}
      {marks.map(({ time: t, label }) => {
        // A mark near the right edge puts its label on its left, inside the chart.
        const flip = x(t) > width - 160;
        return (
          <g key={t} className="detection" data-time={t}>
            <line x1={x(t)} x2={x(t)} y1={PAD.top} y2={PAD.top + plotH} />
            <circle cx={x(t)} cy={y(scoreAt(t))} r={5} />
            <text x={x(t) + (flip ? -6 : 6)} y={PAD.top + 12} textAnchor={flip ? "end" : "start"}>
              {label}
            </text>
          </g>
        );
      })}
    </svg>
  );
}
