// Microphone capture: getUserMedia + AudioWorklet (ScriptProcessorNode where worklets are missing),
// raw float samples collected in the page, then resampled to 16 kHz mono and encoded as WAV.
import { TARGET_SAMPLE_RATE_HZ, encodeWav16, meterLevel, resample } from "./wav";

export interface Recording {
  samples: Float32Array; // 16 kHz mono
  wav: Blob;
  durationSeconds: number;
  captureRateHz: number;
}

export interface RecorderOptions {
  onLevel?: (level: number) => void;
  /** Capture stops (the samples so far are kept) after this many seconds; then `onLimit` runs. */
  maxSeconds?: number;
  onLimit?: () => void;
}

const WORKLET_NAME = "waketrain-capture";
// Posts blocks of ~2048 frames (mono mixdown) instead of one message per 128-frame quantum.
const WORKLET_SOURCE = `
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Float32Array(2048);
    this.filled = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush") {
        this.port.postMessage(this.block.slice(0, this.filled));
        this.filled = 0;
        this.port.postMessage("flushed");
      }
    };
  }
  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0) {
      const frames = input[0].length;
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < input.length; c++) sum += input[c][i];
        this.block[this.filled++] = sum / input.length;
        if (this.filled === this.block.length) {
          this.port.postMessage(this.block.slice(0));
          this.filled = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("${WORKLET_NAME}", CaptureProcessor);
`;

let workletUrl: string | null = null;

function microphoneUnavailableReason(): string | null {
  if (!navigator.mediaDevices?.getUserMedia) {
    return window.isSecureContext
      ? "This browser cannot record audio."
      : "The browser allows the microphone only on https:// or http://localhost pages; open the service that way, or upload files instead.";
  }
  return null;
}

export class Recorder {
  private readonly chunks: Float32Array[] = [];
  private frames = 0;
  private stopping = false;
  private autoStopTimer: number | undefined;
  private flushed: (() => void) | null = null;

  private constructor(
    private readonly context: AudioContext,
    private readonly stream: MediaStream,
    private readonly nodes: AudioNode[],
    private readonly worklet: AudioWorkletNode | null,
    private readonly options: RecorderOptions,
  ) {}

  static async start(options: RecorderOptions = {}): Promise<Recorder> {
    const reason = microphoneUnavailableReason();
    if (reason) throw new Error(reason);
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: {
          channelCount: 1,
          // The model must learn from the room as it is; browser "clean-up" would change it.
          echoCancellation: false,
          noiseSuppression: false,
          autoGainControl: false,
        },
      });
    } catch (error) {
      const name = error instanceof DOMException ? error.name : "";
      if (name === "NotAllowedError") throw new Error("Microphone access was refused; allow it in the browser and try again.");
      if (name === "NotFoundError") throw new Error("No microphone was found.");
      throw new Error(`The microphone could not be opened (${error instanceof Error ? error.message : String(error)}).`);
    }
    const context = new AudioContext();
    try {
      if (context.state === "suspended") await context.resume();
      const source = context.createMediaStreamSource(stream);
      // A muted sink keeps the graph pulling audio without playing it back.
      const sink = context.createGain();
      sink.gain.value = 0;
      sink.connect(context.destination);

      let recorder: Recorder;
      if (context.audioWorklet) {
        if (!workletUrl) {
          workletUrl = URL.createObjectURL(new Blob([WORKLET_SOURCE], { type: "text/javascript" }));
        }
        await context.audioWorklet.addModule(workletUrl);
        const node = new AudioWorkletNode(context, WORKLET_NAME, { numberOfOutputs: 1 });
        recorder = new Recorder(context, stream, [source, node, sink], node, options);
        node.port.onmessage = (event: MessageEvent<Float32Array | string>) => {
          if (event.data === "flushed") recorder.flushed?.();
          else if (event.data instanceof Float32Array) recorder.take(event.data);
        };
        source.connect(node);
        node.connect(sink);
      } else {
        const node = context.createScriptProcessor(2048, 1, 1);
        recorder = new Recorder(context, stream, [source, node, sink], null, options);
        node.onaudioprocess = (event) => recorder.take(event.inputBuffer.getChannelData(0).slice());
        source.connect(node);
        node.connect(sink);
      }
      if (options.maxSeconds) {
        recorder.autoStopTimer = window.setTimeout(() => {
          recorder.stopping = true;
          options.onLimit?.();
        }, options.maxSeconds * 1000);
      }
      return recorder;
    } catch (error) {
      stream.getTracks().forEach((track) => track.stop());
      await context.close().catch(() => undefined);
      throw error;
    }
  }

  get elapsedSeconds(): number {
    return this.frames / this.context.sampleRate;
  }

  get captureRateHz(): number {
    return this.context.sampleRate;
  }

  private take(block: Float32Array): void {
    if (this.stopping) return;
    this.chunks.push(block);
    this.frames += block.length;
    this.options.onLevel?.(meterLevel(block));
  }

  /** Stop, then resample what was captured to 16 kHz mono and encode it as WAV. */
  async stop(): Promise<Recording> {
    if (this.worklet && !this.stopping) {
      await new Promise<void>((resolve) => {
        const timer = window.setTimeout(resolve, 500);
        this.flushed = () => {
          window.clearTimeout(timer);
          resolve();
        };
        this.worklet?.port.postMessage("flush");
      });
    }
    this.stopping = true;
    const rate = this.context.sampleRate;
    await this.release();
    const joined = new Float32Array(this.frames);
    let offset = 0;
    for (const chunk of this.chunks) {
      joined.set(chunk, offset);
      offset += chunk.length;
    }
    const samples = await resample(joined, rate, TARGET_SAMPLE_RATE_HZ);
    return {
      samples,
      wav: encodeWav16(samples, TARGET_SAMPLE_RATE_HZ),
      durationSeconds: samples.length / TARGET_SAMPLE_RATE_HZ,
      captureRateHz: rate,
    };
  }

  /** Stop without keeping anything. */
  async cancel(): Promise<void> {
    this.stopping = true;
    await this.release();
  }

  private async release(): Promise<void> {
    window.clearTimeout(this.autoStopTimer);
    this.stream.getTracks().forEach((track) => track.stop());
    for (const node of this.nodes) node.disconnect();
    if (this.worklet) this.worklet.port.onmessage = null;
    if (this.context.state !== "closed") await this.context.close().catch(() => undefined);
  }
}
