/**
 * @file Müllner's generic clustering algorithm (SciPy's `fast_linkage`), used for centroid and median, whose
 * dendrograms may contain inversions so neither MST nor NN-chain applies. Nearest-neighbour candidates among
 * higher indices are kept with lazily-updated lower bounds in a binary heap; the heap replicates SciPy's
 * `Heap` (same sift rules), so ties resolve exactly as in SciPy. Z rows come out in merge order (not sorted).
 * @module bindings/reference/linkage/generic
 */
import type { LinkageMethod } from '../../backend.js';
import { condensedIndex } from '../condensed.js';
import { degenerateLinkage, UPDATES } from './methods.js';

/** Binary min-heap over keys 0..size−1 with changeable values (SciPy `_structures.pxi` `Heap`). */
class Heap {
  private readonly indexByKey: Int32Array;
  private readonly keyByIndex: Int32Array;
  private readonly values: Float64Array;
  private size: number;
  constructor(values: Float64Array) {
    this.size = values.length;
    this.indexByKey = new Int32Array(this.size);
    this.keyByIndex = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) {
      this.indexByKey[i] = i;
      this.keyByIndex[i] = i;
    }
    this.values = Float64Array.from(values);
    for (let i = (this.size >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }
  minKey(): number {
    return this.keyByIndex[0]!;
  }
  minValue(): number {
    return this.values[0]!;
  }
  removeMin(): void {
    this.swap(0, this.size - 1);
    this.size--;
    this.siftDown(0);
  }
  changeValue(key: number, value: number): void {
    const index = this.indexByKey[key]!;
    const old = this.values[index]!;
    this.values[index] = value;
    if (value < old) this.siftUp(index);
    else this.siftDown(index);
  }
  private siftUp(index: number): void {
    let parent = (index - 1) >> 1;
    while (index > 0 && this.values[parent]! > this.values[index]!) {
      this.swap(index, parent);
      index = parent;
      parent = (index - 1) >> 1;
    }
  }
  private siftDown(index: number): void {
    let child = (index << 1) + 1;
    while (child < this.size) {
      if (child + 1 < this.size && this.values[child + 1]! < this.values[child]!) child++;
      if (this.values[index]! > this.values[child]!) {
        this.swap(index, child);
        index = child;
        child = (index << 1) + 1;
      } else break;
    }
  }
  private swap(i: number, j: number): void {
    const v = this.values[i]!;
    this.values[i] = this.values[j]!;
    this.values[j] = v;
    const ki = this.keyByIndex[i]!;
    const kj = this.keyByIndex[j]!;
    this.keyByIndex[i] = kj;
    this.keyByIndex[j] = ki;
    this.indexByKey[ki] = j;
    this.indexByKey[kj] = i;
  }
}

/** Nearest live cluster among indices > x: [index, distance], or [-1, Infinity]. First strict minimum wins. */
function findMinDist(n: number, D: Float64Array, size: Int32Array, x: number): [number, number] {
  let currentMin = Infinity;
  let y = -1;
  for (let i = x + 1; i < n; i++) {
    if (size[i] === 0) continue;
    const dist = D[condensedIndex(n, x, i)]!;
    if (dist < currentMin) {
      currentMin = dist;
      y = i;
    }
  }
  return [y, currentMin];
}

/** Z of the condensed f64 matrix `y` of `n ≥ 2` points, any method (used for centroid and median). */
export function genericLinkage(y: Float64Array, n: number, method: LinkageMethod): Float64Array {
  const z = new Float64Array(4 * (n - 1));
  const D = Float64Array.from(y);
  const size = new Int32Array(n).fill(1);
  const clusterId = new Int32Array(n);
  for (let i = 0; i < n; i++) clusterId[i] = i;
  const neighbor = new Int32Array(n - 1);
  const minDist = new Float64Array(n - 1);
  const update = UPDATES[method];

  for (let x = 0; x < n - 1; x++) {
    const [nb, dist] = findMinDist(n, D, size, x);
    neighbor[x] = nb;
    minDist[x] = dist;
  }
  const heap = new Heap(minDist);

  for (let k = 0; k < n - 1; k++) {
    let x = 0;
    let yy = 0;
    let dist = 0;
    for (let i = 0; i < n - k; i++) {
      x = heap.minKey();
      dist = heap.minValue();
      yy = neighbor[x]!;
      if (dist === D[condensedIndex(n, x, yy)]) break;
      const [nb, nd] = findMinDist(n, D, size, x);
      yy = nb;
      dist = nd;
      neighbor[x] = yy;
      minDist[x] = dist;
      heap.changeValue(x, dist);
    }
    heap.removeMin();
    if (yy < 0 || size[x] === 0 || size[yy] === 0 || x === yy) throw degenerateLinkage(method, k);

    let idX = clusterId[x]!;
    let idY = clusterId[yy]!;
    const nx = size[x]!;
    const ny = size[yy]!;
    if (idX > idY) {
      const t = idX;
      idX = idY;
      idY = t;
    }
    z[4 * k] = idX;
    z[4 * k + 1] = idY;
    z[4 * k + 2] = dist;
    z[4 * k + 3] = nx + ny;

    size[x] = 0;
    size[yy] = nx + ny;
    clusterId[yy] = n + k;

    for (let c = 0; c < n; c++) {
      const nc = size[c]!;
      if (nc === 0 || c === yy) continue;
      D[condensedIndex(n, c, yy)] = update(D[condensedIndex(n, c, x)]!, D[condensedIndex(n, c, yy)]!, dist, nx, ny, nc);
    }
    for (let c = 0; c < x; c++) {
      if (size[c]! > 0 && neighbor[c] === x) neighbor[c] = yy;
    }
    for (let c = 0; c < yy; c++) {
      if (size[c] === 0) continue;
      const dc = D[condensedIndex(n, c, yy)]!;
      if (dc < minDist[c]!) {
        neighbor[c] = yy;
        minDist[c] = dc;
        heap.changeValue(c, dc);
      }
    }
    if (yy < n - 1) {
      const [nb, nd] = findMinDist(n, D, size, yy);
      if (nb !== -1) {
        neighbor[yy] = nb;
        minDist[yy] = nd;
        heap.changeValue(yy, nd);
      }
    }
  }
  return z;
}
