//! A dense row-major matrix of `f64` features: what the forest fits and scores.

use super::DetectError;

/// Rows of equal width, stored contiguously row after row.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// Wraps `data` as rows of `cols` values. Fails when the length is not a
    /// whole number of rows, or when `cols` is 0.
    pub fn new(cols: usize, data: Vec<f64>) -> Result<Matrix, DetectError> {
        if cols == 0 {
            return Err(DetectError::NoFeatures);
        }
        if data.len() % cols != 0 {
            return Err(DetectError::Ragged {
                len: data.len(),
                cols,
            });
        }
        Ok(Matrix { cols, data })
    }

    /// Builds a matrix from row slices, which must all have the same width.
    pub fn from_rows<R: AsRef<[f64]>>(rows: &[R]) -> Result<Matrix, DetectError> {
        let cols = rows.first().map(|r| r.as_ref().len()).unwrap_or(0);
        let mut data = Vec::with_capacity(rows.len() * cols);
        for row in rows {
            let row = row.as_ref();
            if row.len() != cols {
                return Err(DetectError::FeatureCount {
                    expected: cols,
                    got: row.len(),
                });
            }
            data.extend_from_slice(row);
        }
        Matrix::new(cols, data)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len() / self.cols
    }
    /// Number of feature columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
    /// All values, row after row.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// Checks that there is data to train on and that every value is finite.
    pub fn check_trainable(&self) -> Result<(), DetectError> {
        if self.data.is_empty() {
            return Err(DetectError::NoRows);
        }
        if let Some(at) = self.data.iter().position(|v| !v.is_finite()) {
            return Err(DetectError::NonFinite {
                row: at / self.cols,
                feature: at % self.cols,
                value: self.data[at],
            });
        }
        Ok(())
    }
}
