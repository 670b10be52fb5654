//! Reading a labelled benchmark CSV (plain or gzipped) into features and labels.
//!
//! The file has a header row; the label column (default `label`) holds 0 or 1,
//! 1 meaning anomaly; every other column is a numeric feature. Every problem is
//! reported with the file, the line and the column, so it can be fixed by hand.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::detect::Matrix;

/// A labelled data set: features and 0/1 labels, row for row.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The file it was read from.
    pub path: PathBuf,
    /// Feature column names, in order.
    pub feature_names: Vec<String>,
    /// Features, one row per data line.
    pub features: Matrix,
    /// 1 = anomaly, 0 = normal.
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Rows labelled 1.
    pub fn anomalies(&self) -> usize {
        self.labels.iter().filter(|&&l| l == 1).count()
    }
}

/// Where in the file a problem is.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when the problem is on one line.
    pub line: Option<u64>,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// What is wrong with a data file.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file cannot be opened or read (also: a corrupt gzip stream).
    #[error("{place}: cannot read: {message}")]
    Read {
        /// Where.
        place: Place,
        /// The OS or decoder error.
        message: String,
    },
    /// Nothing at all in the file.
    #[error("{place}: the file is empty; expected a header row such as `f0,f1,label`")]
    Empty {
        /// Where.
        place: Place,
    },
    /// A header but no data rows.
    #[error("{place}: the file has a header but no data rows")]
    NoRows {
        /// Where.
        place: Place,
    },
    /// The label column is not in the header.
    #[error("{place}: no label column `{label}` in the header (columns: {columns}); name it with --label")]
    MissingLabel {
        /// Where.
        place: Place,
        /// The label column looked for.
        label: String,
        /// The header's columns.
        columns: String,
    },
    /// Only the label column.
    #[error("{place}: the header has no feature column besides the label `{label}`")]
    NoFeatures {
        /// Where.
        place: Place,
        /// The label column.
        label: String,
    },
    /// A row with another number of fields than the header.
    #[error("{place}: the row has {got} fields but the header has {expected}")]
    Ragged {
        /// Where.
        place: Place,
        /// Fields in the header.
        expected: usize,
        /// Fields in this row.
        got: usize,
    },
    /// A feature cell that is not a finite number.
    #[error("{place}: column {column} (`{name}`): {value:?} is not a finite number")]
    NotNumber {
        /// Where.
        place: Place,
        /// 1-based column.
        column: usize,
        /// The column's name.
        name: String,
        /// The cell.
        value: String,
    },
    /// A label other than 0 or 1.
    #[error(
        "{place}: column {column} (`{name}`): label {value:?} must be 0 (normal) or 1 (anomaly)"
    )]
    BadLabel {
        /// Where.
        place: Place,
        /// 1-based column.
        column: usize,
        /// The label column's name.
        name: String,
        /// The cell.
        value: String,
    },
    /// The CSV syntax itself is broken (e.g. an unclosed quote or invalid UTF-8).
    #[error("{place}: not valid CSV: {message}")]
    Syntax {
        /// Where.
        place: Place,
        /// The parser's words.
        message: String,
    },
}

/// Reads `path`, gzipped or not (told by its first bytes, not its name).
pub fn load(path: &Path, label: &str) -> Result<Dataset, DatasetError> {
    let mut csv = CsvFile::open(path)?;
    let mut record = csv::StringRecord::new();
    if !csv.next(&mut record)? {
        return Err(DatasetError::Empty {
            place: csv.place(None),
        });
    }
    let header: Vec<String> = record.iter().map(|s| s.trim().to_string()).collect();
    let label_at =
        header
            .iter()
            .position(|h| h == label)
            .ok_or_else(|| DatasetError::MissingLabel {
                place: csv.place(Some(1)),
                label: label.to_string(),
                columns: header.join(", "),
            })?;
    if header.len() < 2 {
        return Err(DatasetError::NoFeatures {
            place: csv.place(Some(1)),
            label: label.to_string(),
        });
    }
    let feature_names: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != label_at)
        .map(|(_, h)| h.clone())
        .collect();
    let mut values = Vec::new();
    let mut labels = Vec::new();
    while csv.next(&mut record)? {
        csv.row(&record, &header, label_at, &mut values, &mut labels)?;
    }
    if labels.is_empty() {
        return Err(DatasetError::NoRows {
            place: csv.place(None),
        });
    }
    let features = Matrix::new(feature_names.len(), values)
        .expect("every row pushed exactly one value per feature column");
    Ok(Dataset {
        path: path.to_path_buf(),
        feature_names,
        features,
        labels,
    })
}

/// A CSV file being read, with positions for messages.
struct CsvFile<'a> {
    path: &'a Path,
    reader: csv::Reader<Box<dyn Read>>,
}

impl<'a> CsvFile<'a> {
    /// Opens `path`, decompressing when its first bytes are gzip's magic.
    fn open(path: &'a Path) -> Result<CsvFile<'a>, DatasetError> {
        let read_err = |e: std::io::Error| DatasetError::Read {
            place: Place {
                file: path.to_path_buf(),
                line: None,
            },
            message: e.to_string(),
        };
        let mut file = BufReader::new(File::open(path).map_err(read_err)?);
        let mut magic = [0u8; 2];
        let got = read_up_to(&mut file, &mut magic).map_err(read_err)?;
        let head = std::io::Cursor::new(magic[..got].to_vec());
        let input: Box<dyn Read> = if got == 2 && magic == [0x1f, 0x8b] {
            Box::new(MultiGzDecoder::new(head.chain(file)))
        } else {
            Box::new(head.chain(file))
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        Ok(CsvFile { path, reader })
    }

    fn place(&self, line: Option<u64>) -> Place {
        Place {
            file: self.path.to_path_buf(),
            line,
        }
    }

    /// Reads the next record; false at the end.
    fn next(&mut self, record: &mut csv::StringRecord) -> Result<bool, DatasetError> {
        self.reader.read_record(record).map_err(|e| {
            let line = e.position().map(|p| p.line());
            match e.into_kind() {
                csv::ErrorKind::Io(io) => DatasetError::Read {
                    place: self.place(line),
                    message: io.to_string(),
                },
                other => DatasetError::Syntax {
                    place: self.place(line),
                    message: format!("{other:?}"),
                },
            }
        })
    }

    /// Checks one data row and appends its features and label.
    fn row(
        &self,
        record: &csv::StringRecord,
        header: &[String],
        label_at: usize,
        values: &mut Vec<f64>,
        labels: &mut Vec<u8>,
    ) -> Result<(), DatasetError> {
        let line = record.position().map(|p| p.line());
        if record.len() != header.len() {
            return Err(DatasetError::Ragged {
                place: self.place(line),
                expected: header.len(),
                got: record.len(),
            });
        }
        for (i, cell) in record.iter().enumerate() {
            let cell = cell.trim();
            let number = cell.parse::<f64>().ok().filter(|v| v.is_finite());
            if i == label_at {
                match number {
                    Some(0.0) => labels.push(0),
                    Some(1.0) => labels.push(1),
                    _ => {
                        return Err(DatasetError::BadLabel {
                            place: self.place(line),
                            column: i + 1,
                            name: header[i].clone(),
                            value: cell.to_string(),
                        })
                    }
                }
            } else {
                values.push(number.ok_or_else(|| DatasetError::NotNumber {
                    place: self.place(line),
                    column: i + 1,
                    name: header[i].clone(),
                    value: cell.to_string(),
                })?);
            }
        }
        Ok(())
    }
}

/// Reads as many bytes as are there, up to `buf.len()`.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_plain_and_gzipped_files_alike() {
        let dir = tempfile::tempdir().unwrap();
        let text = "a,b,label\n1,2,0\n3.5,-4e2,1\n";
        let plain = load(&write(&dir, "x.csv", text), "label").unwrap();
        let gz_path = dir.path().join("x.data");
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&gz_path).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap();
        let gz = load(&gz_path, "label").unwrap();
        for d in [&plain, &gz] {
            assert_eq!(d.feature_names, ["a", "b"]);
            assert_eq!(d.labels, [0, 1]);
            assert_eq!(d.features.as_slice(), &[1.0, 2.0, 3.5, -400.0]);
            assert_eq!(d.anomalies(), 1);
        }
    }

    #[test]
    fn label_column_may_sit_anywhere_and_be_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let d = load(&write(&dir, "x.csv", "y,a\n1,5\n0,6\n"), "y").unwrap();
        assert_eq!(d.feature_names, ["a"]);
        assert_eq!(d.labels, [1, 0]);
    }

    fn err(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "bad.csv", text);
        load(&p, "label").unwrap_err().to_string()
    }

    #[test]
    fn ragged_row_names_file_and_line() {
        let e = err("a,b,label\n1,2,0\n1,2\n");
        assert!(
            e.contains("bad.csv:3") && e.contains("2 fields") && e.contains("has 3"),
            "{e}"
        );
    }

    #[test]
    fn non_numeric_cell_names_line_and_column() {
        let e = err("a,b,label\n1,2,0\n1,x7,0\n");
        assert!(
            e.contains("bad.csv:3") && e.contains("column 2") && e.contains("`b`"),
            "{e}"
        );
        assert!(e.contains("x7"), "{e}");
        let e = err("a,b,label\n1,nan,0\n");
        assert!(e.contains("bad.csv:2") && e.contains("finite"), "{e}");
        let e = err("a,b,label\n1,,0\n");
        assert!(e.contains("column 2"), "{e}");
    }

    #[test]
    fn missing_label_column_lists_the_header() {
        let e = err("a,b,class\n1,2,0\n");
        assert!(
            e.contains("`label`") && e.contains("a, b, class") && e.contains("--label"),
            "{e}"
        );
    }

    #[test]
    fn label_must_be_zero_or_one() {
        for bad in ["2", "-1", "0.5", "yes", ""] {
            let e = err(&format!("a,label\n1,0\n1,{bad}\n"));
            assert!(
                e.contains("bad.csv:3") && e.contains("column 2") && e.contains("0 (normal)"),
                "{bad}: {e}"
            );
        }
        // 1.0 and 0.0 are the same numbers.
        let dir = tempfile::tempdir().unwrap();
        let d = load(&write(&dir, "ok.csv", "a,label\n1,1.0\n2,0.0\n"), "label").unwrap();
        assert_eq!(d.labels, [1, 0]);
    }

    #[test]
    fn empty_file_header_only_and_label_only_are_errors() {
        assert!(err("").contains("empty"));
        assert!(err("a,label\n").contains("no data rows"));
        assert!(err("label\n1\n").contains("no feature column"));
    }

    #[test]
    fn missing_file_and_corrupt_gzip_are_read_errors() {
        let e = load(Path::new("/nonexistent/x.csv"), "label")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/x.csv") && e.contains("cannot read"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("broken.csv.gz");
        std::fs::write(&p, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
        let e = load(&p, "label").unwrap_err().to_string();
        assert!(e.contains("broken.csv.gz"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_a_syntax_error_with_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bin.csv");
        std::fs::write(&p, b"a,label\n1,0\n\xff\xfe,1\n").unwrap();
        let e = load(&p, "label").unwrap_err().to_string();
        assert!(e.contains("bin.csv:3"), "{e}");
    }
}
