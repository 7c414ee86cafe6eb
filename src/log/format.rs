//! Records to bytes: `cri`, `json`, `ts`, `plain`, with the timestamp formatted once per batch.
