/**
 * @file Normalisation of the image embeddings before they are compared (distances, linkage, automatic K).
 *
 * `'center-l2'` subtracts the mean embedding of the set being clustered and scales every centred embedding to
 * unit length, so that images are compared by the *direction* of their departure from the set's average rather
 * than by its size: two images with the same kind of defect, one faint and one strong, end up close, which is
 * what clustering anomaly *types* asks for. Euclidean distance between the results is a monotone function of the
 * cosine of the centred embeddings, and Ward's criterion applies unchanged.
 *
 * `'l2-center-l2'` (the default) first scales every embedding to unit length, then does the same: the set's
 * mean is then the mean *direction*, not pulled towards the images whose embeddings happen to be long (bright
 * or high-contrast images give long pooled CNN vectors), and the centring removes what all images share.
 * (The same L2 → centre → L2 sequence is common for global descriptors in image retrieval.)
 * Measured on the shared data with `benches/evaluate.mjs --embedding-norm …` (README "Quality").
 *
 * `'none'` keeps the weighted averages as they are (the paper's method as written, docs/method.md).
 * @module pipeline/embedding-norm
 */

/** How image embeddings are normalised before the distances. */
export type EmbeddingNorm = 'l2-center-l2' | 'center-l2' | 'none';
/** Runtime list of {@link EmbeddingNorm}s. */
export const EMBEDDING_NORMS = ['l2-center-l2', 'center-l2', 'none'] as const;
/** The default {@link EmbeddingNorm}. */
export const DEFAULT_EMBEDDING_NORM: EmbeddingNorm = 'l2-center-l2';

/**
 * Checks an {@link EmbeddingNorm} option value.
 * @throws {RangeError} for anything but one of {@link EMBEDDING_NORMS}
 */
export function checkEmbeddingNorm(norm: unknown): EmbeddingNorm {
  if (!(EMBEDDING_NORMS as readonly unknown[]).includes(norm)) {
    throw new RangeError(`embeddingNorm: expected one of ${EMBEDDING_NORMS.join(', ')}, got ${JSON.stringify(norm)}`);
  }
  return norm as EmbeddingNorm;
}

/**
 * The embeddings as they are compared: `'none'` returns `embeddings` itself; `'center-l2'` returns a new array,
 * each row minus the column means (accumulated in f64), divided by its Euclidean length (a row equal to the
 * mean stays all zeros); `'l2-center-l2'` does the same to the rows first scaled to unit length (an all-zero
 * row stays all zeros before the centring). Deterministic: the result depends only on the values and their
 * order.
 * @param embeddings `n × d`, row-major
 * @throws {RangeError} when `embeddings.length !== n·d` or a value is not finite
 */
export function normaliseEmbeddings(embeddings: Float32Array, n: number, d: number, norm: EmbeddingNorm = DEFAULT_EMBEDDING_NORM): Float32Array {
  checkEmbeddingNorm(norm);
  if (!Number.isSafeInteger(n) || !Number.isSafeInteger(d) || n < 0 || d < 0 || embeddings.length !== n * d) {
    throw new RangeError(`embeddings: expected n·d = ${n}·${d} values, got ${embeddings.length}`);
  }
  if (norm === 'none') return embeddings;
  // scale[i]: 1, or 1/‖row i‖ for 'l2-center-l2' (0 for an all-zero row); rows are scaled on the fly
  const scale = new Float64Array(n).fill(1);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let k = 0; k < d; k++) {
      const v = embeddings[i * d + k]!;
      if (!Number.isFinite(v)) throw new RangeError(`embeddings: value ${v} at image ${i}, dimension ${k} is not finite`);
      ss += v * v;
    }
    if (norm === 'l2-center-l2') scale[i] = ss > 0 ? 1 / Math.sqrt(ss) : 0;
  }
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) mean[k]! += embeddings[i * d + k]! * scale[i]!;
  }
  for (let k = 0; k < d; k++) mean[k]! /= n;
  const out = new Float32Array(n * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let k = 0; k < d; k++) {
      const c = embeddings[i * d + k]! * scale[i]! - mean[k]!;
      row[k] = c;
      ss += c * c;
    }
    if (ss === 0) continue;
    const inv = 1 / Math.sqrt(ss);
    for (let k = 0; k < d; k++) out[i * d + k] = row[k]! * inv;
  }
  return out;
}
