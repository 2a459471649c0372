/**
 * @file SciPy's `label()` step: after MST / NN-chain produce merges in an arbitrary order with point indices as
 * stand-ins for clusters, the merges are stably sorted by height and relabelled with a union-find so that the
 * cluster made at row i gets id n+i and each row reads [min id, max id, height, size].
 * @module bindings/reference/linkage/union-find
 */

/** Union-find over the 2n−1 cluster ids, merging into a fresh label each time (SciPy's `LinkageUnionFind`). */
class LinkageUnionFind {
  private readonly parent: Int32Array;
  private readonly size: Int32Array;
  private nextLabel: number;
  constructor(n: number) {
    this.parent = new Int32Array(2 * n - 1);
    for (let i = 0; i < this.parent.length; i++) this.parent[i] = i;
    this.size = new Int32Array(2 * n - 1).fill(1);
    this.nextLabel = n;
  }
  merge(x: number, y: number): number {
    this.parent[x] = this.nextLabel;
    this.parent[y] = this.nextLabel;
    const s = this.size[x]! + this.size[y]!;
    this.size[this.nextLabel] = s;
    this.nextLabel++;
    return s;
  }
  find(x: number): number {
    let p = x;
    while (this.parent[x] !== x) x = this.parent[x]!;
    while (this.parent[p] !== x) {
      const next = this.parent[p]!;
      this.parent[p] = x;
      p = next;
    }
    return x;
  }
}

/**
 * Sorts the (n−1) rows of `z` stably by height (column 2; `np.argsort(kind='mergesort')`) and relabels the
 * ids with union-find; fills column 3 with the sizes.
 * @returns a new Z
 */
export function sortAndLabel(z: Float64Array, n: number): Float64Array {
  const m = n - 1;
  const order = Array.from({ length: m }, (_, i) => i);
  // Array.prototype.sort is stable (ES2019), like numpy's mergesort.
  order.sort((a, b) => {
    const ha = z[4 * a + 2]!;
    const hb = z[4 * b + 2]!;
    return ha < hb ? -1 : ha > hb ? 1 : 0;
  });
  const out = new Float64Array(4 * m);
  const uf = new LinkageUnionFind(n);
  for (let i = 0; i < m; i++) {
    const r = order[i]!;
    const xr = uf.find(z[4 * r]!);
    const yr = uf.find(z[4 * r + 1]!);
    out[4 * i] = xr < yr ? xr : yr;
    out[4 * i + 1] = xr < yr ? yr : xr;
    out[4 * i + 2] = z[4 * r + 2]!;
    out[4 * i + 3] = uf.merge(xr, yr);
  }
  return out;
}
