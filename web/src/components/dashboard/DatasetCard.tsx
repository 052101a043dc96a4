import type { DatasetSummary } from "../../api";
import { formatFalseAccepts, formatMinutes, formatNumber, formatPercent } from "../../format";
import { datasetHref } from "../../router";
import { BalanceBar } from "../BalanceBar";
import { CapturesToReview } from "../CapturesToReview";

export function DatasetCard({ dataset }: { dataset: DatasetSummary }) {
  const counts = dataset.clip_counts;
  const total = counts.positive + counts.negative + counts.noise;
  const q = dataset.quality;
  return (
    // The whole card opens the dataset (the title link stretches over it), and the captures
    // link sits above that: one link inside another is not valid HTML.
    <div className="card dataset-card" data-testid="dataset-card" data-dataset-id={dataset.id}>
      <div className="card-title">
        <h2>
          <a className="card-link" href={datasetHref(dataset.id)}>
            “{dataset.phrase}”
          </a>
        </h2>
        <code className="muted">{dataset.id}</code>
      </div>
      <div className="stat-row">
        <Stat label="clips" testId="card-total-clips" value={total} />
        <Stat label="positive" testId="card-positive" value={counts.positive} />
        <Stat label="negative" testId="card-negative" value={counts.negative} />
        <Stat label="noise" testId="card-noise" value={counts.noise} />
        <Stat label="minutes" testId="card-minutes" value={formatMinutes(dataset.total_minutes)} />
      </div>
      <BalanceBar counts={counts} />
      {dataset.balance.warning && (
        <p className="warning small" data-testid="card-balance-warning">
          {dataset.balance.warning}
        </p>
      )}
      <dl className="card-facts">
        <dt>Noise</dt>
        <dd>{dataset.mean_snr_db === null ? "SNR not measured yet" : `mean SNR ${formatNumber(dataset.mean_snr_db, 1)} dB`}</dd>
        <dt>Quality</dt>
        <dd>
          {q.low_quality} low-quality · {q.clipped} clipped · {q.near_silent} near-silent
          {q.pending_analysis > 0 && <span className="muted"> · {q.pending_analysis} being analysed</span>}
        </dd>
        <dt>Model</dt>
        <dd data-testid="card-last-model">
          <LastModel dataset={dataset} />
        </dd>
      </dl>
      <CapturesToReview datasetId={dataset.id} count={dataset.captures_to_review} testId="card-captures" />
    </div>
  );
}

function Stat({ label, value, testId }: { label: string; value: number | string; testId: string }) {
  return (
    <div className="stat">
      <span className="stat-value" data-testid={testId}>
        {value}
      </span>
      <span className="stat-label">{label}</span>
    </div>
  );
}

function LastModel({ dataset }: { dataset: DatasetSummary }) {
  const job = dataset.last_job;
  if (!job) return <>not trained yet</>;
  if (job.status === "succeeded") {
    const m = job.metrics ?? {};
    return (
      <>
        FRR {formatPercent(m.frr)} · false accepts {formatFalseAccepts(m)}
      </>
    );
  }
  if (job.status === "queued" || job.status === "running") return <>training {job.status}…</>;
  return <>last training {job.status}</>;
}
