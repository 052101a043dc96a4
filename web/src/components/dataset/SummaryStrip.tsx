import type { DatasetSummary, JobRecord } from "../../api";
import { formatMinutes, formatNumber } from "../../format";
import { CapturesToReview } from "../CapturesToReview";
import { BalanceBar } from "../BalanceBar";
import { TrainControls } from "./training/TrainControls";

export function SummaryStrip({
  summary,
  onTrainingStarted,
}: {
  summary: DatasetSummary;
  onTrainingStarted: (job: JobRecord) => void;
}) {
  const c = summary.clip_counts;
  const q = summary.quality;
  return (
    <section className="summary-strip card">
      <div className="summary-counts">
        <Count label="positive" value={c.positive} testId="count-positive" className="positive" />
        <Count label="negative" value={c.negative} testId="count-negative" className="negative" />
        <Count label="noise" value={c.noise} testId="count-noise" className="noise" />
        <Count label="minutes" value={formatMinutes(summary.total_minutes)} testId="count-minutes" />
        <div className="summary-balance">
          <BalanceBar counts={c} />
          <div className="muted small">
            {summary.mean_snr_db !== null && <>mean SNR {formatNumber(summary.mean_snr_db, 1)} dB · </>}
            {q.low_quality} low-quality · {q.clipped} clipped · {q.near_silent} near-silent
            {summary.deleted_clips > 0 && <> · {summary.deleted_clips} discarded</>}
          </div>
          <CapturesToReview datasetId={summary.id} count={summary.captures_to_review} testId="summary-captures" />
          {summary.balance.warning && (
            <div className="warning small" data-testid="balance-warning">
              {summary.balance.warning}
            </div>
          )}
        </div>
      </div>
      <TrainControls summary={summary} onStarted={onTrainingStarted} />
    </section>
  );
}

function Count({
  label,
  value,
  testId,
  className = "",
}: {
  label: string;
  value: number | string;
  testId: string;
  className?: string;
}) {
  return (
    <div className={`count ${className}`}>
      <span className="count-value" data-testid={testId}>
        {value}
      </span>
      <span className="count-label">{label}</span>
    </div>
  );
}
