// Singular value decomposition of a short, wide matrix (L rows of N values, L ≤ a few hundred, N up to millions) in
// float64, written out here because the project has no numeric library. Rows are layers' flattened weight matrices,
// so L is small and N large: the L×L Gram matrix M·Mᵀ = U·Σ²·Uᵀ is cheap (L²·N) and its eigen-decomposition by
// cyclic Jacobi rotations is exact to float64 precision. Right singular vectors follow as Vᵀ = Σ⁻¹·Uᵀ·M.

/** Eigenvalues (descending) and eigenvectors (columns of an n×n row-major matrix) of a symmetric n×n matrix. */
export function symmetricEigen(input: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(input);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  const scale = Math.max(1e-300, Math.sqrt(a.reduce((s, x) => s + x * x, 0)));
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (Math.sqrt(off) <= 1e-15 * scale) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) <= 1e-300) continue;
        // The rotation that zeroes a[p][q] (Golub & Van Loan, symmetric Schur decomposition).
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  const values = Float64Array.from(order, (i) => a[i * n + i]);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src];
  });
  return { values, vectors };
}

export interface RowSvd {
  /** L×r left singular vectors, row-major. */
  u: Float64Array;
  /** r singular values, descending. */
  sigma: Float64Array;
  /** r×N right singular vectors (rows), zero rows where σ is zero. */
  vt: Float64Array;
  rank: number;
}

/** M (rows × cols, row-major) = U·diag(σ)·Vᵀ with r = rows components (thin SVD for rows ≤ cols). */
export function svdWide(m: Float64Array, rows: number, cols: number): RowSvd {
  const gram = new Float64Array(rows * rows);
  for (let i = 0; i < rows; i++) {
    for (let j = i; j < rows; j++) {
      let s = 0;
      const a = i * cols;
      const b = j * cols;
      for (let k = 0; k < cols; k++) s += m[a + k] * m[b + k];
      gram[i * rows + j] = s;
      gram[j * rows + i] = s;
    }
  }
  const { values, vectors } = symmetricEigen(gram, rows);
  const sigma = Float64Array.from(values, (x) => Math.sqrt(Math.max(0, x)));
  const vt = new Float64Array(rows * cols);
  const tiny = (sigma[0] || 0) * 1e-13;
  for (let c = 0; c < rows; c++) {
    if (sigma[c] <= tiny) continue;
    const dst = c * cols;
    for (let l = 0; l < rows; l++) {
      const w = vectors[l * rows + c] / sigma[c];
      if (w === 0) continue;
      const src = l * cols;
      for (let k = 0; k < cols; k++) vt[dst + k] += w * m[src + k];
    }
  }
  return { u: vectors, sigma, vt, rank: rows };
}
