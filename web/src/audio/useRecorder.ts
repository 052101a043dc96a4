// React state around one Recorder: start/stop, live level and elapsed time, errors as sentences.
import { useCallback, useEffect, useRef, useState } from "react";
import { Recorder, type Recording } from "./recorder";

const UPDATE_MS = 40;

export type RecorderState = "idle" | "starting" | "recording" | "processing";

export interface RecorderControls {
  state: RecorderState;
  level: number;
  elapsedSeconds: number;
  error: string | null;
  start: () => Promise<void>;
  stop: () => Promise<Recording | null>;
}

export function useRecorder(maxSeconds: number, onAutoStop: (recording: Recording) => void): RecorderControls {
  const [state, setState] = useState<RecorderState>("idle");
  const [level, setLevel] = useState(0);
  const [elapsedSeconds, setElapsed] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const recorder = useRef<Recorder | null>(null);
  const pendingLevel = useRef(0);
  const lastUpdate = useRef(0);
  const autoStop = useRef(onAutoStop);
  autoStop.current = onAutoStop;

  const stop = useCallback(async (): Promise<Recording | null> => {
    const active = recorder.current;
    if (!active) return null;
    recorder.current = null;
    setState("processing");
    try {
      return await active.stop();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      return null;
    } finally {
      pendingLevel.current = 0;
      setLevel(0);
      setState("idle");
    }
  }, []);

  const start = useCallback(async () => {
    if (recorder.current) return;
    setError(null);
    setElapsed(0);
    setState("starting");
    try {
      const started = await Recorder.start({
        maxSeconds,
        onLevel: (value) => {
          if (!recorder.current) return; // stopping: the final flushed block is not "live"
          // The meter falls back slowly, like a hardware one, so a short word stays visible.
          pendingLevel.current = Math.max(value, pendingLevel.current * 0.85);
          // Updated from the audio messages, not requestAnimationFrame: frames are throttled
          // in a page without focus while the microphone keeps going.
          const now = performance.now();
          if (now - lastUpdate.current >= UPDATE_MS) {
            lastUpdate.current = now;
            setLevel(pendingLevel.current);
            setElapsed(recorder.current.elapsedSeconds);
          }
        },
        onLimit: () => {
          void stop().then((recording) => recording && autoStop.current(recording));
        },
      });
      recorder.current = started;
      setState("recording");
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      setState("idle");
    }
  }, [maxSeconds, stop]);

  useEffect(
    () => () => {
      void recorder.current?.cancel();
      recorder.current = null;
    },
    [],
  );

  return { state, level, elapsedSeconds, error, start, stop };
}
