//! Flash image files (feature `std`): a simulated device keeps its flash in a file
//! between runs, the way real flash keeps its contents without power.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::vec::Vec;

use crate::SimNorFlash;

impl<const WRITE_SIZE: usize, const ERASE_SIZE: usize> SimNorFlash<WRITE_SIZE, ERASE_SIZE> {
    /// Loads a flash image file; its length must be whole erase sectors.
    pub fn load(path: &Path) -> io::Result<Self> {
        let data: Vec<u8> = fs::read(path)?;
        if data.is_empty()
            || !data.len().is_multiple_of(ERASE_SIZE)
            || data.len() > u32::MAX as usize
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                std::format!(
                    "flash image is {} bytes, not a whole number of {ERASE_SIZE}-byte sectors",
                    data.len()
                ),
            ));
        }
        Ok(Self::from_bytes(data))
    }

    /// Writes the current contents to a file (torn bytes included), so that a kill at any
    /// moment leaves either the previous file or the new one whole, as real flash keeps
    /// its contents: the bytes go to a temporary file beside `path` (one fixed name, so a
    /// killed save leaves no more than one), which is synced and then renamed over `path`;
    /// the directory is synced so the rename itself survives.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let temporary = temporary_path(path)?;
        let mut file = fs::File::create(&temporary)?;
        file.write_all(self.bytes())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, path)?;
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        fs::File::open(directory)?.sync_all()
    }
}

/// `dir/.name.save-tmp` for `dir/name`: in the same directory, so the rename cannot cross
/// file systems.
fn temporary_path(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            std::format!("{} names no file", path.display()),
        )
    })?;
    let mut temporary = OsString::from(".");
    temporary.push(name);
    temporary.push(".save-tmp");
    Ok(path.with_file_name(temporary))
}
