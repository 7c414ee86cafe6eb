//! Bytes to records: line splitting, `--max-line` pieces, final partial line at EOF.
