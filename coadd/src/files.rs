//! Local brick files, memory-mapped: a cutout touches only the pages of the
//! header, the tile table and the tiles it decodes, so a brick with a few
//! targets costs a few tiles rather than a read of the whole file.

use std::path::Path;

pub use memmap2::Mmap;

/// Maps a file read-only; `None` if it does not exist. The coadd files are
/// written once and not modified while a run reads them (a file truncated
/// under a live mapping would fault on access).
pub fn map_file(path: &Path) -> std::io::Result<Option<Mmap>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // SAFETY: read-only mapping of a file that is not modified while mapped
    // (see above); the bytes are only read through `&[u8]`.
    let map = unsafe { Mmap::map(&file)? };
    Ok(Some(map))
}
