import { useEffect, useRef, useState } from "react";
import { urls, type JobRecord } from "../../../api";
import { formatDateTime, formatNumber, formatPercent, formatSpan, shortId, spanBetween } from "../../../format";
import { Lightbox } from "./Lightbox";

const COLUMN_COUNT = 10;

interface Props {
  job: JobRecord;
  isCurrent: boolean;
  highlighted: boolean;
  blessing: boolean;
  onBless: () => void;
  onShowProgress: () => void;
}

export function ModelRow({ job, isCurrent, highlighted, blessing, onBless, onShowProgress }: Props) {
  const [expanded, setExpanded] = useState(highlighted);
  const [enlarged, setEnlarged] = useState<{ src: string; alt: string } | null>(null);
  const row = useRef<HTMLTableRowElement>(null);
  const m = job.metrics ?? {};
  const succeeded = job.status === "succeeded";
  const active = job.status === "queued" || job.status === "running";
  const duration = spanBetween(job.started_at, job.finished_at ?? (job.status === "running" ? new Date().toISOString() : null));

  useEffect(() => {
    if (highlighted) {
      setExpanded(true);
      row.current?.scrollIntoView({ block: "center" });
    }
  }, [highlighted]);

  return (
    <>
      <tr
        ref={row}
        data-testid="model-row"
        data-job-id={job.id}
        data-status={job.status}
        className={`${isCurrent ? "current" : ""} ${highlighted ? "highlighted" : ""}`}
      >
        <td>
          <code title={job.id}>{shortId(job.id)}</code>
          {isCurrent && (
            <span className="badge accent" data-testid="model-current-badge">
              current
            </span>
          )}
        </td>
        <td>
          <span className={`status-pill ${job.status}`}>{job.status}</span>
          {job.status === "running" && job.stage && <span className="muted small"> {job.stage} {Math.round(job.progress * 100)} %</span>}
        </td>
        <td className="nowrap">{formatDateTime(job.created_at)}</td>
        <td className="num">{formatSpan(duration)}</td>
        <td className="num">{succeeded ? formatPercent(m.frr) : "—"}</td>
        <td className="num">{succeeded ? formatNumber(m.fa_per_hour, 2) : "—"}</td>
        <td className="num">{succeeded ? formatNumber(m.auc, 3) : "—"}</td>
        <td className="num">{typeof m.threshold === "number" ? formatNumber(m.threshold, 3) : "—"}</td>
        <td className="files">
          {succeeded ? (
            <>
              <a href={urls.artifact(job.id, "wake_model.onnx")} download data-testid="model-download-onnx">
                ONNX
              </a>
              <a href={urls.artifact(job.id, "metadata.json")} download data-testid="model-download-metadata">
                metadata
              </a>
              <a href={urls.bundle(job.id)} download data-testid="model-download-bundle" title="Export, config and log as a zip">
                zip
              </a>
              <a
                href={urls.boardBundle(job.id)}
                download
                data-testid="model-download-board-bundle"
                title="Apply from a USB stick: this and its .sha256, then deploy_hotword.sh on the board"
              >
                board bundle
              </a>
              <a href={urls.boardBundleChecksum(job.id)} download data-testid="model-download-board-checksum">
                .sha256
              </a>
            </>
          ) : (
            <span className="muted">—</span>
          )}
        </td>
        <td className="actions">
          {succeeded && !isCurrent && (
            <button className="btn small" data-testid="model-bless" disabled={blessing} onClick={onBless}>
              {blessing ? "…" : "Make current"}
            </button>
          )}
          {active && (
            <button className="btn small" onClick={onShowProgress}>
              Progress
            </button>
          )}
          <button
            className="btn ghost small"
            data-testid="model-expand"
            aria-expanded={expanded}
            onClick={() => setExpanded((v) => !v)}
          >
            {expanded ? "Hide" : "Details"}
          </button>
        </td>
      </tr>
      {expanded && (
        <tr className="details-row">
          <td colSpan={COLUMN_COUNT}>
            <JobDetails job={job} onEnlarge={setEnlarged} onShowProgress={onShowProgress} />
          </td>
        </tr>
      )}
      {enlarged && <Lightbox src={enlarged.src} alt={enlarged.alt} onClose={() => setEnlarged(null)} />}
    </>
  );
}

function JobDetails({
  job,
  onEnlarge,
  onShowProgress,
}: {
  job: JobRecord;
  onEnlarge: (image: { src: string; alt: string }) => void;
  onShowProgress: () => void;
}) {
  const m = job.metrics ?? {};
  return (
    <div className="job-details">
      <dl className="facts">
        <dt>Job</dt>
        <dd>
          <code>{job.id}</code>
        </dd>
        <dt>Started by</dt>
        <dd>{job.created_by}</dd>
        {job.error && (
          <>
            <dt>{job.status === "failed" ? "Error" : "Note"}</dt>
            <dd className={job.status === "failed" ? "form-error" : ""}>{job.error}</dd>
          </>
        )}
        {job.status === "succeeded" && (
          <>
            <dt>Accuracy</dt>
            <dd>{formatPercent(m.accuracy)}</dd>
            {typeof m.target_met === "boolean" && (
              <>
                <dt>FA target</dt>
                <dd>{m.target_met ? "met" : "not met on the held-out audio"}</dd>
              </>
            )}
            {typeof m.negative_hours === "number" && (
              <>
                <dt>Held-out negatives</dt>
                <dd data-testid="model-negative-minutes">
                  {formatNumber(m.negative_hours * 60, 1)} min, the audio false accepts per hour
                  were measured on
                </dd>
              </>
            )}
            {typeof m.model_id === "string" && (
              <>
                <dt>Model id</dt>
                <dd>
                  <code>{m.model_id}</code>
                </dd>
              </>
            )}
          </>
        )}
        <dt>Log</dt>
        <dd>
          <button className="link" onClick={onShowProgress}>
            show progress and log
          </button>
        </dd>
      </dl>
      {job.status === "succeeded" && (
        <div className="plots">
          <figure>
            <img
              data-testid="model-det"
              src={urls.artifact(job.id, "det_curve.png")}
              alt="DET curve: false rejects against false accepts per hour"
              onClick={() => onEnlarge({ src: urls.artifact(job.id, "det_curve.png"), alt: "DET curve" })}
            />
            <figcaption>DET curve (click to enlarge)</figcaption>
          </figure>
          <figure>
            <img
              data-testid="model-confusion"
              src={urls.artifact(job.id, "confusion_matrix.png")}
              alt="Confusion matrix at the chosen threshold"
              onClick={() => onEnlarge({ src: urls.artifact(job.id, "confusion_matrix.png"), alt: "Confusion matrix" })}
            />
            <figcaption>Confusion matrix at the threshold</figcaption>
          </figure>
        </div>
      )}
    </div>
  );
}
