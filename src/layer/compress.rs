//! Layer compression: deterministic gzip and zstd encoders, and a reader that detects the
//! compression of a layer by its magic bytes.

use std::io::{self, Read, Write};

use flate2::GzBuilder;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::{LayerError, MEDIA_TYPE_TAR, MEDIA_TYPE_TAR_GZIP, MEDIA_TYPE_TAR_ZSTD};

/// gzip level: zlib's default trade-off; fixed because the level changes the bytes.
pub(super) const GZIP_LEVEL: u32 = 6;
/// zstd level: zstd's default; fixed because the level changes the bytes.
pub(super) const ZSTD_LEVEL: i32 = 3;
/// gzip's "unknown" OS byte, so the header does not depend on the build host.
const GZIP_OS_UNKNOWN: u8 = 255;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    #[default]
    Zstd,
    Gzip,
    None,
}

impl Compression {
    /// The OCI media type of a layer with this compression.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Zstd => MEDIA_TYPE_TAR_ZSTD,
            Compression::Gzip => MEDIA_TYPE_TAR_GZIP,
            Compression::None => MEDIA_TYPE_TAR,
        }
    }

    /// The compression of a stream that starts with `prefix` (at least 4 bytes for zstd).
    pub fn detect(prefix: &[u8]) -> Compression {
        if prefix.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else if prefix.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else {
            Compression::None
        }
    }
}

/// A reader of the uncompressed tar in `reader`, whichever of gzip, zstd or plain it is.
pub fn decompressing_reader<'a, R: Read + 'a>(
    mut reader: R,
) -> Result<Box<dyn Read + 'a>, LayerError> {
    let mut prefix = Vec::with_capacity(ZSTD_MAGIC.len());
    (&mut reader)
        .take(ZSTD_MAGIC.len() as u64)
        .read_to_end(&mut prefix)
        .map_err(LayerError::Archive)?;
    let compression = Compression::detect(&prefix);
    let whole = io::Cursor::new(prefix).chain(reader);
    Ok(match compression {
        Compression::Zstd => Box::new(zstd::Decoder::new(whole).map_err(LayerError::Archive)?),
        Compression::Gzip => Box::new(MultiGzDecoder::new(whole)),
        Compression::None => Box::new(whole),
    })
}

/// A compressing writer; `finish` ends the stream and returns the inner writer.
pub(super) enum Encoder<W: Write> {
    Plain(W),
    Gzip(GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub(super) fn new(compression: Compression, inner: W) -> io::Result<Encoder<W>> {
        Ok(match compression {
            Compression::None => Encoder::Plain(inner),
            Compression::Gzip => Encoder::Gzip(
                GzBuilder::new()
                    .mtime(0)
                    .operating_system(GZIP_OS_UNKNOWN)
                    .write(inner, flate2::Compression::new(GZIP_LEVEL)),
            ),
            Compression::Zstd => {
                // zstd's single-threaded mode: its bytes cannot depend on the machine. (The
                // multithreaded mode gives other bytes, the same for any worker count, but
                // was slower here on 2 cores; switching would change every layer digest.)
                let mut encoder = zstd::stream::write::Encoder::new(inner, ZSTD_LEVEL)?;
                encoder.include_checksum(false)?;
                encoder.include_contentsize(false)?;
                Encoder::Zstd(encoder)
            }
        })
    }

    pub(super) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(inner) => Ok(inner),
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(inner) => inner.write(buf),
            Encoder::Gzip(encoder) => encoder.write(buf),
            Encoder::Zstd(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(inner) => inner.flush(),
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
        }
    }
}
