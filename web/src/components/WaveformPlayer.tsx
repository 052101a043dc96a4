import { forwardRef, useEffect, useImperativeHandle, useRef, useState } from "react";
import WaveSurfer from "wavesurfer.js";

export interface WaveformHandle {
  toggle: () => void;
}

interface Props {
  /** Same-origin URL (the clip's audio) or an object URL of a local recording. */
  url: string | null;
  waveformTestId: string;
  toggleTestId: string;
  height?: number;
  caption?: string;
  /** Told the playback position (s) as it moves, and 0 when a new URL loads. */
  onTime?: (seconds: number) => void;
}

/** Loading a new URL aborts the previous load; that is not an error worth showing. */
function isAbort(error: unknown): boolean {
  if (error instanceof DOMException && error.name === "AbortError") return true;
  return /abort/i.test(error instanceof Error ? `${error.name} ${error.message}` : String(error));
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

export const WaveformPlayer = forwardRef<WaveformHandle, Props>(function WaveformPlayer(
  { url, waveformTestId, toggleTestId, height = 96, caption, onTime },
  ref,
) {
  const onTimeLatest = useRef(onTime);
  onTimeLatest.current = onTime;
  const container = useRef<HTMLDivElement>(null);
  const surfer = useRef<WaveSurfer | null>(null);
  const [playing, setPlaying] = useState(false);
  const [ready, setReady] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [time, setTime] = useState({ current: 0, duration: 0 });

  useEffect(() => {
    if (!container.current) return undefined;
    const ws = WaveSurfer.create({
      container: container.current,
      height,
      waveColor: cssVar("--wave", "#9aa5b1"),
      progressColor: cssVar("--accent", "#2563eb"),
      cursorColor: cssVar("--text", "#1f2933"),
      barWidth: 2,
      barGap: 1,
      barRadius: 1,
      normalize: true,
      // No `fetchParams`: wavesurfer 7.12 stores its AbortController's signal in that object,
      // so every load after the first reuses an aborted signal and never arrives (fixed
      // upstream in katspaugh/wavesurfer.js#4341). fetch sends same-origin cookies by default.
    });
    surfer.current = ws;
    const subscriptions = [
      ws.on("play", () => setPlaying(true)),
      ws.on("pause", () => setPlaying(false)),
      ws.on("finish", () => setPlaying(false)),
      ws.on("ready", (duration) => {
        setReady(true);
        setTime({ current: 0, duration });
      }),
      ws.on("timeupdate", (current) => {
        setTime((t) => ({ ...t, current }));
        onTimeLatest.current?.(current);
      }),
      ws.on("error", (e) => {
        if (!isAbort(e)) setError(`The audio could not be loaded (${e instanceof Error ? e.message : String(e)}).`);
      }),
    ];
    return () => {
      subscriptions.forEach((unsubscribe) => unsubscribe());
      ws.destroy();
      surfer.current = null;
    };
  }, [height]);

  useEffect(() => {
    const ws = surfer.current;
    if (!ws) return;
    setReady(false);
    setPlaying(false);
    setError(null);
    setTime({ current: 0, duration: 0 });
    onTimeLatest.current?.(0);
    if (url) {
      ws.load(url).catch((e: unknown) => {
        if (isAbort(e)) return;
        setError(`The audio could not be loaded (${e instanceof Error ? e.message : String(e)}).`);
      });
    } else {
      ws.empty();
    }
  }, [url]);

  const toggle = () => {
    const ws = surfer.current;
    if (!ws || !url) return;
    ws.playPause().catch((e: unknown) => setError(`Playback failed (${e instanceof Error ? e.message : String(e)}).`));
  };
  useImperativeHandle(ref, () => ({ toggle }));

  return (
    <div className="waveform-player">
      <button
        className="btn play"
        data-testid={toggleTestId}
        data-playing={playing ? "true" : "false"}
        aria-label={playing ? "Pause" : "Play"}
        disabled={!url}
        onClick={toggle}
      >
        {playing ? "❚❚" : "▶"}
      </button>
      <div className="waveform-body">
        <div ref={container} className="waveform" data-testid={waveformTestId} data-ready={ready ? "true" : "false"} />
        <div className="waveform-meta muted small">
          {error ? (
            <span className="form-error">{error}</span>
          ) : (
            <>
              {caption && <span>{caption} · </span>}
              {ready ? `${time.current.toFixed(1)} / ${time.duration.toFixed(1)} s` : url ? "loading…" : ""}
            </>
          )}
        </div>
      </div>
    </div>
  );
});
