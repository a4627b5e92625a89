//! Reading a response body with a size limit, so that a misbehaving server cannot make a client
//! hold an unbounded answer in memory.

/// Why [`read_body_bounded`] stopped.
#[derive(Debug)]
pub enum BodyError {
    /// The body (as announced by `Content-Length`, or as read) is larger than the limit.
    TooLarge,
    /// The connection failed while the body was read.
    Read(reqwest::Error),
}

/// Reads the whole body of `response`, refusing one larger than `limit` bytes before reading
/// it when `Content-Length` says so, and as soon as the bytes read pass the limit otherwise.
pub async fn read_body_bounded(
    mut response: reqwest::Response,
    limit: u64,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(BodyError::TooLarge);
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
