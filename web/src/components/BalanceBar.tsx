import type { LabelCounts } from "../api";

/** Positive vs negative vs noise as one stacked bar. */
export function BalanceBar({ counts }: { counts: LabelCounts }) {
  const total = counts.positive + counts.negative + counts.noise;
  if (total === 0) return <div className="balance-bar empty" title="No clips yet" />;
  const share = (n: number) => `${(100 * n) / total}%`;
  return (
    <div
      className="balance-bar"
      role="img"
      aria-label={`${counts.positive} positive, ${counts.negative} negative, ${counts.noise} noise`}
    >
      <span className="seg positive" style={{ width: share(counts.positive) }} />
      <span className="seg negative" style={{ width: share(counts.negative) }} />
      <span className="seg noise" style={{ width: share(counts.noise) }} />
    </div>
  );
}
