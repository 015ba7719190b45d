//! Copying a task's stdout and stderr into its log file, line by line as they come, and onto
//! the live log channel.

use std::fs::File;
use std::io::Write;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe::Receiver;
use tokio::sync::mpsc::UnboundedSender;

use crate::{LogLine, LogStream};

/// A line longer than this is cut into pieces of this size, so that one endless line cannot
/// hold memory or starve the other stream.
const MAX_LINE: usize = 64 * 1024;
const READ_SIZE: usize = 64 * 1024;

pub(crate) struct LogSink {
    pub task_key: String,
    pub file: File,
    pub lines: Option<UnboundedSender<LogLine>>,
    /// Values (secrets) replaced by `***` wherever they appear in a line.
    redact: Vec<Vec<u8>>,
    write_failed: bool,
}

/// What a redacted value reads as in a log.
pub(crate) const REDACTED: &[u8] = b"***";

impl LogSink {
    pub(crate) fn new(
        task_key: String,
        file: File,
        lines: Option<UnboundedSender<LogLine>>,
    ) -> Self {
        LogSink {
            task_key,
            file,
            lines,
            redact: Vec::new(),
            write_failed: false,
        }
    }

    /// Masks these values in every line written from now on. Empty values are ignored;
    /// longer values are masked first, so a value containing another is masked whole.
    pub(crate) fn set_redactions(&mut self, values: &[String]) {
        let mut redact: Vec<Vec<u8>> = values
            .iter()
            .filter(|value| !value.is_empty())
            .map(|value| value.as_bytes().to_vec())
            .collect();
        redact.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        redact.dedup();
        self.redact = redact;
    }

    /// Writes complete lines (each ending in `\n`) to the file and the channel.
    fn emit(&mut self, stream: LogStream, complete: &[u8]) {
        if complete.is_empty() {
            return;
        }
        if !self.redact.is_empty() {
            let masked = redact_bytes(complete, &self.redact);
            return self.emit_plain(stream, &masked);
        }
        self.emit_plain(stream, complete);
    }

    fn emit_plain(&mut self, stream: LogStream, complete: &[u8]) {
        if !self.write_failed
            && let Err(error) = self.file.write_all(complete)
        {
            self.write_failed = true;
            tracing::warn!(task_key = %self.task_key, %error, "cannot write task log file; further output is dropped from it");
        }
        if let Some(sender) = &self.lines {
            for line in complete
                .strip_suffix(b"\n")
                .unwrap_or(complete)
                .split(|&b| b == b'\n')
            {
                let _ = sender.send(LogLine {
                    task_key: self.task_key.clone(),
                    stream,
                    line: String::from_utf8_lossy(line).into_owned(),
                });
            }
        }
    }

    /// A line of Coracle's own about the task (written as stderr).
    pub(crate) fn note(&mut self, message: &str) {
        let mut line = message.as_bytes().to_vec();
        line.push(b'\n');
        self.emit(LogStream::Stderr, &line);
    }
}

/// `text` with every occurrence of each of `values` (longest first) replaced by [`REDACTED`].
pub(crate) fn redact_bytes(text: &[u8], values: &[Vec<u8>]) -> Vec<u8> {
    let mut out = text.to_vec();
    for value in values {
        if value.is_empty() || out.len() < value.len() {
            continue;
        }
        let mut result = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(value) {
                result.extend_from_slice(REDACTED);
                i += value.len();
            } else {
                result.push(out[i]);
                i += 1;
            }
        }
        out = result;
    }
    out
}

/// Cuts one stream's bytes into lines for a sink: complete lines go out as they come, a
/// partial line waits for its end (or for [`MAX_LINE`] bytes, or for the stream's end).
struct LineSplitter {
    stream: LogStream,
    pending: Vec<u8>,
}

impl LineSplitter {
    fn new(stream: LogStream) -> Self {
        LineSplitter {
            stream,
            pending: Vec::new(),
        }
    }

    fn push(&mut self, chunk: &[u8], sink: &mut LogSink) {
        match chunk.iter().rposition(|&b| b == b'\n') {
            Some(last_newline) if self.pending.is_empty() => {
                sink.emit(self.stream, &chunk[..=last_newline]);
                self.pending.extend_from_slice(&chunk[last_newline + 1..]);
            }
            Some(last_newline) => {
                self.pending.extend_from_slice(&chunk[..=last_newline]);
                sink.emit(self.stream, &self.pending);
                self.pending.clear();
                self.pending.extend_from_slice(&chunk[last_newline + 1..]);
            }
            None => self.pending.extend_from_slice(chunk),
        }
        while self.pending.len() >= MAX_LINE {
            let mut piece: Vec<u8> = self.pending.drain(..MAX_LINE).collect();
            piece.push(b'\n');
            sink.emit(self.stream, &piece);
        }
    }

    /// The stream ended: a last line without its newline is written with one.
    fn finish(&mut self, sink: &mut LogSink) {
        if !self.pending.is_empty() {
            self.pending.push(b'\n');
            sink.emit(self.stream, &self.pending);
            self.pending.clear();
        }
    }
}

struct StreamState {
    receiver: Receiver,
    lines: LineSplitter,
    buffer: Box<[u8]>,
    done: bool,
}

impl StreamState {
    fn new(stream: LogStream, receiver: Receiver) -> Self {
        StreamState {
            receiver,
            lines: LineSplitter::new(stream),
            buffer: vec![0; READ_SIZE].into_boxed_slice(),
            done: false,
        }
    }

    fn absorb(&mut self, read: std::io::Result<usize>, sink: &mut LogSink) {
        match read {
            Ok(0) | Err(_) => {
                self.done = true;
                self.lines.finish(sink);
            }
            Ok(n) => self.lines.push(&self.buffer[..n], sink),
        }
    }
}

/// Copies both pipes until both reach end of file; the sink's file is closed on return.
pub(crate) async fn pump(stdout: Receiver, stderr: Receiver, mut sink: LogSink) {
    let mut out = StreamState::new(LogStream::Stdout, stdout);
    let mut err = StreamState::new(LogStream::Stderr, stderr);
    while !(out.done && err.done) {
        tokio::select! {
            read = out.receiver.read(&mut out.buffer), if !out.done => out.absorb(read, &mut sink),
            read = err.receiver.read(&mut err.buffer), if !err.done => err.absorb(read, &mut sink),
        }
    }
}

/// A sink fed with chunks of both streams as they arrive (a container's attached output),
/// cut into lines by the same rules as [`pump`].
pub(crate) struct ChunkedLog {
    sink: LogSink,
    stdout: LineSplitter,
    stderr: LineSplitter,
}

impl ChunkedLog {
    pub(crate) fn new(sink: LogSink) -> Self {
        ChunkedLog {
            sink,
            stdout: LineSplitter::new(LogStream::Stdout),
            stderr: LineSplitter::new(LogStream::Stderr),
        }
    }

    pub(crate) fn feed(&mut self, stream: LogStream, chunk: &[u8]) {
        match stream {
            LogStream::Stdout => self.stdout.push(chunk, &mut self.sink),
            LogStream::Stderr => self.stderr.push(chunk, &mut self.sink),
        }
    }

    /// Both streams ended: writes what is left of a last line of each.
    pub(crate) fn finish(&mut self) {
        self.stdout.finish(&mut self.sink);
        self.stderr.finish(&mut self.sink);
    }

    /// A line of Coracle's own about the task (written as stderr).
    pub(crate) fn note(&mut self, message: &str) {
        self.sink.note(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_masks_every_occurrence_longest_first() {
        let values = vec![b"hunter22".to_vec(), b"hunter2".to_vec()];
        assert_eq!(
            redact_bytes(b"pw=hunter22 and hunter2, hunter2x\n", &values),
            b"pw=*** and ***, ***x\n".to_vec()
        );
        assert_eq!(
            redact_bytes(b"nothing here\n", &values),
            b"nothing here\n".to_vec()
        );
    }

    #[test]
    fn chunks_are_cut_into_lines_per_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.log");
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let sink = LogSink::new("t".into(), File::create(&path).unwrap(), Some(sender));
        let mut log = ChunkedLog::new(sink);
        log.feed(LogStream::Stdout, b"hel");
        log.feed(LogStream::Stderr, b"err one\nerr ");
        log.feed(LogStream::Stdout, b"lo\nwor");
        log.feed(LogStream::Stdout, b"ld\n");
        log.feed(LogStream::Stderr, b"two");
        log.finish();
        drop(log);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "err one\nhello\nworld\nerr two\n"
        );
        let mut lines = Vec::new();
        while let Ok(line) = receiver.try_recv() {
            lines.push((line.stream, line.line));
        }
        assert_eq!(
            lines,
            [
                (LogStream::Stderr, "err one".to_string()),
                (LogStream::Stdout, "hello".to_string()),
                (LogStream::Stdout, "world".to_string()),
                (LogStream::Stderr, "err two".to_string()),
            ]
        );
    }
}
