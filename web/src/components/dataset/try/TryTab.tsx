import { useCallback, useEffect, useState } from "react";
import { api, errorMessage, type CurrentModel, type ScoreResult } from "../../../api";
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

export function TryTab() {
  const [current, setCurrent] = useState<CurrentModel | null>(null);
  const [result, setResult] = useState<ScoreResult | null>(null);
  const [source, setSource] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [scoring, setScoring] = useState(false);

  const loadCurrent = useCallback(() => {
    api.currentModel().then(setCurrent, () => setCurrent(null));
  }, []);
  useEffect(loadCurrent, [loadCurrent]);
  useEvents((event) => {
    if (event.type === "model.blessed") loadCurrent();
  });

  const score = async (wav: Blob, filename: string, label: string) => {
    setScoring(true);
    setError(null);
    setResult(null);
    setSource(label);
    try {
      setResult(await api.scoreWithCurrentModel(wav, filename));
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setScoring(false);
    }
  };

  const scoreRecording = (recording: Recording) =>
    void score(recording.wav, "try-it.wav", `a ${recording.durationSeconds.toFixed(1)} s recording`);
  const recorder = useRecorder(MAX_SECONDS, scoreRecording);

  const stop = async () => {
    const recording = await recorder.stop();
    if (recording) scoreRecording(recording);
  };

  const recording = recorder.state === "recording";

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
                if (file) void score(file, file.name, file.name);
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
        </div>
      )}
    </div>
  );
}
