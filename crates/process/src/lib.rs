//! Running an external program with its output captured and a time limit: the one way the
//! libraries that drive a program (`ci-context` runs git, `pydeps` runs uv) wait for it.
//!
//! A leaf crate: no I/O of its own beyond the child process, no knowledge of which program
//! runs or what its failure means; each caller names the program in its own errors.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest pause between two checks of whether the child has exited.
const MAX_POLL_PAUSE: Duration = Duration::from_millis(20);

/// Runs `command` with stdout and stderr captured; `Ok(None)` if it had to be stopped after
/// `limit`. Both pipes are read while waiting, so a chatty program cannot block on a full
/// pipe. Stdin is left as the caller set it.
pub fn output_within(command: &mut Command, limit: Duration) -> std::io::Result<Option<Output>> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        let status = match child.try_wait() {
            Ok(status) => status,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
        };
        if let Some(status) = status {
            return Ok(Some(Output {
                status,
                stdout: stdout.join().unwrap_or_default(),
                stderr: stderr.join().unwrap_or_default(),
            }));
        }
        let now = Instant::now();
        if now >= deadline {
            // The reader threads end when the pipes close; they are not waited for, since a
            // grandchild may still hold them open.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_POLL_PAUSE);
    }
}

/// Reads a pipe to its end on a thread.
fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_captured_from_both_pipes() {
        let output = output_within(
            Command::new("/bin/sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(30),
        )
        .unwrap()
        .unwrap();
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
        assert_eq!(output.status.code(), Some(3));
    }

    #[test]
    fn a_program_past_its_limit_is_stopped() {
        let started = Instant::now();
        // It printed something first: a partial output is still a timeout.
        let output = output_within(
            Command::new("/bin/sh").args(["-c", "echo partial; exec sleep 30"]),
            Duration::from_millis(300),
        )
        .unwrap();
        assert!(output.is_none());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_large_output_does_not_block_the_child() {
        let output = output_within(
            Command::new("/bin/sh").args([
                "-c",
                "head -c 1000000 /dev/zero; head -c 1000000 /dev/zero >&2",
            ]),
            Duration::from_secs(30),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (output.stdout.len(), output.stderr.len()),
            (1_000_000, 1_000_000)
        );
    }

    #[test]
    fn a_missing_program_is_an_error() {
        assert!(
            output_within(
                &mut Command::new("/nonexistent/program"),
                Duration::from_secs(1)
            )
            .is_err()
        );
    }
}
