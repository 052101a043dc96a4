import { useCallback, useEffect, useState } from "react";
import {
  api,
  errorMessage,
  newUploadKey,
  uploadRecording,
  type CurrentModel,
  type Label,
  type ScoreResult,
} from "../../../api";
import type { Recording } from "../../../audio/recorder";
import { useRecorder } from "../../../audio/useRecorder";
import { useEvents } from "../../../events";
import { formatScore, shortId } from "../../../format";
import { LevelMeter } from "../../LevelMeter";
import { ScoreChart } from "../../ScoreChart";

const MAX_SECONDS = 15;

function resultText(result: ScoreResult): string {
  if (result.fired) {
    if (result.detections.length === 0) return "Fired";
    const times = result.detections.map((t) => `${t.toFixed(1)} s`);
    return `Fired at ${times.length > 1 ? `${times.slice(0, -1).join(", ")} and ${times[times.length - 1]}` : times[0]}`;
  }
  const peak = result.scores.length ? Math.max(...result.scores) : 0;
  return `Did not fire (peak ${formatScore(peak)}, threshold ${formatScore(result.threshold)})`;
}

/** What a tried clip carries into the dataset: the model's verdict on it, for the reviewer. */
function triedNote(result: ScoreResult): string {
  const peak = result.scores.length ? Math.max(...result.scores) : 0;
  const verdict = result.fired ? resultText(result).toLowerCase() : "did not fire";
  return (
    `Tried with model ${result.model_id}: peak ${formatScore(peak)}, threshold ` +
    `${formatScore(result.threshold)}, ${verdict}.`
  );
}

interface Tried {
  wav: Blob;
  filename: string;
  recorded: boolean;
  uploadKey: string; // the Idempotency-Key of adding it to the dataset, whichever label
}

export function TryTab({ datasetId }: { datasetId: string }) {
  const [current, setCurrent] = useState<CurrentModel | null>(null);
  const [result, setResult] = useState<ScoreResult | null>(null);
  const [source, setSource] = useState<string | null>(null);
  const [tried, setTried] = useState<Tried | null>(null);
  const [added, setAdded] = useState<{ label: Label; clipId: string } | null>(null);
  const [adding, setAdding] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [scoring, setScoring] = useState(false);

  const loadCurrent = useCallback(() => {
    api.currentModel().then(setCurrent, () => setCurrent(null));
  }, []);
  useEffect(loadCurrent, [loadCurrent]);
  useEvents((event) => {
    if (event.type === "model.blessed") loadCurrent();
  });

  const score = async (wav: Blob, filename: string, label: string, recorded: boolean) => {
    setScoring(true);
    setError(null);
    setResult(null);
    setAdded(null);
    setSource(label);
    setTried({ wav, filename, recorded, uploadKey: newUploadKey() });
    try {
      setResult(await api.scoreWithCurrentModel(wav, filename));
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setScoring(false);
    }
  };

  const scoreRecording = (recording: Recording) =>
    void score(recording.wav, "try-it.wav", `a ${recording.durationSeconds.toFixed(1)} s recording`, true);
  const recorder = useRecorder(MAX_SECONDS, scoreRecording);

  const stop = async () => {
    const recording = await recorder.stop();
    if (recording) scoreRecording(recording);
  };

  const recording = recorder.state === "recording";

  // The quickest way to improve a model: a miss becomes a positive, a false wake a negative.
  const addToDataset = async (label: Label) => {
    if (!tried || !result) return;
    setAdding(true);
    setError(null);
    try {
      const clip = await uploadRecording(
        datasetId,
        tried.wav,
        tried.filename,
        { label, notes: triedNote(result), source: tried.recorded ? "record" : "upload" },
        () => undefined,
        tried.uploadKey,
      ).promise;
      setAdded({ label, clipId: clip.id });
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setAdding(false);
    }
  };

  return (
    <div className="try-tab">
      <div className="card">
        <h2>Try the current model</h2>
        <p className="muted">
          {current?.job ? (
            <>
              Scoring with job <code>{shortId(current.job.id)}</code> of dataset <code>{current.job.dataset_id}</code>
              {typeof current.job.metrics?.threshold === "number" && <> (threshold {formatScore(current.job.metrics.threshold)})</>}.
            </>
          ) : current ? (
            "No model is current yet: train one, or make a succeeded job current in Models."
          ) : (
            "Say the phrase (or something else) and see when the model fires."
          )}
        </p>
        <div className="record-controls">
          <button
            className="btn record"
            data-testid="try-start"
            disabled={recorder.state !== "idle" || scoring}
            onClick={() => {
              setError(null);
              void recorder.start();
            }}
          >
            <span className="rec-dot" /> Record
          </button>
          <button className="btn" data-testid="try-stop" disabled={!recording} onClick={() => void stop()}>
            Stop and score
          </button>
          <LevelMeter level={recorder.level} testId="try-level" active={recording} />
          <span className="duration">{recorder.elapsedSeconds.toFixed(1)} s</span>
          <span className="or muted">or</span>
          <label className="btn file-button">
            Choose a WAV…
            <input
              type="file"
              accept=".wav,audio/wav,audio/x-wav,audio/*"
              data-testid="try-file"
              className="visually-hidden"
              disabled={scoring || recording}
              onChange={(e) => {
                const file = e.target.files?.[0];
                e.target.value = "";
                if (file) void score(file, file.name, file.name, false);
              }}
            />
          </label>
        </div>
        {recording && <p className="muted small">Recording… stops by itself after {MAX_SECONDS} s.</p>}
        {scoring && <p className="muted">Scoring…</p>}
        {(error ?? recorder.error) && (
          <p className="form-error" role="alert" data-testid="try-error">
            {error ?? recorder.error}
          </p>
        )}
      </div>

      {result && (
        <div className="card try-result-card">
          <p className={`try-result ${result.fired ? "fired" : "quiet"}`} data-testid="try-result">
            {resultText(result)}
          </p>
          <p className="muted small">
            “{result.phrase}” · model <code>{result.model_id}</code> from job <code>{shortId(result.job_id)}</code> ·{" "}
            {source} · {result.duration_seconds.toFixed(1)} s · hop {(result.hop_seconds * 1000).toFixed(0)} ms
          </p>
          <ScoreChart
            times={result.times}
            scores={result.scores}
            threshold={result.threshold}
            durationSeconds={result.duration_seconds}
            marks={result.detections.map((t) => ({ time: t, label: `${t.toFixed(1)} s` }))}
            testId="try-chart"
          />
          <div className="try-add" data-testid="try-add">
            {added ? (
              <p data-testid="try-added">
                Added to <code>{datasetId}</code> as a {added.label} (clip <code>{shortId(added.clipId)}</code>), with
                the model&apos;s score in its notes.
              </p>
            ) : (
              <>
                <span className="muted small">
                  {result.fired
                    ? "Fired on something that was not the phrase? Add it as a negative."
                    : "Missed the phrase? Add it as a positive."}
                </span>
                <button
                  className={`btn small${result.fired ? "" : " primary"}`}
                  data-testid="try-add-positive"
                  disabled={adding}
                  onClick={() => void addToDataset("positive")}
                >
                  Add as positive
                </button>
                <button
                  className={`btn small${result.fired ? " primary" : ""}`}
                  data-testid="try-add-negative"
                  disabled={adding}
                  onClick={() => void addToDataset("negative")}
                >
                  Add as negative
                </button>
              </>
            )}
          </div>
        </div>
      )}
    </div>
  );
}
