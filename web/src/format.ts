import { parseTime, type Board } from "./api";

export function formatDateTime(value: string | null | undefined, withSeconds = false): string {
  const date = parseTime(value);
  if (!date) return "—";
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: withSeconds ? "2-digit" : undefined,
  });
}

export function formatSeconds(seconds: number | null | undefined, digits = 1): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  return `${seconds.toFixed(digits)} s`;
}

/** "1 h 02 min", "3 min 05 s", "42 s". */
export function formatSpan(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

export function spanBetween(start: string | null, end: string | null): number | null {
  const a = parseTime(start);
  const b = parseTime(end);
  return a && b ? (b.getTime() - a.getTime()) / 1000 : null;
}

export function formatPercent(fraction: number | null | undefined, digits = 1): string {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return "—";
  return `${(fraction * 100).toFixed(digits)} %`;
}

// Scores of a head over speech embeddings crowd near 1 (a threshold of 0.9988, a peak of
// 0.99875): above 0.9, enough digits that what is left to 1 keeps three significant figures,
// so a peak just under its threshold never reads as equal to it.
export function formatScore(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const rest = 1 - value;
  if (rest >= 0.1 || rest <= 0) return value.toFixed(2);
  const digits = Math.min(9, Math.ceil(-Math.log10(rest)) + 2);
  return value.toFixed(digits).replace(/\.?0+$/, "");
}

// The same score on the logit scale, which does not crowd: 0.99 is 4.6, 0.9999 is 9.2.
export function formatLogOdds(value: number): string {
  const p = Math.min(Math.max(value, 1e-9), 1 - 1e-9);
  return Math.log(p / (1 - p)).toFixed(1);
}

export function formatNumber(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  return value.toFixed(digits);
}

// A false-accept figure with what it rests on: "0 in 0.21 h (< 14/h)". Older jobs, whose
// metrics have no count, show the bare rate.
export function formatFalseAccepts(m: {
  fa_per_hour?: number;
  false_accepts?: number;
  negative_hours?: number;
  fa_per_hour_upper?: number;
}): string {
  if (typeof m.false_accepts !== "number" || typeof m.negative_hours !== "number") {
    return `${formatNumber(m.fa_per_hour, 2)}/h`;
  }
  const bound = m.fa_per_hour_upper ?? Number.NaN;
  return `${m.false_accepts} in ${formatHours(m.negative_hours)} (< ${formatRate(bound)}/h)`;
}

export function formatHours(hours: number): string {
  if (hours < 1 / 60) return `${Math.round(hours * 3600)} s`;
  return hours < 1 ? `${(hours * 60).toFixed(1)} min` : `${hours.toFixed(2)} h`;
}

function formatRate(rate: number): string {
  return rate < 10 ? formatNumber(rate, 1) : formatNumber(rate, 0);
}

export function formatMinutes(minutes: number): string {
  return minutes < 10 ? minutes.toFixed(1) : minutes.toFixed(0);
}

export function stageLabel(stage: string | null | undefined): string {
  switch (stage) {
    case "data_prep":
      return "Data prep";
    case "training":
      return "Training";
    case "eval":
      return "Evaluation";
    case "export":
      return "Export";
    default:
      return stage ?? "—";
  }
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

/** Where a board is reached: `user@host:port`, an IPv6 host in brackets. */
export function boardAddress(board: Pick<Board, "user" | "host" | "port">): string {
  const host = board.host.includes(":") ? `[${board.host}]` : board.host;
  return `${board.user}@${host}:${board.port}`;
}
