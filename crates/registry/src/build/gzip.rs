//! Reproducible gzip on every core: one gzip member whose deflate stream is cut into chunks of
//! [`CHUNK_SIZE`] input bytes that are compressed independently and joined (the way `pigz`
//! does it).
//!
//! Each chunk is deflated by its own compressor, primed with the last 32 KiB of the previous
//! chunk as its dictionary (so back-references still reach across the cut and the ratio stays
//! within a fraction of a percent of a serial stream), and ended with a sync flush, which closes
//! the chunk's last block on a byte boundary; the final chunk ends the stream instead. The
//! chunks' CRC-32s are combined in order into the gzip trailer. The output is one ordinary gzip
//! member that any decoder reads, and its bytes depend only on the input, [`CHUNK_SIZE`] and the
//! level, never on the number of threads: chunk `i` always sees the same input and dictionary.
//!
//! Memory stays bounded: each worker holds at most one queued chunk, one being compressed and
//! one compressed result, whatever the input's size. The bytes reach the caller's writer in
//! input order from one collecting thread.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Uncompressed bytes per independently compressed chunk. Part of the layer's recipe: changing
/// it changes every layer's compressed bytes.
pub(crate) const CHUNK_SIZE: usize = 1 << 20;
/// The deflate window: how much of the previous chunk primes the next one's compressor.
const WINDOW_SIZE: usize = 32 * 1024;
/// The gzip header: no file name, no mtime, "unknown" OS, so the bytes depend only on content.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
/// The most threads worth starting: beyond this the producer (tar writing and hashing) is the
/// bottleneck.
const MAX_THREADS: usize = 8;

/// The number of compression threads for this machine.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, MAX_THREADS)
}

/// One chunk to compress.
struct Job {
    /// The end of the previous chunk (empty for the first).
    dictionary: Vec<u8>,
    data: Vec<u8>,
    /// Whether this chunk ends the stream.
    last: bool,
}

/// A compressed chunk and the CRC-32 of its input.
struct Compressed {
    bytes: Vec<u8>,
    crc: Crc,
}

/// The writer `produce` writes the uncompressed stream into.
pub(crate) struct GzipInput {
    buffer: Vec<u8>,
    dictionary: Vec<u8>,
    workers: Vec<SyncSender<Job>>,
    next_worker: usize,
}

impl GzipInput {
    /// Hands the buffered chunk to the next worker in turn.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_SIZE));
        let tail_start = data.len().saturating_sub(WINDOW_SIZE);
        let next_dictionary = data[tail_start..].to_vec();
        let dictionary = std::mem::replace(&mut self.dictionary, next_dictionary);
        let worker = &self.workers[self.next_worker];
        self.next_worker = (self.next_worker + 1) % self.workers.len();
        worker
            .send(Job {
                dictionary,
                data,
                last,
            })
            .map_err(|_| io::Error::other("a compression thread stopped"))
    }
}

impl Write for GzipInput {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = CHUNK_SIZE - self.buffer.len();
        let taken = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == CHUNK_SIZE {
            self.dispatch(false)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Gzips everything `produce` writes into its [`GzipInput`], on `threads` compression threads
/// (at least one), into `output`. Returns what `produce` returned, and `output` or the error
/// that writing or compressing met; when `produce` fails, the compressed bytes are incomplete.
pub(crate) fn compress<W, T, E>(
    output: W,
    level: u32,
    threads: usize,
    produce: impl FnOnce(&mut GzipInput) -> Result<T, E>,
) -> (Result<T, E>, io::Result<W>)
where
    W: Write + Send,
{
    let threads = threads.max(1);
    std::thread::scope(|scope| {
        let mut workers = Vec::with_capacity(threads);
        let mut results = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (job_sender, job_receiver) = sync_channel::<Job>(1);
            let (result_sender, result_receiver) = sync_channel::<io::Result<Compressed>>(1);
            scope.spawn(move || compress_jobs(&job_receiver, &result_sender, level));
            workers.push(job_sender);
            results.push(result_receiver);
        }
        let collector = scope.spawn(move || collect(output, &results));
        let mut input = GzipInput {
            buffer: Vec::with_capacity(CHUNK_SIZE),
            dictionary: Vec::new(),
            workers,
            next_worker: 0,
        };
        let produced = produce(&mut input);
        let ended = match &produced {
            Ok(_) => input.dispatch(true),
            Err(_) => Err(io::Error::other("the uncompressed stream was cut short")),
        };
        // Closing the job channels stops the workers, and with them the collector.
        drop(input);
        let collected = collector
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the compression collector panicked")));
        (produced, ended.and(collected))
    })
}

/// A fingerprint of this compression recipe: the hex SHA-256 of a fixed sample compressed the
/// way layers are (a first chunk, a chunk primed with the first one's end, the last chunk),
/// with the chunk size and level. It goes into the content key, so that a deflate
/// implementation or setting that would compress a layer differently also changes the key,
/// rather than letting a rebuild reuse an image that a full build would no longer produce.
pub(crate) fn recipe_fingerprint(level: u32) -> String {
    const PIECE: usize = 8 * 1024;
    let sample = sample_text(3 * PIECE);
    let mut compressor = Compress::new(Compression::new(level), false);
    let mut hasher = sha2::Sha256::default();
    sha2::Digest::update(&mut hasher, format!("chunk {CHUNK_SIZE} level {level}\n"));
    sha2::Digest::update(&mut hasher, GZIP_HEADER);
    for index in 0..3 {
        let start = index * PIECE;
        let job = Job {
            dictionary: sample[start.saturating_sub(WINDOW_SIZE.min(PIECE))..start].to_vec(),
            data: sample[start..start + PIECE].to_vec(),
            last: index == 2,
        };
        // The sample is small and valid; a failure would mean no deflate at all, and any
        // layer would then fail to compress with a proper error, so it only changes the key.
        let bytes = deflate_chunk(&mut compressor, &job).unwrap_or_default();
        sha2::Digest::update(&mut hasher, &bytes);
    }
    hex::encode(sha2::Digest::finalize(hasher))
}

/// Text-like bytes for the fingerprint and the tests: short Python-ish words and numbers from
/// a fixed pseudo-random sequence, compressing a few times over as source code does.
fn sample_text(length: usize) -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    let words = [
        "def ",
        "asset",
        "(context",
        "):\n",
        "    return ",
        "42",
        "\n",
        "# ",
    ];
    let mut bytes = Vec::with_capacity(length + 16);
    while bytes.len() < length {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        bytes.extend_from_slice(words[(state >> 24) as usize % words.len()].as_bytes());
        bytes.extend_from_slice((state % 1000).to_string().as_bytes());
    }
    bytes.truncate(length);
    bytes
}

/// A worker: compresses each job it is given, in the order given, with one reused compressor.
fn compress_jobs(jobs: &Receiver<Job>, results: &SyncSender<io::Result<Compressed>>, level: u32) {
    let mut compressor = Compress::new(Compression::new(level), false);
    while let Ok(job) = jobs.recv() {
        let mut crc = Crc::new();
        crc.update(&job.data);
        let bytes = deflate_chunk(&mut compressor, &job).map(|bytes| Compressed { bytes, crc });
        if results.send(bytes).is_err() {
            return;
        }
    }
}

/// Deflates one chunk: a fresh stream state primed with the chunk's dictionary, ended with a
/// sync flush (or the end of the stream for the last chunk).
fn deflate_chunk(compressor: &mut Compress, job: &Job) -> io::Result<Vec<u8>> {
    compressor.reset();
    if !job.dictionary.is_empty() {
        compressor
            .set_dictionary(&job.dictionary)
            .map_err(io::Error::other)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let start = compressor.total_in();
    let mut output = Vec::with_capacity(job.data.len() / 2 + 1024);
    loop {
        if output.len() == output.capacity() {
            output.reserve(output.capacity().max(64 * 1024));
        }
        let consumed = usize::try_from(compressor.total_in() - start).unwrap_or(usize::MAX);
        let status = compressor
            .compress_vec(&job.data[consumed..], &mut output, flush)
            .map_err(io::Error::other)?;
        let consumed = usize::try_from(compressor.total_in() - start).unwrap_or(usize::MAX);
        let flushed = consumed == job.data.len() && output.len() < output.capacity();
        match status {
            Status::StreamEnd => return Ok(output),
            // A sync flush is complete once all input is taken and the output was not full.
            Status::Ok | Status::BufError if !job.last && flushed => return Ok(output),
            Status::Ok | Status::BufError => {}
        }
    }
}

/// The collecting thread: writes the header, each worker's results in dispatch order (round
/// robin), then the trailer.
fn collect<W: Write>(mut output: W, results: &[Receiver<io::Result<Compressed>>]) -> io::Result<W> {
    output.write_all(&GZIP_HEADER)?;
    let mut crc = Crc::new();
    let mut failure = None;
    // A worker's channel closes after its last result, and jobs go round robin, so the first
    // closed channel in turn marks the end of the stream.
    for index in 0.. {
        let Ok(result) = results[index % results.len()].recv() else {
            break;
        };
        match result {
            Ok(chunk) if failure.is_none() => {
                crc.combine(&chunk.crc);
                if let Err(error) = output.write_all(&chunk.bytes) {
                    failure = Some(error);
                }
            }
            Ok(_) => {}
            // Keep receiving, so that no worker blocks on a full result channel.
            Err(error) => failure = failure.or(Some(error)),
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    output.write_all(&crc.sum().to_le_bytes())?;
    output.write_all(&crc.amount().to_le_bytes())?;
    Ok(output)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use flate2::read::GzDecoder;

    use super::*;

    fn sample(length: usize) -> Vec<u8> {
        sample_text(length)
    }

    fn gzip(data: &[u8], threads: usize, pieces: usize) -> Vec<u8> {
        let (produced, output) = compress(Vec::new(), 6, threads, |input| -> io::Result<()> {
            for piece in data.chunks(pieces.max(1)) {
                input.write_all(piece)?;
            }
            Ok(())
        });
        produced.expect("produce");
        output.expect("compress")
    }

    fn gunzip(compressed: &[u8]) -> Vec<u8> {
        let mut decoded = Vec::new();
        let mut decoder = GzDecoder::new(compressed);
        decoder.read_to_end(&mut decoded).expect("valid gzip");
        // One member: a single-member decoder reads all of it and leaves nothing behind.
        assert!(
            decoder.into_inner().is_empty(),
            "trailing bytes after the member"
        );
        decoded
    }

    #[test]
    fn output_is_one_gzip_member_that_decodes_to_the_input() {
        for length in [
            0,
            1,
            WINDOW_SIZE,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE + 12_345,
        ] {
            let data = sample(length);
            let compressed = gzip(&data, 2, 4096);
            assert_eq!(gunzip(&compressed), data, "length {length}");
            assert_eq!(&compressed[..10], &GZIP_HEADER);
        }
    }

    #[test]
    fn bytes_do_not_depend_on_threads_or_how_the_input_is_written() {
        let data = sample(4 * CHUNK_SIZE + 777);
        let reference = gzip(&data, 1, 1 << 16);
        for (threads, pieces) in [(2, 1 << 16), (3, 1000), (8, 1 << 20), (5, 7)] {
            assert_eq!(
                gzip(&data, threads, pieces),
                reference,
                "{threads} threads, {pieces}-byte writes"
            );
        }
    }

    #[test]
    fn ratio_stays_close_to_a_serial_stream() {
        let data = sample(4 * CHUNK_SIZE);
        let parallel = gzip(&data, 2, 1 << 16).len();
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        serial.write_all(&data).expect("serial");
        let serial = serial.finish().expect("serial").len();
        assert!(
            parallel <= serial + serial / 100,
            "parallel {parallel} bytes against serial {serial}"
        );
    }

    #[test]
    fn the_fingerprint_is_stable_and_follows_the_level() {
        assert_eq!(recipe_fingerprint(6), recipe_fingerprint(6));
        assert_ne!(recipe_fingerprint(6), recipe_fingerprint(1));
        assert_eq!(recipe_fingerprint(6).len(), 64);
    }

    #[test]
    fn a_failing_producer_returns_its_error() {
        let (produced, output) = compress(Vec::new(), 6, 2, |input| -> io::Result<()> {
            input.write_all(&sample(2 * CHUNK_SIZE))?;
            Err(io::Error::other("the file shrank"))
        });
        let error = produced.expect_err("the producer failed");
        assert_eq!(error.to_string(), "the file shrank");
        assert!(output.is_err(), "an incomplete stream is not a result");
    }
}
