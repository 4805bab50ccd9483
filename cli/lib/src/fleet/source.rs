//! Where logs come from: files (plain or gzip, as CloudFront and log rotation deliver
//! them), directories of them, or an `s3://bucket/prefix` where S3 delivers its server
//! access logs (or CloudFront its standard logs).

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::FleetError;
use super::parse::{self, CloudfrontColumns, LogFormat};
use super::summary::Fleet;

/// Deepest directory nesting followed (S3-style date prefixes need three or four).
const MAX_DEPTH: usize = 8;
/// Longest line read; a longer one is counted as malformed (binary junk, not a log).
const MAX_LINE: usize = 64 * 1024;

/// Reads log lines into a [`Fleet`], with a format named or detected line by line.
pub struct LogReader {
    /// The fleet so far.
    pub fleet: Fleet,
    format: Option<LogFormat>,
    columns: CloudfrontColumns,
    scratch: String,
}

impl LogReader {
    /// A reader for `format`, or any of the three when `None`.
    pub fn new(format: Option<LogFormat>) -> Self {
        LogReader {
            fleet: Fleet::default(),
            format,
            columns: CloudfrontColumns::default(),
            scratch: String::new(),
        }
    }

    /// One line (without its line break).
    pub fn line(&mut self, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return;
        }
        if line.starts_with('#') {
            // CloudFront's `#Version:` and `#Fields:` headers; a file's own field list
            // replaces the documented default.
            if let Some(columns) = CloudfrontColumns::from_header(line) {
                self.columns = columns;
            }
            return;
        }
        self.fleet.counts.lines += 1;
        let format = self.format.or_else(|| parse::detect(line));
        let request = match format {
            Some(LogFormat::Nginx) => parse::nginx(line),
            Some(LogFormat::S3) => parse::s3(line),
            Some(LogFormat::Cloudfront) => {
                parse::cloudfront(line, &self.columns, &mut self.scratch)
            }
            None => None,
        };
        match request {
            Some(r) => self.fleet.add(&r),
            None => self.fleet.counts.malformed += 1,
        }
    }

    /// Every line of `input`; a file's CloudFront columns start from the default.
    pub fn read(&mut self, input: impl Read, name: &str) -> Result<(), FleetError> {
        self.columns = CloudfrontColumns::default();
        let mut input: Box<dyn BufRead> = if name.ends_with(".gz") {
            Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(input)))
        } else {
            Box::new(BufReader::with_capacity(256 * 1024, input))
        };
        let mut buf = Vec::with_capacity(1024);
        loop {
            buf.clear();
            // Bounded: a line longer than MAX_LINE is read in pieces and counted once.
            let n = (&mut input)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
                .map_err(|source| FleetError::Read {
                    what: name.to_owned(),
                    source,
                })?;
            if n == 0 {
                return Ok(());
            }
            if buf.len() == MAX_LINE && buf.last() != Some(&b'\n') {
                self.fleet.counts.lines += 1;
                self.fleet.counts.malformed += 1;
                skip_rest_of_line(&mut input, name)?;
                continue;
            }
            match std::str::from_utf8(&buf) {
                Ok(line) => self.line(line),
                Err(_) => {
                    self.fleet.counts.lines += 1;
                    self.fleet.counts.malformed += 1;
                }
            }
        }
    }

    /// A file, or every file under a directory (in name order, hidden ones skipped).
    pub fn read_path(&mut self, path: &Path) -> Result<(), FleetError> {
        let mut files = Vec::new();
        collect(path, 0, &mut files)?;
        for file in files {
            let opened = fs::File::open(&file).map_err(|source| FleetError::Read {
                what: file.display().to_string(),
                source,
            })?;
            self.read(opened, &file.display().to_string())?;
        }
        Ok(())
    }
}

fn skip_rest_of_line(input: &mut dyn BufRead, name: &str) -> Result<(), FleetError> {
    loop {
        let (done, used) = {
            let chunk = input.fill_buf().map_err(|source| FleetError::Read {
                what: name.to_owned(),
                source,
            })?;
            match chunk.iter().position(|&b| b == b'\n') {
                Some(at) => (true, at + 1),
                None => (chunk.is_empty(), chunk.len()),
            }
        };
        input.consume(used);
        if done {
            return Ok(());
        }
    }
}

fn collect(path: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), FleetError> {
    let meta = fs::metadata(path).map_err(|source| FleetError::Read {
        what: path.display().to_string(),
        source,
    })?;
    if !meta.is_dir() {
        out.push(path.to_owned());
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let entries = fs::read_dir(path).map_err(|source| FleetError::Read {
        what: path.display().to_string(),
        source,
    })?;
    let mut children: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    children.sort();
    for child in children {
        collect(&child, depth + 1, out)?;
    }
    Ok(())
}

/// `s3://bucket/prefix` split; `None` when `text` is not an S3 URL.
pub fn s3_url(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, prefix))
}

/// Reads every object under `prefix` of `bucket`, credentials, region and endpoint
/// from the standard AWS environment (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`, ...), with
/// the client `publish` uses (its bounded retries).
pub fn read_s3(reader: &mut LogReader, bucket: &str, prefix: &str) -> Result<(), FleetError> {
    use object_store::{ObjectStore, ObjectStoreExt};

    let url = format!("s3://{bucket}/{prefix}");
    let s3_error = |source: object_store::Error| FleetError::S3 {
        url: url.clone(),
        source: Box::new(source),
    };
    let options = crate::publish::s3::S3Options::default();
    let store = crate::publish::s3::configured_builder(bucket, &options)
        .ok_or_else(|| FleetError::NoCredentials { url: url.clone() })?
        .build()
        .map_err(s3_error)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| FleetError::Read {
            what: "an async runtime".to_owned(),
            source,
        })?;
    runtime.block_on(async {
        // Breadth-first over "directories" (S3 delivers logs under date prefixes when
        // asked to), at most MAX_DEPTH levels.
        let mut level = vec![(!prefix.is_empty()).then(|| object_store::path::Path::from(prefix))];
        let mut objects = Vec::new();
        for _ in 0..MAX_DEPTH {
            let mut next = Vec::new();
            for dir in &level {
                let listed = store
                    .list_with_delimiter(dir.as_ref())
                    .await
                    .map_err(s3_error)?;
                objects.extend(listed.objects.into_iter().map(|o| o.location));
                next.extend(listed.common_prefixes.into_iter().map(Some));
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        objects.sort();
        for location in objects {
            let bytes = store
                .get(&location)
                .await
                .map_err(s3_error)?
                .bytes()
                .await
                .map_err(s3_error)?;
            let name = format!("s3://{bucket}/{location}");
            reader.read(&bytes[..], &name)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "127.0.0.1 - - [06/Dec/2026:08:41:09 +0000] \"GET /fleet/sensor.stable.manifest HTTP/1.1\" 304 0 \"-\" \"ota-agent/0.1.0 (i=3f9a1c2e8b01;t=sensor;c=stable;v=1.2.0;s=1;r=up)\"\n";

    #[test]
    fn a_line_longer_than_the_bound_is_one_malformed_line_and_the_next_still_counts() {
        let mut input = vec![b'x'; 3 * MAX_LINE];
        input.push(b'\n');
        input.extend_from_slice(LINE.as_bytes());
        let mut reader = LogReader::new(None);
        reader.read(&input[..], "access.log").unwrap();
        let counts = reader.fleet.counts;
        assert_eq!((counts.lines, counts.malformed), (2, 1));
        assert_eq!(counts.device_requests, 1);
    }

    #[test]
    fn directories_are_followed_to_the_depth_bound_and_no_deeper() {
        let root = tempfile::tempdir().unwrap();
        let mut dir = root.path().to_path_buf();
        for level in 0..=MAX_DEPTH {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("access-{level}.log")), LINE).unwrap();
            dir.push("deeper");
        }
        let mut reader = LogReader::new(None);
        reader.read_path(root.path()).unwrap();
        // The file at nesting level MAX_DEPTH is one directory too deep.
        assert_eq!(reader.fleet.counts.lines, MAX_DEPTH as u64);
    }
}
