// PCM16 WAV encoding and resampling to the service's canonical 16 kHz mono, in the browser.

export const TARGET_SAMPLE_RATE_HZ = 16_000;

/** A mono PCM16 WAV file (44-byte RIFF header, little-endian). */
export function encodeWav16(samples: Float32Array, sampleRateHz: number): Blob {
  const bytesPerSample = 2;
  const dataBytes = samples.length * bytesPerSample;
  const buffer = new ArrayBuffer(44 + dataBytes);
  const view = new DataView(buffer);
  const writeAscii = (offset: number, text: string) => {
    for (let i = 0; i < text.length; i++) view.setUint8(offset + i, text.charCodeAt(i));
  };
  writeAscii(0, "RIFF");
  view.setUint32(4, 36 + dataBytes, true);
  writeAscii(8, "WAVE");
  writeAscii(12, "fmt ");
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRateHz, true);
  view.setUint32(28, sampleRateHz * bytesPerSample, true); // byte rate
  view.setUint16(32, bytesPerSample, true); // block align
  view.setUint16(34, 16, true); // bits per sample
  writeAscii(36, "data");
  view.setUint32(40, dataBytes, true);
  let offset = 44;
  for (let i = 0; i < samples.length; i++, offset += 2) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    view.setInt16(offset, s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff), true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}

/**
 * Resample with the browser's own (band-limited) resampler in an OfflineAudioContext;
 * a plain averaging + linear fallback where that is not available.
 */
export async function resample(
  samples: Float32Array,
  fromRateHz: number,
  toRateHz: number = TARGET_SAMPLE_RATE_HZ,
): Promise<Float32Array> {
  if (fromRateHz === toRateHz || samples.length === 0) return samples;
  const outLength = Math.max(1, Math.round((samples.length * toRateHz) / fromRateHz));
  try {
    const context = new OfflineAudioContext(1, outLength, toRateHz);
    const source = context.createBufferSource();
    const input = context.createBuffer(1, samples.length, fromRateHz);
    input.getChannelData(0).set(samples);
    source.buffer = input;
    source.connect(context.destination);
    source.start();
    const rendered = await context.startRendering();
    return rendered.getChannelData(0).slice();
  } catch {
    return resampleLinear(samples, fromRateHz, toRateHz);
  }
}

/** Box-filter (to limit aliasing when downsampling) then linear interpolation. */
export function resampleLinear(samples: Float32Array, fromRateHz: number, toRateHz: number): Float32Array {
  const ratio = fromRateHz / toRateHz;
  let source = samples;
  const width = Math.floor(ratio);
  if (width > 1) {
    source = new Float32Array(samples.length);
    let sum = 0;
    for (let i = 0; i < samples.length; i++) {
      sum += samples[i];
      if (i >= width) sum -= samples[i - width];
      source[i] = sum / Math.min(i + 1, width);
    }
  }
  const outLength = Math.max(1, Math.round(samples.length / ratio));
  const out = new Float32Array(outLength);
  for (let i = 0; i < outLength; i++) {
    const position = i * ratio;
    const left = Math.floor(position);
    const right = Math.min(left + 1, source.length - 1);
    const fraction = position - left;
    out[i] = source[left] * (1 - fraction) + source[right] * fraction;
  }
  return out;
}

/** RMS level of a block as 0-1 on a -60..0 dBFS scale (what a level meter shows). */
export function meterLevel(block: Float32Array): number {
  if (block.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < block.length; i++) sum += block[i] * block[i];
  const rms = Math.sqrt(sum / block.length);
  if (rms <= 0) return 0;
  const dbfs = 20 * Math.log10(rms);
  return Math.max(0, Math.min(1, (dbfs + 60) / 60));
}
