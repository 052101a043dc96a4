import { useEffect, useRef, useState } from "react";
import { urls, type JobMetrics, type JobRecord, type ModelComparison } from "../../../api";
import {
  formatDateTime,
  formatFalseAccepts,
  formatHours,
  formatLogOdds,
  formatNumber,
  formatPercent,
  formatScore,
  formatSpan,
  shortId,
  spanBetween,
} from "../../../format";
import { Lightbox } from "./Lightbox";
import { MissedClips } from "./MissedClips";

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
          {!isCurrent && m.not_better_than_current && (
            <span
              className="badge warn"
              data-testid="model-not-better"
              title="Not made current: on the same audio it was not at least as good as the current model. Details compare them; Make current promotes it anyway."
            >
              not better than current
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
        <td className="num" data-testid="model-fa">
          {succeeded ? formatFalseAccepts(m) : "—"}
        </td>
        <td className="num">{succeeded ? formatNumber(m.auc, 3) : "—"}</td>
        <td className="num">
          {typeof m.threshold === "number" ? (
            <span title={`log-odds ${formatLogOdds(m.threshold)}`}>{formatScore(m.threshold)}</span>
          ) : (
            "—"
          )}
        </td>
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

function targetOf(job: JobRecord): number {
  const target = (job.config as { target_fa_per_hour?: unknown } | null)?.target_fa_per_hour;
  return typeof target === "number" ? target : 1;
}

function TargetVerdict({ m, target }: { m: JobMetrics; target: number }) {
  const figure = formatFalseAccepts(m);
  if (m.target_met) return <>met: false accepts {figure}, within {target}/h</>;
  const undecided = typeof m.fa_per_hour === "number" && m.fa_per_hour <= target;
  if (undecided && typeof m.hours_to_decide === "number") {
    return (
      <>
        not shown yet: false accepts {figure} cannot tell {target}/h apart. About{" "}
        {formatHours(m.hours_to_decide)} more negative audio (television, talk, music) would decide
        it: add it to the negative bank (<code>waketrain negatives add FOLDER</code>) and train again.
      </>
    );
  }
  return <>not met: false accepts {figure}, above {target}/h. Add negative audio and train again.</>;
}

function ComparisonText({ comparison: c }: { comparison: ModelComparison }) {
  return (
    <>
      on the same {c.positives} held-out positives and {formatHours(c.hours)} of negatives, each at its
      own threshold: misses {formatPercent(c.new.frr)} (current {formatPercent(c.current.frr)}), false
      accepts {c.new.false_accepts} (current {c.current.false_accepts}) against job{" "}
      <code>{shortId(c.current_job_id)}</code>:{" "}
      {c.at_least_as_good ? "at least as good" : "not better, so it did not replace the current model"}
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
                <dd data-testid="model-fa-target">
                  <TargetVerdict m={m} target={targetOf(job)} />
                </dd>
              </>
            )}
            {m.comparison && (
              <>
                <dt>Against current</dt>
                <dd data-testid="model-comparison">
                  <ComparisonText comparison={m.comparison} />
                </dd>
              </>
            )}
            {typeof m.negative_hours === "number" && (
              <>
                <dt>Held-out negatives</dt>
                <dd data-testid="model-negative-minutes">
                  {formatNumber(m.negative_hours * 60, 1)} min, the audio false accepts per hour
                  were measured on
                  {typeof m.calibration_hours === "number" && m.calibration_hours > 0 && (
                    <> ({formatHours(m.calibration_hours)} of it from the negative bank)</>
                  )}
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
          {/* Buttons, so the keyboard enlarges a plot too; each is named by its image's alt. */}
          <figure>
            <button
              type="button"
              className="plot-button"
              onClick={() => onEnlarge({ src: urls.artifact(job.id, "det_curve.png"), alt: "DET curve" })}
            >
              <img
                data-testid="model-det"
                src={urls.artifact(job.id, "det_curve.png")}
                alt="DET curve: false rejects against false accepts per hour"
              />
            </button>
            <figcaption>DET curve (click to enlarge)</figcaption>
          </figure>
          <figure>
            <button
              type="button"
              className="plot-button"
              onClick={() => onEnlarge({ src: urls.artifact(job.id, "confusion_matrix.png"), alt: "Confusion matrix" })}
            >
              <img
                data-testid="model-confusion"
                src={urls.artifact(job.id, "confusion_matrix.png")}
                alt="Confusion matrix at the chosen threshold"
              />
            </button>
            <figcaption>Confusion matrix at the threshold</figcaption>
          </figure>
        </div>
      )}
      {job.status === "succeeded" && Array.isArray(m.missed_positives) && <MissedClips missed={m.missed_positives} />}
    </div>
  );
}
