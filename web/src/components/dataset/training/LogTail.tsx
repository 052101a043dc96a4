import { useEffect, useLayoutEffect, useRef, useState } from "react";
import { urls } from "../../../api";

const MAX_CHARS = 64_000;
const RETRY_MS = 2_000;

/** Follows /jobs/{id}/logs?follow=true; the stream ends when the job does. */
export function LogTail({ jobId, ended }: { jobId: string; ended: boolean }) {
  const [text, setText] = useState("");
  const [note, setNote] = useState<string | null>(null);
  const box = useRef<HTMLPreElement>(null);
  const stickToBottom = useRef(true);
  const endedRef = useRef(ended);
  endedRef.current = ended;

  useEffect(() => {
    const abort = new AbortController();
    let retry: number | undefined;

    const follow = async () => {
      let received = "";
      try {
        const response = await fetch(urls.jobLogs(jobId), { credentials: "same-origin", signal: abort.signal });
        if (!response.ok || !response.body) {
          setNote(`The log is not available (HTTP ${response.status}).`);
          return;
        }
        setNote(null);
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          received += decoder.decode(value, { stream: true });
          if (received.length > MAX_CHARS) received = received.slice(-MAX_CHARS);
          setText(received);
        }
        received += decoder.decode();
        setText(received);
      } catch {
        if (abort.signal.aborted) return;
      }
      // The stream ends with the job; if it broke off earlier, follow again from the start.
      if (!abort.signal.aborted && !endedRef.current) {
        retry = window.setTimeout(() => {
          if (!endedRef.current) void follow();
        }, RETRY_MS);
      }
    };

    void follow();
    return () => {
      abort.abort();
      window.clearTimeout(retry);
    };
  }, [jobId]);

  useLayoutEffect(() => {
    const el = box.current;
    if (el && stickToBottom.current) el.scrollTop = el.scrollHeight;
  }, [text]);

  return (
    <div className="log-tail">
      <div className="log-head">
        <span>Log</span>
        <a className="small" href={urls.artifact(jobId, "logs.txt")} target="_blank" rel="noreferrer">
          full log
        </a>
      </div>
      <pre
        ref={box}
        data-testid="training-log"
        tabIndex={0} // a long log scrolls: the keyboard must be able to scroll it too
        aria-label="Training log"
        onScroll={(e) => {
          const el = e.currentTarget;
          stickToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
      >
        {text || note || "Waiting for the worker to write the log…"}
      </pre>
    </div>
  );
}
